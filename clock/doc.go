// Package clock gives wisp its time: the Clock interface with a real and a fake
// implementation, and Timeouts, the one queue of protocol timers a stack runs (lwIP's
// timeouts.c).
//
// Layer: base (imports nothing of wisp). Protocol code never reads time.Now and never starts
// a goroutine for a timer: it embeds a Timeout and asks the stack's Timeouts to schedule it.
// The queue keeps one clock timer armed for the earliest deadline and none when nothing is
// pending, so an idle stack never wakes up. Timeouts and Timeout methods are called in core
// context; the fake clock is safe for concurrent use.
package clock

// Package sntp is an SNTP client (RFC 4330; RFC 5905's client mode), lwIP's apps/sntp in
// shape: one UDP PCB and one clock.Timeout on the core that runs it, a list of servers,
// a poll interval with backoff while servers are silent, Kiss-o'-Death handling (RFC 5905
// §7.4), and the offset of the stack's clock from the servers' exposed to applications
// (Client.Offset, Client.Now). The stack's own timers stay on their monotonic clock: the
// offset is never applied to them.
//
// Layer: apps. It imports transport/udp, pbuf, clock, errs and wire/ntp — never stack. Package stack starts it (Stack.StartSNTP) on core 0.
//
// Concurrency: New, and the Client methods that say so, run in core context. Offset, Now,
// Stats and Stop are safe for concurrent use.
package sntp

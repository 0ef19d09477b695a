//go:build !wispcheck

package clock

// checkCore is off in production builds: Timeouts.AssertCore compiles to nothing.
const checkCore = false

//go:build wispcheck

package clock

// checkCore turns on Timeouts.AssertCore: the test command builds with -tags wispcheck.
const checkCore = true

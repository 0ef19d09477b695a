//go:build race

package gvisor_test

// raceEnabled: the race detector makes sync.Pool drop a share of what is put back, so gVisor's
// packet pools allocate and the allocation pins cannot hold.
const raceEnabled = true

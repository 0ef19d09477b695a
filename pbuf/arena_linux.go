//go:build linux

package pbuf

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// newArena returns n zeroed bytes for packet data, mapped outside the Go heap, and ties
// their release to owner becoming unreachable.
//
// Why not make: a stack reserves its whole budget at start (tens of MiB in the tunnel
// preset), and as Go heap that reservation counts as live heap, so the collector lets the
// host program's garbage grow to the same size again before it runs (GOGC=100): a 70 MiB
// stack made a WireGuard process's resident set grow by ~140 MiB more under load than
// netstack's. A private anonymous mapping costs nothing until a page is touched, is not
// scanned (the arenas hold no pointers) and does not move the GC's heap goal.
//
// Memory safety: every slice of the arena belongs to a pbuf, and every pbuf points to its
// Allocator (or heap), so the mapping stays while any pbuf is reachable; views a caller kept
// past the pbuf's Free are invalid by contract. When the mapping fails (a tight vm limit),
// the arena falls back to the Go heap.
func newArena[T any](owner *T, n int) []byte {
	if n <= 0 {
		return nil
	}
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return make([]byte, n)
	}
	runtime.AddCleanup(owner, func(b []byte) { _ = unix.Munmap(b) }, b)
	return b
}

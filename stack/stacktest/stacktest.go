// Package stacktest is the kit of wisp's external test packages: the checks every test
// ends with (pools back to zero: Closed, PoolsZero; no pbuf held after an input:
// BuffersZero; no goroutine left behind: NoGoroutineLeak); the evidence a test that moves
// data prints when it fails (OnFail: what every side's connections, counters and links
// hold); two stacks joined by a pipe (NewPair, WaitReady) and frames fed to a netif as its
// link would (Inject); connections with deadlines and a byte-exact transfer over them
// (Connect, Transfer); and a pcap capture of a link for debugging (CaptureTo).
//
// Tests inside the packages below stack (package tcp, udp, raw, ip) cannot import it: it
// imports stack, which imports them. They use ip/iptest (ip's own internal tests cannot
// either) and link/linktest.
//
// Layer: stack (imports stack and the layers below it). For tests only.
package stacktest

import (
	"bytes"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/stack"
)

// NoGoroutineLeak records how many goroutines run now and, when the test ends, fails it if
// more are still running after a grace period (printing their stacks). It checks nothing
// for a fuzz target (*testing.F): under -fuzz the fuzzing engine runs goroutines of its own.
func NoGoroutineLeak(t testing.TB) {
	t.Helper()
	if _, fuzz := t.(*testing.F); fuzz {
		return
	}
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			var b bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Errorf("%d goroutines left behind (before %d, now %d):\n%s", n-before, before, n, b.String())
		}
	})
}

// PoolsZero fails the test unless every pool and the heap of s are empty. Call it after
// s.Close (or when the test has freed everything it holds).
func PoolsZero(t testing.TB, s *stack.Stack) {
	t.Helper()
	empty(t, s, "")
}

// BuffersZero fails the test unless every pbuf pool and the heap of s are empty (PCBs may
// be open): after an input has been handled, nothing of it may be held.
func BuffersZero(t testing.TB, s *stack.Stack) {
	t.Helper()
	empty(t, s, "PBUF")
}

// empty fails the test unless the pools of s whose names begin with prefix, and the heap,
// are empty.
func empty(t testing.TB, s *stack.Stack, prefix string) {
	t.Helper()
	snap := s.Stats()
	for _, p := range snap.PoolsInUse() {
		if strings.HasPrefix(p.Name, prefix) {
			t.Errorf("pool %s: %d elements still in use", p.Name, p.Used)
		}
	}
	if snap.Heap.Used != 0 {
		t.Errorf("heap: %d bytes still in use", snap.Heap.Used)
	}
}

// Closed closes s when the test ends and then checks PoolsZero.
func Closed(t testing.TB, s *stack.Stack) {
	t.Helper()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		PoolsZero(t, s)
	})
}

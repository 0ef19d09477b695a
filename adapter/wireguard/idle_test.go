package wireguard

import (
	"net/netip"
	"runtime"
	"testing"

	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
)

// liveHeap is the Go heap in use after the collector has run.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A tunnel that carries nothing holds almost nothing in the Go heap: CreateNetTUN sizes
// the stack with opt.Client, whose budget is reserved in full (Net.Budget) but made as it
// is used. Two stacks, as in a WireGuard pair, held 11 MiB with the tunnel preset before
// pools were lazy; now about 0.4 MiB.
func TestCreateNetTUNIdleHeap(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	before := liveHeap()
	var nets [2]*Net
	for i := range nets {
		td, n, err := CreateNetTUN([]netip.Addr{netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)})}, nil, 1420)
		if err != nil {
			t.Fatal(err)
		}
		defer td.Close()
		nets[i] = n
	}
	grown := int64(liveHeap()) - int64(before)
	// The reservation is still whole: every line matches opt.Client()'s budget (which
	// also lists an ARP table, that an IP-only netif does not have).
	want := map[string]stack.BudgetLine{}
	for _, l := range stack.BudgetFor(opt.Client()).Lines {
		want[l.Name] = l
	}
	for _, l := range nets[0].Budget().Lines {
		if want[l.Name] != l {
			t.Errorf("budget line %+v, opt.Client() reserves %+v", l, want[l.Name])
		}
	}
	if grown > 1<<20 {
		t.Errorf("two idle stacks hold %.2f MiB of Go heap, want under 1 MiB", float64(grown)/(1<<20))
	}
	t.Logf("two idle stacks: %.2f MiB of Go heap", float64(grown)/(1<<20))
	runtime.KeepAlive(nets)
}

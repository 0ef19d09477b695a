package forwarder_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/forwarder"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
)

// Addresses no stack owns, that the proxy (B) intercepts; the client (A, 198.18.0.1 and
// fd42:5eed::1) reaches them by its default routes.
var (
	far4 = netip.MustParseAddr("198.19.7.7")
	far6 = netip.MustParseAddr("fd42:5eed:0:77::7")
	fars = []netip.Addr{far4, far6}
)

// rig is a client stack (A) and a proxy stack (B) joined by an IP pipe: A routes every
// address to B, B intercepts everything and runs a forwarder.
type rig struct {
	*stacktest.Pair
	cli *endpoint.Net // A's socket layer
	f   *forwarder.Forwarder
	clk *clock.Fake // nil: the real clock (and an asynchronous pipe)
}

type rigConfig struct {
	fake  bool // a fake clock and a synchronous pipe (flush moves frames)
	mtu   int
	cores int
	o     opt.Options
}

// newRig builds the rig; the forwarder closes first when the test ends, then the stacks
// (whose pools must be back to zero), then the goroutine check.
func newRig(t testing.TB, c forwarder.Config, rc rigConfig) *rig {
	t.Helper()
	r := &rig{}
	pc := stacktest.PairConfig{Options: rc.o, MTU: rc.mtu, Cores: rc.cores}
	if rc.fake {
		r.clk = clock.NewFake(time.Unix(1e9, 0))
		pc.Clock = r.clk
	}
	r.Pair = stacktest.NewPair(t, pc)
	for _, pfx := range []string{"0.0.0.0/0", "::/0"} {
		if err := r.A.AddRoute(stack.Route{Dst: netip.MustParsePrefix(pfx), Netif: r.NetifA}); err != nil {
			t.Fatal(err)
		}
		if err := r.B.AddRoute(stack.Route{Dst: netip.MustParsePrefix(pfx), Netif: r.NetifB}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.NetifB.SetIntercept(&ip.Intercept{}); err != nil {
		t.Fatal(err)
	}
	if !rc.fake {
		stacktest.WaitReady(t, r.NetifA, r.NetifB)
	}
	r.cli = endpoint.New(r.A)
	f, err := forwarder.New(r.B, c)
	if err != nil {
		t.Fatal(err)
	}
	r.f = f
	t.Cleanup(func() {
		_ = f.Close()
		if t.Failed() {
			t.Logf("%v", f.Stats())
		}
	})
	r.Ev.Later(func() {}) // the evidence prints before the forwarder closes
	return r
}

// flush moves queued frames both ways (fake clock only).
func (r *rig) flush() { r.PipeA.Flush() }

// waitFor polls cond on the real clock for up to d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ap joins an address and a port.
func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

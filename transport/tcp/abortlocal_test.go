package tcp_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/transport/tcp"
)

// AbortLocal aborts the connections bound to the address, and only those: listeners and
// connections on another address stay.
func TestAbortLocal(t *testing.T) {
	a, b, pa := syncPair(t, opt.Embedded())
	var accepted []*tcp.PCB
	var lsn *tcp.Listener
	b.Callback(func() {
		c, _ := b.TCP().NewPCB()
		if err := c.Bind(netip.AddrPortFrom(netip.Addr{}, 80)); err != nil { // both families
			t.Fatal(err)
		}
		lsn, _ = c.Listen(4)
		lsn.OnAccept(func(_ *tcp.Listener, c *tcp.PCB) { accepted = append(accepted, c) })
	})
	var errsGot []error
	var conns []*tcp.PCB
	var alsn *tcp.Listener
	a.Callback(func() {
		for _, dst := range []string{"198.18.0.2:80", "[fd42:5eed::2]:80"} {
			c, _ := a.TCP().NewPCB()
			c.OnErr(func(_ *tcp.PCB, err error) { errsGot = append(errsGot, err) })
			if err := c.Connect(netip.MustParseAddrPort(dst), nil); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		l, _ := a.TCP().NewPCB()
		if err := l.Bind(netip.MustParseAddrPort("198.18.0.1:81")); err != nil {
			t.Fatal(err)
		}
		alsn, _ = l.Listen(1)
	})
	pa.Flush()
	var st0, st1 tcp.State
	a.Callback(func() { st0, st1 = conns[0].State(), conns[1].State() })
	if len(accepted) != 2 || st0 != tcp.StateEstablished {
		t.Fatalf("accepted %d, state %v %v, errors %v", len(accepted), st0, st1, errsGot)
	}
	var n int
	a.Callback(func() { n = a.TCP().AbortLocal(netip.MustParseAddr("::ffff:198.18.0.1")) })
	if n != 1 || len(errsGot) != 1 || errsGot[0] != errs.Abrt {
		t.Fatalf("aborted %d, errors %v", n, errsGot)
	}
	a.Callback(func() {
		if c, l := a.TCP().NumPCBs(); c != 1 || l != 1 {
			t.Errorf("left: %d connections, %d listeners; want the IPv6 one and the listener", c, l)
		}
		if conns[1].State() != tcp.StateEstablished {
			t.Errorf("IPv6 connection: %v", conns[1].State())
		}
		conns[1].Abort()
		_ = alsn.Close()
	})
	b.Callback(func() {
		for _, c := range accepted {
			c.Abort()
		}
		_ = lsn.Close()
	})
}

// syncPair returns two stacks (198.18.0.1 and fd42:5eed::1; .2 and ::2) over a synchronous
// IP pipe on a fake clock, checked for leaks when the test ends; pa.Flush() runs the wire.
func syncPair(t *testing.T, o opt.Options) (a, b *stack.Stack, pa *pipe.End) {
	t.Helper()
	stacktest.NoGoroutineLeak(t)
	o.IPv6AutoConfig = false
	o.IPv6DupAddrDetectTransmits = 0
	clk := clock.NewFake(time.Unix(1e9, 0))
	pa, pb := pipe.New(pipe.Config{Medium: link.MediumIP, Sync: true})
	var ss [2]*stack.Stack
	for i, ep := range []*pipe.End{pa, pb} {
		s, err := stack.New(stack.Config{Options: o, Clock: clk, Seed: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		stacktest.Closed(t, s)
		n := fmt.Sprint(i + 1)
		addrs := []netip.Prefix{netip.MustParsePrefix("198.18.0." + n + "/24"), netip.MustParsePrefix("fd42:5eed::" + n + "/64")}
		if _, err := s.AddNetif(ep, stack.NetifConfig{Addrs: addrs}); err != nil {
			t.Fatal(err)
		}
		ss[i] = s
	}
	return ss[0], ss[1], pa
}

package tcp_test

import (
	"net/netip"
	"testing"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/transport/tcp"
)

// A listener on "::" hears IPv4 unless V6Only (RFC 3493 §3.7, Linux's default), so it
// holds the port for IPv4 binds too; with V6Only an IPv4 wildcard can share the port.
func TestDualStackListener(t *testing.T) {
	o := opt.Embedded()
	o.MempNumTCPPCB = 16
	o.MempNumTCPPCBListen = 8
	a, b, pa := syncPair(t, o)
	got := map[string]int{}
	var lsns []*tcp.Listener
	var accepted []*tcp.PCB
	listen := func(addr string, v6only bool) {
		c, _ := b.TCP().NewPCB()
		c.SetV6Only(v6only)
		if err := c.Bind(netip.MustParseAddrPort(addr)); err != nil {
			t.Fatalf("bind %s: %v", addr, err)
		}
		l, err := c.Listen(4)
		if err != nil {
			t.Fatalf("listen %s: %v", addr, err)
		}
		l.OnAccept(func(l *tcp.Listener, c *tcp.PCB) {
			got[l.Addr().String()]++
			accepted = append(accepted, c)
		})
		lsns = append(lsns, l)
	}
	var failed []error
	dial := func(dst string) *tcp.PCB {
		c, _ := a.TCP().NewPCB()
		c.OnErr(func(_ *tcp.PCB, err error) { failed = append(failed, err) })
		if err := c.Connect(netip.MustParseAddrPort(dst), nil); err != nil {
			t.Fatal(err)
		}
		return c
	}
	var conns []*tcp.PCB
	b.Callback(func() {
		listen("[::]:80", false)
		listen("[::]:81", true)
		listen("[::]:82", true)
		listen("0.0.0.0:82", false)
		for _, addr := range []string{"0.0.0.0:80", "198.18.0.2:80"} {
			c, _ := b.TCP().NewPCB()
			if err := c.Bind(netip.MustParseAddrPort(addr)); err != errs.Use {
				t.Errorf("bind %s beside a dual-stack [::]:80: %v, want errs.Use", addr, err)
			}
			c.Close()
		}
	})
	a.Callback(func() {
		for _, d := range []string{"198.18.0.2:80", "[fd42:5eed::2]:80", "198.18.0.2:81", "[fd42:5eed::2]:81", "198.18.0.2:82", "[fd42:5eed::2]:82"} {
			conns = append(conns, dial(d))
		}
	})
	pa.Flush()
	want := map[string]int{"[::]:80": 2, "[::]:81": 1, "[::]:82": 1, "0.0.0.0:82": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("listener %s accepted %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	if len(failed) != 1 || failed[0] != errs.Refused {
		t.Errorf("connect errors %v, want one refusal (IPv4 to the V6Only listener)", failed)
	}
	a.Callback(func() {
		for _, c := range conns {
			if c.State() != tcp.StateClosed {
				c.Abort()
			}
		}
	})
	b.Callback(func() {
		for _, c := range accepted {
			c.Abort()
		}
		for _, l := range lsns {
			_ = l.Close()
		}
	})
	pa.Flush()
}

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

// Options set before Connect and Listen read back from the PCB after: the connecting one
// keeps them, an accepted one has its listener's bind-time options, TTL and TOS.
// Keepalive's parameters are kept while it is off.
func TestOptionsReadBack(t *testing.T) {
	o := opt.Embedded()
	a, b, pa := syncPair(t, o)
	idle, intvl, cnt := 2*o.TCPKeepIdle, 2*o.TCPKeepIntvl, o.TCPKeepCnt+1 // not the defaults
	var srv, cli *tcp.PCB
	var l *tcp.Listener
	b.Callback(func() {
		c, _ := b.TCP().NewPCB()
		c.SetReuseAddr(true)
		c.SetV6Only(true)
		c.SetTTL(7)
		c.SetTOS(0x28)
		if err := c.Bind(netip.MustParseAddrPort("[::]:80")); err != nil {
			t.Fatal(err)
		}
		var err error
		if l, err = c.Listen(4); err != nil {
			t.Fatal(err)
		}
		l.OnAccept(func(_ *tcp.Listener, c *tcp.PCB) { srv = c })
	})
	a.Callback(func() {
		cli, _ = a.TCP().NewPCB()
		cli.SetReuseAddr(true)
		cli.SetV6Only(true)
		cli.SetTTL(9)
		cli.SetTOS(0x10)
		cli.SetKeepAlive(false, idle, intvl, cnt)
		if err := cli.Connect(netip.MustParseAddrPort("[fd42:5eed::2]:80"), nil); err != nil {
			t.Fatal(err)
		}
	})
	pa.Flush()
	type opts struct {
		state         tcp.State
		reuse, v6only bool
		ttl, tos      uint8
		keep          bool
		idle, intvl   int64 // ns
		cnt           int
	}
	read := func(c *tcp.PCB) (r opts) {
		r.state, r.reuse, r.v6only, r.ttl, r.tos = c.State(), c.ReuseAddr(), c.V6Only(), c.TTL(), c.TOS()
		on, i, iv, n := c.KeepAlive()
		r.keep, r.idle, r.intvl, r.cnt = on, int64(i), int64(iv), n
		return r
	}
	var got opts
	b.Callback(func() {
		if srv == nil {
			t.Fatal("nothing accepted")
		}
		got = read(srv)
		if want := (opts{tcp.StateEstablished, true, true, 7, 0x28, false, int64(o.TCPKeepIdle), int64(o.TCPKeepIntvl), o.TCPKeepCnt}); got != want {
			t.Errorf("accepted PCB: %+v, want %+v", got, want)
		}
		_ = l.Close()
	})
	a.Callback(func() {
		got = read(cli)
		if want := (opts{tcp.StateEstablished, true, true, 9, 0x10, false, int64(idle), int64(intvl), cnt}); got != want {
			t.Errorf("connected PCB: %+v, want %+v", got, want)
		}
		cli.SetKeepAlive(true, 0, 0, 0)
		if got = read(cli); !got.keep || got.idle != int64(idle) || got.intvl != int64(intvl) || got.cnt != cnt {
			t.Errorf("keepalive turned on: %+v, want the parameters set while off", got)
		}
		cli.Abort()
	})
	pa.Flush()
}

package tcp

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
)

// Interception (intercept.go): b's netif intercepts every address (ip.Intercept), a is the
// device whose connections to addresses b does not own are caught. The intercepted
// addresses are on a's link (198.18.0.0/24, fd42:5eed::/64), so a sends them to b.
var (
	iceptDst  = netip.MustParseAddr("198.18.0.77")
	iceptDst6 = netip.MustParseAddr("fd42:5eed::77")
)

// iceptWorld is a world whose b intercepts.
func iceptWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t, worldCfg{})
	w.b.Do(func() {
		if err := w.b.Netif.SetIntercept(&ip.Intercept{}); err != nil {
			t.Fatal(err)
		}
	})
	return w
}

// host is the TUN proxy of a test: its intercept listener on b, the connections it
// accepted, the undecided SYNs it was offered and what their ErrFuncs heard.
type host struct {
	n        *node
	l        *Listener
	srv      *app // accepted connections are attached to it
	offered  []*PCB
	offerErr map[*PCB]error
	onSyn    func(c *PCB) // decides at once when set
}

func listenIntercept(t *testing.T, n *node, backlog int, deferred bool) *host {
	t.Helper()
	h := &host{n: n, srv: newApp(n), offerErr: map[*PCB]error{}}
	n.Do(func() {
		l, err := n.tcp.ListenIntercept(backlog, deferred)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.tcp.ListenIntercept(1, false); !errors.Is(err, errs.Use) {
			t.Errorf("a second intercept listener: %v, want errs.Use", err)
		}
		h.l = l
		l.OnAccept(func(l *Listener, c *PCB) {
			h.srv.accepted = append(h.srv.accepted, c)
			h.srv.attach(c)
		})
		if deferred {
			l.OnSyn(func(l *Listener, c *PCB) {
				h.offered = append(h.offered, c)
				c.OnErr(func(c *PCB, err error) { h.offerErr[c] = err })
				if h.onSyn != nil {
					h.onSyn(c)
				}
			})
		}
	})
	return h
}

// idle checks that n holds no connection and, besides its intercept listener when kept,
// no listener (the pools back to zero once the node closes is iptest's check).
func idle(t *testing.T, n *node, listeners int) {
	t.Helper()
	n.Do(func() {
		c, l := n.tcp.NumPCBs()
		if c != 0 || l != listeners {
			t.Errorf("%d connections, %d listeners in use, want 0, %d", c, l, listeners)
			n.tcp.Conns(func(i Info) { t.Logf("  %v", i) })
		}
		if k := n.tcp.colds.Stats().Used; k != 0 {
			t.Errorf("%d cold parts in use", k)
		}
	})
}

func ext(n *node) (s [4]uint64) {
	e := n.stats().TCPExt
	return [4]uint64{e.InterceptSyn, e.InterceptRefused, e.SynDeduped, e.DeferTimeouts}
}

// TestInterceptEarly: a connection to an address b does not own is accepted at once
// (early mode) with that address as its local one, and moves data both ways, v4 and v6.
func TestInterceptEarly(t *testing.T) {
	for _, dst := range []netip.Addr{iceptDst, iceptDst6} {
		t.Run(dst.String(), func(t *testing.T) {
			w := iceptWorld(t)
			h := listenIntercept(t, w.b, 0, false)
			cli := newApp(w.a)
			to := netip.AddrPortFrom(dst, 443)
			connected := dial(t, w.a, to, cli)
			if !w.Until(time.Second, func() bool { return *connected && len(h.srv.accepted) == 1 }) {
				t.Fatalf("not connected: client %v, accepted %d", w.a.state(cli.c), len(h.srv.accepted))
			}
			sc := h.srv.accepted[0]
			var local, remote, cliLocal netip.AddrPort
			w.b.Do(func() { local, remote = sc.LocalAddr(), sc.RemoteAddr() })
			w.a.Do(func() { cliLocal = cli.c.LocalAddr() })
			if local != to || remote != cliLocal {
				t.Errorf("accepted %v->%v, want %v->%v", remote, local, cliLocal, to)
			}
			// Data both ways: the client's stream up, the host's down.
			const up, down = 200<<10 + 7, 300<<10 + 11
			su, sd := newSender(cli, up, 1), newSender(h.srv, down, 2)
			w.a.Do(su.start)
			w.b.Do(sd.start)
			if !w.Until(10*time.Second, func() bool { return h.srv.rcvd == up && cli.rcvd == down }) {
				w.b.Do(func() { w.b.tcp.Conns(func(i Info) { t.Logf("b: %v", i) }) })
				w.a.Do(func() { w.a.tcp.Conns(func(i Info) { t.Logf("a: %v", i) }) })
				t.Fatalf("host got %d of %d, client %d of %d (errors %v, %v; stats b %+v)", h.srv.rcvd, up, cli.rcvd, down, h.srv.err, cli.err, w.b.stats().TCPExt)
			}
			if h.srv.rcvd != up || !bytes.Equal(h.srv.sum(), su.h.d.Sum(nil)) ||
				cli.rcvd != down || !bytes.Equal(cli.sum(), sd.h.d.Sum(nil)) {
				t.Fatalf("host got %d of %d, client %d of %d (or the bytes differ)", h.srv.rcvd, up, cli.rcvd, down)
			}
			w.a.Do(func() { cli.c.Close() })
			w.b.Do(func() { sc.Close() })
			w.Run(2*w.a.Opts.TCPMSL + time.Second)
			if got := ext(w.b); got != [4]uint64{1, 0, 0, 0} {
				t.Errorf("InterceptSyn, InterceptRefused, SynDeduped, DeferTimeouts = %v, want [1 0 0 0]", got)
			}
			idle(t, w.a, 0)
			idle(t, w.b, 1)
			w.b.Do(func() { h.l.Close() })
			idle(t, w.b, 0)
		})
	}
}

// TestInterceptSeparate: an ordinary listener never hears an intercepted SYN, the
// intercept listener never a local one; without an intercept listener an intercepted SYN
// gets a RST, counted.
func TestInterceptSeparate(t *testing.T) {
	w := iceptWorld(t)
	local := newApp(w.b)
	ll := listen(t, w.b, 80, local)

	// No intercept listener: refused at once, though a listener has port 80.
	cli := newApp(w.a)
	dial(t, w.a, netip.AddrPortFrom(iceptDst, 80), cli)
	w.Run(100 * time.Millisecond)
	if !errors.Is(cli.err, errs.Refused) || len(local.accepted) != 0 {
		t.Fatalf("no intercept listener: client err %v, local listener accepted %d", cli.err, len(local.accepted))
	}
	if got := ext(w.b); got != [4]uint64{1, 1, 0, 0} {
		t.Errorf("counters %v, want [1 1 0 0]", got)
	}

	h := listenIntercept(t, w.b, 0, false)
	c1, c2 := newApp(w.a), newApp(w.a)
	dial(t, w.a, netip.AddrPortFrom(addrB, 80), c1)    // local: the ordinary listener
	dial(t, w.a, netip.AddrPortFrom(iceptDst, 80), c2) // intercepted
	w.Run(100 * time.Millisecond)
	if len(local.accepted) != 1 || len(h.srv.accepted) != 1 {
		t.Fatalf("local listener accepted %d, intercept listener %d; want 1 and 1", len(local.accepted), len(h.srv.accepted))
	}
	w.b.Do(func() {
		if a := local.accepted[0].LocalAddr(); a != netip.AddrPortFrom(addrB, 80) {
			t.Errorf("local listener's connection at %v", a)
		}
		if a := h.srv.accepted[0].LocalAddr(); a != netip.AddrPortFrom(iceptDst, 80) {
			t.Errorf("intercepted connection at %v", a)
		}
	})
	// A local port with no listener stays closed to the intercept listener.
	c3 := newApp(w.a)
	dial(t, w.a, netip.AddrPortFrom(addrB, 81), c3)
	w.Run(100 * time.Millisecond)
	if !errors.Is(c3.err, errs.Refused) || len(h.srv.accepted) != 1 {
		t.Errorf("local port 81: client err %v, intercept accepted %d", c3.err, len(h.srv.accepted))
	}
	w.a.Do(func() { c1.c.Abort(); c2.c.Abort() })
	w.Run(100 * time.Millisecond)
	w.b.Do(func() { ll.Close(); h.l.Close() })
	idle(t, w.a, 0)
	idle(t, w.b, 0)
}

// TestInterceptBacklogFull: with the backlog held by connections the host has not taken,
// an early listener answers the next SYN with a RST (never a cookie, never silence).
func TestInterceptBacklogFull(t *testing.T) {
	w := iceptWorld(t)
	h := listenIntercept(t, w.b, 2, false)
	w.b.Do(func() {
		h.l.OnAccept(func(l *Listener, c *PCB) {
			c.BacklogDelayed() // the host's queue holds them
			h.srv.accepted = append(h.srv.accepted, c)
		})
	})
	clis := []*app{newApp(w.a), newApp(w.a), newApp(w.a)}
	for i, c := range clis {
		dial(t, w.a, netip.AddrPortFrom(iceptDst, uint16(1000+i)), c)
	}
	w.Run(100 * time.Millisecond)
	if len(h.srv.accepted) != 2 || !errors.Is(clis[2].err, errs.Refused) {
		t.Fatalf("accepted %d, third client err %v; want 2 and refused", len(h.srv.accepted), clis[2].err)
	}
	st := w.b.stats().TCPExt
	if st.InterceptRefused != 1 || st.ListenOverflows != 1 || st.CookiesSent != 0 || st.InterceptSyn != 3 {
		t.Errorf("InterceptRefused %d ListenOverflows %d CookiesSent %d InterceptSyn %d, want 1 1 0 3",
			st.InterceptRefused, st.ListenOverflows, st.CookiesSent, st.InterceptSyn)
	}
	// Closing the listener leaves accepted connections to the host.
	w.b.Do(func() {
		h.l.Close()
		for _, c := range h.srv.accepted {
			c.BacklogAccepted()
			c.Abort()
		}
	})
	w.Run(100 * time.Millisecond)
	for i, c := range clis[:2] {
		if !errors.Is(c.err, errs.Rst) {
			t.Errorf("client %d: %v, want a reset", i, c.err)
		}
	}
	idle(t, w.a, 0)
	idle(t, w.b, 0)
}

// TestInterceptDeferredAccept: a deferred listener sends nothing until the host accepts;
// the client's retransmitted SYNs are dropped and counted; the undecided PCB stays parked;
// AcceptSyn completes the handshake and the connection reaches OnAccept and moves data.
func TestInterceptDeferredAccept(t *testing.T) {
	for _, dst := range []netip.Addr{iceptDst, iceptDst6} {
		t.Run(dst.String(), func(t *testing.T) {
			w := iceptWorld(t)
			h := listenIntercept(t, w.b, 0, true)
			cli := newApp(w.a)
			to := netip.AddrPortFrom(dst, 8080)
			connected := dial(t, w.a, to, cli)
			w.Run(3500 * time.Millisecond) // the client's SYN and two retransmissions
			if len(h.offered) != 1 {
				t.Fatalf("offered %d SYNs, want 1", len(h.offered))
			}
			c := h.offered[0]
			if sent := w.b.stats().TCP.Xmit; sent != 0 {
				t.Errorf("b sent %d segments before the decision", sent)
			}
			w.b.Do(func() {
				if !c.Undecided() || c.pcbCold != nil || c.LocalAddr() != to || c.State() != StateSynReceived {
					t.Errorf("undecided=%v parked=%v local %v state %v", c.Undecided(), c.pcbCold == nil, c.LocalAddr(), c.State())
				}
				i := c.Info()
				i.Timers = c.timersString(w.b.tcp.nowNs())
				if s := i.String(); !bytes.Contains([]byte(s), []byte("SYN-RECEIVED(deferred)")) || !bytes.Contains([]byte(s), []byte("defer=")) {
					t.Errorf("Info of an undecided PCB: %s", s)
				}
				if n := w.b.tcp.halfOpen.n; n != 0 {
					t.Errorf("an undecided PCB on the half-open list (%d)", n)
				}
			})
			if st := w.a.state(cli.c); st != StateSynSent {
				t.Fatalf("client %v before the decision", st)
			}
			if got := ext(w.b); got[2] < 2 {
				t.Errorf("SynDeduped %d, want ≥ 2", got[2])
			}
			w.b.Do(func() {
				if err := c.AcceptSyn(); err != nil {
					t.Fatal(err)
				}
				if err := c.AcceptSyn(); !errors.Is(err, errs.Conn) {
					t.Errorf("second AcceptSyn: %v", err)
				}
			})
			if !w.Until(time.Second, func() bool { return *connected && len(h.srv.accepted) == 1 }) {
				t.Fatalf("not connected after AcceptSyn: client %v, accepted %d", w.a.state(cli.c), len(h.srv.accepted))
			}
			if h.srv.accepted[0] != c {
				t.Error("OnAccept got another PCB than the one offered")
			}
			s := newSender(cli, 100<<10, 3)
			s.close = true
			w.a.Do(s.start)
			if !w.Until(5*time.Second, func() bool { return h.srv.fin }) || h.srv.rcvd != 100<<10 {
				t.Fatalf("host got %d bytes, fin %v", h.srv.rcvd, h.srv.fin)
			}
			w.b.Do(func() { h.srv.c.Close(); h.l.Close() })
			w.Run(2*w.a.Opts.TCPMSL + time.Second)
			if len(h.offerErr) != 0 {
				t.Errorf("ErrFunc of an accepted connection called: %v", h.offerErr)
			}
			idle(t, w.a, 0)
			idle(t, w.b, 0)
		})
	}
}

// TestInterceptDeferredRefuse: RefuseSyn(true) resets the client at once; RefuseSyn(false)
// sends nothing; either frees the PCB without callbacks.
func TestInterceptDeferredRefuse(t *testing.T) {
	w := iceptWorld(t)
	h := listenIntercept(t, w.b, 0, true)
	cli := newApp(w.a)
	dial(t, w.a, netip.AddrPortFrom(iceptDst, 25), cli)
	w.Run(10 * time.Millisecond)
	if len(h.offered) != 1 {
		t.Fatalf("offered %d", len(h.offered))
	}
	w.b.Do(func() { h.offered[0].RefuseSyn(true) })
	w.Run(10 * time.Millisecond)
	if !errors.Is(cli.err, errs.Refused) {
		t.Fatalf("RefuseSyn(true): client err %v, state %v", cli.err, w.a.state(cli.c))
	}
	idle(t, w.b, 1)

	// Silently: the client hears nothing and retries; each retry is a new request.
	cli2 := newApp(w.a)
	dial(t, w.a, netip.AddrPortFrom(iceptDst, 26), cli2)
	h.onSyn = func(c *PCB) { c.RefuseSyn(false) }
	w.Run(3500 * time.Millisecond)
	if len(h.offered) != 1+3 {
		t.Errorf("offered %d, want 4 (a SYN and its two retransmissions, each refused)", len(h.offered))
	}
	if st := w.a.state(cli2.c); st != StateSynSent || cli2.err != nil {
		t.Errorf("silent refusal: client %v err %v", st, cli2.err)
	}
	if xmit := w.b.stats().TCP.Xmit; xmit != 1 {
		t.Errorf("b sent %d segments, want only the first refusal's RST", xmit)
	}
	if len(h.offerErr) != 0 {
		t.Errorf("ErrFunc called after RefuseSyn: %v", h.offerErr)
	}
	w.a.Do(func() { cli2.c.Abort() })
	w.b.Do(func() { h.l.Close() })
	idle(t, w.a, 0)
	idle(t, w.b, 0)
}

// TestInterceptDeferredTimeout: an undecided SYN is refused with a RST after
// TCPDeferTimeout (or the listener's own), counted, and its host hears errs.Timeout.
func TestInterceptDeferredTimeout(t *testing.T) {
	w := iceptWorld(t)
	h := listenIntercept(t, w.b, 0, true)
	cli := newApp(w.a)
	dial(t, w.a, netip.AddrPortFrom(iceptDst, 25), cli)
	d := w.b.Opts.TCPDeferTimeout
	w.Run(d - 10*time.Millisecond)
	if len(h.offered) != 1 || cli.err != nil {
		t.Fatalf("offered %d, client err %v before the timeout", len(h.offered), cli.err)
	}
	w.Run(20 * time.Millisecond)
	if !errors.Is(cli.err, errs.Refused) || !errors.Is(h.offerErr[h.offered[0]], errs.Timeout) {
		t.Fatalf("after TCPDeferTimeout: client err %v, host heard %v", cli.err, h.offerErr[h.offered[0]])
	}
	if got := ext(w.b); got[3] != 1 {
		t.Errorf("DeferTimeouts %d", got[3])
	}
	idle(t, w.b, 1)
	// The listener's own timeout.
	w.b.Do(func() { h.l.SetDeferTimeout(time.Second) })
	cli2 := newApp(w.a)
	dial(t, w.a, netip.AddrPortFrom(iceptDst, 26), cli2)
	w.Run(1100 * time.Millisecond)
	if !errors.Is(cli2.err, errs.Refused) {
		t.Errorf("SetDeferTimeout(1s): client err %v after 1.1 s", cli2.err)
	}
	w.b.Do(func() { h.l.Close() })
	idle(t, w.a, 0)
	idle(t, w.b, 0)
}

// TestInterceptDeferredBounds: undecided SYNs count against the backlog (beyond it: RST);
// closing the listener resets the undecided ones and tells their host.
func TestInterceptDeferredBounds(t *testing.T) {
	w := iceptWorld(t)
	h := listenIntercept(t, w.b, 3, true)
	clis := make([]*app, 4)
	for i := range clis {
		clis[i] = newApp(w.a)
		dial(t, w.a, netip.AddrPortFrom(iceptDst, uint16(2000+i)), clis[i])
	}
	w.Run(10 * time.Millisecond)
	if len(h.offered) != 3 || !errors.Is(clis[3].err, errs.Refused) {
		t.Fatalf("offered %d, fourth client %v; want 3 and refused", len(h.offered), clis[3].err)
	}
	if got := ext(w.b); got != [4]uint64{4, 1, 0, 0} {
		t.Errorf("counters %v, want [4 1 0 0]", got)
	}
	w.b.Do(func() { h.l.Close() })
	w.Run(10 * time.Millisecond)
	for i, c := range clis[:3] {
		if !errors.Is(c.err, errs.Refused) || !errors.Is(h.offerErr[h.offered[i]], errs.Abrt) {
			t.Errorf("client %d after Close: %v, host heard %v", i, c.err, h.offerErr[h.offered[i]])
		}
	}
	idle(t, w.a, 0)
	idle(t, w.b, 0)
}

// TestInterceptDeferredExhausted: with TCP_PCB exhausted, a new SYN refuses the oldest
// undecided one (RST, counted, its host told), never an established connection.
func TestInterceptDeferredExhausted(t *testing.T) {
	o := testOpts()
	o.MempNumTCPPCB = 4
	w := newWorld(t, worldCfg{opts: testOpts(), optsB: &o})
	w.b.Do(func() { _ = w.b.Netif.SetIntercept(&ip.Intercept{}) })
	h := listenIntercept(t, w.b, 100, true)
	first := newApp(w.a)
	dial(t, w.a, netip.AddrPortFrom(iceptDst, 3000), first)
	w.Run(10 * time.Millisecond)
	w.b.Do(func() { _ = h.offered[0].AcceptSyn() })
	w.Run(10 * time.Millisecond)
	if len(h.srv.accepted) != 1 {
		t.Fatal("the first connection was not established")
	}
	clis := make([]*app, 4)
	for i := range clis {
		clis[i] = newApp(w.a)
		dial(t, w.a, netip.AddrPortFrom(iceptDst, uint16(3001+i)), clis[i])
		w.Run(10 * time.Millisecond)
	}
	// Three undecided fill the pool; the fourth SYN refused the oldest of them.
	if len(h.offered) != 5 || !errors.Is(clis[0].err, errs.Refused) || !errors.Is(h.offerErr[h.offered[1]], errs.Abrt) {
		t.Fatalf("offered %d, oldest client %v, its host heard %v", len(h.offered), clis[0].err, h.offerErr[h.offered[1]])
	}
	for i, c := range clis[1:] {
		if c.err != nil {
			t.Errorf("client %d: %v", i+1, c.err)
		}
	}
	if first.err != nil || w.a.state(first.c) != StateEstablished {
		t.Errorf("the established connection: %v %v", first.err, w.a.state(first.c))
	}
	if st := w.b.stats().TCPExt; st.InterceptRefused != 1 || st.PCBExhausted != 0 {
		t.Errorf("InterceptRefused %d PCBExhausted %d, want 1 0", st.InterceptRefused, st.PCBExhausted)
	}
	w.b.Do(func() { h.l.Close(); h.srv.c.Abort() })
	w.Run(10 * time.Millisecond)
	idle(t, w.a, 0)
	idle(t, w.b, 0)
}

// TestInterceptProtoClose: closing the Proto resets undecided and established intercepted
// connections, tells the host of the undecided ones and frees the intercept listener.
func TestInterceptProtoClose(t *testing.T) {
	w := iceptWorld(t)
	h := listenIntercept(t, w.b, 0, true)
	c1, c2 := newApp(w.a), newApp(w.a)
	dial(t, w.a, netip.AddrPortFrom(iceptDst, 1), c1)
	dial(t, w.a, netip.AddrPortFrom(iceptDst6, 2), c2)
	w.Run(10 * time.Millisecond)
	if len(h.offered) != 2 {
		t.Fatalf("offered %d", len(h.offered))
	}
	w.b.Do(func() { _ = h.offered[0].AcceptSyn() })
	w.Run(10 * time.Millisecond)
	if len(h.srv.accepted) != 1 {
		t.Fatalf("accepted %d", len(h.srv.accepted))
	}
	w.b.Do(func() { w.b.tcp.Close() })
	w.Run(10 * time.Millisecond)
	if !errors.Is(c1.err, errs.Rst) || !errors.Is(c2.err, errs.Refused) {
		t.Errorf("clients after Close: %v, %v", c1.err, c2.err)
	}
	if !errors.Is(h.offerErr[h.offered[1]], errs.Abrt) || !errors.Is(h.srv.err, errs.Abrt) {
		t.Errorf("host heard %v (undecided), %v (established)", h.offerErr[h.offered[1]], h.srv.err)
	}
	idle(t, w.a, 0)
	idle(t, w.b, 0)
}

package tcp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// With the backlog full of connections the application has not taken (BacklogDelayed),
// further SYNs are answered with SYN cookies; the handshakes complete through the cookie
// with window scaling and SACK preserved in the timestamp, and data flows.
func TestSynCookiesEndToEnd(t *testing.T) {
	w := newWorld(t, worldCfg{})
	var accepted []*PCB
	srv := newApp(w.b)
	listenFunc(t, w.b, 80, 1, func(l *Listener, c *PCB) {
		accepted = append(accepted, c)
		if len(accepted) == 1 {
			c.BacklogDelayed() // the first one sits in an accept queue
		} else {
			srv.attach(c)
		}
	})
	first := newApp(w.a)
	dial(t, w.a, netip.AddrPortFrom(addrB, 80), first)
	w.Run(time.Millisecond)
	if len(accepted) != 1 {
		t.Fatalf("accepted %d", len(accepted))
	}
	cli := newApp(w.a)
	ok := dial(t, w.a, netip.AddrPortFrom(addrB, 80), cli)
	w.Run(time.Millisecond)
	if !*ok || len(accepted) != 2 {
		t.Fatalf("cookie handshake: connected %v, accepted %d", *ok, len(accepted))
	}
	x := w.b.stats().TCPExt
	if x.CookiesSent != 1 || x.CookiesValid != 1 || x.ListenOverflows != 1 {
		t.Errorf("cookies sent %d valid %d overflows %d, want 1 1 1", x.CookiesSent, x.CookiesValid, x.ListenOverflows)
	}
	var info Info
	w.b.Do(func() { info = accepted[1].Info() })
	if !info.SACK || !info.Timestamps || info.SndWndScale == 0 {
		t.Errorf("options lost through the cookie: %+v", info)
	}
	s := newSender(cli, 2<<20, 3)
	s.close = true
	w.a.Do(s.start)
	if !w.Until(time.Minute, func() bool { return srv.fin }) || !bytes.Equal(srv.sum(), s.h.d.Sum(nil)) {
		t.Fatalf("transfer over a cookie connection: %d bytes", srv.rcvd)
	}
	w.b.Do(func() { accepted[0].BacklogAccepted() })
}

// TIME-WAIT PCBs are recycled, oldest first, when TCP_PCB runs out; with none left NewPCB
// fails with errs.Mem and counts PCBExhausted.
func TestTimeWaitRecycling(t *testing.T) {
	o := testOpts()
	o.MempNumTCPPCB = 4
	w := newWorld(t, worldCfg{opts: o})
	srv := newApp(w.b)
	listen(t, w.b, 80, srv)
	for i := 0; i < 3; i++ {
		cli := newApp(w.a)
		dial(t, w.a, netip.AddrPortFrom(addrB, 80), cli)
		w.Run(time.Millisecond)
		c := cli.c
		w.a.Do(func() { c.Close() })
		w.Run(time.Millisecond)
		w.b.Do(func() {
			for _, sc := range srv.accepted {
				if sc.t != nil && sc.State() == StateCloseWait {
					sc.Close()
				}
			}
		})
		w.Run(time.Millisecond)
	}
	if n := w.a.tcp.timeWait.n; n != 3 {
		t.Fatalf("%d PCBs in TIME-WAIT, want 3", n)
	}
	var pcbs []*PCB
	w.a.Do(func() {
		oldest := w.a.tcp.timeWait.head
		lport := oldest.lport
		for i := 0; i < 4; i++ {
			c, err := w.a.tcp.NewPCB()
			if err != nil {
				t.Fatalf("NewPCB %d: %v", i, err)
			}
			pcbs = append(pcbs, c)
			if i == 1 && w.a.tcp.lookupConn(addrA, addrB, lport, 80) != nil {
				t.Error("the oldest TIME-WAIT PCB was not the one recycled")
			}
		}
		if _, err := w.a.tcp.NewPCB(); !errors.Is(err, errs.Mem) {
			t.Errorf("NewPCB with every PCB in use: %v, want errs.Mem", err)
		}
		for _, c := range pcbs {
			c.Close()
		}
	})
	x := w.a.stats().TCPExt
	if x.TimeWaitRecycled != 3 || x.PCBExhausted != 1 {
		t.Errorf("TimeWaitRecycled %d PCBExhausted %d, want 3 and 1", x.TimeWaitRecycled, x.PCBExhausted)
	}
}

// A reader that stops consuming holds at most its window: the window closes, the sender
// probes it (persist timer) instead of pushing data, packet memory stays bounded, and when
// the reader resumes everything arrives.
func TestStalledReader(t *testing.T) {
	o := testOpts()
	o.TCPWnd, o.TCPMaxWnd = 64<<10, 64<<10
	w := newWorld(t, worldCfg{opts: o, impA: nil})
	srv := newApp(w.b)
	srv.consume = false
	srv.keep = false
	srv.hold = true
	listen(t, w.b, 80, srv)
	cli := newApp(w.a)
	dial(t, w.a, netip.AddrPortFrom(addrB, 80), cli)
	w.Run(time.Millisecond)
	const size = 1 << 20
	s := newSender(cli, size, 9)
	w.a.Do(s.start)
	w.Run(30 * time.Second)
	if srv.rcvd > 64<<10 {
		t.Fatalf("stalled reader received %d bytes, more than its 64 KiB window", srv.rcvd)
	}
	x := w.a.stats().TCPExt
	if x.ZeroWindowProbes == 0 {
		t.Error("no zero-window probe while the window was closed")
	}
	if x.Retransmits != 0 {
		t.Errorf("%d retransmissions against a closed window", x.Retransmits)
	}
	// The memory the stalled connection pins is its window's worth of received frames.
	pool := w.b.Pools.Lookup(memp.PbufPool).Stats()
	perSeg := (1500 + w.b.Alloc.PoolBufSize() - 1) / w.b.Alloc.PoolBufSize()
	if max := (64<<10/1400 + 2) * perSeg; pool.Used > max {
		t.Errorf("stalled reader pins %d POOL pbufs, more than its window needs (%d)", pool.Used, max)
	}
	// Resume: read what is there and keep reading.
	sc := srv.accepted[0]
	w.b.Do(func() {
		srv.consume, srv.hold = true, false
		for _, p := range srv.held {
			p.Free()
		}
		srv.held = nil
		sc.Recved(srv.rcvd)
	})
	if !w.Until(5*time.Minute, func() bool { return srv.rcvd == size }) {
		t.Fatalf("after resuming: %d of %d bytes", srv.rcvd, size)
	}
	if !bytes.Equal(srv.sum(), s.h.d.Sum(nil)) {
		t.Fatal("data corrupted")
	}
}

// A Packet Too Big for a segment in flight lowers the MSS; the segment is sent again in
// pieces that fit.
func TestPathMTUDiscovery(t *testing.T) {
	w := newWorld(t, worldCfg{})
	srv, cli := w.connect()
	c := cli.c
	var before Info
	w.a.Do(func() {
		before = c.Info()
		_ = c.Write(make([]byte, 4000), WriteCopy)
		// Quote the first segment as a router would, before it is acknowledged.
		q := make([]byte, 20+8)
		q[0] = 0x45
		binary.BigEndian.PutUint16(q[20:], c.lport)
		binary.BigEndian.PutUint16(q[22:], c.rport)
		binary.BigEndian.PutUint32(q[24:], c.sndNxt)
		_ = c.Output()
		h := &ip.Header{Src: addrA, Dst: addrB, Proto: wire.ProtoTCP, HeaderLen: 20}
		w.a.tcp.ControlInput(h, ip.ControlPacketTooBig, 1000, q)
	})
	w.Run(time.Second)
	var after Info
	w.a.Do(func() { after = c.Info() })
	if after.MSS >= before.MSS || after.MSS > 1000-40-12 {
		t.Errorf("MSS %d → %d after a Packet Too Big of 1000", before.MSS, after.MSS)
	}
	if srv.rcvd != 4000 {
		t.Errorf("received %d of 4000 bytes", srv.rcvd)
	}
}

// FuzzInput feeds arbitrary bytes as a TCP segment (ports fixed up to reach a listener or
// an established connection) to a node: nothing may panic, and every pool is back to zero
// after Close.
func FuzzInput(f *testing.F) {
	f.Add([]byte{}, false)
	f.Add(make([]byte, 20), true)
	f.Add([]byte{0, 1, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0}, false)
	f.Add([]byte{0, 1, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0xf0, 0x12, 0xff, 0xff, 0, 0, 0, 0, 2, 4, 5, 0xb4, 1, 3, 3, 14, 4, 2, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0}, true)
	f.Fuzz(func(t *testing.T, b []byte, toConn bool) {
		o := testOpts()
		o.MempNumTCPSeg = 64
		w := newWorld(t, worldCfg{opts: o})
		srv, cli := w.connect()
		c := cli.c
		if c == nil {
			// The harness, not the input, failed: a fuzz run that skipped here would pass
			// without ever testing anything.
			t.Fatalf("setup: the client did not connect (error %v, server accepted %d)", cli.err, len(srv.accepted))
		}
		b = append([]byte(nil), b...)
		if len(b) >= 4 {
			binary.BigEndian.PutUint16(b[0:], 80)
			if toConn {
				binary.BigEndian.PutUint16(b[2:], c.lport)
			}
		}
		if len(b) >= 12 && toConn {
			binary.BigEndian.PutUint32(b[4:], c.rcvNxt+uint32(b[4])-128)
			binary.BigEndian.PutUint32(b[8:], c.sndNxt)
		}
		if len(b) >= 18 {
			b[16], b[17] = 0, 0
			binary.BigEndian.PutUint16(b[16:], wire.TCP(b).ComputeChecksum(addrB, addrA))
		}
		w.a.Do(func() {
			p, err := w.a.Alloc.Alloc(pbuf.LayerRaw, len(b), pbuf.POOL)
			if err != nil {
				t.Fatalf("setup: no pbuf for a %d-byte segment: %v", len(b), err)
			}
			_ = p.CopyIn(b, 0)
			h := &ip.Header{Src: addrB, Dst: addrA, Proto: wire.ProtoTCP, TTL: 64, HeaderLen: 20, Netif: w.a.Netif}
			w.a.tcp.Input(h, p)
		})
		w.Run(3 * time.Second)
	})
}

var _ = opt.Tunnel

// An idle connection (no keepalive, no poll) leaves nothing scheduled: after the last
// exchange at most one stale wakeup, then no timer at all.
func TestIdleConnectionNoTimers(t *testing.T) {
	w := newWorld(t, worldCfg{})
	_, cli := w.connect()
	w.a.Do(func() { _ = cli.c.Write([]byte("hello"), WriteCopy); _ = cli.c.Output() })
	w.Run(10 * time.Second)
	if n := w.a.Timers.Len() + w.b.Timers.Len(); n != 0 {
		t.Errorf("%d timers still scheduled on idle connections", n)
	}
	w.a.Do(func() { cli.c.SetKeepAlive(true, time.Second, time.Second, 2) })
	if w.a.Timers.Len() == 0 {
		t.Error("keepalive armed no timer")
	}
}

// Keepalive enabled before Connect (and inherited from a listener) runs once the connection
// is established: a dead peer is found after idle + count × interval.
func TestKeepaliveBeforeConnect(t *testing.T) {
	w := newWorld(t, worldCfg{})
	srv := newApp(w.b)
	listen(t, w.b, 80, srv)
	cli := newApp(w.a)
	w.a.Do(func() {
		c, _ := w.a.tcp.NewPCB()
		cli.attach(c)
		c.SetKeepAlive(true, 10*time.Second, time.Second, 3)
		_ = c.Connect(netip.AddrPortFrom(addrB, 80), nil)
	})
	w.Run(time.Millisecond)
	// The peer vanishes: B's stack drops everything from now on.
	w.b.Do(func() { w.b.Netif.SetUp(false) })
	w.Run(20 * time.Second)
	if !errors.Is(cli.err, errs.Timeout) {
		t.Fatalf("keepalive: ErrFunc got %v, want errs.Timeout", cli.err)
	}
	if x := w.a.stats().TCPExt; x.KeepaliveProbes != 3 || x.KeepaliveTimeouts != 1 {
		t.Errorf("probes %d timeouts %d, want 3 and 1", x.KeepaliveProbes, x.KeepaliveTimeouts)
	}
}

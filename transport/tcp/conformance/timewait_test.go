package conformance

// TIME-WAIT recycling when TCP_PCB runs out (lwIP tcp_alloc: the oldest TIME-WAIT PCB
// first), then errs.Mem with PCBExhausted.

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

func TestTimeWaitRecycling(t *testing.T) {
	bothFamilies(t, func(t *testing.T, f family) {
		const pcbs = 4
		e := newEnv(t, f, func(o *opt.Options) { o.MempNumTCPPCB = pcbs })
		var tw []*conn
		for range pcbs {
			c := e.activeOpen(plain())
			c.timeWait()
			e.advance(100 * time.Millisecond) // distinct ages, oldest first
			tw = append(tw, c)
		}
		if e.conns() != pcbs {
			t.Fatalf("%d connections in TIME-WAIT, want %d", e.conns(), pcbs)
		}
		before := e.ext()
		fresh, err := e.tcp.NewPCB()
		if err != nil {
			t.Fatalf("NewPCB with only TIME-WAIT PCBs in use: %v, want the oldest recycled", err)
		}
		checkDelta(t, "TimeWaitRecycled", before.TimeWaitRecycled, e.ext().TimeWaitRecycled, 1)
		if n := e.conns(); n != pcbs && n != pcbs-1 {
			t.Errorf("%d connections, want %d TIME-WAIT (+ the new CLOSED PCB)", n, pcbs-1)
		}
		// The oldest is gone: its peer's retransmitted FIN finds no connection and is reset;
		// the second oldest still re-ACKs.
		retransmitFIN := func(c *conn) {
			s := c.seg(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
			s.seq = c.peerNxt - 1
			e.inject(s)
		}
		retransmitFIN(tw[0])
		e.expectSeg("FIN to the recycled (oldest) TIME-WAIT connection", wire.TCPFlagRST, tw[0].stackNxt, 0)
		retransmitFIN(tw[1])
		tw[1].expectAck("FIN to the second oldest TIME-WAIT connection (still there)")

		// Recycle the other three, then the pool is exhausted.
		pcbsNew := []*tcp.PCB{fresh}
		for i := 1; i < pcbs; i++ {
			p, err := e.tcp.NewPCB()
			if err != nil {
				t.Fatalf("NewPCB %d: %v (TIME-WAIT PCBs left to recycle)", i, err)
			}
			pcbsNew = append(pcbsNew, p)
		}
		x := e.ext()
		checkDelta(t, "TimeWaitRecycled", before.TimeWaitRecycled, x.TimeWaitRecycled, pcbs)
		p, err := e.tcp.NewPCB()
		if p != nil || !errors.Is(err, errs.Mem) {
			t.Fatalf("NewPCB with every PCB live: %v, %v; want nil, errs.Mem", p, err)
		}
		checkDelta(t, "PCBExhausted", x.PCBExhausted, e.ext().PCBExhausted, 1)
		for _, p := range pcbsNew {
			if err := p.Close(); err != nil {
				t.Errorf("Close of a fresh PCB: %v", err)
			}
		}
		if e.conns() != 0 {
			t.Errorf("%d connections after closing the fresh PCBs", e.conns())
		}
		// And the pool is usable again.
		p, err = e.tcp.NewPCB()
		if err != nil {
			t.Fatalf("NewPCB after freeing: %v", err)
		}
		p.Close()
	})
}

// A passive open also takes a TCP_PCB: with the pool exhausted by live connections a SYN
// is not answered with a SYN-ACK from a PCB that does not exist: it is refused with a RST
// and counted (PCBExhausted, SynRefused).
func TestPassiveOpenWithPCBsExhausted(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.MempNumTCPPCB = 2; o.TCPSynCookies = false })
	ls, a := e.passiveOpened()
	e.passiveOpen(ls, plain().from(peerPort+1))
	before := e.ext()
	pc := plain()
	pc.port = peerPort + 2
	e.inject(segment{srcPort: pc.port, dstPort: listenPort, seq: peerISS, flags: wire.TCPFlagSYN, wnd: 1000,
		opts: pc.synOptions(e)})
	e.expectFlags("SYN with the PCB pool exhausted", wire.TCPFlagRST|wire.TCPFlagACK)
	x := e.ext()
	checkDelta(t, "PCBExhausted", before.PCBExhausted, x.PCBExhausted, 1)
	checkDelta(t, "SynRefused", before.SynRefused, x.SynRefused, 1)
	if e.conns() != 2 {
		t.Errorf("%d connections, want 2", e.conns())
	}
	a.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("alive"))
	if string(a.rec.data) != "alive" {
		t.Error("existing connection disturbed")
	}
}

// A TIME-WAIT PCB holds its port: Bind fails with errs.Use, unless SetReuseAddr (pcbapi.go).
func TestTimeWaitHoldsPortUnlessReuseAddr(t *testing.T) {
	e := newEnv(t, v4)
	const port = 5555
	c, _ := e.connect(func(p *tcp.PCB) {
		if err := p.Bind(netipAP(e.local.String(), port)); err != nil {
			t.Fatal(err)
		}
	})
	if c.lport != port {
		t.Fatalf("bound PCB connected from port %d", c.lport)
	}
	e.synAck(c, plain())
	c.expectAck("handshake")
	c.timeWait()
	p, _ := e.tcp.NewPCB()
	if err := p.Bind(netipAP(e.local.String(), port)); !errors.Is(err, errs.Use) {
		t.Errorf("Bind to a port in TIME-WAIT without SetReuseAddr: %v, want errs.Use", err)
	}
	p.Close()
	p, _ = e.tcp.NewPCB()
	p.SetReuseAddr(true)
	if err := p.Bind(netipAP(e.local.String(), port)); err != nil {
		t.Errorf("Bind to a port in TIME-WAIT with SetReuseAddr: %v", err)
	}
	p.Close()
}

// A server restarted with SO_REUSEADDR binds its port while the old listener's accepted
// connections are still open, as on Linux and in lwIP: both sides must have SO_REUSEADDR
// (the accepted PCB inherits its listener's). A listener always holds its port.
func TestRestartWithReuseAddrWhileConnectionsLive(t *testing.T) {
	for _, oldReuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("old-listener-reuse=%v", oldReuse), func(t *testing.T) {
			e := newEnv(t, v4)
			ls := e.listenWith(listenPort, 0, func(p *tcp.PCB) { p.SetReuseAddr(oldReuse) })
			c := e.passiveOpen(ls, plain())
			bind := func(reuse bool) error {
				p, _ := e.tcp.NewPCB()
				defer p.Close()
				p.SetReuseAddr(reuse)
				return p.Bind(netip.AddrPortFrom(netip.Addr{}, listenPort))
			}
			if err := bind(true); !errors.Is(err, errs.Use) {
				t.Errorf("Bind with SO_REUSEADDR while the listener is open: %v, want errs.Use", err)
			}
			if err := ls.l.Close(); err != nil {
				t.Fatal(err)
			}
			if err := bind(false); !errors.Is(err, errs.Use) {
				t.Errorf("Bind without SO_REUSEADDR next to an established connection: %v, want errs.Use", err)
			}
			err := bind(true)
			if oldReuse && err != nil {
				t.Errorf("Bind with SO_REUSEADDR next to a connection that has it: %v", err)
			}
			if !oldReuse && !errors.Is(err, errs.Use) {
				t.Errorf("Bind with SO_REUSEADDR next to a connection without it: %v, want errs.Use", err)
			}
			if c.pcb.State() != tcp.StateEstablished {
				t.Errorf("old connection in %v", c.pcb.State())
			}
		})
	}
}

// A listener can be closed and its port listened on again at once.
func TestListenAgainAfterClose(t *testing.T) {
	e := newEnv(t, v6)
	ls := e.listen(listenPort, 0)
	if err := ls.l.Close(); err != nil {
		t.Fatal(err)
	}
	ls = e.listen(listenPort, 0)
	e.passiveOpen(ls, plain())
}

// ownedTimeWait brings c to TIME-WAIT through Shutdown(tx) and the peer's FIN+ACK, without
// Close: the application still owns the PCB.
func (c *conn) ownedTimeWait() {
	c.e.t.Helper()
	if err := c.pcb.Shutdown(false, true); err != nil {
		c.e.t.Fatal(err)
	}
	c.e.expectFlags("FIN", wire.TCPFlagFIN|wire.TCPFlagACK)
	c.stackNxt++
	c.send(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
	c.expectAckOfFIN("ACK of FIN")
	c.state("after FIN+ACK", tcp.StateTimeWait)
}

// Recycling a TIME-WAIT PCB the application still owns (no Close yet) must tell it through
// ErrFunc (or leave that PCB alone); freeing it silently leaves the application a dangling
// *PCB.
func TestTimeWaitRecyclingOwnedPCB(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.MempNumTCPPCB = 1 })
	c := e.activeOpen(plain())
	c.ownedTimeWait()
	p, err := e.tcp.NewPCB()
	if err == nil {
		if len(c.rec.errs) == 0 {
			t.Fatal("NewPCB recycled a TIME-WAIT PCB the application still owns without calling its ErrFunc")
		}
		p.Close()
		return
	}
	c.pcb.Close()
}

// The same for a SYN that reopens a TIME-WAIT connection (RFC 6191).
func TestTimeWaitReopenOwnedPCB(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	c.ownedTimeWait()
	c.synAt(100000)
	s := e.next()
	if flagsEq(s.Flags, wire.TCPFlagSYN|wire.TCPFlagACK) && len(c.rec.errs) == 0 {
		t.Fatal("a SYN reopened a TIME-WAIT connection the application still owns without calling its ErrFunc: the application holds a dangling *PCB")
	}
	if len(c.rec.errs) == 0 {
		c.pcb.Close()
	}
	e.drain()
}

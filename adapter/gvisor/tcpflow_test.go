package gvisor_test

import (
	"context"
	"crypto/sha256"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"

	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// TestTCPZeroWindowGVisorReader: gVisor's application stops reading, its window closes,
// wisp probes the zero window (persist timer) and resumes when the reader drains.
func TestTCPZeroWindowGVisorReader(t *testing.T) {
	const size = 8 << 20
	nt := newNet(t, netConfig{medium: link.MediumIP})
	ev := nt.evidence(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, c, _ := nt.dialWisp(ctx, t, ev, wispV4.Addr(), size)
	tr, err := srv.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Let the sender fill gVisor's receive buffer and stall on a zero window long enough
	// for several persist probes (RTO minimum 200 ms, backing off).
	time.Sleep(2 * time.Second)
	info, _ := tr.Info()
	if info.SndWnd != 0 {
		t.Logf("window did not close (gVisor buffer larger than the transfer?): %+v", info)
	}
	r := readAll(c, deadlineOf(ctx))
	if r.err != nil {
		t.Fatalf("gVisor slow reader: after %d bytes: %v", r.n, r.err)
	}
	c.Close() // the FIN the wisp source waits for
	r.check(t, "gVisor slow reader", size)
	if r := waitTransfer(ctx, t, tr); r.err != nil {
		t.Errorf("wisp source: %v", r.err)
	}
	if st := nt.ws.Stats(); st.TCPExt.ZeroWindowProbes == 0 {
		t.Errorf("no zero-window probe counted: %+v", st.TCPExt)
	}
}

// holdingSink is a wisp server that keeps what it receives without opening the window
// (no Recved) until released: a stalled wisp reader. Core context except where noted.
type holdingSink struct {
	s    *stack.Stack
	l    *tcpapp.Listener
	held []*pbuf.Pbuf
	pcb  *tcp.PCB
	fin  chan struct{}
	sum  interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}
	n       int64
	release bool
}

func newHoldingSink(t *testing.T, s *stack.Stack, addr netip.AddrPort) *holdingSink {
	t.Helper()
	hs := &holdingSink{s: s, fin: make(chan struct{}), sum: sha256.New()}
	var err error
	hs.l, err = tcpapp.Listen(s, addr, 0, func(l *tcp.Listener, c *tcp.PCB) {
		hs.pcb = c
		c.OnRecv(hs.recv)
		c.OnErr(func(*tcp.PCB, error) { hs.pcb = nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hs.l.Close()
		s.Callback(func() {
			for _, p := range hs.held {
				p.Free()
			}
			hs.held = nil
		})
	})
	return hs
}

// recv takes ownership of p.
func (hs *holdingSink) recv(c *tcp.PCB, p *pbuf.Pbuf) {
	if p == nil {
		hs.drain()
		c.Close()
		hs.pcb = nil
		close(hs.fin)
		return
	}
	hs.held = append(hs.held, p)
	if hs.release {
		hs.drain()
	}
}

// drain consumes every held chain into the checksum and reopens the window.
func (hs *holdingSink) drain() {
	for _, p := range hs.held {
		for q := p; q != nil; q = q.Next() {
			hs.sum.Write(q.Payload())
		}
		n := p.TotLen()
		hs.n += int64(n)
		p.Free()
		if hs.pcb != nil {
			hs.pcb.Recved(n)
		}
	}
	hs.held = hs.held[:0]
}

// TestTCPZeroWindowWispReader: wisp's application stops reading, wisp's window closes,
// gVisor probes, and the transfer completes once the reader drains.
func TestTCPZeroWindowWispReader(t *testing.T) {
	const size = 8 << 20
	nt := newNet(t, netConfig{medium: link.MediumEthernet})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hs := newHoldingSink(t, nt.ws, netip.AddrPortFrom(wispV6.Addr(), 8080))
	ev := nt.evidence(t) // after the sink: its cleanup frees what the sink holds
	c, _, err := gvDial(ctx, nt.gs, netip.AddrPortFrom(wispV6.Addr(), 8080))
	if err != nil {
		t.Fatal(err)
	}
	ev.Close(c)
	werr := make(chan error, 1)
	go func() { werr <- writePattern(c, size, deadlineOf(ctx)) }()
	time.Sleep(2 * time.Second)
	var held, wnd int
	nt.ws.Callback(func() {
		for _, p := range hs.held {
			held += p.TotLen()
		}
		if hs.pcb != nil {
			wnd = hs.pcb.Info().RcvWnd
		}
	})
	if wnd != 0 {
		t.Errorf("wisp's window is %d with %d bytes unread", wnd, held)
	}
	t.Logf("stalled reader holds %d bytes", held)
	nt.ws.Callback(func() {
		hs.release = true
		hs.drain()
	})
	select {
	case <-hs.fin:
	case <-ctx.Done():
		t.Fatal("transfer did not finish after the reader resumed")
	}
	if err := <-werr; err != nil {
		t.Fatalf("gVisor write: %v", err)
	}
	var r result
	nt.ws.Callback(func() { r.n = hs.n; copy(r.sum[:], hs.sum.Sum(nil)) })
	r.check(t, "wisp stalled reader", size)
}

// TestTCPKeepalive: gVisor sends keepalive probes to an idle wisp connection; wisp answers
// them, so the connection survives several probe rounds and still carries data.
func TestTCPKeepalive(t *testing.T) {
	nt := newNet(t, netConfig{medium: link.MediumIP})
	ev := nt.evidence(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, c, ep := nt.dialWisp(ctx, t, ev, wispV4.Addr(), 0)
	idle, intvl := tcpip.KeepaliveIdleOption(100*time.Millisecond), tcpip.KeepaliveIntervalOption(100*time.Millisecond)
	ep.SetSockOpt(&idle)
	ep.SetSockOpt(&intvl)
	ep.SetSockOptInt(tcpip.KeepaliveCountOption, 2)
	ep.SocketOptions().SetKeepAlive(true)
	before := nt.ws.Stats().TCP.Recv
	time.Sleep(1500 * time.Millisecond) // ~14 probes, each must be answered
	if got := nt.ws.Stats().TCP.Recv - before; got < 5 {
		t.Errorf("wisp received %d segments while idle, want keepalive probes", got)
	}
	if err := writePattern(c, 1<<20, deadlineOf(ctx)); err != nil {
		t.Fatalf("write after idle: %v", err)
	}
	tr, err := srv.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTransfer(ctx, t, tr).check(t, "wisp after keepalives", 1<<20)
	if r := readAll(c, deadlineOf(ctx)); r.err != nil { // until wisp's FIN
		t.Errorf("gVisor: %v", r.err)
	}
}

// TestTCPPeerVariants: a gVisor peer without SACK (its default, which wireguard-go
// overrides) under loss exercises wisp's NewReno path; a 1280-byte MTU exercises the MSS
// clamp.
func TestTCPPeerVariants(t *testing.T) {
	for _, c := range []netConfig{
		{medium: link.MediumIP, impair: lossy(7), noSACK: true},
		{medium: link.MediumEthernet, mtu: 1280},
	} {
		name := c.String()
		if c.noSACK {
			name += "/nosack/lossy"
		} else {
			name += "/mtu1280"
		}
		t.Run(name, func(t *testing.T) {
			nt := newNet(t, c)
			size := transferBytes(c.impair != nil)
			for _, b := range bulk {
				dst := gvV6.Addr()
				if b.wisp {
					dst = wispV6.Addr()
				}
				t.Run(b.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
					defer cancel()
					b.fn(ctx, t, nt, dst, size)
				})
			}
		})
	}
}

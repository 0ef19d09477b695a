package conformance

// Receive-side windows: scaled windows above 64 KiB (RFC 7323 §2), sequence number
// wraparound (RFC 9293 §3.4), the bounded out-of-order queue.

import (
	"bytes"
	"testing"
	"time"

	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

// With TCPWnd = 256 KiB the stack announces a shift that can express it, advertises the
// window scaled, and accepts a full 256 KiB flight.
func TestLargeScaledReceiveWindow(t *testing.T) {
	bothFamilies(t, func(t *testing.T, f family) {
		const wnd = 256 << 10
		e := newEnv(t, f, func(o *opt.Options) { o.TCPWnd, o.TCPMaxWnd = wnd, wnd })
		ls := e.listen(listenPort, 0)
		c := e.passiveOpen(ls, modern())
		if !c.wsOK {
			t.Fatal("window scaling not negotiated")
		}
		if 0xffff<<c.stackWS < wnd {
			t.Errorf("announced shift %d cannot express a %d-byte window", c.stackWS, wnd)
		}
		if c.synack.Window == 0 {
			t.Error("zero window in the SYN-ACK")
		}
		before := e.ext()
		mss := c.segSize()
		d := pattern(200<<10, 7)
		for off := 0; off < len(d); off += mss {
			c.send(wire.TCPFlagACK, d[off:min(off+mss, len(d))])
		}
		e.advance(e.o.TCPDelAckTimeout)
		if !bytes.Equal(c.rec.data, d) {
			t.Fatalf("delivered %d of %d bytes sent within a %d-byte window", len(c.rec.data), len(d), wnd)
		}
		checkDelta(t, "DropOutOfWindow", before.DropOutOfWindow, e.ext().DropOutOfWindow, 0)
		var last *rxSeg
		for _, s := range e.drain() {
			last = s
		}
		if last == nil || last.AckNum != c.peerNxt {
			t.Fatalf("last ACK %v, want ack=%d", last, c.peerNxt)
		}
		if w := c.stackWindow(last); w < wnd/2 {
			t.Errorf("advertised window %d (field %d << %d) after the data was read, want about %d", w, last.Window, c.stackWS, wnd)
		}
	})
}

// Data crossing the peer's sequence number wrap is delivered in order, in and out of order.
func TestSequenceWraparound(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		po := plain()
		po.iss = 0xffffffff - 1500
		c := e.established(true, po)
		d := pattern(4000, 8)
		base := c.peerNxt
		// 1000..2000 first (after the wrap), then 0..1000, then 2000..4000.
		s := c.seg(wire.TCPFlagACK, d[1000:2000])
		s.seq = base + 1000
		e.inject(s)
		c.expectAck("out-of-order segment after the wrap")
		c.send(wire.TCPFlagACK, d[:1000])
		c.peerNxt = base + 2000
		c.expectAck("gap filled across the wrap")
		c.send(wire.TCPFlagACK, d[2000:])
		e.advance(e.o.TCPDelAckTimeout)
		if !bytes.Equal(c.rec.data, d) {
			t.Fatalf("delivered %d bytes across the wrap, want 4000 in order", len(c.rec.data))
		}
		var last *rxSeg
		for _, r := range e.drain() {
			last = r
		}
		if last == nil || last.AckNum != base+4000 {
			t.Errorf("last ACK %v, want %d", last, base+4000)
		}
	})
}

// The out-of-order queue is bounded by TCPOOSeqMaxPbufs: excess segments are dropped and
// counted (DropOOOFull); what is kept is delivered correctly once the holes fill.
func TestOutOfOrderQueueBounded(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.TCPOOSeqMaxPbufs = 3 })
	c := e.established(true, modern())
	base := c.peerNxt
	d := pattern(10*200, 9)
	before := e.ext()
	// Segments 1, 3, 5, 7, 9 (200 bytes each) before 0.
	for _, i := range []int{1, 3, 5, 7, 9} {
		s := c.seg(wire.TCPFlagACK, d[i*200:(i+1)*200])
		s.seq = base + uint32(i*200)
		e.inject(s)
	}
	e.drain()
	x := e.ext()
	checkAtLeast(t, "DropOOOFull", before.DropOOOFull, x.DropOOOFull, 2)
	// The peer then sends everything in order; the stack ends with all of it, in order.
	for i := range 10 {
		s := c.seg(wire.TCPFlagACK, d[i*200:(i+1)*200])
		s.seq = base + uint32(i*200)
		e.inject(s)
	}
	c.peerNxt = base + 2000
	if !bytes.Equal(c.rec.data, d) {
		t.Fatalf("delivered %d bytes (first difference at %d), want 2000 in order", len(c.rec.data), firstDiff(c.rec.data, d))
	}
	e.advance(e.o.TCPDelAckTimeout)
	e.drain()
}

// A stalled reader holds at most its window: data beyond it is refused, and no pbuf beyond
// the window is kept (the end-of-test pool check covers the rest).
func TestStalledReaderBounded(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	c.rec.manualRecved = true
	wnd := c.pcb.Info().RcvWnd
	d := pattern(3*wnd, 1)
	for off := 0; off < len(d); off += 1460 {
		s := c.seg(wire.TCPFlagACK, d[off:min(off+1460, len(d))])
		s.seq = c.peerNxt + uint32(off)
		e.inject(s)
	}
	if len(c.rec.data) > wnd {
		t.Errorf("a stalled reader was given %d bytes with a %d-byte window", len(c.rec.data), wnd)
	}
	e.drain()
}

// SetRcvBuf caps the window (SO_RCVBUF): the SYN and every later segment advertise at most
// the cap, and a stalled reader is given no more.
func TestSetRcvBufCapsWindow(t *testing.T) {
	e := newEnv(t, v4)
	const cap = 4096
	c, _ := e.connect(func(p *tcp.PCB) { p.SetRcvBuf(cap) })
	if int(c.synack.Window) > cap {
		t.Errorf("SYN window %d with SetRcvBuf(%d)", c.synack.Window, cap)
	}
	e.synAck(c, plain())
	c.expectAck("handshake")
	c.rec.manualRecved = true
	if w := c.pcb.Info().RcvWnd; w > cap {
		t.Errorf("RcvWnd %d with SetRcvBuf(%d)", w, cap)
	}
	for off := 0; off < 3*cap; off += 1000 {
		s := c.seg(wire.TCPFlagACK, pattern(1000, 1))
		s.seq = c.peerNxt + uint32(off)
		e.inject(s)
	}
	if len(c.rec.data) > cap {
		t.Errorf("accepted %d bytes with SetRcvBuf(%d) and nothing read", len(c.rec.data), cap)
	}
	e.advance(e.o.TCPDelAckTimeout)
	for _, s := range e.drain() {
		if c.stackWindow(s) > cap {
			t.Errorf("advertised %d with SetRcvBuf(%d): %v", c.stackWindow(s), cap, s)
		}
	}
}

// Receive autotuning (tcp-core.md): a reader that keeps up lets the window grow beyond
// TCPWnd, never beyond TCPMaxWnd. The handshake's RTT sample is 20 ms, or 0 (a fake clock, a
// coarse clock or a very short path): a zero sample is still a measurement.
func TestReceiveWindowAutotuning(t *testing.T) {
	for _, rtt := range []time.Duration{20 * time.Millisecond, 0} {
		t.Run(rtt.String(), func(t *testing.T) {
			const start, limit = 64 << 10, 1 << 20
			e := newEnv(t, v4, func(o *opt.Options) { o.TCPWnd, o.TCPMaxWnd = start, limit })
			ls := e.listen(listenPort, 0)
			c := e.synToListener(ls, modern())
			e.advance(rtt)
			c.ack()
			c.pcb, c.rec = ls.accepted[0], ls.recs[0]
			mss := c.segSize()
			wnd := c.pcb.Info().RcvWnd
			maxSeen := wnd
			for round := 0; round < 40; round++ {
				// One RTT: a full window, read at once, acknowledged.
				for off := 0; off < wnd; off += mss {
					c.send(wire.TCPFlagACK, pattern(min(mss, wnd-off), byte(round)))
				}
				e.advance(20 * time.Millisecond)
				for _, s := range e.drain() {
					if w := c.stackWindow(s); w > limit+(1<<c.stackWS) {
						t.Fatalf("advertised %d beyond TCPMaxWnd %d", w, limit)
					}
					wnd = c.stackWindow(s)
				}
				maxSeen = max(maxSeen, wnd)
			}
			if maxSeen <= start {
				t.Errorf("window never grew beyond TCPWnd = %d in 40 full-window rounds of 20 ms with a reader that keeps up (max %d)", start, maxSeen)
			}
		})
	}
}

// The window never promises more than packet memory can hold (tcp-core.md; RcvWndClamped):
// with a small pool and a stalled reader, every segment sent within the advertised window
// finds a buffer and is accepted.
func TestReceiveWindowClampedToMemory(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) {
		o.PbufPoolSize = 24 // 24 frames of 2048 bytes: less than a 64 KiB window of 1460-byte segments
		o.MemSize = 64 << 10
		o.MempNumPbufRAM = 64
		o.MempNumPbuf = 64
		o.TCPSndBuf = 8 << 10
		o.TCPSndQueueLen = 16
		o.MempNumTCPSeg = 64
	})
	c := e.passiveOpen(e.listen(listenPort, 0), plain())
	c.rec.manualRecved = true
	before := e.ext()
	wnd := c.stackWindow(c.synack)
	acked := c.peerNxt
	for i := 0; i < 200; i++ {
		if int(c.peerNxt-acked) >= wnd {
			break
		}
		n := min(1460, wnd-int(c.peerNxt-acked))
		p, err := e.Alloc.Alloc(pbuf.LayerRaw, 1600, pbuf.POOL)
		if err != nil {
			t.Fatalf("the stack advertised %d bytes of window but packet memory is exhausted after %d bytes", wnd, c.peerNxt-acked)
		}
		p.Free()
		c.send(wire.TCPFlagACK, pattern(n, 1))
		for _, s := range e.drain() {
			acked, wnd = s.AckNum, c.stackWindow(s)
		}
	}
	e.advance(e.o.TCPDelAckTimeout)
	e.drain()
	x := e.ext()
	checkDelta(t, "DropMem", before.DropMem, x.DropMem, 0)
	if x.RcvWndClamped == before.RcvWndClamped {
		t.Error("RcvWndClamped not counted although the pool cannot hold a full window")
	}
	c.pcb.Recved(c.rec.unread)
}

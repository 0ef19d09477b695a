package conformance

// ESTABLISHED, receiving data: RFC 9293 §3.10.7.4 (segment acceptability, in-order
// delivery), RFC 5681 §4.2 (immediate ACKs for out-of-order data), RFC 2018 §4 (SACK blocks).

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

// forBoth runs fn for IPv4 and IPv6, each over a passive and an active open.
func forBoth(t *testing.T, po func() peerOpts, fn func(t *testing.T, e *env, c *conn)) {
	bothFamilies(t, func(t *testing.T, f family) {
		for _, passive := range []bool{true, false} {
			name := "active"
			if passive {
				name = "passive"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, f)
				fn(t, e, e.established(passive, po()))
			})
		}
	})
}

func TestEstablishedInWindowDataDelivered(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		d := pattern(1000, 1)
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, d)
		if !bytes.Equal(c.rec.data, d) {
			t.Fatalf("delivered %d bytes, want the 1000 sent", len(c.rec.data))
		}
		// RFC 9293 §3.8.6.3: the ACK may be delayed, but by less than 0.5 s (TCPDelAckTimeout).
		e.advance(e.o.TCPDelAckTimeout)
		c.expectAck("ACK of in-window data")
		if in := c.pcb.Info(); in.RcvNxt != c.peerNxt {
			t.Errorf("Info.RcvNxt %d, want %d", in.RcvNxt, c.peerNxt)
		}
		if x := e.stats(); x.TCP.Recv == 0 {
			t.Error("TCP.Recv not counted")
		}
	})
}

// RFC 5681 §4.2: an out-of-order segment gets an immediate duplicate ACK; the segment that
// fills the gap gets an immediate ACK, and the queued data is delivered in order.
func TestEstablishedOutOfOrderQueued(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		base := c.peerNxt
		d := pattern(3000, 2)
		before := e.ext()
		for _, off := range []int{1000, 2000} {
			s := c.seg(wire.TCPFlagACK, d[off:off+1000])
			s.seq = base + uint32(off)
			e.inject(s)
			c.expectAck(fmt.Sprintf("out-of-order segment at +%d", off))
			if len(c.rec.data) != 0 {
				t.Fatalf("out-of-order data delivered early: %d bytes", len(c.rec.data))
			}
		}
		checkAtLeast(t, "OOOQueued", before.OOOQueued, e.ext().OOOQueued, 2)
		c.send(wire.TCPFlagACK, d[:1000])
		c.peerNxt = base + 3000
		if !bytes.Equal(c.rec.data, d) {
			t.Fatalf("after the gap was filled: delivered %d bytes, want 3000 in order", len(c.rec.data))
		}
		c.expectAck("segment filling the gap (immediate ACK)")
		e.expectNothing("after the gap ACK")
	})
}

// Out-of-order segments that overlap each other and the in-order data are delivered once,
// in order.
func TestEstablishedOutOfOrderOverlaps(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	base := c.peerNxt
	d := pattern(4000, 3)
	for _, r := range [][2]int{{3000, 4000}, {1500, 2600}, {2500, 3100}, {1000, 1600}, {0, 1200}} {
		s := c.seg(wire.TCPFlagACK, d[r[0]:r[1]])
		s.seq = base + uint32(r[0])
		e.inject(s)
	}
	if !bytes.Equal(c.rec.data, d) {
		t.Fatalf("delivered %d bytes, want 4000 in order (first difference at %d)", len(c.rec.data), firstDiff(c.rec.data, d))
	}
	c.peerNxt = base + 4000
	e.drain()
	if in := c.pcb.Info(); in.RcvNxt != c.peerNxt {
		t.Errorf("RcvNxt %d, want %d", in.RcvNxt, c.peerNxt)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// RFC 9293 §3.10.7.4: a segment entirely before RCV.NXT is not acceptable: it is answered
// with an ACK and dropped. A segment overlapping RCV.NXT delivers only its new part.
func TestEstablishedDuplicateDataReACKed(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		base := c.peerNxt
		d := pattern(1000, 4)
		c.send(wire.TCPFlagACK, d[:500])
		e.advance(e.o.TCPDelAckTimeout)
		c.expectAck("ACK of the first 500 bytes")
		// Retransmission of what was delivered: immediate ACK, no delivery.
		s := c.seg(wire.TCPFlagACK, d[:500])
		s.seq = base
		e.inject(s)
		c.expectAck("duplicate segment")
		if len(c.rec.data) != 500 {
			t.Fatalf("duplicate data delivered again: %d bytes", len(c.rec.data))
		}
		// Overlap: bytes 250..1000, of which 500..1000 are new.
		s = c.seg(wire.TCPFlagACK, d[250:])
		s.seq = base + 250
		e.inject(s)
		c.peerNxt = base + 1000
		if !bytes.Equal(c.rec.data, d) {
			t.Fatalf("overlapping segment: delivered %d bytes, want 1000 without duplicates", len(c.rec.data))
		}
		e.advance(e.o.TCPDelAckTimeout)
		c.expectAck("ACK after the overlap")
	})
}

// sackBlocks returns the SACK blocks of s relative to base.
func sackBlocks(s *rxSeg, base uint32) [][2]int {
	var r [][2]int
	for _, b := range s.Options.SACKBlocks[:s.Options.NumSACK] {
		r = append(r, [2]int{int(b.Left - base), int(b.Right - base)})
	}
	return r
}

// RFC 2018 §4: the first SACK block covers the segment that triggered the ACK; the others
// repeat the most recently reported blocks; blocks never cover data at or below the ACK.
func TestEstablishedSACKBlocks(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c := e.established(true, modern())
		if !c.sackOK {
			t.Fatal("SACK not negotiated")
		}
		base := c.peerNxt
		d := pattern(1000, 5)
		send := func(from, to int) {
			s := c.seg(wire.TCPFlagACK, d[from:to])
			s.seq = base + uint32(from)
			e.inject(s)
		}
		steps := []struct {
			from, to int
			ack      int
			want     [][2]int
		}{
			{100, 200, 0, [][2]int{{100, 200}}},
			{300, 400, 0, [][2]int{{300, 400}, {100, 200}}},
			{500, 600, 0, [][2]int{{500, 600}, {300, 400}, {100, 200}}},
			// Fills between the first two holes: one block now spans 100..400, reported first.
			{200, 300, 0, [][2]int{{100, 400}, {500, 600}}},
			// Advances the ACK to 400: the remaining block is 500..600.
			{0, 100, 400, [][2]int{{500, 600}}},
			// Fills the last hole: no SACK option any more.
			{400, 500, 600, nil},
		}
		for i, st := range steps {
			send(st.from, st.to)
			s := e.next()
			if !flagsEq(s.Flags, wire.TCPFlagACK) || s.AckNum != base+uint32(st.ack) {
				t.Fatalf("step %d (%d-%d): got %v, want ACK %d", i, st.from, st.to, s, base+uint32(st.ack))
			}
			if got := sackBlocks(s, base); fmt.Sprint(got) != fmt.Sprint(st.want) {
				t.Errorf("step %d (%d-%d): SACK blocks %v, want %v", i, st.from, st.to, got, st.want)
			}
		}
		if !bytes.Equal(c.rec.data, d[:600]) {
			t.Errorf("delivered %d bytes, want 600 in order", len(c.rec.data))
		}
		c.peerNxt = base + 600
		e.expectNothing("after SACK steps")
	})
}

// With timestamps, only three SACK blocks fit (RFC 2018 §3, RFC 7323): the most recent three
// are reported, newest first.
func TestEstablishedSACKBlocksWithTimestampsMax3(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, modern())
	base := c.peerNxt
	d := pattern(1000, 6)
	var last *rxSeg
	for _, from := range []int{100, 300, 500, 700} {
		s := c.seg(wire.TCPFlagACK, d[from:from+100])
		s.seq = base + uint32(from)
		e.inject(s)
		last = e.next()
	}
	if !last.Options.HasTimestamps {
		t.Error("ACK without timestamps on a timestamp connection")
	}
	want := [][2]int{{700, 800}, {500, 600}, {300, 400}}
	if got := sackBlocks(last, base); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SACK blocks %v, want %v", got, want)
	}
}

// RFC 9293 §3.10.7.4: a segment beyond the window is answered with an ACK and dropped.
func TestEstablishedOutOfWindowACKedAndDropped(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		before := e.ext()
		wnd := c.pcb.Info().RcvWnd
		s := c.seg(wire.TCPFlagACK, pattern(100, 7))
		s.seq = c.peerNxt + uint32(wnd) + 100
		e.inject(s)
		c.expectAck("segment beyond the window")
		if len(c.rec.data) != 0 {
			t.Fatal("out-of-window data delivered")
		}
		checkDelta(t, "DropOutOfWindow", before.DropOutOfWindow, e.ext().DropOutOfWindow, 1)
		// A segment far in the past too.
		s.seq = c.peerNxt - 200000
		e.inject(s)
		c.expectAck("segment far before RCV.NXT")
		if len(c.rec.data) != 0 {
			t.Fatal("old data delivered")
		}
	})
}

// Data beyond the right edge of the window is trimmed (RFC 9293 §3.10.7.4: the segment is
// "tailored" by "trimming off any portions that lie outside the window"): the in-window part
// is delivered and acknowledged, and the window right edge does not move past the buffer.
func TestEstablishedSegmentTrimmedToWindow(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	c.rec.manualRecved = true
	wnd := c.pcb.Info().RcvWnd
	base := c.peerNxt
	d := pattern(wnd+500, 8)
	fill := wnd - 100 // all but 100 bytes of the window
	for off := 0; off < fill; off += 1460 {
		c.send(wire.TCPFlagACK, d[off:min(off+1460, fill)])
	}
	s := c.seg(wire.TCPFlagACK, d[fill:fill+600]) // 100 bytes fit
	e.inject(s)
	e.advance(e.o.TCPDelAckTimeout)
	if len(c.rec.data) != wnd || !bytes.Equal(c.rec.data, d[:wnd]) {
		t.Fatalf("delivered %d bytes, want exactly the window of %d", len(c.rec.data), wnd)
	}
	var last *rxSeg
	for _, r := range e.drain() {
		last = r
		if edge := int(r.AckNum-base) + c.stackWindow(r); edge > wnd {
			t.Errorf("right edge %d beyond the %d-byte buffer: %v", edge, wnd, r)
		}
	}
	if last == nil || last.AckNum != base+uint32(wnd) || last.Window != 0 {
		t.Errorf("last ACK %v, want ack=%d with a zero window", last, base+uint32(wnd))
	}
}

// A FIN that arrives out of order is held like data: RecvFunc(nil) comes only after the
// data before it (RFC 9293 §3.10.7.4, eighth: the FIN is processed when RCV.NXT reaches it).
func TestEstablishedOutOfOrderFIN(t *testing.T) {
	forBoth(t, modern, func(t *testing.T, e *env, c *conn) {
		base := c.peerNxt
		d := pattern(2000, 11)
		s := c.seg(wire.TCPFlagACK|wire.TCPFlagFIN, d[1000:])
		s.seq = base + 1000
		e.inject(s)
		ack := c.expectAck("out-of-order data+FIN")
		if c.rec.fins != 0 || len(c.rec.data) != 0 {
			t.Fatalf("out-of-order FIN processed early: fins %d, data %d", c.rec.fins, len(c.rec.data))
		}
		if got := sackBlocks(ack, base); len(got) != 1 || got[0] != [2]int{1000, 2000} {
			t.Errorf("SACK for the out-of-order data+FIN: %v, want [[1000 2000]] (the FIN is not SACKed)", got)
		}
		c.state("FIN queued out of order", tcp.StateEstablished)
		c.send(wire.TCPFlagACK, d[:1000])
		c.peerNxt = base + 2001
		if !bytes.Equal(c.rec.data, d) || c.rec.fins != 1 {
			t.Fatalf("after the gap: data %d bytes, fins %d; want 2000 and 1", len(c.rec.data), c.rec.fins)
		}
		c.expectAckOfFIN("ACK covering the data and the FIN")
		c.state("after the FIN", tcp.StateCloseWait)
	})
}

// Data beyond the peer's FIN is not accepted (RFC 9293 §3.10.7.4: in CLOSE-WAIT "This should
// not occur since a FIN has been received from the remote side. Ignore the segment text.").
func TestDataAfterPeerFINIgnored(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	c.send(wire.TCPFlagACK|wire.TCPFlagFIN, []byte("last"))
	c.expectAckOfFIN("ACK of data+FIN")
	c.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("ghost"))
	if string(c.rec.data) != "last" || c.rec.fins != 1 {
		t.Errorf("after the peer's FIN: data %q, fins %d", c.rec.data, c.rec.fins)
	}
	e.drain()
	c.state("CLOSE-WAIT", tcp.StateCloseWait)
}

// RFC 6691 §2: "the sender MUST reduce the TCP data length to account for any IP or TCP
// options that it is including": data segments that carry SACK blocks (the stack holds
// out-of-order data while it sends) are shorter, so they still fit the MSS and the MTU.
func TestDataSegmentsWithSACKBlocksFitMSS(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c := e.established(true, modern())
		c.pcb.SetNoDelay(true)
		base := c.peerNxt
		for _, off := range []uint32{1000, 3000, 5000} { // three holes: three SACK blocks
			s := c.seg(wire.TCPFlagACK, pattern(500, 1))
			s.seq = base + off
			e.inject(s)
		}
		e.drain()
		c.write(pattern(4*c.segSize(), 2))
		segs := e.drain() // the invariants (MSS, MTU, no IP fragments) check each one
		if len(segs) == 0 {
			t.Fatal("nothing sent")
		}
		for _, s := range segs {
			if s.Options.NumSACK == 0 {
				t.Errorf("data segment without the SACK blocks of the out-of-order data: %v", s)
			}
		}
	})
}

// The same for retransmissions: a segment cut before the stack had SACK blocks to report is
// retransmitted after out-of-order data arrived; with the blocks added it must still fit.
func TestRetransmissionWithSACKBlocksFitsMSS(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c := e.established(true, modern())
		c.pcb.SetNoDelay(true)
		segs := c.flight(2)
		base := c.peerNxt
		for _, off := range []uint32{1000, 3000, 5000} {
			s := c.seg(wire.TCPFlagACK, pattern(500, 1))
			s.seq = base + off
			s.ack = segs[0].SeqNum // acknowledges nothing of ours
			e.inject(s)
		}
		e.drain()
		for e.elapsed() < 3*time.Second && e.ext().Retransmits == 0 {
			e.advance(10 * time.Millisecond)
			e.drain() // the invariants check MSS, MTU and fragments
		}
		if e.ext().Retransmits == 0 {
			t.Fatal("no retransmission within 3 s")
		}
	})
}

// A FIN inside data already queued out of order is contradicted by that data and ignored:
// when the hole fills, everything queued is delivered and the FIN is neither delivered nor
// acknowledged (it was once moved to the end of the queued data and acknowledged there).
// Found by FuzzConnection.
func TestFINInsideQueuedDataIgnored(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		base := c.peerNxt
		ooo := c.seg(wire.TCPFlagACK, pattern(370, 1))
		ooo.seq = base + 1
		c.inject(ooo)
		e.drain()
		fin := c.seg(wire.TCPFlagACK|wire.TCPFlagFIN, pattern(208, 2))
		fin.seq = base + 3
		c.inject(fin)
		e.drain()
		c.peerNxt = base
		c.send(wire.TCPFlagACK, pattern(3, 3)) // fills the hole
		s := e.expectFlags("ACK of the filled hole", wire.TCPFlagACK)
		if s.AckNum != base+371 {
			t.Fatalf("ACK %d after the hole filled, want %d (the data, no FIN): %v", s.AckNum-base, 371, s)
		}
		if c.rec.fins != 0 {
			t.Errorf("a contradicted FIN was delivered")
		}
		if got := len(c.rec.data); got != 371 {
			t.Errorf("%d bytes delivered, want 371", got)
		}
		c.peerNxt = base + 371
		c.ack()
	})
}

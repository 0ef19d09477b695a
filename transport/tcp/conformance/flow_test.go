package conformance

// ESTABLISHED, flow control and timers: delayed ACK (RFC 9293 §3.8.6.3, RFC 5681 §4.2),
// Nagle (RFC 9293 §3.7.4), SWS avoidance (§3.8.6.2), zero-window probing (§3.8.6.1),
// keepalive (§3.8.4, RFC 1122 §4.2.3.6).

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

// One segment's ACK is delayed by TCPDelAckTimeout; a second full segment is ACKed at once.
func TestDelayedACK(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		before := e.ext()
		mss := c.segSize()
		c.send(wire.TCPFlagACK, pattern(mss, 1))
		e.expectNothing("one full segment (the ACK is delayed)")
		if w := e.advanceUntil(e.o.TCPDelAckTimeout+time.Millisecond, time.Millisecond); w > e.o.TCPDelAckTimeout+time.Millisecond {
			t.Errorf("delayed ACK after %v, want ≤ TCPDelAckTimeout = %v", w, e.o.TCPDelAckTimeout)
		}
		c.expectAck("delayed ACK by TCPDelAckTimeout")
		checkDelta(t, "DelayedACKs", before.DelayedACKs, e.ext().DelayedACKs, 1)

		// RFC 5681 §4.2: "an ACK SHOULD be generated for at least every second full-sized
		// segment".
		c.send(wire.TCPFlagACK, pattern(mss, 2))
		e.expectNothing("first of two full segments")
		c.send(wire.TCPFlagACK, pattern(mss, 3))
		c.expectAck("second full segment (immediate ACK)")
		e.advance(time.Second)
		e.expectNothing("no ACK left over after the immediate one")

		// A small segment is delayed too.
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("small"))
		e.expectNothing("small segment")
		e.advance(e.o.TCPDelAckTimeout)
		c.expectAck("delayed ACK of a small segment")
	})
}

// In-order segments that arrive in one link batch are acknowledged once per eight full
// segments and once at the batch's end, not every second segment (batch.go, as Linux for a
// GRO-merged burst); the last ACK covers the whole batch.
func TestBatchedACK(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		mss := c.segSize()
		var segs []segment
		start := c.peerNxt
		for i := range 20 {
			segs = append(segs, c.seg(wire.TCPFlagACK, pattern(mss, byte(i))))
			c.peerNxt += uint32(mss)
		}
		e.injectBatch(segs)
		var acks []uint32
		for _, r := range e.drain() {
			if len(r.data) == 0 && r.Flags.Has(wire.TCPFlagACK) {
				acks = append(acks, r.AckNum-start)
			}
		}
		m := uint32(mss)
		if want := []uint32{8 * m, 16 * m, 20 * m}; !slices.Equal(acks, want) {
			t.Fatalf("ACKs of a 20-segment batch acknowledge %v bytes, want %v", acks, want)
		}
		e.advance(time.Second)
		e.expectNothing("no ACK left over after the batch")

		// A single segment (no batch) keeps the every-second-segment rule.
		c.send(wire.TCPFlagACK, pattern(mss, 21))
		e.expectNothing("first of two full segments")
		c.send(wire.TCPFlagACK, pattern(mss, 22))
		c.expectAck("second full segment (immediate ACK)")
	})
}

// Out of order in a batch: every segment past a hole is still acknowledged at once (the
// duplicate ACKs and SACK blocks a sender's recovery needs), and the segment that fills
// the hole is too.
func TestBatchedACKOutOfOrder(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		mss := c.segSize()
		hole := c.seg(wire.TCPFlagACK, pattern(mss, 0))
		c.peerNxt += uint32(mss)
		var segs []segment
		for i := 1; i <= 4; i++ {
			segs = append(segs, c.seg(wire.TCPFlagACK, pattern(mss, byte(i))))
			c.peerNxt += uint32(mss)
		}
		e.injectBatch(segs)
		dup := 0
		for _, r := range e.drain() {
			if len(r.data) == 0 && r.AckNum == hole.seq {
				dup++
			}
		}
		if dup != 4 {
			t.Fatalf("%d duplicate ACKs for 4 segments past a hole in one batch, want 4", dup)
		}
		e.injectBatch([]segment{hole})
		s := c.expectAck("the segment that fills the hole")
		if s.AckNum != c.peerNxt {
			t.Fatalf("ACK after the hole is filled: %d, want %d", s.AckNum, c.peerNxt)
		}
	})
}

// Data we send carries the pending ACK: no separate ACK is sent when the delayed ACK can
// piggyback (RFC 9293 §3.8.6.3).
func TestDelayedACKPiggybacks(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	c.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("request"))
	c.write([]byte("response"))
	s := c.expectData("response carrying the ACK", 8)
	if s.AckNum != c.peerNxt {
		t.Errorf("response acks %d, want %d", s.AckNum, c.peerNxt)
	}
	e.advance(time.Second)
	for _, r := range e.drain() {
		if len(r.data) == 0 && r.AckNum == c.peerNxt && r.SeqNum == c.stackNxt {
			t.Errorf("a pure ACK followed the piggybacked one: %v", r)
		}
	}
}

// Nagle (RFC 9293 §3.7.4, RFC 896): while data is unacknowledged, a small segment waits
// until the ACK or until a full segment's worth is queued; NoDelay sends at once.
func TestNagle(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		if c.pcb.NoDelay() {
			t.Fatal("NoDelay on by default")
		}
		c.write([]byte("aaaa"))
		c.expectData("first small write (nothing in flight)", 4)
		c.write([]byte("bbbb"))
		c.write([]byte("cccc"))
		e.expectNothing("small writes while data is unacknowledged (Nagle)")
		c.ack()
		s := c.expectData("held data after the ACK, coalesced", 8)
		if string(s.data) != "bbbbcccc" {
			t.Errorf("coalesced %q", s.data)
		}
		// A full segment goes out even with data in flight.
		c.write(pattern(c.segSize(), 9))
		c.expectData("full segment with data in flight", c.segSize())
		c.ack()
		e.drain()
	})
}

func TestNoDelay(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		c.pcb.SetNoDelay(true)
		if !c.pcb.NoDelay() {
			t.Fatal("NoDelay() false after SetNoDelay(true)")
		}
		for _, w := range []string{"aaaa", "bbbb", "cccc"} {
			c.write([]byte(w))
			s := c.expectData("small write with NoDelay", 4)
			if string(s.data) != w {
				t.Errorf("sent %q, want %q", s.data, w)
			}
		}
	})
}

// The sender never sends beyond the peer's window (RFC 9293 §3.8.6), and continues when the
// window opens.
func TestSenderRespectsPeerWindow(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		c.wnd = 3000
		c.ack()
		d := pattern(10000, 4)
		c.write(d)
		sent := 0
		for _, s := range e.drain() {
			if int(s.end()-(c.iss+1)) > 3000 {
				t.Fatalf("segment %v beyond the peer's window of 3000", s)
			}
			sent += len(s.data)
		}
		if sent == 0 {
			t.Fatal("nothing sent into a 3000-byte window")
		}
		c.stackNxt += uint32(sent)
		got := make([]byte, 0, len(d))
		got = append(got, d[:sent]...)
		c.wnd = 0xffff
		for len(got) < len(d) {
			c.ack()
			n := 0
			for _, s := range e.drain() {
				if s.SeqNum != c.iss+1+uint32(len(got)) {
					t.Fatalf("segment %v, want seq %d", s, c.iss+1+uint32(len(got)))
				}
				got = append(got, s.data...)
				n++
			}
			if n == 0 {
				e.advance(200 * time.Millisecond)
				if e.pending() == 0 {
					t.Fatalf("stalled after %d of %d bytes", len(got), len(d))
				}
			}
			c.stackNxt = c.iss + 1 + uint32(len(got))
		}
		if !bytes.Equal(got, d) {
			t.Error("data corrupt")
		}
	})
}

// RFC 9293 §3.8.6.1: with a zero window the sender probes with backoff (ZeroWindowProbes),
// never gives up while probes are answered, and sends the data when the window opens.
func TestZeroWindowProbing(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		c.wnd = 0
		c.ack()
		if in := c.pcb.Info(); in.SndWnd != 0 {
			t.Fatalf("SndWnd %d after a zero window", in.SndWnd)
		}
		d := pattern(1000, 5)
		c.write(d)
		// A sender may send nothing at once, or one byte as the first probe.
		before := e.ext()
		var probes []time.Duration
		t0 := e.elapsed()
		for e.elapsed()-t0 < 10*time.Minute {
			e.advance(50 * time.Millisecond)
			for _, s := range e.drain() {
				if !isProbe(s, c) {
					t.Fatalf("zero window: unexpected %v (SND.UNA %d)", s, c.stackNxt)
				}
				probes = append(probes, s.at-t0)
				c.ackTo(c.stackNxt) // window still 0, the probe byte not acknowledged
				for _, r := range e.drain() {
					t.Fatalf("answer to our window-0 ACK: %v", r)
				}
			}
		}
		if len(probes) < 4 {
			t.Fatalf("%d zero-window probes in 10 minutes (at %v)", len(probes), probes)
		}
		// Backoff: intervals do not shrink, and grow overall.
		for i := 2; i < len(probes); i++ {
			if probes[i]-probes[i-1] < probes[i-1]-probes[i-2]-60*time.Millisecond {
				t.Errorf("probe interval shrank: probes at %v", probes)
				break
			}
		}
		if first, last := probes[1]-probes[0], probes[len(probes)-1]-probes[len(probes)-2]; last < 2*first {
			t.Errorf("no backoff: first interval %v, last %v (probes at %v)", first, last, probes)
		}
		if len(probes) > 60 {
			t.Errorf("%d probes in 10 minutes: no backoff", len(probes))
		}
		checkAtLeast(t, "ZeroWindowProbes", before.ZeroWindowProbes, e.ext().ZeroWindowProbes, uint64(len(probes)))
		if len(c.rec.errs) != 0 {
			t.Fatalf("connection dropped while its probes were answered: %v", c.rec.errs)
		}
		// The window opens: the data flows (a probe byte sent earlier may wait for its
		// retransmission, so allow a second).
		c.wnd = 0xffff
		c.ack()
		got := make([]byte, len(d))
		have := make([]bool, len(d))
		for t0 := e.elapsed(); e.elapsed()-t0 < time.Second; e.advance(10 * time.Millisecond) {
			for _, s := range e.drain() {
				off := int(s.SeqNum - c.stackNxt)
				if off < 0 || off+len(s.data) > len(d) {
					t.Fatalf("after the window opened: %v", s)
				}
				copy(got[off:], s.data)
				for i := range s.data {
					have[off+i] = true
				}
			}
		}
		n := 0
		for _, h := range have {
			if h {
				n++
			}
		}
		if n < len(d) || !bytes.Equal(got, d) {
			t.Fatalf("after the window opened: %d of %d bytes sent within a second", n, len(d))
		}
	})
}

// isProbe reports whether s is a zero-window probe: one byte of new data at SND.UNA, or an
// empty segment at SND.UNA-1.
func isProbe(s *rxSeg, c *conn) bool {
	if !flagsEq(s.Flags, wire.TCPFlagACK) || s.AckNum != c.peerNxt {
		return false
	}
	return s.SeqNum == c.stackNxt && len(s.data) == 1 || s.SeqNum == c.stackNxt-1 && len(s.data) <= 1
}

// Keepalive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6): after idle, probes every interval; an
// answered probe restarts idle; cnt unanswered probes end the connection with errs.Timeout.
func TestKeepalive(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		const idle, intvl, cnt = 10 * time.Second, 2 * time.Second, 3
		c.pcb.SetKeepAlive(true, idle, intvl, cnt)
		t0 := e.elapsed()
		e.advance(idle - 100*time.Millisecond)
		e.expectNothing("before keepalive idle")
		e.advance(200 * time.Millisecond)
		p := e.next()
		if !isKeepalive(p, c) {
			t.Fatalf("keepalive probe: got %v, want ACK seq=%d (SND.NXT-1)", p, c.stackNxt-1)
		}
		if d := p.at - t0; d < idle-10*time.Millisecond || d > idle+10*time.Millisecond {
			t.Errorf("first probe after %v idle, want %v", d, idle)
		}
		c.ack() // answered: idle restarts
		t1 := e.elapsed()
		before := e.ext()
		var probes []time.Duration
		for len(c.rec.errs) == 0 && e.elapsed()-t1 < 2*idle+cnt*intvl {
			e.advance(50 * time.Millisecond)
			for _, s := range e.drain() {
				if s.Flags.Has(wire.TCPFlagRST) {
					continue
				}
				if !isKeepalive(s, c) {
					t.Fatalf("unanswered keepalive: unexpected %v", s)
				}
				probes = append(probes, s.at-t1)
			}
		}
		want := []time.Duration{idle, idle + intvl, idle + 2*intvl}
		if len(probes) != cnt {
			t.Fatalf("%d unanswered probes at %v, want %d at %v", len(probes), probes, cnt, want)
		}
		for i := range probes {
			if d := probes[i] - want[i]; d < -60*time.Millisecond || d > 60*time.Millisecond {
				t.Errorf("probe %d at %v, want %v", i, probes[i], want[i])
			}
		}
		if !errors.Is(c.rec.err(), errs.Timeout) {
			t.Fatalf("ErrFunc got %v, want errs.Timeout", c.rec.errs)
		}
		if d := e.elapsed() - t1; d > idle+cnt*intvl+100*time.Millisecond {
			t.Errorf("dropped after %v, want %v", d, idle+cnt*intvl)
		}
		x := e.ext()
		checkAtLeast(t, "KeepaliveProbes", before.KeepaliveProbes, x.KeepaliveProbes, cnt)
		checkDelta(t, "KeepaliveTimeouts", before.KeepaliveTimeouts, x.KeepaliveTimeouts, 1)
		e.expectConns(0, "after the keepalive timeout")
	})
}

// isKeepalive: an ACK at SND.NXT-1 with no data or one garbage byte (RFC 1122 §4.2.3.6).
func isKeepalive(s *rxSeg, c *conn) bool {
	return flagsEq(s.Flags, wire.TCPFlagACK) && s.SeqNum == c.stackNxt-1 && len(s.data) <= 1 && s.AckNum == c.peerNxt
}

// Keepalive is off by default, and an idle connection without keepalive arms no timer
// (common.md: timers only while something is pending).
func TestIdleConnectionQuiet(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("x"))
		c.write([]byte("y"))
		c.expectData("y", 1)
		c.ack()
		e.advance(time.Second)
		e.drain()
		if n := e.Timers.Len(); n != 0 {
			t.Errorf("%d timers armed on an idle connection without keepalive", n)
		}
		e.advance(3 * time.Hour)
		e.expectNothing("idle connection without keepalive")
		if len(c.rec.errs) != 0 {
			t.Errorf("idle connection died: %v", c.rec.errs)
		}
	})
}

// Receiver SWS avoidance (RFC 9293 §3.8.6.2.2): after the window closed, it is reopened only
// by at least min(MSS, buffer/2); the right edge never moves left (§3.8.6.2.2: "the receiver
// ... MUST NOT shrink the window").
func TestReceiverSWSAvoidance(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		c.rec.manualRecved = true
		wnd := c.pcb.Info().RcvWnd
		base := c.peerNxt
		edge := 0 // highest right edge seen, relative to base
		check := func(r *rxSeg) {
			re := int(r.AckNum-base) + c.stackWindow(r)
			if re < edge {
				t.Errorf("right edge moved left from %d to %d: %v", edge, re, r)
			}
			edge = max(edge, re)
		}
		// Fill the window.
		mss := c.segSize()
		for off := 0; off < wnd; off += mss {
			n := min(mss, wnd-off)
			c.send(wire.TCPFlagACK, pattern(n, byte(off)))
			for _, r := range e.drain() {
				check(r)
			}
		}
		e.advance(e.o.TCPDelAckTimeout)
		var last *rxSeg
		for _, r := range e.drain() {
			check(r)
			last = r
		}
		if last == nil || last.AckNum != c.peerNxt || last.Window != 0 {
			t.Fatalf("window full: last ACK %v, want ack=%d with a zero window", last, c.peerNxt)
		}
		// Small reads: no window update.
		c.pcb.Recved(500)
		c.pcb.Recved(500)
		e.advance(time.Second)
		for _, r := range e.drain() {
			check(r)
			if r.Window != 0 {
				t.Errorf("window update of %d bytes after reading 1000 (< MSS %d): %v", c.stackWindow(r), e.o.TCPMSS, r)
			}
		}
		// Reading up to an MSS opens the window by at least an MSS.
		c.pcb.Recved(e.o.TCPMSS - 1000)
		e.advance(e.o.TCPDelAckTimeout)
		upd := e.drain()
		if len(upd) == 0 {
			t.Fatalf("no window update after reading an MSS (%d bytes)", e.o.TCPMSS)
		}
		for _, r := range upd {
			check(r)
			if w := c.stackWindow(r); w < e.o.TCPMSS {
				t.Errorf("window update of %d bytes, want ≥ MSS %d", w, e.o.TCPMSS)
			}
		}
		c.pcb.Recved(c.rec.unread - e.o.TCPMSS)
		e.advance(e.o.TCPDelAckTimeout)
		for _, r := range e.drain() {
			check(r)
		}
	})
}

// A window update is sent when the application reads after a zero window, without waiting
// for the peer (otherwise the peer waits for its persist timer).
func TestWindowUpdateAfterZeroWindow(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	c.rec.manualRecved = true
	wnd := c.pcb.Info().RcvWnd
	for off := 0; off < wnd; off += 1460 {
		c.send(wire.TCPFlagACK, pattern(min(1460, wnd-off), 1))
	}
	e.advance(e.o.TCPDelAckTimeout)
	e.drain()
	c.pcb.Recved(c.rec.unread)
	e.advance(e.o.TCPDelAckTimeout)
	upd := e.drain()
	if len(upd) == 0 || c.stackWindow(upd[len(upd)-1]) < wnd/2 {
		t.Fatalf("after reading everything: %v, want a window update ≥ %d", upd, wnd/2)
	}
}

// RFC 9293 §3.10.7.4: with a zero receive window no data is acceptable, but the peer's
// zero-window probe is answered with an ACK (window still 0), and ACKs on such segments are
// still processed ("special allowance should be made to accept valid ACKs").
func TestZeroReceiveWindowProbeAnswered(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		c.rec.manualRecved = true
		c.pcb.SetNoDelay(true)
		c.write([]byte("ours"))
		c.expectData("our data", 4)
		wnd := c.pcb.Info().RcvWnd
		mss := c.segSize()
		for off := 0; off < wnd; off += mss {
			s := c.seg(wire.TCPFlagACK, pattern(min(mss, wnd-off), 1))
			s.ack = c.stackNxt - 4 // not acknowledging our data yet
			e.inject(s)
			c.peerNxt += uint32(len(s.data))
		}
		e.advance(e.o.TCPDelAckTimeout)
		e.drain()
		// The peer's probe: one byte at RCV.NXT, now acknowledging our data.
		probe := c.seg(wire.TCPFlagACK, []byte{0xee})
		e.inject(probe)
		r := c.expectAck("zero-window probe")
		if r.Window != 0 {
			t.Errorf("answer to a zero-window probe advertises %d", r.Window)
		}
		if len(c.rec.data) != wnd {
			t.Errorf("delivered %d bytes, want exactly the window %d (the probe byte is beyond it)", len(c.rec.data), wnd)
		}
		if c.rec.sent != 4 {
			t.Errorf("the ACK on the probe was not processed: SentFunc reported %d of 4 bytes", c.rec.sent)
		}
		c.pcb.Recved(c.rec.unread)
		e.advance(e.o.TCPDelAckTimeout)
		e.drain()
	})
}

// Write is fine from SYN-SENT on (pcbapi.go): the data waits for the handshake.
func TestWriteInSynSent(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c, _ := e.connect(nil)
		if err := c.pcb.Write([]byte("early"), tcp.WriteCopy); err != nil {
			t.Fatalf("Write in SYN-SENT: %v", err)
		}
		c.pcb.Output()
		for _, s := range e.drain() {
			if len(s.data) > 0 || !s.Flags.Has(wire.TCPFlagSYN) {
				t.Fatalf("sent %v before the handshake completed", s)
			}
		}
		e.synAck(c, plain())
		var got []byte
		for _, s := range e.drain() {
			if s.AckNum != c.peerNxt {
				t.Errorf("segment %v does not acknowledge the SYN-ACK", s)
			}
			got = append(got, s.data...)
		}
		if string(got) != "early" {
			t.Errorf("after the handshake sent %q, want \"early\"", got)
		}
	})
}

// Sender SWS avoidance (RFC 9293 §3.8.6.2.1, MUST-38): with much data queued and a usable
// window far below both a full segment and half the largest window the peer offered, the
// sender waits (for a bigger window or its override timeout) instead of sending a tiny
// segment at once; it never deadlocks.
func TestSenderSWSAvoidance(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		c.wnd = 10000
		c.ack()
		if err := c.pcb.Write(pattern(20000, 1), tcp.WriteCopy); err != nil {
			t.Fatal(err)
		}
		c.pcb.Output()
		sent := 0
		for _, s := range e.drain() {
			sent += len(s.data)
		}
		c.stackNxt += uint32(sent)
		c.wnd = 100 // everything acknowledged, but the window is now silly
		c.ack()
		for _, s := range e.drain() {
			if len(s.data) > 0 && len(s.data) < c.segSize() {
				t.Errorf("sent %d bytes into a %d-byte window at once (max window 10000, MSS %d): silly window syndrome", len(s.data), 100, c.segSize())
			}
		}
		// No deadlock: within a few seconds something goes out (override timeout or probe).
		if w := e.advanceUntil(5*time.Second, 10*time.Millisecond); e.pending() == 0 {
			t.Errorf("nothing sent within %v with a 100-byte window and data queued", w)
		}
		e.drain()
	})
}

// The persist timer keeps its deadline however often output runs with the window shut (every
// ACK, an application's 50 ms poll): before it had a deadline of its own, each output
// re-armed it a full backoff later, and a sender polled more often than that never probed.
func TestZeroWindowProbeNotPushedBackByOutput(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		c.wnd = 0
		c.ack()
		c.write(pattern(1000, 6))
		var probes []time.Duration
		t0 := e.elapsed()
		for e.elapsed()-t0 < 30*time.Second {
			e.advance(50 * time.Millisecond)
			c.pcb.Output() // what a poll callback retrying a write does
			for _, s := range e.drain() {
				if !isProbe(s, c) {
					t.Fatalf("zero window: unexpected %v", s)
				}
				probes = append(probes, s.at-t0)
				c.ackTo(c.stackNxt)
				e.drain()
			}
		}
		if len(probes) < 3 {
			t.Fatalf("%d zero-window probes in 30 s with output every 50 ms (at %v)\n%v", len(probes), probes, c.pcb.Info())
		}
	})
}

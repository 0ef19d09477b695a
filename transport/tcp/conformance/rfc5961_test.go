package conformance

// ESTABLISHED under attack: RFC 5961 (blind RST, SYN and data injection) and PAWS (RFC 7323
// §5).

import (
	"errors"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

// RFC 5961 §3.2: "If the RST bit is set and the sequence number exactly matches the next
// expected sequence number (RCV.NXT), then TCP MUST reset the connection."
func TestRSTAtRcvNxtResets(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		for _, fl := range []wire.TCPFlags{wire.TCPFlagRST} {
			before := e.ext()
			e.inject(c.seg(fl, nil))
			e.expectNothing("RST at RCV.NXT")
			if !errors.Is(c.rec.err(), errs.Rst) || len(c.rec.errs) != 1 {
				t.Fatalf("ErrFunc got %v, want one errs.Rst", c.rec.errs)
			}
			checkDelta(t, "ResetsRecv", before.ResetsRecv, e.ext().ResetsRecv, 1)
			e.expectConns(0, "after RST")
		}
	})
}

// RST|ACK exactly at RCV.NXT resets as well; its ACK field does not matter.
func TestRSTACKAtRcvNxtResets(t *testing.T) {
	e := newEnv(t, v6)
	c := e.established(false, plain())
	s := c.seg(wire.TCPFlagRST|wire.TCPFlagACK, nil)
	s.ack = c.stackNxt - 5
	e.inject(s)
	if !errors.Is(c.rec.err(), errs.Rst) {
		t.Fatalf("ErrFunc got %v, want errs.Rst", c.rec.errs)
	}
}

// RFC 5961 §3.2: "If the RST bit is set and the sequence number does not exactly match the
// next expected sequence value, yet is within the current receive window, TCP MUST send an
// acknowledgment (challenge ACK): <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>".
func TestRSTInWindowChallengeACK(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		before := e.ext()
		for _, off := range []uint32{1, 1000, uint32(c.pcb.Info().RcvWnd) - 1} {
			s := c.seg(wire.TCPFlagRST, nil)
			s.seq = c.peerNxt + off
			e.inject(s)
			c.expectAck("in-window RST (challenge ACK)")
		}
		after := e.ext()
		checkDelta(t, "ChallengeACKs", before.ChallengeACKs, after.ChallengeACKs, 3)
		checkDelta(t, "DropBadRST", before.DropBadRST, after.DropBadRST, 3)
		c.survived("after in-window RSTs")
		// The peer's genuine RST then resets it.
		e.inject(c.seg(wire.TCPFlagRST, nil))
		if !errors.Is(c.rec.err(), errs.Rst) {
			t.Errorf("RST at RCV.NXT after challenges: ErrFunc %v", c.rec.errs)
		}
	})
}

// RFC 5961 §3.2: "If the RST bit is set and the sequence number is outside the current
// receive window, silently drop the segment."
func TestRSTOutOfWindowDropped(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		wnd := uint32(c.pcb.Info().RcvWnd)
		for _, seq := range []uint32{c.peerNxt - 1, c.peerNxt - 100000, c.peerNxt + wnd + 1, c.peerNxt + 1<<30} {
			s := c.seg(wire.TCPFlagRST, nil)
			s.seq = seq
			e.inject(s)
			e.expectNothing("RST outside the window")
		}
		c.survived("after out-of-window RSTs")
	})
}

// RFC 5961 §4.2: "If the SYN bit is set, irrespective of the sequence number, TCP MUST send
// an ACK (also referred to as challenge ACK) to the remote peer".
func TestSYNInEstablishedChallengeACK(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		before := e.ext()
		wnd := uint32(c.pcb.Info().RcvWnd)
		for _, tc := range []struct {
			seq   uint32
			flags wire.TCPFlags
		}{
			{c.peerNxt, wire.TCPFlagSYN},
			{c.peerNxt + 10, wire.TCPFlagSYN},
			{c.peerNxt + wnd + 100, wire.TCPFlagSYN},
			{c.irs, wire.TCPFlagSYN}, // a retransmission of the original SYN
			{c.peerNxt - 1000, wire.TCPFlagSYN | wire.TCPFlagACK},
		} {
			s := c.seg(tc.flags, nil)
			s.seq = tc.seq
			s.opts.HasMSS, s.opts.MSS = true, 1460
			e.inject(s)
			c.expectAck("SYN in ESTABLISHED (challenge ACK)")
		}
		after := e.ext()
		// The two in-window SYNs are challenged as SYNs; the out-of-window ones may be
		// counted as out of window instead.
		checkAtLeast(t, "ChallengeACKs", before.ChallengeACKs, after.ChallengeACKs, 2)
		checkAtLeast(t, "DropBadSYN", before.DropBadSYN, after.DropBadSYN, 2)
		c.survived("after SYNs")
		// Still working.
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("ok"))
		if string(c.rec.data) != "ok" {
			t.Errorf("received %q after SYNs", c.rec.data)
		}
	})
}

// RFC 9293 §3.10.7.4 (ESTABLISHED, ACK): "If the ACK acks something not yet sent (SEG.ACK >
// SND.NXT), then send an ACK, drop the segment, and return." RFC 5961 §5.2: an ACK below
// SND.UNA - MAX.SND.WND is discarded and answered with an ACK too. The data on such segments
// is not accepted.
func TestACKOutsideAcceptableRangeDropped(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		c.write(pattern(100, 1))
		c.expectData("data", 100)
		c.ack()
		before := e.ext()
		for _, ack := range []uint32{c.stackNxt + 1, c.stackNxt + 100000, c.stackNxt - 0xffff - 1000} {
			s := c.seg(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("evil"))
			s.ack = ack
			e.inject(s)
			c.expectAck("unacceptable ACK")
			if len(c.rec.data) != 0 {
				t.Fatalf("data on a segment with ACK %d (SND.NXT %d) was accepted", ack, c.stackNxt)
			}
		}
		checkDelta(t, "DropBadAck", before.DropBadAck, e.ext().DropBadAck, 3)
		c.state("after bad ACKs", tcp.StateEstablished)
	})
}

// An old ACK within MAX.SND.WND is a duplicate: ignored, and the data it carries accepted
// (RFC 9293 §3.10.7.4: "If the ACK is a duplicate (SEG.ACK =< SND.UNA), it can be ignored").
func TestOldACKWithinWindowDataAccepted(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		c.write(pattern(1000, 1))
		c.expectData("data", 1000)
		c.ack()
		s := c.seg(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("fine"))
		s.ack = c.stackNxt - 500
		e.inject(s)
		c.peerNxt += 4
		if string(c.rec.data) != "fine" {
			t.Fatalf("data with an old but acceptable ACK: delivered %q", c.rec.data)
		}
		if in := c.pcb.Info(); in.SndUna != c.stackNxt {
			t.Errorf("an old ACK moved SND.UNA back to %d (want %d)", in.SndUna, c.stackNxt)
		}
	})
}

// RFC 5961 §7: challenge ACKs are limited to TCPChallengeAckLimit per second, stack-wide.
func TestChallengeACKRateLimit(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.TCPChallengeAckLimit = 3 })
	ls, a := e.passiveOpened()
	b := e.passiveOpen(ls, plain().from(peerPort+1))
	before := e.ext()
	sent := 0
	for i := range 10 {
		c := a
		if i%2 == 1 {
			c = b
		}
		s := c.seg(wire.TCPFlagRST, nil)
		s.seq = c.peerNxt + 10
		e.inject(s)
		for _, r := range e.drain() {
			if !flagsEq(r.Flags, wire.TCPFlagACK) || r.SeqNum != c.stackNxt || r.AckNum != c.peerNxt {
				t.Fatalf("challenge ACK: got %v", r)
			}
			sent++
		}
	}
	after := e.ext()
	if sent != 3 {
		t.Errorf("%d challenge ACKs for 10 in-window RSTs within a second, want TCPChallengeAckLimit = 3", sent)
	}
	checkDelta(t, "ChallengeACKs", before.ChallengeACKs, after.ChallengeACKs, uint64(sent))
	checkDelta(t, "ChallengeACKsLimited", before.ChallengeACKsLimited, after.ChallengeACKsLimited, uint64(10-sent))
	// A second later the budget is back.
	e.advance(time.Second + time.Millisecond)
	e.drain()
	s := a.seg(wire.TCPFlagRST, nil)
	s.seq = a.peerNxt + 10
	e.inject(s)
	a.expectAck("challenge ACK a second later")
	if len(a.rec.errs)+len(b.rec.errs) != 0 {
		t.Errorf("connections died: %v %v", a.rec.errs, b.rec.errs)
	}
}

// RFC 7323 §5.3 R1: a segment whose TSval is older than TS.Recent is not acceptable: an ACK
// is sent and the segment dropped (DropPAWS). R1 does not apply to RST.
func TestPAWSDropsOldTimestamp(t *testing.T) {
	forBoth(t, modern, func(t *testing.T, e *env, c *conn) {
		if !c.tsOK {
			t.Fatal("timestamps not negotiated")
		}
		e.peerTS += 1000
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("new"))
		e.advance(e.o.TCPDelAckTimeout)
		ack := c.expectAck("ACK of data")
		if ack.Options.TSEcr != e.peerTS-1 {
			t.Errorf("ACK echoes TSecr %d, want the data's TSval %d", ack.Options.TSEcr, e.peerTS-1)
		}
		before := e.ext()
		s := c.seg(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("old"))
		s.opts.TSVal -= 500 // older than TS.Recent
		e.inject(s)
		c.expectAck("PAWS-rejected segment")
		if string(c.rec.data) != "new" {
			t.Fatalf("PAWS-rejected data delivered: %q", c.rec.data)
		}
		checkDelta(t, "DropPAWS", before.DropPAWS, e.ext().DropPAWS, 1)
		// TSval older "modulo 2^32": TS.Recent - 2^31 + 1 is older too.
		s = c.seg(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("old"))
		s.opts.TSVal -= 1<<31 - 10
		e.inject(s)
		c.expectAck("PAWS-rejected segment (modular comparison)")
		if string(c.rec.data) != "new" {
			t.Fatalf("PAWS-rejected data delivered: %q", c.rec.data)
		}
		// A RST with an old timestamp at RCV.NXT still resets.
		s = c.seg(wire.TCPFlagRST, nil)
		s.opts.TSVal -= 500
		e.inject(s)
		if !errors.Is(c.rec.err(), errs.Rst) {
			t.Errorf("RST with an old TSval: ErrFunc %v, want errs.Rst (RFC 7323 §5.3 R1 excludes RST)", c.rec.errs)
		}
	})
}

// RFC 7323 §4.3: the TSecr of our ACK echoes TS.Recent, the TSval of the last in-order
// segment; TSval values we send never go backwards.
func TestTimestampsEcho(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(false, modern())
	var last uint32
	for i := range 4 {
		e.peerTS += 7
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, pattern(1460, byte(i)))
		want := e.peerTS - 1
		e.advance(e.o.TCPDelAckTimeout)
		for _, s := range e.drain() {
			if !s.Options.HasTimestamps {
				t.Fatalf("segment without timestamps: %v", s)
			}
			if s.Options.TSEcr != want {
				t.Errorf("TSecr %d, want %d", s.Options.TSEcr, want)
			}
			if seqLT(s.Options.TSVal, last) {
				t.Errorf("TSval went back from %d to %d", last, s.Options.TSVal)
			}
			last = s.Options.TSVal
		}
		e.advance(100 * time.Millisecond)
	}
}

// RFC 9293 §3.10.7.4, fifth: "if the ACK bit is off, drop the segment and return" — data on
// a segment without ACK in a synchronized state is not delivered.
func TestSegmentWithoutACKDropped(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		s := c.seg(wire.TCPFlagPSH, []byte("no ack"))
		e.inject(s)
		if len(c.rec.data) != 0 {
			t.Fatalf("data without ACK delivered: %q", c.rec.data)
		}
		for _, r := range e.drain() {
			if r.Flags.Has(wire.TCPFlagRST) {
				t.Fatalf("segment without ACK answered with %v", r)
			}
		}
		c.state("after a segment without ACK", tcp.StateEstablished)
	})
}

// RFC 9293 §3.10.7.4 (ESTABLISHED, ACK): the send window is updated only "If SND.WL1 <
// SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK)": a reordered older segment does not
// shrink it.
func TestOldSegmentDoesNotUpdateWindow(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	a := c.seg(wire.TCPFlagACK, pattern(100, 1))
	a.wnd = 5000
	e.inject(a)
	c.peerNxt += 100
	c.wnd = 6000
	c.send(wire.TCPFlagACK, pattern(100, 2))
	a.wnd = 0 // the first segment again, delayed, with an older window
	e.inject(a)
	if w := c.pcb.Info().SndWnd; w != 6000 {
		t.Errorf("SndWnd %d after a reordered old segment with window 0, want 6000", w)
	}
	e.advance(time.Second)
	e.drain()
}

// An URG segment's data is delivered inline like any other (RFC 6093 §5: urgent data is
// inline; wisp has no out-of-band API).
func TestUrgentDataInline(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	s := c.seg(wire.TCPFlagACK|wire.TCPFlagURG|wire.TCPFlagPSH, []byte("urgent!"))
	c.injectCrafted(s, func(b []byte) { b[18], b[19] = 0, 7 }, "URG data") // urgent pointer
	e.advance(time.Second)
	e.drain()
}

// RFC 7323 §5.4: the timestamp clock ticks between once a millisecond and once a second.
func TestTimestampClockRate(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(false, modern())
	c.write([]byte("a"))
	a := c.expectData("a", 1)
	c.ack()
	e.advance(10 * time.Second)
	c.write([]byte("b"))
	b := c.expectData("b", 1)
	c.ack()
	if d := b.Options.TSVal - a.Options.TSVal; d < 10 || d > 10000+100 {
		t.Errorf("TSval advanced by %d in 10 s: the clock must tick between 1 ms and 1 s (RFC 7323 §5.4)", d)
	}
}

// RFC 6528: ISN = M + F(4-tuple, secret) with M a 4 µs clock: for one 4-tuple the ISN
// advances with time (250 000 per second); different 4-tuples get unrelated ISNs.
func TestISNClockAndSecret(t *testing.T) {
	e := newEnv(t, v4)
	ls := e.listen(listenPort, 0)
	isn := func(port uint16) uint32 {
		c := e.synToListener(ls, plain().from(port))
		e.inject(c.seg(wire.TCPFlagRST, nil))
		return c.iss
	}
	a := isn(peerPort)
	e.advance(time.Second)
	b := isn(peerPort)
	if d := b - a; d < 240000 || d > 260000 {
		t.Errorf("ISN of the same 4-tuple advanced by %d in 1 s, want about 250000 (RFC 6528 M: 4 µs)", d)
	}
	c := isn(peerPort + 1)
	if d := c - b; d < 1000 || d > 1<<32-1000 {
		t.Errorf("ISNs of neighbouring 4-tuples at the same time differ by only %d: F() does not depend on the port", int32(d))
	}
}

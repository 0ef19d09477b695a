package conformance

// SYN-RECEIVED: RFC 9293 §3.10.7.4 for a passive open.

import (
	"testing"
	"time"

	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/wire"
)

// RFC 9293 §3.10.7.4, SYN-RECEIVED, RST: "If this connection was initiated with a passive
// OPEN (i.e., came from the LISTEN state), then return this connection to LISTEN state and
// return. The user need not be informed."
func TestSynRcvdRSTReturnsToListen(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		ls, c := e.synRcvd()
		before := e.ext()
		e.inject(c.seg(wire.TCPFlagRST, nil)) // seq = RCV.NXT
		e.expectNothing("RST in SYN-RECEIVED")
		ls.expectAccepted(t, 0, "AcceptFunc called for a reset half-open connection")
		if conns, lsn := e.tcp.NumPCBs(); conns != 0 || lsn != 1 {
			t.Errorf("NumPCBs %d/%d after RST in SYN-RECEIVED, want 0/1", conns, lsn)
		}
		checkDelta(t, "ResetsRecv", before.ResetsRecv, e.ext().ResetsRecv, 1)
		// The ACK that would have completed it now gets RST <SEQ=SEG.ACK>, and the listener
		// takes a new connection.
		c.ack()
		e.expectSeg("ACK after the half-open connection was reset", wire.TCPFlagRST, c.iss+1, 0)
		e.passiveOpen(ls, plain())
	})
}

// A retransmitted SYN in SYN-RECEIVED is answered with the SYN-ACK again (or, taking RFC 9293
// §3.10.7.4 literally, an ACK <SEQ=SND.NXT><ACK=RCV.NXT>), never with a new ISS or a RST;
// the connection then completes.
func TestSynRcvdDuplicateSyn(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		ls := e.listen(listenPort, 0)
		po := plain()
		c := e.synToListener(ls, po)
		conns0 := e.conns()
		e.inject(segment{srcPort: c.rport, dstPort: c.lport, seq: c.irs, flags: wire.TCPFlagSYN, wnd: po.wnd,
			opts: po.synOptions(e)})
		s := e.next()
		switch {
		case flagsEq(s.Flags, wire.TCPFlagSYN|wire.TCPFlagACK) && s.SeqNum == c.iss && s.AckNum == c.irs+1:
		case flagsEq(s.Flags, wire.TCPFlagACK) && s.SeqNum == c.iss+1 && s.AckNum == c.irs+1:
		default:
			t.Fatalf("duplicate SYN: got %v, want SYN-ACK seq=%d ack=%d (or ACK seq=%d)", s, c.iss, c.irs+1, c.iss+1)
		}
		e.expectNothing("after the answer to a duplicate SYN")
		e.expectConns(conns0, "after a duplicate SYN (no state allowed)")
		c.ack()
		ls.expectAccepted(t, 1, "handshake did not complete after a duplicate SYN")
	})
}

// RFC 9293 §3.10.7.4, SYN-RECEIVED, ACK: "If the segment acknowledgment is not acceptable,
// form a reset segment <SEQ=SEG.ACK><CTL=RST> and send it."
func TestSynRcvdBadAckGetsRST(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		ls, c := e.synRcvd()
		for _, ack := range []uint32{c.iss + 5, c.iss} {
			c.ackTo(ack)
			e.expectSeg("unacceptable ACK in SYN-RECEIVED", wire.TCPFlagRST, ack, 0)
			ls.expectAccepted(t, 0, "accepted on an unacceptable ACK")
		}
		c.ack()
		ls.expectAccepted(t, 1, "the acceptable ACK did not complete the handshake")
	})
}

// The ACK that completes the handshake may carry data: it is delivered after AcceptFunc.
func TestSynRcvdAckWithData(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		ls, c := e.synRcvd()
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("hello"))
		ls.expectAccepted(t, 1, "not accepted")
		if got := string(ls.recs[0].data); got != "hello" {
			t.Errorf("data on the handshake ACK: delivered %q, want \"hello\"", got)
		}
		e.advance(e.o.TCPDelAckTimeout)
		c.expectAck("ACK of the handshake data")
	})
}

// The SYN-ACK is retransmitted with backoff; after TCPSynAckMaxRtx (Linux's
// tcp_synack_retries, 5) the half-open connection is dropped at about 63 s, as Linux does —
// without ever reaching AcceptFunc.
func TestSynRcvdSynAckRetransmitThenDrop(t *testing.T) {
	e := newEnv(t, v4)
	if e.o.TCPSynAckMaxRtx != 5 || e.o.TCPInitRTO != time.Second {
		t.Fatalf("test assumes 5 SYN-ACK retries from a 1 s RTO, have %d from %v", e.o.TCPSynAckMaxRtx, e.o.TCPInitRTO)
	}
	ls, c := e.synRcvd()
	before := e.ext()
	t0 := c.synack.at
	var times []time.Duration
	var gone time.Duration
	for e.elapsed()-t0 < 3*time.Minute {
		e.advance(10 * time.Millisecond)
		for _, s := range e.drain() {
			if s.Flags.Has(wire.TCPFlagRST) {
				continue
			}
			if !flagsEq(s.Flags, wire.TCPFlagSYN|wire.TCPFlagACK) || s.SeqNum != c.iss || s.AckNum != c.irs+1 {
				t.Fatalf("expected a SYN-ACK retransmission, got %v", s)
			}
			times = append(times, s.at-t0)
		}
		if conns, _ := e.tcp.NumPCBs(); conns == 0 {
			gone = e.elapsed() - t0
			break
		}
	}
	if len(times) != e.o.TCPSynAckMaxRtx {
		t.Errorf("%d SYN-ACK retransmissions at %v, want %d", len(times), times, e.o.TCPSynAckMaxRtx)
	}
	if gone < 63*time.Second || gone > 63*time.Second+50*time.Millisecond {
		t.Errorf("half-open connection dropped after %v, want 63 s (1+2+4+8+16+32)", gone)
	}
	checkDelta(t, "HalfOpenTimeouts", before.HalfOpenTimeouts, e.ext().HalfOpenTimeouts, 1)
	rto, prev := e.o.TCPInitRTO, time.Duration(0)
	for i, at := range times {
		if d := at - prev; d < rto-10*time.Millisecond || d > rto+20*time.Millisecond {
			t.Errorf("SYN-ACK retransmission %d after %v, want %v", i+1, d, rto)
		}
		prev, rto = at, rto*2
	}
	if conns, _ := e.tcp.NumPCBs(); conns != 0 {
		t.Errorf("half-open connection still there after %v", e.elapsed()-t0)
	}
	if len(ls.accepted) != 0 {
		t.Error("AcceptFunc called for a connection that never completed")
	}
}

// TCPSynRcvdTimeout caps a half-open connection's life whatever the retries: with 10 s the
// SYN-ACKs at 1 s, 3 s and 7 s are sent and the connection is gone at 10 s, not at 15 s.
func TestSynRcvdLifetimeCap(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.TCPSynRcvdTimeout = 10 * time.Second })
	ls, c := e.synRcvd()
	t0 := c.synack.at
	rtx := 0
	var gone time.Duration
	for e.elapsed()-t0 < time.Minute {
		e.advance(10 * time.Millisecond)
		for _, s := range e.drain() {
			if flagsEq(s.Flags, wire.TCPFlagSYN|wire.TCPFlagACK) {
				rtx++
			} else {
				t.Errorf("unexpected %v", s)
			}
		}
		if conns, _ := e.tcp.NumPCBs(); conns == 0 {
			gone = e.elapsed() - t0
			break
		}
	}
	if rtx != 3 {
		t.Errorf("%d SYN-ACK retransmissions, want 3 (at 1 s, 3 s, 7 s)", rtx)
	}
	if gone < 10*time.Second || gone > 10*time.Second+20*time.Millisecond {
		t.Errorf("half-open connection dropped after %v, want 10 s (TCPSynRcvdTimeout)", gone)
	}
	// The peer's late ACK now finds only the listener: a RST, not a connection.
	c.ack()
	if r := e.expectFlags("late handshake ACK after the half-open connection was dropped", wire.TCPFlagRST); r.SeqNum != c.iss+1 {
		t.Errorf("RST seq %d, want SEG.ACK %d", r.SeqNum, c.iss+1)
	}
	if len(ls.accepted) != 0 {
		t.Error("AcceptFunc called for a dropped half-open connection")
	}
}

package conformance

// SYN-SENT: RFC 9293 §3.10.7.3, RFC 5961 §3.2, RFC 6298 (SYN retransmission), RFC 7323 §2.2.

import (
	"errors"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

func TestSynSentSynAckCompletes(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c, connected := e.connect(nil)
		syn := c.synack
		o := syn.Options
		if syn.Flags.Has(wire.TCPFlagACK) {
			t.Errorf("initial SYN has ACK set: %v", syn)
		}
		if !o.HasMSS || int(o.MSS) != min(e.routeMSS(), e.o.TCPMSS) {
			t.Errorf("SYN MSS %v/%d, want %d", o.HasMSS, o.MSS, min(e.routeMSS(), e.o.TCPMSS))
		}
		if !o.HasWindowScale || !o.SACKPermitted || !o.HasTimestamps {
			t.Errorf("SYN does not offer WS, SACK and timestamps (all enabled): %v", syn)
		}
		if o.HasTimestamps && o.TSEcr != 0 {
			t.Errorf("SYN TSecr %d, want 0 (RFC 7323 §3.2)", o.TSEcr)
		}
		if syn.Window == 0 {
			t.Error("SYN advertises a zero window")
		}
		if syn.ttl != e.o.TCPTTL {
			t.Errorf("SYN TTL %d, want %d", syn.ttl, e.o.TCPTTL)
		}
		if c.lport < e.o.TCPPortLow || c.lport > e.o.TCPPortHigh {
			t.Errorf("ephemeral port %d outside [%d, %d]", c.lport, e.o.TCPPortLow, e.o.TCPPortHigh)
		}
		e.synAck(c, modern())
		ack := c.expectAck("ACK of the SYN-ACK")
		if ack.Options.HasTimestamps != true || ack.Options.TSEcr != e.peerTS-1 {
			t.Errorf("handshake ACK timestamps: %v, want TSecr %d", ack, e.peerTS-1)
		}
		if *connected != 1 {
			t.Fatalf("ConnectedFunc called %d times", *connected)
		}
		c.state("after SYN-ACK", tcp.StateEstablished)
		c.checkOpened(c.pcb, o, false)
	})
}

// RFC 9293 §3.10.7.3: "If the RST bit is set, If the ACK was acceptable, then signal to the
// user 'error: connection reset', drop the segment, enter CLOSED state".
func TestSynSentAcceptableRSTRefuses(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c, connected := e.connect(nil)
		e.inject(segment{srcPort: remotePort, dstPort: c.lport, seq: 0, ack: c.iss + 1,
			flags: wire.TCPFlagRST | wire.TCPFlagACK})
		e.expectNothing("after RST in SYN-SENT")
		if !errors.Is(c.rec.err(), errs.Refused) || len(c.rec.errs) != 1 {
			t.Fatalf("ErrFunc got %v, want exactly one errs.Refused", c.rec.errs)
		}
		if *connected != 0 {
			t.Error("ConnectedFunc called for a refused connect")
		}
		e.expectConns(0, "after a refused connect")
	})
}

// RFC 9293 §3.10.7.3: an RST whose ACK is unacceptable, or without ACK, is dropped (RFC 5961
// §3.2 keeps this rule for SYN-SENT).
func TestSynSentBadRSTIgnored(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c, _ := e.connect(nil)
		for _, s := range []segment{
			{srcPort: remotePort, dstPort: c.lport, ack: c.iss + 100, flags: wire.TCPFlagRST | wire.TCPFlagACK},
			{srcPort: remotePort, dstPort: c.lport, ack: c.iss, flags: wire.TCPFlagRST | wire.TCPFlagACK},
			{srcPort: remotePort, dstPort: c.lport, seq: 5, flags: wire.TCPFlagRST},
		} {
			e.inject(s)
			e.expectNothing("unacceptable RST in SYN-SENT " + s.String())
			if len(c.rec.errs) != 0 {
				t.Fatalf("unacceptable RST %v killed the connect: %v", s, c.rec.errs)
			}
			c.state("after an unacceptable RST", tcp.StateSynSent)
		}
		// The connect still completes.
		e.synAck(c, plain())
		c.expectAck("handshake after ignored RSTs")
		c.state("after SYN-ACK", tcp.StateEstablished)
	})
}

// RFC 9293 §3.10.7.3: "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the RST
// bit is set ...) <SEQ=SEG.ACK><CTL=RST> and discard the segment."
func TestSynSentBadAckGetsRST(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c, _ := e.connect(nil)
		for _, tc := range []struct {
			flags wire.TCPFlags
			ack   uint32
		}{
			{wire.TCPFlagACK, c.iss + 100},
			{wire.TCPFlagACK, c.iss},
			{wire.TCPFlagSYN | wire.TCPFlagACK, c.iss + 2},
			{wire.TCPFlagSYN | wire.TCPFlagACK, c.iss - 1000},
		} {
			e.inject(segment{srcPort: remotePort, dstPort: c.lport, seq: peerISS, ack: tc.ack, flags: tc.flags, wnd: 1000})
			s := e.expectSeg("bad ACK in SYN-SENT", wire.TCPFlagRST, tc.ack, 0)
			if len(s.data) != 0 {
				t.Error("RST with data")
			}
			c.state("after a bad ACK", tcp.StateSynSent)
		}
		if len(c.rec.errs) != 0 {
			t.Errorf("bad ACKs reported errors: %v", c.rec.errs)
		}
		e.synAck(c, plain())
		c.expectAck("handshake after bad ACKs")
	})
}

// RFC 9293 §3.5 Figure 8: simultaneous open. A SYN in SYN-SENT moves to SYN-RECEIVED and is
// answered <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>; the peer's ACK completes the connection.
func TestSimultaneousOpen(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c, connected := e.connect(nil)
		s := c.crossSYN()
		if s.Options.HasWindowScale || s.Options.SACKPermitted || s.Options.HasTimestamps {
			t.Errorf("SYN-ACK of a simultaneous open offers options the peer's SYN lacked: %v", s)
		}
		c.state("after the peer's SYN", tcp.StateSynReceived)
		if *connected != 0 {
			t.Fatal("ConnectedFunc before the handshake completed")
		}
		// The peer's SYN-ACK crosses ours; whatever the stack makes of it (ESTABLISHED, or an
		// ACK because its SYN is old), the peer's pure ACK that follows completes.
		e.inject(segment{srcPort: remotePort, dstPort: c.lport, seq: c.irs, ack: c.iss + 1,
			flags: wire.TCPFlagSYN | wire.TCPFlagACK, wnd: 0xffff})
		for _, r := range e.drain() {
			if r.Flags.Has(wire.TCPFlagRST) {
				t.Fatalf("the crossing SYN-ACK was answered with %v", r)
			}
		}
		c.ack()
		e.drain()
		c.state("after the ACK", tcp.StateEstablished)
		if *connected != 1 {
			t.Errorf("ConnectedFunc called %d times, want 1", *connected)
		}
		// Data flows both ways.
		c.write([]byte("sim"))
		c.expectData("data after a simultaneous open", 3)
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("open"))
		if string(c.rec.data) != "open" {
			t.Errorf("received %q", c.rec.data)
		}
	})
}

// The simplest simultaneous open: SYN crossing SYN, then the peer's pure ACK.
func TestSimultaneousOpenPureAck(t *testing.T) {
	e := newEnv(t, v4)
	c, connected := e.connect(nil)
	c.crossSYN()
	c.ack()
	e.expectNothing("after the ACK completing a simultaneous open")
	c.state("after the ACK", tcp.StateEstablished)
	if *connected != 1 {
		t.Errorf("ConnectedFunc called %d times, want 1", *connected)
	}
}

// RFC 6298 §5.5 and RFC 9293 §3.8.1: the SYN is retransmitted with exponential backoff from
// TCPInitRTO; after TCPSynMaxRtx retransmissions the connect fails with errs.Timeout.
func TestSynRetransmitBackoffThenTimeout(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c, connected := e.connect(nil)
		var times []time.Duration
		t0 := e.elapsed()
		for len(c.rec.errs) == 0 && e.elapsed()-t0 < 2*time.Minute {
			e.advance(10 * time.Millisecond)
			for _, s := range e.drain() {
				if !flagsEq(s.Flags, wire.TCPFlagSYN) || s.SeqNum != c.iss {
					if s.Flags.Has(wire.TCPFlagRST) {
						continue // a RST at the end is allowed
					}
					t.Fatalf("expected SYN retransmission seq=%d, got %v", c.iss, s)
				}
				times = append(times, s.at-t0)
			}
		}
		if len(times) != e.o.TCPSynMaxRtx {
			t.Errorf("%d SYN retransmissions at %v, want TCPSynMaxRtx = %d", len(times), times, e.o.TCPSynMaxRtx)
		}
		rto := e.o.TCPInitRTO
		prev := time.Duration(0)
		for i, at := range times {
			if d := at - prev; d < rto-10*time.Millisecond || d > rto+20*time.Millisecond {
				t.Errorf("retransmission %d after %v, want %v (doubling from TCPInitRTO)", i+1, d, rto)
			}
			prev = at
			rto *= 2
		}
		if !errors.Is(c.rec.err(), errs.Timeout) {
			t.Fatalf("ErrFunc got %v, want errs.Timeout", c.rec.errs)
		}
		// The last SYN gets its full (backed-off) RTO before the connect gives up.
		if give := e.elapsed() - t0 - prev; give < rto-10*time.Millisecond || give > rto+20*time.Millisecond {
			t.Errorf("gave up %v after the last SYN, want %v", give, rto)
		}
		if *connected != 0 {
			t.Error("ConnectedFunc called")
		}
		e.expectConns(0, "after the timeout")
		if x := e.ext(); x.Timeouts != 1 {
			t.Errorf("Timeouts %d, want 1", x.Timeouts)
		}
	})
}

// RFC 9293 §3.7.1 and RFC 6691: segments never exceed the peer's MSS (less option space).
func TestSynSentPeerMSSHonored(t *testing.T) {
	bothFamilies(t, func(t *testing.T, f family) {
		for _, mss := range []uint16{536, 1000} {
			e := newEnv(t, f)
			po := plain()
			po.mss = mss
			c := e.activeOpen(po)
			if in := c.pcb.Info(); in.MSS != int(mss) {
				t.Errorf("Info.MSS %d, want the peer's %d", in.MSS, mss)
			}
			c.write(pattern(5000, 1))
			total := 0
			for _, s := range e.drain() {
				if len(s.data) > int(mss) {
					t.Errorf("segment of %d bytes exceeds the peer's MSS %d", len(s.data), mss)
				}
				total += len(s.data)
			}
			if total == 0 {
				t.Fatal("nothing sent")
			}
			e.close()
		}
	})
}

// Without an MSS option the send MSS is the default: 536 (IPv4, RFC 9293 §3.7.1) or 1220
// (IPv6, RFC 8200 §8.3).
func TestSynSentNoMSSOptionDefault(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		po := plain()
		po.mss = 0
		c := e.activeOpen(po)
		want := 536
		if e.fam == v6 {
			want = 1220
		}
		if in := c.pcb.Info(); in.MSS != want {
			t.Errorf("Info.MSS %d, want %d", in.MSS, want)
		}
		c.write(pattern(4000, 2))
		for _, s := range e.drain() {
			if len(s.data) > want {
				t.Errorf("segment of %d bytes with a default MSS of %d", len(s.data), want)
			}
		}
	})
}

// Timestamps take 12 bytes of every segment, so with them the payload is MSS-12 (RFC 6691).
func TestSynSentMSSLessTimestamps(t *testing.T) {
	e := newEnv(t, v4)
	po := modern()
	po.mss = 1000
	c := e.activeOpen(po)
	c.write(pattern(3000, 3))
	for _, s := range e.drain() {
		if hl := wire.TCPMinHeaderLen + s.Options.Len(); len(s.data)+hl-wire.TCPMinHeaderLen > 1000 {
			t.Errorf("segment with %d data bytes + %d option bytes exceeds MSS 1000 (RFC 6691)", len(s.data), s.Options.Len())
		}
	}
}

// RFC 7323 §2.2: window scaling is in effect only if both SYNs carried the option, and the
// window of a SYN is never scaled.
func TestWindowScaleNegotiation(t *testing.T) {
	t.Run("both", func(t *testing.T) {
		e := newEnv(t, v4)
		po := plain()
		po.ws = 7
		po.wnd = 1000 // in the SYN-ACK: unscaled
		po.dataWnd = 100
		c := e.activeOpen(po)
		if in := c.pcb.Info(); in.SndWnd != 1000 {
			t.Errorf("SndWnd %d after a SYN-ACK with window 1000, want 1000 (a SYN's window is not scaled)", in.SndWnd)
		}
		c.ack() // window field 100, scaled by 7
		in := c.pcb.Info()
		if in.SndWndScale != 7 || in.SndWnd != 100<<7 {
			t.Errorf("SndWndScale %d SndWnd %d, want 7 and %d", in.SndWndScale, in.SndWnd, 100<<7)
		}
		if in.RcvWndScale != c.synack.Options.WindowScale {
			t.Errorf("RcvWndScale %d, the SYN offered %d", in.RcvWndScale, c.synack.Options.WindowScale)
		}
		// Our ACKs advertise the window scaled by our shift.
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, pattern(100, 1))
		e.advance(e.o.TCPDelAckTimeout)
		s := c.expectAck("ACK of data")
		rw := c.pcb.Info().RcvWnd
		if got := int(s.Window) << in.RcvWndScale; got > rw || rw-got >= 1<<in.RcvWndScale {
			t.Errorf("advertised window field %d << %d = %d, Info.RcvWnd %d", s.Window, in.RcvWndScale, got, rw)
		}
	})
	t.Run("peer-none", func(t *testing.T) {
		e := newEnv(t, v4)
		po := plain()
		po.wnd = 1000
		c := e.activeOpen(po)
		in := c.pcb.Info()
		if in.SndWndScale != 0 || in.RcvWndScale != 0 {
			t.Errorf("scales %d/%d although the peer did not offer window scaling", in.SndWndScale, in.RcvWndScale)
		}
		if in.SndWnd != 1000 {
			t.Errorf("SndWnd %d, want 1000", in.SndWnd)
		}
		if in.RcvWnd > 0xffff {
			t.Errorf("RcvWnd %d cannot be advertised without scaling", in.RcvWnd)
		}
	})
	t.Run("we-none", func(t *testing.T) {
		e := newEnv(t, v4, func(o *opt.Options) { o.TCPWndScale = false })
		c, _ := e.connect(nil)
		if c.synack.Options.HasWindowScale {
			t.Fatalf("SYN offers window scaling with TCPWndScale off: %v", c.synack)
		}
		po := plain()
		po.ws = 7
		po.wnd = 1000
		e.synAck(c, po)
		c.wsOK = false // the peer must not scale either
		c.expectAck("handshake")
		c.ack()
		if in := c.pcb.Info(); in.SndWndScale != 0 || in.SndWnd != 1000 {
			t.Errorf("SndWndScale %d SndWnd %d, want 0 and 1000: the peer's shift applies only if we offered ours", in.SndWndScale, in.SndWnd)
		}
	})
	t.Run("shift-above-14", func(t *testing.T) {
		// RFC 7323 §2.3: a shift above 14 is used as 14 (and may be logged).
		e := newEnv(t, v4)
		po := plain()
		po.ws = 15
		po.dataWnd = 2
		c := e.activeOpen(po)
		c.ack()
		if in := c.pcb.Info(); in.SndWndScale != 14 || in.SndWnd != 2<<14 {
			t.Errorf("peer shift 15: SndWndScale %d SndWnd %d, want 14 and %d", in.SndWndScale, in.SndWnd, 2<<14)
		}
	})
}

// Connect errors (pcbapi.go): no route is errs.NetUnreach; a second Connect is errs.IsConn.
func TestConnectErrors(t *testing.T) {
	e := newEnv(t, v4)
	pcb, err := e.tcp.NewPCB()
	if err != nil {
		t.Fatal(err)
	}
	if err := pcb.Connect(netipAP("203.0.113.9", 80), nil); !errors.Is(err, errs.NetUnreach) {
		t.Errorf("Connect without a route: %v, want errs.NetUnreach", err)
	}
	if err := pcb.Close(); err != nil {
		t.Error(err)
	}
	c, _ := e.connect(nil)
	if err := c.pcb.Connect(netipAP("198.18.0.3", 80), nil); !errors.Is(err, errs.IsConn) {
		t.Errorf("Connect in SYN-SENT: %v, want errs.IsConn", err)
	}
	// Close in SYN-SENT frees the PCB at once (pcbapi.go) and sends nothing.
	if err := c.pcb.Close(); err != nil {
		t.Error(err)
	}
	e.expectNothing("Close in SYN-SENT")
	e.expectConns(0, "after Close in SYN-SENT")
	if len(c.rec.errs) != 0 {
		t.Errorf("ErrFunc called after Close: %v", c.rec.errs)
	}
}

// A SYN-ACK with a zero window establishes the connection; data then waits for the window
// (persist), and flows when it opens.
func TestSynAckZeroWindow(t *testing.T) {
	e := newEnv(t, v4)
	po := plain()
	po.wnd = 0
	c := e.activeOpen(po)
	c.write([]byte("waiting"))
	for _, s := range e.drain() {
		if len(s.data) > 1 {
			t.Fatalf("sent %v into a zero window", s)
		}
	}
	c.wnd = 0xffff
	c.ack()
	e.advance(time.Second)
	var got []byte
	for _, s := range e.drain() {
		if off := int(s.SeqNum - (c.iss + 1)); off >= 0 && off+len(s.data) <= 7 {
			got = append(got[:off], s.data...)
		}
	}
	if string(got) != "waiting" {
		t.Errorf("after the window opened: sent %q", got)
	}
}

// Abort in SYN-SENT sends nothing (the connection is not synchronized, pcbapi.go: "sends RST
// (if synchronized)") and reports errs.Abrt.
func TestAbortInSynSent(t *testing.T) {
	e := newEnv(t, v4)
	c, _ := e.connect(nil)
	c.pcb.Abort()
	e.expectNothing("Abort in SYN-SENT")
	if !errors.Is(c.rec.err(), errs.Abrt) {
		t.Errorf("ErrFunc %v, want errs.Abrt", c.rec.errs)
	}
	if e.conns() != 0 {
		t.Error("PCB not freed")
	}
	// A late SYN-ACK finds no connection: RST <SEQ=SEG.ACK>.
	e.synAck(c, plain())
	e.expectSeg("SYN-ACK after Abort", wire.TCPFlagRST, c.iss+1, 0)
}

// Close in SYN-RECEIVED (simultaneous open): RFC 9293 §3.10.4 "If no SENDs have been issued
// and there is no pending data to send, then form a FIN segment and send it, and enter
// FIN-WAIT-1 state" — the FIN may wait for the handshake to complete; the close completes.
func TestCloseInSynReceived(t *testing.T) {
	e := newEnv(t, v4)
	c, _ := e.connect(nil)
	c.po, c.irs = plain(), peerISS
	c.noteSyn(c.synack)
	e.inject(segment{srcPort: remotePort, dstPort: c.lport, seq: c.irs, flags: wire.TCPFlagSYN, wnd: 0xffff,
		opts: c.po.synOptions(e)})
	c.peerNxt = c.irs + 1
	e.expectSeg("SYN in SYN-SENT", wire.TCPFlagSYN|wire.TCPFlagACK, c.iss, c.irs+1)
	c.state("simultaneous open", tcp.StateSynReceived)
	if err := c.pcb.Close(); err != nil {
		t.Fatalf("Close in SYN-RECEIVED: %v", err)
	}
	var fin *rxSeg
	for _, s := range e.drain() {
		if s.Flags.Has(wire.TCPFlagFIN) {
			fin = s
		}
	}
	c.ack() // completes the handshake
	for _, s := range e.drain() {
		if s.Flags.Has(wire.TCPFlagFIN) {
			fin = s
		}
	}
	if fin == nil || fin.SeqNum != c.iss+1 {
		t.Fatalf("Close in SYN-RECEIVED: FIN %v, want FIN seq=%d", fin, c.iss+1)
	}
	c.stackNxt = c.iss + 2
	c.send(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
	c.expectAckOfFIN("ACK of the peer's FIN")
	e.advance(2*e.o.TCPMSL + time.Second)
	if e.conns() != 0 {
		t.Errorf("%d connections after TIME-WAIT", e.conns())
	}
}

// Data on a SYN-ACK (RFC 9293 §3.10.7.3 allows it) is either delivered and acknowledged or
// dropped and not acknowledged — never acknowledged and lost (the invariants check the ACK
// bound).
func TestSynAckWithData(t *testing.T) {
	e := newEnv(t, v4)
	c, _ := e.connect(nil)
	c.po, c.irs = plain(), peerISS
	c.noteSyn(c.synack)
	e.inject(segment{srcPort: remotePort, dstPort: c.lport, seq: c.irs, ack: c.iss + 1,
		flags: wire.TCPFlagSYN | wire.TCPFlagACK, wnd: 0xffff, data: []byte("early"), opts: c.po.synOptions(e)})
	e.advance(e.o.TCPDelAckTimeout)
	var ack uint32
	for _, s := range e.drain() {
		ack = s.AckNum
	}
	switch {
	case ack == c.irs+1 && len(c.rec.data) == 0:
	case ack == c.irs+6 && string(c.rec.data) == "early":
	default:
		t.Errorf("SYN-ACK with 5 bytes: acknowledged up to %d (IRS+%d), delivered %q", ack, ack-c.irs, c.rec.data)
	}
}

// The same for data on a SYN to a listener: the SYN-ACK acknowledges only the SYN unless the
// data is kept, and what is kept is delivered after the handshake.
func TestSynWithDataToListener(t *testing.T) {
	e := newEnv(t, v4)
	ls := e.listen(listenPort, 0)
	e.inject(segment{srcPort: peerPort, dstPort: listenPort, seq: peerISS, flags: wire.TCPFlagSYN, wnd: 0xffff,
		data: []byte("early")})
	s := e.next()
	if !flagsEq(s.Flags, wire.TCPFlagSYN|wire.TCPFlagACK) {
		t.Fatalf("SYN with data: %v", s)
	}
	kept := s.AckNum == peerISS+6
	if !kept && s.AckNum != peerISS+1 {
		t.Fatalf("SYN-ACK acknowledges %d, want IRS+1 or IRS+6", s.AckNum-peerISS)
	}
	next := uint32(peerISS + 1)
	if kept {
		next = peerISS + 6
	}
	e.inject(segment{srcPort: peerPort, dstPort: listenPort, seq: next, ack: s.SeqNum + 1, flags: wire.TCPFlagACK, wnd: 0xffff})
	ls.expectAccepted(t, 1, "not accepted")
	if kept && string(ls.recs[0].data) != "early" {
		t.Errorf("SYN data acknowledged but delivered %q", ls.recs[0].data)
	}
	e.drain()
}

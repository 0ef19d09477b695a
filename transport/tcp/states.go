package tcp

import (
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// input processes segment in for c following RFC 9293 §3.10.7 ("SEGMENT ARRIVES"). p is
// the payload with the header removed (nil when there is none); input takes ownership.
func (c *PCB) input(in *segIn, p *pbuf.Pbuf) {
	t := c.t
	ns := t.nowNs()
	c.lastRecv = ns
	if c.state == StateSynSent {
		c.synSentInput(in, p)
		return
	}
	gen := c.gen()
	c.keepSent = 0

	// RFC 5961 §4.2: "If the SYN bit is set, irrespective of the sequence number, TCP MUST
	// send an ACK (also referred to as challenge ACK) to the remote peer" — never a reset.
	// Two exceptions: in SYN-RECEIVED a retransmission of the SYN that opened the
	// connection means our SYN-ACK was lost (send it again), and in TIME-WAIT a new SYN
	// may reopen the 4-tuple (RFC 6191).
	if in.hasSYN() {
		switch {
		case c.state == StateSynReceived && in.seq == c.irs && !in.hasACK():
			c.retransmitSYN()
			t.dropSeg(p, nil)
		case c.state == StateTimeWait && !in.hasACK() && c.twReopen(in, p):
		default:
			t.ext.DropBadSYN++
			t.st.Drop++
			c.challengeACK()
			p.Free()
		}
		return
	}

	// First, check the sequence number. PAWS (RFC 7323 §5.3) comes before the window
	// test: "If ... SEG.TSval < TS.Recent ... the segment is not acceptable"; a RST is
	// exempt (RFC 7323 §5.3 R1 note), its validity is RFC 5961's business.
	if c.flags&fTS != 0 && in.opts.HasTimestamps && !in.hasRST() &&
		seqLT(in.opts.TSVal, c.tsRecent) {
		// "If the connection has been idle more than 24 days, TS.Recent is invalid."
		if ns-c.tsRecentAge > int64(24*24*3600)*1e9 {
			c.tsRecent = in.opts.TSVal
		} else {
			c.ackNow()
			c.output()
			t.dropSeg(p, &t.ext.DropPAWS)
			return
		}
	}
	if !c.acceptable(in) {
		// "If an incoming segment is not acceptable, an acknowledgment should be sent in
		// reply (unless the RST bit is set, if so drop the segment and return)".
		if !in.hasRST() {
			if c.flags&fSACK != 0 && in.dataLen > 0 && seqLT(in.seq, c.rcvNxt) {
				// RFC 2883 §4: report the duplicate as the first SACK block (D-SACK).
				c.dsack = wire.SACKBlock{Left: in.seq, Right: seqMin(in.seq+uint32(in.dataLen), c.rcvNxt)}
				t.ext.DSACKSent++
			}
			if c.state == StateTimeWait && in.hasFIN() {
				// "The only thing that can arrive in this state is a retransmission of
				// the remote FIN. Acknowledge it, and restart the 2 MSL timeout."
				c.armTimeWait()
			}
			c.ackNow()
			c.output()
		}
		t.dropSeg(p, &t.ext.DropOutOfWindow)
		return
	}

	// Second, check the RST bit (RFC 5961 §3.2): reset only if it is exactly at RCV.NXT,
	// otherwise answer with a challenge ACK.
	if in.hasRST() {
		if in.seq != c.rcvNxt {
			t.ext.DropBadRST++
			t.st.Drop++
			c.challengeACK()
			p.Free()
			return
		}
		p.Free()
		t.ext.ResetsRecv++
		c.resetReceived()
		return
	}

	// Fifth, check the ACK field: "if the ACK bit is off drop the segment and return".
	if !in.hasACK() {
		t.st.Proterr++
		t.dropSeg(p, &t.ext.DropBadHeader)
		return
	}
	// RFC 7323 §4.3: TS.Recent is updated from a segment that is acceptable and covers
	// Last.ACK.sent. Like Linux, not from one whose ACK is not acceptable (RFC 5961 §5.2):
	// a forged segment acknowledging data never sent would otherwise plant a high TSval
	// that makes every later good segment fail PAWS.
	if c.flags&fTS != 0 && in.opts.HasTimestamps && seqLEQ(in.seq, c.lastAckSent) && c.ackAcceptable(in.ack) {
		c.tsRecent, c.tsRecentAge = in.opts.TSVal, ns
	}
	if c.state == StateSynReceived {
		// "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state and continue
		// processing ... If the segment acknowledgment is not acceptable, form a reset
		// segment <SEQ=SEG.ACK><CTL=RST> and send it."
		if !seqLT(c.sndUna, in.ack) || seqGT(in.ack, c.sndNxt) {
			t.resetFor(in, in.ack, 0, false)
			t.dropSeg(p, &t.ext.DropBadAck)
			return
		}
		c.ackSYN(in.ack)
		c.sndWnd = int(in.wnd) << c.sndScale
		c.maxSndWnd = max(c.maxSndWnd, c.sndWnd)
		c.sndWl1, c.sndWl2 = in.seq, in.ack
		if !c.established() {
			p.Free()
			return
		}
	}
	if !c.processAck(in, gen) {
		p.Free()
		return
	}
	if !c.alive(gen) {
		p.Free()
		return
	}

	// Seventh, process the segment text; eighth, the FIN.
	if p != nil || in.hasFIN() {
		switch c.state {
		case StateEstablished, StateFinWait1, StateFinWait2, StateSynReceived:
			if c.flags&fRxShut != 0 && p != nil {
				// lwIP tcp_shutdown(rx) / RFC 1122 §4.2.2.13: data for a closed
				// receiving side resets the connection.
				t.ext.DropClosed++
				t.st.Drop++
				p.Free()
				c.sendRST(c.rstSeq(), c.rcvNxt, true)
				c.abandon(errs.Abrt)
				return
			}
			c.receive(in, p, gen)
		default:
			// CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: "This should not occur since a
			// FIN has been received from the remote side. Ignore the segment text."
			p.Free()
			if c.state == StateTimeWait && in.hasFIN() {
				// A retransmitted FIN: acknowledge it and restart the 2 MSL timeout.
				c.ackNow()
				c.armTimeWait()
			} else if in.dataLen > 0 || in.hasFIN() {
				c.ackNow()
			}
		}
		if !c.alive(gen) {
			return
		}
	}
	c.output()
	c.notifyLowat(gen)
}

// acceptable is RFC 9293 §3.10.7.4's acceptability test (four cases by SEG.LEN and RCV.WND).
func (c *PCB) acceptable(in *segIn) bool {
	wnd := int64(int32(c.rcvAdv - c.rcvNxt))
	if wnd < 0 {
		wnd = 0
	}
	n := in.segLen()
	switch {
	case n == 0 && wnd == 0:
		return in.seq == c.rcvNxt
	case n == 0:
		return seqLEQ(c.rcvNxt, in.seq) && seqLT(in.seq, c.rcvNxt+uint32(wnd))
	case wnd == 0:
		// Zero window: only control (ACK, RST, FIN at RCV.NXT handled by caller) gets
		// through; RFC 9293 says "If the RCV.WND is zero, no segments will be acceptable,
		// but special allowance should be made to accept valid ACKs, URGs, and RSTs".
		return in.seq == c.rcvNxt || seqLT(in.seq, c.rcvNxt) && seqGT(in.seq+uint32(n), c.rcvNxt)
	}
	end := in.seq + uint32(n) - 1
	return seqLEQ(c.rcvNxt, in.seq) && seqLT(in.seq, c.rcvNxt+uint32(wnd)) ||
		seqLEQ(c.rcvNxt, end) && seqLT(end, c.rcvNxt+uint32(wnd))
}

// resetReceived handles an acceptable RST (RFC 9293 §3.10.7.4 "second, check the RST bit").
func (c *PCB) resetReceived() {
	switch c.state {
	case StateSynReceived:
		if c.flags&fPassive != 0 {
			// "If this connection was initiated with a passive OPEN ... return this
			// connection to LISTEN state": the listener still listens; drop the PCB
			// (abandon tells only a host that saw it, an intercepted one).
			c.abandon(errs.Rst)
			return
		}
		// "If this connection was initiated with an active OPEN ... the connection was
		// refused".
		c.abandon(errs.Refused)
	default:
		// Also in CLOSING, LAST-ACK and TIME-WAIT: an application that still holds the
		// PCB (it used Shutdown, not Close) must hear that it is gone.
		c.abandon(errs.Rst)
	}
}

// established moves a SYN-RECEIVED connection to ESTABLISHED and tells the application (the
// listener's AcceptFunc, or ConnectedFunc after a simultaneous open). false if c is gone.
func (c *PCB) established() bool {
	t := c.t
	c.setState(StateEstablished)
	if c.flags&fFinQueued != 0 {
		c.setState(StateFinWait1) // Close was called in SYN-RECEIVED
	}
	t.ext.Established++
	c.startKeepalive()
	gen := c.gen()
	// SND.UNA advances over our SYN in processAck; the window comes from this ACK.
	if c.flags&fPassive != 0 {
		l := c.listener
		if l == nil || l.acceptFn == nil {
			c.sendRST(c.rstSeq(), c.rcvNxt, true)
			c.abandon(errs.Abrt) // heard only by a host that saw it (AcceptSyn)
			return false
		}
		t.ext.PassiveOpens++
		l.acceptFn(l, c)
		if !c.alive(gen) {
			// The accept callback aborted it (lwIP: a full accept mailbox): the peer got a RST.
			t.ext.AcceptOverflows++
			return false
		}
		if c.flags&fBacklogDelayed == 0 && c.flags&fBacklog != 0 {
			c.flags &^= fBacklog
			l.pending--
		}
		return true
	}
	if fn := c.connFn; fn != nil {
		fn(c)
		return c.alive(gen)
	}
	return true
}

// twReopen lets a new SYN reuse a 4-tuple in TIME-WAIT (RFC 1122 §4.2.2.13, RFC 6191):
// allowed when its sequence number is above RCV.NXT (or its timestamp above TS.Recent).
// The TIME-WAIT PCB is freed and the SYN goes to the listener. Takes ownership of p only
// when it returns true.
func (c *PCB) twReopen(in *segIn, p *pbuf.Pbuf) bool {
	t := c.t
	ok := seqGT(in.seq, c.rcvNxt)
	if c.flags&fTS != 0 && in.opts.HasTimestamps {
		ok = seqGT(in.opts.TSVal, c.tsRecent)
	}
	if !ok {
		return false
	}
	l := t.listenerFor(in.hdr, in.dstPort)
	if l == nil {
		return false
	}
	c.abandon(errs.Clsd)
	// The SYN needs its header back for listenInput: only the payload is kept here, and a
	// SYN's payload is dropped anyway.
	p.Free()
	in.dataLen = 0
	t.listenInput(l, in, nil)
	return true
}

// synSentInput is RFC 9293 §3.10.7.3 ("If the state is SYN-SENT").
func (c *PCB) synSentInput(in *segIn, p *pbuf.Pbuf) {
	t := c.t
	if p != nil {
		// Data on a SYN-ACK is rare; the peer retransmits it after our ACK.
		p.Free()
	}
	// "first check the ACK bit ... If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset
	// (unless the RST bit is set, if so drop the segment and return)".
	ackOK := false
	if in.hasACK() {
		if seqLEQ(in.ack, c.iss) || seqGT(in.ack, c.sndNxt) {
			if !in.hasRST() {
				t.resetFor(in, in.ack, 0, false)
			}
			t.ext.DropBadAck++
			t.st.Drop++
			return
		}
		ackOK = true
	}
	// "second check the RST bit": with an acceptable ACK, "the user should be signalled
	// 'error: connection reset', drop the segment, enter CLOSED state".
	if in.hasRST() {
		if ackOK {
			t.ext.ResetsRecv++
			c.abandon(errs.Refused)
			return
		}
		t.dropSeg(nil, &t.ext.DropBadRST)
		return
	}
	if !in.hasSYN() {
		t.dropSeg(nil, &t.ext.DropBadHeader)
		return
	}
	// "fourth check the SYN bit": RCV.NXT = SEG.SEQ+1, IRS = SEG.SEQ.
	c.irs = in.seq
	c.rcvNxt = in.seq + 1
	c.rcvAdv = c.rcvNxt
	c.syncPromise()
	c.applySynOptions(&in.opts)
	if c.flags&fTS != 0 {
		c.tsRecent, c.tsRecentAge = in.opts.TSVal, t.nowNs()
	}
	if !ackOK {
		// Simultaneous open: "enter SYN-RECEIVED, form a SYN,ACK segment
		// <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> and send it".
		c.setState(StateSynReceived)
		c.sndWnd = int(in.wnd) // unscaled on a SYN (RFC 7323 §2.2)
		c.sndWl1, c.sndWl2 = in.seq, in.ack
		c.retransmitSYN()
		return
	}
	gen := c.gen()
	c.setState(StateEstablished)
	t.ext.Established++
	c.startKeepalive()
	c.sndWnd = int(in.wnd) // RFC 7323 §2.2: the window of a SYN is never scaled
	c.maxSndWnd = c.sndWnd
	c.sndWl1, c.sndWl2 = in.seq, in.ack
	c.ackSYN(in.ack)
	c.ackNow()
	if fn := c.connFn; fn != nil {
		fn(c)
		if !c.alive(gen) {
			return
		}
	}
	c.output()
}

// ackSYN handles the acknowledgment of our SYN: SND.UNA moves past it, the RTT of the
// handshake seeds the estimator (RFC 6298 §2.2) unless it was retransmitted (Karn).
func (c *PCB) ackSYN(ack uint32) {
	t := c.t
	s := c.rtxq.head
	if s != nil && s.flags&sSYN != 0 && seqGEQ(ack, s.end()) {
		if s.flags&sEverRetx == 0 {
			ns := t.nowNs()
			c.rttSample(durationNs(ns-s.xmit), ns)
		}
		c.rtxq.pop()
		t.freeSeg(s)
	}
	c.sndUna = ack
	c.nrtx, c.stuckSince = 0, 0
	c.rtoAt = 0
	c.mss = min(c.mss, c.effMSS())
	c.cc.SetMSS(c.mss)
}

package tcp

import (
	"time"

	"github.com/wispstack/wisp/errs"
)

// processAck is "fifth, check the ACK field" for synchronized states (RFC 9293 §3.10.7.4)
// with everything that hangs off an ACK: RFC 5961 §5.2 validation, the send window, SACK,
// RTT samples, congestion control, loss recovery, the sent callback and the FIN's
// acknowledgment. false: drop the segment (c may be gone, check alive).
func (c *PCB) processAck(in *segIn, gen uint32) bool {
	t := c.t
	ack := in.ack
	// RFC 5961 §5.2: "If the ACK value is acceptable only if it is in the range of
	// ((SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT). All incoming segments whose ACK
	// value doesn't satisfy the above condition MUST be discarded and an ACK sent back."
	if !c.ackAcceptable(ack) {
		t.ext.DropBadAck++
		t.st.Drop++
		c.challengeACK()
		return false
	}
	ns := t.nowNs()
	inflight := int(c.sndNxt - c.sndUna)
	unaBefore, sackedBefore := c.sndUna, c.sackedBytes
	// Window update: "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be updated
	// if (SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK))".
	wnd := int(in.wnd) << c.sndScale
	wndChanged := false
	if seqGEQ(ack, c.sndUna) && (seqLT(c.sndWl1, in.seq) || c.sndWl1 == in.seq && seqLEQ(c.sndWl2, ack)) {
		wndChanged = wnd != c.sndWnd
		c.sndWnd, c.sndWl1, c.sndWl2 = wnd, in.seq, ack
		c.maxSndWnd = max(c.maxSndWnd, wnd)
	}
	sacked := 0
	c.rack.fackBefore = c.rack.fack
	if !c.rack.fackOK {
		c.rack.fackBefore = c.sndUna // below everything this ACK can deliver
	}
	if c.flags&fSACK != 0 && in.opts.NumSACK > 0 {
		sacked = c.sackUpdate(in, ns)
	}
	if c.flags&fUndo != 0 && c.retransTSSet && c.flags&fTS != 0 && in.opts.HasTimestamps &&
		in.opts.TSEcr != 0 && seqGT(ack, c.sndUna) && seqLT(in.opts.TSEcr, c.retransTS) &&
		(c.flags&fRTORecovery != 0 && c.sndUna == c.undoMarker ||
			c.flags&fInRecovery != 0 && seqGEQ(ack, c.recover)) {
		// RFC 3522 (Eifel) §3.2: "if the value of the Timestamp Echo Reply field of the
		// acceptable ACK's Timestamps option is smaller than the value of RetransmitTS"
		// (the TSval of the first retransmission), the original arrived: the loss was
		// spurious. After a timeout the first ACK past the retransmitted head decides, so
		// that the rest of the window is not sent again. In fast recovery the ACK that ends
		// it decides: the receiver's TS.Recent only moves forward (RFC 7323 §4.3 with PAWS),
		// so an echo still older than the first retransmission proves that no
		// retransmission of the episode filled a hole.
		c.undo()
	}
	finAcked := false
	advanced := seqGT(ack, c.sndUna)
	if advanced {
		dataAcked := c.ackData(in, ack, ns)
		if c.frto != frtoOff {
			c.frtoAck(true, sacked) // may undo: before the recovery state is looked at
		}
		finAcked = c.finSent() && ack == c.sndNxt
		c.dupAcks = 0
		c.nrtx, c.persistN, c.stuckSince = 0, 0, 0
		c.keepSent = 0
		now := t.now()
		switch {
		case c.flags&fInRecovery != 0 && seqGEQ(ack, c.recover):
			// RFC 6582 §3.2 step 3 / RFC 6675: a full acknowledgment ends recovery.
			c.flags &^= fInRecovery
			c.renoSacked = 0
			c.cc.OnRecoveryExit(now)
			c.rackRecoveryExit()
		case c.flags&fInRecovery != 0:
			if c.flags&fSACK == 0 {
				// RFC 6582 §3.2 step 4, partial acknowledgment: "retransmit the first
				// unacknowledged segment" and deflate by the amount acknowledged.
				c.renoSacked = max(c.renoSacked-dataAcked/max(c.mss, 1), 0)
				c.markHeadLost()
				c.flags |= fForceRetx
			}
		default:
			if c.flags&fRTORecovery != 0 && seqGEQ(ack, c.recover) {
				c.flags &^= fRTORecovery
				c.frto = frtoOff
				c.rackRecoveryExit()
			}
			// Duplicate ACKs counted before fast recovery began stood for segments
			// this ACK now covers (Linux tcp_remove_reno_sacks).
			c.renoSacked = max(c.renoSacked-dataAcked/max(c.mss, 1), 0)
			limited := c.flags&fCwndLimited != 0 || 2*inflight >= c.cc.Cwnd()
			c.cc.OnAck(dataAcked, c.lastRTT, c.minRTT, inflight, limited, now)
			c.growSndBuf()
		}
		c.renoSacked = min(c.renoSacked, max(c.rtxq.n-1, 0))
		c.tlpAcked(in, ack, true)
		if c.sndUna == c.sndNxt {
			c.rtoAt, c.tlpAt, c.reoAt = 0, 0, 0
		} else {
			// RFC 6298 §5.3: "When an ACK is received that acknowledges new data, restart
			// the retransmission timer".
			c.armRTO(ns)
		}
		if dataAcked > 0 && c.sentFn != nil && c.flags&fAppClosed == 0 {
			c.sentFn(c, dataAcked)
			if !c.alive(gen) {
				return false
			}
		}
	} else if ack == c.sndUna && inflight > 0 && in.dataLen == 0 && !in.hasFIN() &&
		(c.flags&fSACK == 0 && !wndChanged || sacked > 0) {
		// RFC 5681 §2 "duplicate acknowledgment"; with SACK, RFC 6675 counts ACKs that
		// SACK new data.
		c.dupAcks++
		if c.flags&fSACK == 0 {
			c.renoSacked = min(c.renoSacked+1, max(c.rtxq.n-1, 0))
		}
	}
	if !advanced && c.rack.tlpOut {
		c.tlpAcked(in, ack, false)
	}
	if c.frto != frtoOff && !advanced && (sacked > 0 || c.frtoOrig) {
		c.frtoAck(false, sacked)
	}
	if c.flags&fSACK != 0 {
		c.rackDetectLoss(ns)
	}
	// RFC 6937 §3: "DeliveredData = change_in(snd.una) + change_in(SACKd)".
	c.lastDelivered = int(c.sndUna-unaBefore) + c.sackedBytes - sackedBefore
	if c.flags&(fInRecovery|fSACK) == fInRecovery|fSACK {
		c.prrAck(c.lastDelivered)
	} else {
		c.maybeEnterRecovery(ns) // counts this ACK's DeliveredData if it starts recovery
	}
	if finAcked {
		return c.finWasAcked(gen)
	}
	return true
}

// ackAcceptable is RFC 5961 §5.2's test: SND.UNA - MAX.SND.WND =< SEG.ACK =< SND.NXT.
func (c *PCB) ackAcceptable(ack uint32) bool {
	return !seqGT(ack, c.sndNxt) && !seqLT(ack, c.sndUna-uint32(max(c.maxSndWnd, 1)))
}

// finWasAcked moves the state on when our FIN is acknowledged (RFC 9293 §3.10.7.4,
// FIN-WAIT-1, CLOSING, LAST-ACK).
func (c *PCB) finWasAcked(gen uint32) bool {
	switch c.state {
	case StateFinWait1:
		c.setState(StateFinWait2)
		if c.flags&fAppClosed != 0 {
			// Linux's tcp_fin_timeout: an orphaned FIN-WAIT-2 does not wait forever.
			c.closeAt = c.t.nowNs() + int64(2*c.t.opts.TCPMSL)
			c.schedule()
		}
	case StateClosing:
		c.enterTimeWait()
	case StateLastAck:
		// "The only thing that can arrive in this state is an acknowledgment of our FIN.
		// If our FIN is now acknowledged, delete the TCB, enter the CLOSED state".
		c.abandon(errs.Clsd)
		return false
	}
	return c.alive(gen)
}

// ackData removes what ack (of segment in) covers from the retransmission and send queues,
// takes an RTT sample (Karn: never from a retransmitted segment) and updates RACK. It
// returns the data bytes newly acknowledged (SYN and FIN excluded).
func (c *PCB) ackData(in *segIn, ack uint32, ns int64) int {
	t := c.t
	var rttXmit int64 = -1
	for s := c.rtxq.head; s != nil; s = c.rtxq.head {
		if seqGT(s.end(), ack) {
			if seqLT(s.seq, ack) {
				// Partly acknowledged: keep the rest.
				d := int(ack - s.seq)
				c.dropAccounting(s, d)
				if s.flags&sSYN != 0 {
					s.flags &^= sSYN
				}
				s.seq = ack
				s.len -= int32(d)
			}
			break
		}
		c.rtxq.pop()
		if c.rack.hint == s {
			c.rack.hint = nil
		}
		if s.flags&sSacked == 0 {
			c.rackUpdate(in, s, ns)
			c.frtoSeen(s)
		}
		c.dropAccounting(s, int(s.len))
		if s.flags&sEverRetx == 0 && s.xmit > rttXmit {
			rttXmit = s.xmit
		}
		t.freeSeg(s)
	}
	acked := 0
	for r := c.sndq.head; r != nil; r = c.sndq.head {
		if seqLEQ(r.end(), ack) {
			acked += int(r.len)
			c.addSndUsed(-int(r.len))
			c.sndq.pop()
			if c.pos == r {
				c.pos = r.next
			}
			t.freeSeg(r)
			continue
		}
		if seqLT(r.seq, ack) {
			d := int(ack - r.seq)
			acked += d
			c.addSndUsed(-d)
			r.seq += uint32(d)
			r.off += int32(d)
			r.len -= int32(d)
		}
		break
	}
	if ack-c.iss < c.sndUna-c.iss {
		c.ackWraps++ // SND.UNA went round the sequence space (BytesAcked)
	}
	c.sndUna = ack
	c.lastRTT = 0
	switch {
	case rttXmit >= 0:
		c.rttSample(durationNs(ns-rttXmit), ns)
	case c.flags&fTS != 0 && in.opts.HasTimestamps && in.opts.TSEcr != 0:
		// RFC 7323 §4.1: with timestamps, retransmitted segments give samples too.
		ms := int64(int32(c.tsNow() - in.opts.TSEcr))
		if ms >= 0 && ms < 3600*1000 {
			c.rttSample(time.Duration(ms)*time.Millisecond, ns)
		}
	}
	return acked
}

// dropAccounting removes n bytes of s from the SACK/lost/retransmitted counters.
func (c *PCB) dropAccounting(s *seg, n int) {
	switch {
	case s.flags&sSacked != 0:
		c.sackedBytes -= n
	default:
		if s.flags&sLost != 0 {
			c.lostBytes -= n
		}
		if s.flags&sRetrans != 0 {
			c.retransOut -= n
		}
	}
}

// rttSample feeds one RTT measurement, taken at ns, to the estimator (RFC 6298 §2) and to
// the windowed minimum.
func (c *PCB) rttSample(r time.Duration, ns int64) {
	const g = time.Millisecond // clock granularity G
	c.lastRTT = r
	c.minRTT = c.minRTTf.update(max(r, time.Microsecond), ns, minRTTWindow)
	if !c.hasRTT {
		// (2.2) "SRTT <- R, RTTVAR <- R/2, RTO <- SRTT + max (G, K*RTTVAR)".
		c.srtt, c.rttvar = r, r/2
		c.hasRTT = true
	} else {
		// (2.3) "RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|,
		// SRTT <- (1 - alpha) * SRTT + alpha * R'" with alpha = 1/8, beta = 1/4.
		d := c.srtt - r
		if d < 0 {
			d = -d
		}
		c.rttvar = c.rttvar - c.rttvar/4 + d/4
		c.srtt = c.srtt - c.srtt/8 + r/8
	}
	// (2.4) asks for a minimum RTO; like Linux, the minimum bounds the variance term
	// instead, so the RTO stays at least TCPMinRTO above SRTT: with a 200 ms minimum and a
	// 200 ms path an RTO of SRTT + 4·RTTVAR ≈ 210 ms would fire on any queueing delay.
	rto := c.srtt + max(g, 4*c.rttvar, c.t.opts.TCPMinRTO)
	c.rto = min(rto, c.t.opts.TCPMaxRTO) // (2.5) a maximum
}

// maybeEnterRecovery starts fast recovery when loss has been detected: three duplicate
// ACKs (RFC 5681 §3.2, RFC 6582), RFC 6675's IsLost, or RACK (RFC 8985).
func (c *PCB) maybeEnterRecovery(ns int64) {
	if c.flags&(fInRecovery|fRTORecovery) != 0 || c.rtxq.head == nil {
		return
	}
	// With SACK, RACK (and RFC 6675's IsLost before any reordering was seen) decide what is
	// lost, as Linux does with RACK on: counting duplicate ACKs alone would retransmit
	// spuriously under reordering. Without SACK, the third duplicate ACK is the signal.
	if c.flags&fSACK == 0 && c.dupAcks >= 3 && c.lostBytes == 0 {
		if !seqGT(c.sndUna, c.recover) && c.recover != c.iss {
			// RFC 6582 §3.2 step 2: "If the Cumulative Acknowledgment field didn't cover
			// more than recover, do not enter fast retransmit".
			return
		}
		c.markHeadLost()
	}
	if c.lostBytes == 0 {
		return
	}
	t := c.t
	c.flags |= fInRecovery | fForceRetx
	c.recover = c.sndNxt
	c.startEpisode()
	if c.flags&fSACK != 0 {
		t.ext.SACKRecoveries++
	} else {
		t.ext.RenoRecoveries++
	}
	c.cc.OnCongestion(c.flight(), t.now())
	c.rack.tlpOut = false
	// RFC 6937 §3, at the beginning of recovery: "prr_delivered = 0, prr_out = 0,
	// RecoverFS = snd.nxt-snd.una".
	c.prrDelivered, c.prrOut, c.prrSndcnt = 0, 0, 0
	c.recoverFS = c.flight()
	if c.flags&fSACK != 0 {
		// The ACK that revealed the loss counts as the first ACK of recovery, also when
		// RACK's reordering timer made the decision later (RFC 8985 §6.2 step 5).
		c.prrAck(c.lastDelivered)
	}
}

// prrAck is RFC 6937 §3 "On every ACK during recovery": how much may be sent now. Above
// ssthresh the sending rate is reduced in proportion to what is delivered, so that recovery
// ends with about ssthresh in flight; below it (more was lost than the reduction asked
// for), slow start brings pipe back up, bounded by PRR-SSRB.
func (c *PCB) prrAck(delivered int) {
	c.prrDelivered += max(delivered, 0)
	pipe := c.pipe()
	ss := c.cc.Ssthresh()
	var sndcnt int
	if pipe > ss {
		// "sndcnt = CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out".
		fs := int64(max(c.recoverFS, 1))
		sndcnt = int((int64(c.prrDelivered)*int64(ss)+fs-1)/fs) - c.prrOut
	} else {
		// PRR-SSRB: "limit = MAX(prr_delivered - prr_out, DeliveredData) + MSS;
		// sndcnt = MIN(ssthresh - pipe, limit)".
		limit := max(c.prrDelivered-c.prrOut, delivered) + c.mss
		sndcnt = min(ss-pipe, limit)
	}
	c.prrSndcnt = max(sndcnt, 0)
}

// flight is RFC 5681's FlightSize: "The amount of data that has been sent but not yet
// cumulatively acknowledged" (SACKed data included).
func (c *PCB) flight() int { return int(c.sndNxt - c.sndUna) }

// markHeadLost marks the first unacknowledged segment lost (fast retransmit).
func (c *PCB) markHeadLost() {
	s := c.rtxq.head
	if s == nil || s.flags&sSacked != 0 {
		return
	}
	c.markLost(s)
}

// markLost marks the unSACKed record s lost: it waits for retransmission, and a
// retransmission of it still counted in flight is deemed lost with it.
func (c *PCB) markLost(s *seg) {
	if s.flags&sLost == 0 {
		s.flags |= sLost
		c.lostBytes += int(s.len)
	}
	if s.flags&sRetrans != 0 {
		s.flags &^= sRetrans
		c.retransOut -= int(s.len)
	}
}

// clearLost takes the lost and retransmitted marks of s away, with their bytes.
func (c *PCB) clearLost(s *seg) {
	if s.flags&sLost != 0 {
		c.lostBytes -= int(s.len)
	}
	if s.flags&sRetrans != 0 {
		c.retransOut -= int(s.len)
	}
	s.flags &^= sLost | sRetrans
}

// startEpisode remembers where a window reduction began, so that it can be undone if it
// proves spurious (RFC 3522 with timestamps, RFC 3708 with D-SACK).
func (c *PCB) startEpisode() {
	c.undoMarker = c.sndUna
	c.retransTSSet = false
	c.undoRetrans, c.rtxLogN = 0, 0
	c.flags |= fUndo
}

// undo reverts the last window reduction: every retransmission of the episode was
// spurious (the originals arrived).
func (c *PCB) undo() {
	t := c.t
	if c.flags&fRTORecovery != 0 {
		t.ext.SpuriousRTOs++
	}
	t.ext.Undos++
	c.cc.Undo()
	c.flags &^= fInRecovery | fRTORecovery | fUndo
	c.frto, c.frtoOrig = frtoOff, false
	c.unmarkLost()
	c.dupAcks, c.renoSacked = 0, 0
}

// unmarkLost forgets every loss mark (a spurious timeout was undone).
func (c *PCB) unmarkLost() {
	for s := c.rtxq.head; s != nil; s = s.next {
		if s.flags&sSacked == 0 { // a SACKed record carries neither mark
			c.clearLost(s)
		}
	}
}

// onRTO applies a retransmission timeout: congestion response, every unSACKed segment
// marked lost (RFC 6675 §5.1, RFC 8985 §6.3), retransmission of the first.
func (c *PCB) onRTO(ns int64) {
	t := c.t
	now := t.now()
	if c.nrtx == 1 {
		c.startEpisode()
		c.cc.OnRTO(c.flight(), now)
	}
	c.frtoStart(c.flags&(fInRecovery|fRTORecovery) != 0)
	for s := c.rtxq.head; s != nil; s = s.next {
		if s.flags&sSacked == 0 {
			c.markLost(s)
		}
	}
	c.flags &^= fInRecovery
	c.flags |= fRTORecovery
	c.recover = c.sndNxt
	c.dupAcks, c.renoSacked = 0, 0
	c.rack.tlpOut = false
	c.tlpAt, c.reoAt = 0, 0
	c.retransmitLost(ns)
}

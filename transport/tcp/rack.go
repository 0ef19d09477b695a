package tcp

import (
	"time"

	"github.com/wispstack/wisp/wire"
)

// rackState is RACK-TLP's per-connection state (RFC 8985 §5.2), plus the SACK scoreboard's
// walking hint.
type rackState struct {
	xmit         int64  // RACK.xmit_ts: send time of the most recently sent segment delivered
	endSeq       uint32 // RACK.end_seq
	rtt          time.Duration
	fack         uint32 // highest sequence number SACKed or acknowledged (RACK.fack)
	fackBefore   uint32 // RACK.fack before the ACK being processed (SND.UNA if none)
	fackOK       bool   // fack holds a value
	reordering   bool   // RACK.reordering_seen
	reoMult      int    // RACK.reo_wnd_mult (0 stands for the initial 1)
	reoPersist   int    // RACK.reo_wnd_persist
	dsackRound   uint32 // RACK.dsack_round (valid when inDSACKRound)
	inDSACKRound bool   // RACK.dsack_round is not None
	valid        bool
	tlpOut       bool   // a TLP episode is in progress (TLP.end_seq valid)
	tlpEnd       uint32 // TLP.end_seq
	tlpRetx      bool   // the probe was a retransmission
	hint         *seg   // rtxq record to start SACK walks from (nil: the head)
}

// sackUpdate applies the SACK blocks of the segment being processed to the scoreboard
// (RFC 2018 §5, RFC 6675 §4) and returns the bytes newly SACKed. D-SACK blocks (RFC 2883
// §4: the first block below SEG.ACK, or inside the second) only feed RACK's reordering
// window.
func (c *PCB) sackUpdate(in *segIn, ns int64) int {
	t := c.t
	blocks := in.opts.SACKBlocks[:in.opts.NumSACK]
	newly := 0
	for i, b := range blocks {
		if i == 0 && (seqLEQ(b.Right, in.ack) ||
			len(blocks) > 1 && seqLEQ(blocks[1].Left, b.Left) && seqLEQ(b.Right, blocks[1].Right)) {
			t.ext.DSACKRecv++
			c.rackDSACK()
			if c.flags&fUndo != 0 && c.undoRetrans > 0 && c.dsackCoversRetx(b) {
				// RFC 3708 §3: "If the TCP sender receives a DSACK for a retransmitted
				// segment ... the sender SHOULD consider the retransmission spurious";
				// when every retransmission of the episode was, the reduction is undone.
				c.undoRetrans--
				if c.undoRetrans <= 0 {
					c.undo()
				}
			}
			continue
		}
		// A block must lie within what we sent and be above the cumulative ACK.
		if !seqLT(b.Left, b.Right) || seqGT(b.Right, c.sndNxt) || seqLEQ(b.Right, in.ack) ||
			int(b.Right-b.Left) > 1<<30 {
			continue
		}
		left := seqMax(b.Left, in.ack)
		t.ext.SACKBlocksRecv++
		s := c.rack.hint
		if s == nil || seqGT(s.seq, left) {
			s = c.rtxq.head
		}
		for ; s != nil && seqLT(s.seq, b.Right); s = s.next {
			if seqLT(s.seq, left) || seqGT(s.end(), b.Right) || s.flags&sSacked != 0 {
				continue
			}
			// Newly SACKed: out of the lost and retransmitted counts, into sacked.
			c.clearLost(s)
			s.flags |= sSacked
			c.sackedBytes += int(s.len)
			newly += int(s.len)
			if c.sackedBytes == int(s.len) || seqGT(s.end(), c.highSacked) {
				c.highSacked = s.end()
			}
			c.rackUpdate(in, s, ns)
			c.frtoSeen(s)
			c.rack.hint = s
		}
	}
	// No separate DupThresh marking (RFC 6675 IsLost): RACK is the loss detector with
	// SACK. Until reordering has been seen, RACK.reo_wnd is 0 once DupThresh segments are
	// SACKed (RFC 8985 §6.2 step 4), which marks every hole below a SACKed segment sent
	// after it, as IsLost would; once reordering was seen, the reordering window, not a
	// segment count, decides.
	return newly
}

// dsackCoversRetx reports whether D-SACK block b reports a copy of a segment retransmitted
// in the current episode, and forgets that retransmission so that the same report (an
// ACK the link duplicated) is not counted twice. A duplicate the network made of a segment
// sent once also draws a D-SACK: it says nothing about our retransmissions. When the log
// overflowed, any block inside the episode counts, as RFC 3708 does.
func (c *PCB) dsackCoversRetx(b wire.SACKBlock) bool {
	if !seqGEQ(b.Left, c.undoMarker) || !seqLEQ(b.Right, c.sndNxt) {
		return false
	}
	if c.rtxLogN > len(c.rtxLog) {
		return true
	}
	for i := 0; i < c.rtxLogN; i++ {
		r := c.rtxLog[i]
		if seqGEQ(b.Left, r.Left) && seqLEQ(b.Right, r.Right) {
			c.rtxLogN--
			c.rtxLog[i] = c.rtxLog[c.rtxLogN]
			return true
		}
	}
	return false
}

// logRetx remembers a retransmission of the episode for dsackCoversRetx.
func (c *PCB) logRetx(seq, end uint32) {
	if c.rtxLogN < len(c.rtxLog) {
		c.rtxLog[c.rtxLogN] = wire.SACKBlock{Left: seq, Right: end}
	}
	c.rtxLogN = min(c.rtxLogN+1, len(c.rtxLog)+1)
}

// rackUpdate is RFC 8985 §6.2 step 3 (reordering detection) and step 2 (RACK.rtt, xmit_ts,
// end_seq) for one newly acknowledged or SACKed segment.
//
// The RFC walks the segments of an ACK in ascending order (of end_seq for step 3, of
// xmit_ts for step 2); an ACK's segments come here in the order of its SACK blocks and then
// cumulatively acknowledged, so both steps are written to give that order's result in any
// order. Step 3: "If Segment.end_seq > RACK.fack: RACK.fack = Segment.end_seq; Else if
// Segment.end_seq < RACK.fack AND Segment.retransmitted is FALSE: RACK.reordering_seen =
// TRUE" — in ascending order, the newly delivered segments below a segment cannot raise
// RACK.fack above its end, so the comparison is with RACK.fack before the ACK (as Linux's
// prior_fack). Otherwise an ACK that cumulatively acknowledges what lost ACKs did not and
// SACKs above a hole would count as reordering. Step 2: RACK.rtt ends as the RTT of the
// segment sent last, so it is set with RACK.xmit_ts (Linux tcp_rack_advance).
func (c *PCB) rackUpdate(in *segIn, s *seg, ns int64) {
	if !c.rack.fackOK {
		c.rack.fack, c.rack.fackOK = s.end(), true
	} else if seqLT(s.end(), c.rack.fackBefore) && s.flags&sEverRetx == 0 {
		c.rack.reordering = true
	}
	c.rack.fack = seqMax(c.rack.fack, s.end())
	rtt := durationNs(ns - s.xmit)
	if s.flags&sEverRetx != 0 {
		// "If Segment has been retransmitted, the ACK may be for the original": skip
		// samples that cannot belong to the retransmission.
		if c.flags&fTS != 0 && in.opts.HasTimestamps && seqLT(in.opts.TSEcr, s.tsval) ||
			rtt < c.minRTT {
			return
		}
	}
	if !c.rack.valid || s.xmit > c.rack.xmit || s.xmit == c.rack.xmit && seqGT(s.end(), c.rack.endSeq) {
		c.rack.xmit, c.rack.endSeq, c.rack.rtt, c.rack.valid = s.xmit, s.end(), rtt, true
	}
}

// rackDSACK adapts the reordering window to a D-SACK (RFC 8985 §6.2 step 4): "Grow the
// reordering window per round that sees DSACK. Reset the window after 16 DSACK-free
// recoveries." A D-SACK also means the network reorders (or duplicates): RACK stops
// treating DupThresh SACKed segments as proof of loss.
func (c *PCB) rackDSACK() {
	c.rack.reordering = true
	if c.rack.inDSACKRound && seqGEQ(c.sndUna, c.rack.dsackRound) {
		// "If RACK.dsack_round is not None AND SND.UNA >= RACK.dsack_round:
		// RACK.dsack_round = None".
		c.rack.inDSACKRound = false
	}
	if !c.rack.inDSACKRound {
		// "RACK.dsack_round = SND.NXT, RACK.reo_wnd_mult += 1, RACK.reo_wnd_persist = 16".
		c.rack.inDSACKRound = true
		c.rack.dsackRound = c.sndNxt
		c.rack.reoMult = min(max(c.rack.reoMult, 1)+1, 64)
		c.rack.reoPersist = 16
	}
}

// rackRecoveryExit is the other half of RFC 8985 §6.2 step 4: "Else if exiting Fast or RTO
// recovery: RACK.reo_wnd_persist -= 1; If RACK.reo_wnd_persist <= 0: RACK.reo_wnd_mult = 1".
func (c *PCB) rackRecoveryExit() {
	c.rack.reoPersist--
	if c.rack.reoPersist <= 0 {
		c.rack.reoPersist = 0
		c.rack.reoMult = 1
	}
}

// reoWnd is RACK.reo_wnd (RFC 8985 §6.2 step 4): "If RACK.reordering_seen is FALSE: If in
// Fast or RTO recovery: Return 0; Else if RACK.segs_sacked >= DupThresh: Return 0. Return
// min(RACK.reo_wnd_mult * RACK.min_RTT / 4, SRTT)". min_RTT is a windowed minimum
// (minRTTWindow), so a path whose delay grew gets a window sized for it.
func (c *PCB) reoWnd() time.Duration {
	if !c.rack.reordering {
		if c.flags&(fInRecovery|fRTORecovery) != 0 || c.sackedBytes >= 3*c.mss {
			return 0
		}
	}
	m := max(c.rack.reoMult, 1)
	return min(time.Duration(m)*c.minRTT/4, c.srtt)
}

// rackDetectLoss marks segments lost that were sent before the most recently delivered one
// and have waited longer than RACK.rtt + reo_wnd (RFC 8985 §6.2 step 5), and arms the
// reordering timer for the rest.
func (c *PCB) rackDetectLoss(ns int64) {
	var timeout int64
	if c.rack.valid {
		timeout = c.rackDetectSentBefore(ns)
	}
	if r := c.lostRetxCheck(ns, true); r > 0 && (timeout == 0 || r < timeout) {
		timeout = r
	}
	if timeout > 0 {
		c.reoAt = ns + timeout
		c.schedule()
	}
}

// rackDetectSentBefore is RFC 8985 §6.2 step 5 for a valid RACK state: it marks the
// segments lost and returns the time until the next one may be (0: none).
func (c *PCB) rackDetectSentBefore(ns int64) int64 {
	reo := c.reoWnd()
	var timeout int64
	for s := c.rtxq.head; s != nil; s = s.next {
		if s.flags&sSacked != 0 {
			continue
		}
		// RACK_sent_after(RACK.xmit_ts, RACK.end_seq, Segment.xmit_ts, Segment.end_seq).
		// On a tie of send times the sequence number only orders original transmissions:
		// a retransmission at the same instant went out after them.
		if s.xmit > c.rack.xmit || s.xmit == c.rack.xmit &&
			(s.flags&sEverRetx != 0 || !seqGT(c.rack.endSeq, s.end())) {
			if s.flags&sEverRetx == 0 {
				break // original transmissions after this one were sent later still
			}
			continue
		}
		if s.flags&sLost != 0 && s.flags&sRetrans == 0 {
			continue // already waiting for retransmission
		}
		remaining := s.xmit + int64(c.rack.rtt+reo) - ns
		if remaining <= 0 {
			c.t.ext.RACKLosses++
			c.markLost(s)
		} else if remaining > timeout {
			timeout = remaining
		}
	}
	return timeout
}

// lostRetxCheck covers what RACK cannot see (beyond RFC 8985): in fast recovery, when every
// segment in flight and not SACKed is a retransmission, no segment sent after them can be
// delivered, so a lost retransmission would wait for the RTO — a window-limited sender
// whose hole's retransmission was lost (the receiver's window is anchored at the hole), or
// an application-limited one. On a short path that is a stall of TCPMinRTO against an RTT
// of microseconds. A retransmission unacknowledged a probe timeout (RFC 8985 §7.2's PTO,
// 2·SRTT, at least tlpMinPTO) after it left is deemed lost and sent again, as a tail loss
// probe would do outside recovery; the window is not reduced again (the episode already
// did). Only the first retransmission of a segment is probed so; a lost second copy
// waits for the RTO. It returns the time until the next such deadline, 0 if none; with mark false it
// only computes that (after a send, to arm the RACK timer).
func (c *PCB) lostRetxCheck(ns int64, mark bool) int64 {
	if c.flags&(fInRecovery|fSACK) != fInRecovery|fSACK || c.retransOut == 0 ||
		c.flight()-c.sackedBytes-c.lostBytes > 0 {
		return 0 // originals in flight: their SACKs drive RACK
	}
	pto := int64(max(2*c.srtt, tlpMinPTO))
	if c.rtoAt != 0 && c.rtoAt-ns <= pto {
		return 0 // the RTO comes first anyway
	}
	var next int64
	for s := c.rtxq.head; s != nil && c.retransOut > 0; s = s.next {
		if s.flags&(sRetrans|sSacked) != sRetrans || s.xmits > 2 {
			// Once per segment: a second copy lost too is the RTO's, with its backoff
			// (else a dead path would see a copy every PTO, for ever).
			continue
		}
		if remaining := s.xmit + pto - ns; remaining > 0 || !mark {
			if remaining = max(remaining, 1); next == 0 || remaining < next {
				next = remaining
			}
			continue
		}
		c.t.ext.RACKLosses++
		c.markLost(s)
		c.flags |= fForceRetx // no ACK will open PRR's window for it
	}
	return next
}

// PTO bounds (RFC 8985 §7.2). WCDelAckT is "the worst-case delayed ACK timer", which the
// RFC recommends to be 200 ms; the floor is Linux's: on a sub-millisecond path 2*SRTT is
// shorter than the jitter of the ACK clock itself (a receiver that delays its ACK, an
// application that pauses), and probes would fire without any loss.
const (
	tlpWCDelAckT = 200 * time.Millisecond
	tlpMinPTO    = 10 * time.Millisecond
)

// armTLP schedules a tail loss probe (RFC 8985 §7.2): "If SRTT is available: PTO = 2 *
// SRTT; If FlightSize is equal to one segment: PTO += WCDelAckT; Else: PTO = 1 sec". And:
// "If Now + PTO > TCP_RTO_expiration(): PTO = TCP_RTO_expiration() - Now", so the probe
// goes out no later than the RTO would have fired (tlpExpired then re-arms the RTO).
func (c *PCB) armTLP(ns int64) {
	if c.flags&fSACK == 0 || c.flags&(fInRecovery|fRTORecovery) != 0 || c.rack.tlpOut ||
		c.state != StateEstablished && c.state != StateCloseWait || c.sndNxt == c.sndUna {
		c.tlpAt = 0
		return
	}
	pto := time.Second
	if c.hasRTT {
		pto = 2 * c.srtt
		if int(c.sndNxt-c.sndUna) <= c.mss {
			pto += tlpWCDelAckT
		}
		pto = max(pto, tlpMinPTO)
	}
	at := ns + int64(pto)
	if c.rtoAt != 0 && at > c.rtoAt {
		at = c.rtoAt
	}
	c.tlpAt = at
}

// tlpExpired sends the probe (RFC 8985 §7.3): new data if the windows allow, else the last
// segment again.
func (c *PCB) tlpExpired(ns int64) {
	if c.flags&fSACK == 0 || c.flags&(fInRecovery|fRTORecovery) != 0 || c.rack.tlpOut || c.sndNxt == c.sndUna {
		return
	}
	t := c.t
	unsent := int(int32(c.sndEnd - c.sndNxt))
	wndLeft := int(int32(c.sndUna + uint32(c.sndWnd) - c.sndNxt))
	sent := false
	if unsent > 0 && wndLeft >= min(unsent, c.segMSS()) {
		sent = c.sendSeg(min(unsent, c.segMSS()), false, ns, txOffload{})
		c.rack.tlpRetx = false
	}
	if !sent {
		s := c.rtxq.tail
		if s == nil || s.flags&sSacked != 0 {
			return
		}
		if !c.retransmit(s, ns) {
			return
		}
		// The probe is not a loss signal: keep it out of the retransmitted count.
		if s.flags&sRetrans != 0 {
			s.flags &^= sRetrans
			c.retransOut -= int(s.len)
		}
		s.flags |= sTLP
		c.rack.tlpRetx = true
	}
	t.ext.TLPs++
	c.rack.tlpOut = true
	c.rack.tlpEnd = c.sndNxt
	c.armRTO(ns)
}

// tlpAcked ends a TLP episode (RFC 8985 §7.4.2) on an ACK at or above TLP.end_seq: a probe
// of new data ends it; a retransmitted probe ends it without a window reduction when a
// D-SACK reports it redundant (the original arrived too) or, like Linux, on a pure
// duplicate ACK at TLP.end_seq (both arrived, no D-SACK from this receiver); an ACK above
// TLP.end_seq means the probe repaired a single loss, and the window is reduced once. An
// ACK of exactly TLP.end_seq decides nothing: it may acknowledge the original, late,
// with the D-SACK of the probe still on its way.
func (c *PCB) tlpAcked(in *segIn, ack uint32, advanced bool) {
	if !c.rack.tlpOut || seqLT(ack, c.rack.tlpEnd) {
		return
	}
	end := c.rack.tlpEnd
	switch {
	case !c.rack.tlpRetx:
	case in.opts.NumSACK > 0 && c.isDSACK(in, in.opts.SACKBlocks[0]) &&
		seqLT(in.opts.SACKBlocks[0].Left, end) && seqGEQ(in.opts.SACKBlocks[0].Right, end):
		// "If ACK has a DSACK option matching TLP.end_seq": the retransmission was redundant.
	case seqGT(ack, end):
		// "Repaired the single loss ... Invoke congestion control to lower cwnd and ssthresh".
		if c.flags&(fInRecovery|fRTORecovery) == 0 {
			now := c.t.now()
			c.cc.OnCongestion(c.flight(), now)
			c.cc.OnRecoveryExit(now)
		}
	case !advanced && in.opts.NumSACK == 0 && in.dataLen == 0:
		// A pure duplicate ACK at TLP.end_seq: the original and the probe both arrived.
	default:
		return
	}
	c.rack.tlpOut = false
}

// isDSACK reports whether b, the first SACK block of in, is a D-SACK (RFC 2883 §4: below
// SEG.ACK, or inside the second block).
func (c *PCB) isDSACK(in *segIn, b wire.SACKBlock) bool {
	return seqLEQ(b.Right, in.ack) ||
		in.opts.NumSACK > 1 && seqLEQ(in.opts.SACKBlocks[1].Left, b.Left) && seqLEQ(b.Right, in.opts.SACKBlocks[1].Right)
}

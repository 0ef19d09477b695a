package tcp

import (
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/wire"
)

// output sends what the windows allow now (lwIP tcp_output): lost segments first (RFC 6675
// NextSeg rule 1), then new data subject to the peer's window, the congestion window,
// Nagle (RFC 9293 §3.7.4) and sender SWS avoidance (§3.8.6.2.1), then a FIN, then a pure
// ACK if one is owed and nothing else carried it.
func (c *PCB) output() error {
	if c.t == nil || c.flags&fDying != 0 {
		return nil
	}
	switch c.state {
	case StateClosed, StateListen, StateSynSent, StateSynReceived:
		return nil
	case StateTimeWait:
		c.flags &^= fNeedOutput
		if c.flags&fAckNow != 0 {
			c.sendAck()
		}
		return nil
	}
	t := c.t
	ns := t.nowNs()
	c.flags &^= fNeedOutput
	// RFC 5681 §4.1: "when TCP has not received a segment for more than one retransmission
	// timeout", restart from the restart window (the controller computes it).
	if c.sndNxt == c.sndUna && c.lastSend != 0 && ns-c.lastSend > int64(c.rto) && c.sndEnd != c.sndNxt {
		c.cc.OnIdle(c.rto, t.now())
	}
	if c.lostBytes > 0 && !c.frtoHolds() {
		c.retransmitLost(ns)
	}
	c.sendNewData(ns)
	if c.frtoSent() && c.lostBytes > 0 {
		c.retransmitLost(ns) // F-RTO had no new data to send: conventional recovery
	}
	if c.flags&fAckNow != 0 {
		c.sendAck()
	}
	c.armAfterSend(ns)
	if c.flags&fNeedOutput != 0 {
		return errs.Mem
	}
	return nil
}

// finSent reports whether our FIN has been sent.
func (c *PCB) finSent() bool { return c.flags&fFinQueued != 0 && c.sndNxt == c.sndEnd+1 }

// segMSS is the payload of a full segment now: the MSS less the SACK option this segment
// would carry.
func (c *PCB) segMSS() int {
	m := c.mss
	if c.flags&fSACK != 0 && (c.nsacks > 0 || c.dsack != (wire.SACKBlock{})) {
		k := c.nsacks
		if c.dsack != (wire.SACKBlock{}) {
			k++
		}
		if c.flags&fTS != 0 {
			k = min(k, 3)
		}
		m -= 4 + 8*min(k, 4)
	}
	return max(m, 1)
}

// pipe is RFC 6675's estimate of the bytes in the network: outstanding, less SACKed and
// lost, plus retransmitted (Linux's packets_out - sacked_out - lost_out + retrans_out).
func (c *PCB) pipe() int {
	p := int(c.sndNxt-c.sndUna) - c.sackedBytes - c.lostBytes + c.retransOut - c.renoSacked*c.mss
	return max(p, 0) // renoSacked counts segments as full-sized; they may be smaller
}

// sendNewData sends new segments while the windows allow. Where the route offers GSO, a
// run of full segments the windows let go leaves as one GSO packet (gsoExtend); the send
// records stay one per segment, so that SACK, RACK, PRR and retransmission see segments.
func (c *PCB) sendNewData(ns int64) {
	room := -2 // frames the link takes now (-1: it does not say); read before the first segment
	congests := false
	var off ip.TxOffload
	offRead := false
	for {
		unsent := int(int32(c.sndEnd - c.sndNxt))
		if unsent < 0 {
			return // FIN sent
		}
		finNow := c.flags&fFinQueued != 0
		if unsent == 0 && !finNow {
			return
		}
		mss := c.segMSS()
		n := min(unsent, mss)
		if n > 0 {
			wndLeft := int(int32(c.sndUna + uint32(c.sndWnd) - c.sndNxt))
			if wndLeft < n {
				// RFC 9293 §3.8.6.2.1: send a partial segment only when "at least a
				// fraction Fs of the maximum window can be sent" (Fs = 1/2).
				if wndLeft <= 0 || wndLeft < c.maxSndWnd/2 {
					return
				}
				n = wndLeft
			}
			if !c.windowAllows(n) {
				return
			}
			if n < mss && n == unsent && !finNow {
				if c.corkHolds(ns) {
					return // TCP_CORK
				}
				if c.flags&fNoDelay == 0 && c.smallUnacked() {
					// Nagle (RFC 9293 §3.7.4) as Linux runs it, Minshall's
					// variant: hold a small tail while an earlier small segment
					// is unacknowledged (WriteMore only clears PSH, as lwIP's
					// TCP_WRITE_FLAG_MORE).
					return
				}
			}
		}
		if room == -2 {
			room, congests = c.t.ip.TxRoom(c.dst)
		}
		if room == 0 {
			c.linkFull(ns, congests)
			return
		}
		if !offRead {
			off, offRead = c.t.ip.GSO(c.dst, wire.ProtoTCP), true
		}
		tx := txOffload{partial: off.CsumPartial}
		frames := 1
		if n == mss && unsent > mss && off.GSOMax > 0 && c.gsoFits(mss, off.MTU) {
			maxData := off.GSOMax - c.ipHeaderLen() - wire.TCPMaxHeaderLen
			if room > 0 {
				maxData = min(maxData, room*mss) // the link's room counts packets on the wire
			}
			if k := c.gsoExtend(mss, unsent, maxData, finNow); k > n {
				n, tx.gso = k, mss
				frames = (n + mss - 1) / mss
			}
		}
		fin := finNow && int(c.sndEnd-c.sndNxt) == n
		if !c.sendSeg(n, fin, ns, tx) {
			return
		}
		if n%mss != 0 {
			c.corkSince = 0
			c.sndSml = c.sndNxt
		}
		if room > 0 {
			room = max(room-frames, 0)
		}
	}
}

// gsoExtend grows a full segment of new data into a GSO packet of at most maxData bytes of
// data: it adds the segments that the loop of sendNewData would send one by one now — full
// segments while the peer's window and the congestion window (or PRR) allow each, and the
// tail when neither Nagle nor TCP_CORK would hold it. It returns the data length.
func (c *PCB) gsoExtend(mss, unsent, maxData int, finNow bool) int {
	wndLeft := int(int32(c.sndUna + uint32(c.sndWnd) - c.sndNxt))
	n := mss
	for n < unsent {
		m := min(unsent-n, mss)
		if n+m > maxData || n+m > wndLeft || !c.windowAllowsMore(n+m) {
			break
		}
		if m < mss && !finNow && (c.flags&fCork != 0 || c.flags&fNoDelay == 0 && c.smallUnacked()) {
			break // the tail waits, as sendNewData would make it
		}
		n += m
	}
	return n
}

// windowAllowsMore is windowAllows for n bytes sent at once after nothing: what sending
// them segment by segment would allow, without the exemption for the first segment.
func (c *PCB) windowAllowsMore(n int) bool {
	if c.flags&(fInRecovery|fSACK) == fInRecovery|fSACK {
		return c.prrSndcnt >= n
	}
	return c.pipe()+n <= c.cc.Cwnd()
}

// gsoFits reports whether a segment of mss bytes of data, with its IP and TCP headers,
// fits mtu: else the segments would need fragments, which a GSO cut does not make, and
// TCP sends them one by one for IP to fragment (an MTU below the smallest MSS).
func (c *PCB) gsoFits(mss, mtu int) bool {
	th := wire.TCPMinHeaderLen + (c.mss - mss) // the SACK blocks segMSS made room for
	if c.flags&fTS != 0 {
		th += 12 // wire.TCPOptions' timestamps, padded
	}
	return c.ipHeaderLen()+th+mss <= mtu
}

// ipHeaderLen is the IP header length of the connection's packets.
func (c *PCB) ipHeaderLen() int {
	if c.dst.Unmap().Is4() {
		return wire.IPv4MinHeaderLen
	}
	return wire.IPv6HeaderLen
}

// linkRetry is how soon a connection with nothing in flight tries again after a full link
// queue stopped it: a link drains in microseconds to a few milliseconds.
const linkRetry = time.Millisecond

// linkFull stops sending new data because the link's transmit queue is full (as Linux's TCP
// Small Queues waits for the device rather than overflow it): a frame handed over now
// would be dropped at the flush and recovered as a loss. The ACKs of what is in flight
// resume sending; with nothing in flight a short timer does.
//
// When the link says its full queue is congestion (link.TxCongester: a WireGuard device,
// whose queue fills only behind wireguard-go's full queues), once per window of data the
// window is also reduced as for an ECN echo (RFC 3168 §6.1.2; Linux enters CWR on local
// congestion), with nothing lost or resent. Without it a sender that never sees a loss
// would keep wireguard-go's queues full, at a 64 KiB buffer per packet. On other links a
// full queue is a burst meeting a short queue, and waiting is the whole answer.
func (c *PCB) linkFull(ns int64, congests bool) {
	t := c.t
	t.ext.LinkFull++
	if congests && c.flags&(fInRecovery|fRTORecovery) == 0 && seqGEQ(c.sndUna, c.cwrEnd) && c.sndNxt != c.sndUna {
		t.ext.LinkCongestion++
		now := t.now()
		c.cc.OnCongestion(c.flight(), now)
		c.cc.OnRecoveryExit(now)
		c.cwrEnd = c.sndNxt
	}
	if c.sndNxt == c.sndUna && (c.retryAt == 0 || c.retryAt > ns+int64(linkRetry)) {
		c.retryAt = ns + int64(linkRetry)
		c.schedule()
	}
}

// sendSeg sends n new bytes at SND.NXT (with FIN if fin) and records the segment; a GSO
// packet (tx.gso) is recorded as the segments it is cut into, as far as TCP_SEG has
// records for them (the last record then holds the rest, as a record that coalesced
// segments when TCP_SEG ran out).
func (c *PCB) sendSeg(n int, fin bool, ns int64, tx txOffload) bool {
	t := c.t
	idle := c.sndNxt == c.sndUna
	s := t.newSeg()
	var merge *seg
	if s == nil {
		// TCP_SEG is exhausted: extend the last record in flight if it is a plain one,
		// else use the PCB's spare; the connection must be able to send to free memory.
		if tl := c.rtxq.tail; tl != nil && tl.end() == c.sndNxt && tl.flags&(sSYN|sFIN|sSacked|sLost|sRetrans|sEverRetx) == 0 {
			merge = tl
		} else if c.spare.flags&sSpare == 0 {
			s = &c.spare
			s.flags = sSpare
		} else {
			t.st.Memerr++
			c.flags |= fNeedOutput
			c.armRetry()
			return false
		}
	}
	h := wire.TCPRepr{SeqNum: c.sndNxt, Flags: wire.TCPFlagACK}
	end := c.sndNxt + uint32(n)
	if fin {
		h.Flags |= wire.TCPFlagFIN
	}
	if n > 0 && (end == c.sndEnd && c.flags&fMore == 0 || end == c.pushSeq) {
		h.Flags |= wire.TCPFlagPSH
	}
	if err := c.emitData(&h, n, tx); err == errs.Mem {
		if s != nil {
			t.freeSeg(s)
		}
		c.flags |= fNeedOutput
		c.armRetry()
		return false
	}
	l := int32(n)
	if fin {
		l++
	}
	if merge != nil {
		merge.len += l
		if fin {
			merge.flags |= sFIN
		}
		merge.xmit, merge.tsval = ns, h.Options.TSVal
	} else {
		s.seq, s.len = c.sndNxt, l
		if fin {
			s.flags |= sFIN
		}
		s.xmits, s.xmit, s.tsval = 1, ns, h.Options.TSVal
		c.rtxq.push(s)
		for r := s; tx.gso > 0 && int(r.len) > tx.gso && (r.flags&sFIN == 0 || int(r.len)-1 > tx.gso); r = r.next {
			if !c.splitSeg(r, tx.gso) {
				break
			}
		}
	}
	c.sndNxt += uint32(l)
	c.prrSent(int(l))
	for c.pos != nil && !seqLT(c.sndNxt, c.pos.seq+uint32(c.pos.len)) {
		c.pos = c.pos.next
	}
	c.lastSend = ns
	if c.rtoAt == 0 || idle {
		// RFC 6298 §5.1: start the timer if it is not running; with nothing in flight
		// before this segment, no deadline that stands is this segment's.
		c.armRTO(ns)
	}
	return true
}

// smallUnacked reports whether a partial segment sent earlier is unacknowledged (Linux
// tcp_minshall_check).
func (c *PCB) smallUnacked() bool {
	return seqGT(c.sndSml, c.sndUna) && seqLEQ(c.sndSml, c.sndNxt)
}

// windowAllows reports whether n more bytes may be sent: in SACK fast recovery, PRR's
// sndcnt (RFC 6937 §3: "prr_out ... strictly less than or equal to sndcnt"); otherwise
// RFC 6675's "cwnd - pipe >= 1 SMSS" (a segment is let go when nothing is in the network).
func (c *PCB) windowAllows(n int) bool {
	if c.flags&(fInRecovery|fSACK) == fInRecovery|fSACK {
		return c.prrSndcnt >= n
	}
	pipe := c.pipe()
	return pipe <= 0 || pipe+n <= c.cc.Cwnd()
}

// prrSent accounts n bytes sent during recovery: "On any data transmission or
// retransmission: prr_out += (data sent)" (RFC 6937 §3).
func (c *PCB) prrSent(n int) {
	if c.flags&fInRecovery != 0 {
		c.prrOut += n
		c.prrSndcnt -= n
	}
}

// retransmitLost retransmits segments marked lost, in order, while pipe allows (RFC 6675
// §5 step (C): "the sender MUST transmit ... while cwnd - pipe >= 1 SMSS").
func (c *PCB) retransmitLost(ns int64) {
	for s := c.rtxq.head; s != nil && c.lostBytes > 0; s = s.next {
		if s.flags&(sLost|sSacked|sRetrans) != sLost {
			continue
		}
		// RFC 5681 §3.2 step 4 / RFC 6675 §5 step (4.2): the first retransmission of a
		// recovery episode goes out whatever pipe says.
		if c.flags&fForceRetx == 0 && !c.windowAllows(int(s.len)) {
			return
		}
		if !c.retransmit(s, ns) {
			return
		}
		c.flags &^= fForceRetx
	}
}

// retransmit sends segment s again. False when memory ran out.
func (c *PCB) retransmit(s *seg, ns int64) bool {
	t := c.t
	if s.flags&sSYN != 0 {
		c.sendSYN(s)
		return true
	}
	n := int(s.len)
	fin := s.flags&sFIN != 0
	if fin {
		n--
	}
	if m := c.segMSS(); n > m {
		// The path MTU shrank since s was sent, or this copy carries SACK blocks the
		// original did not, or s coalesces several segments (TCP_SEG ran out): split it
		// so each piece fits. Without a record to split into, send the first piece only;
		// the rest goes again after the partial acknowledgment or the next timeout.
		c.splitSeg(s, m)
		n, fin = m, false
	}
	h := wire.TCPRepr{SeqNum: s.seq, Flags: wire.TCPFlagACK}
	if fin {
		h.Flags |= wire.TCPFlagFIN
	}
	if n > 0 && s.seq+uint32(n) == c.sndEnd {
		h.Flags |= wire.TCPFlagPSH
	}
	if err := c.emit(&h, n); err == errs.Mem {
		c.flags |= fNeedOutput
		c.armRetry()
		return false
	}
	if c.stuckSince == 0 {
		// Linux's retrans_stamp, where TCP_USER_TIMEOUT counts from: the departure of
		// the first segment retransmitted (a tail loss probe's too).
		c.stuckSince = max(s.xmit, 1)
	}
	if s.flags&sRetrans == 0 {
		s.flags |= sRetrans
		c.retransOut += int(s.len)
	}
	s.flags |= sEverRetx
	c.prrSent(n)
	s.xmits++
	s.xmit, s.tsval = ns, h.Options.TSVal
	if c.flags&fUndo != 0 && c.flags&(fInRecovery|fRTORecovery) != 0 {
		// A retransmission of the episode (a tail loss probe is not one: RFC 8985 §7.4
		// judges it on its own).
		c.undoRetrans++
		c.logRetx(s.seq, s.seq+uint32(n))
		if !c.retransTSSet {
			c.retransTS, c.retransTSSet = h.Options.TSVal, true
		}
	}
	t.ext.Retransmits++
	if c.flags&fInRecovery != 0 {
		t.ext.FastRetransmits++
	}
	c.rtxCount++
	c.lastSend = ns
	if c.rtoAt == 0 || s == c.rtxq.head {
		// Linux re-arms the RTO when the head is retransmitted: it waits for this copy.
		c.armRTO(ns)
	}
	return true
}

// splitSeg cuts rtxq record s after n bytes of data, keeping its flags on both pieces
// (FIN only on the second). False when TCP_SEG is exhausted.
func (c *PCB) splitSeg(s *seg, n int) bool {
	r := c.t.newSeg()
	if r == nil {
		return false
	}
	*r = *s
	r.flags &^= sSpare
	r.seq = s.seq + uint32(n)
	r.len = s.len - int32(n)
	s.len = int32(n)
	s.flags &^= sFIN
	r.next = s.next
	s.next = r
	if c.rtxq.tail == s {
		c.rtxq.tail = r
	}
	c.rtxq.n++
	return true
}

// armAfterSend keeps the retransmission-side timers consistent after output: RTO while
// data is outstanding (RFC 6298 §5.1), a tail loss probe (RFC 8985 §7.2), or the persist
// timer when the peer's window blocks queued data with nothing in flight (RFC 9293
// §3.8.6.1).
func (c *PCB) armAfterSend(ns int64) {
	if c.sndNxt == c.sndUna {
		c.rtoAt, c.tlpAt = 0, 0
		if c.sndEnd != c.sndNxt || c.flags&fFinQueued != 0 && !c.finSent() {
			c.armPersist(ns)
		}
	} else {
		if c.persistN > 0 || c.persistAt != 0 {
			c.stuckSince = 0 // a zero-window wait ended
		}
		c.persistN, c.persistAt = 0, 0
		if c.rtoAt == 0 {
			c.armRTO(ns)
		}
		c.armTLP(ns)
		if c.retransOut > 0 && c.flags&fInRecovery != 0 {
			if r := c.lostRetxCheck(ns, false); r > 0 && (c.reoAt == 0 || ns+r < c.reoAt) {
				c.reoAt = ns + r
			}
		}
	}
	c.schedule()
}

// rtoDuration is the current RTO with backoff (RFC 6298 §5.5), bounded by TCPMaxRTO.
func (c *PCB) rtoDuration() time.Duration {
	r := c.rto
	for i := 0; i < c.nrtx && r < c.t.opts.TCPMaxRTO; i++ {
		r *= 2
	}
	return min(r, c.t.opts.TCPMaxRTO)
}

// armRTO (re)starts the retransmission timer.
func (c *PCB) armRTO(ns int64) {
	c.rtoAt = ns + int64(c.rtoDuration())
	if c.halfOpen() {
		// A half-open connection is given up at TCPSynRcvdTimeout, not after a backed-off RTO.
		c.rtoAt = min(c.rtoAt, c.synAt+int64(c.t.opts.TCPSynRcvdTimeout))
	}
	c.clampToUserTimeout(&c.rtoAt)
	c.schedule()
}

// armRetry makes the timer retry an output that failed for memory, TCPMinRTO from now:
// memory comes back as acknowledgments free it. The retry has a deadline of its own
// because output with nothing in flight clears the retransmission timer's.
func (c *PCB) armRetry() {
	if c.retryAt == 0 {
		c.retryAt = c.t.nowNs() + int64(c.t.opts.TCPMinRTO)
		c.schedule()
	}
}

package tcp

import (
	"fmt"
	"net/netip"
	"strings"
)

// The invariant checker: the rules a PCB keeps between two events, checked after every
// segment (and batch end, and ICMP error) a connection processes and after every run of its
// timer, for the connection touched, plus the counts Proto keeps over all of them.
//
// It is off in production: the hooks cost one comparison of a package variable with nil.
// Tests turn it on (invariant_test.go for package tcp, conformance's invariant_hook_test.go
// for the conformance suite) with SetInvariantCheck. A failure reports which rule broke and
// the connection as Info and its queues, timers and scoreboard print it. The checker
// allocates nothing while every rule holds, so AllocsPerRun tests keep measuring the stack.

// invariantFail receives each violation; nil turns the checker off.
var invariantFail func(msg string)

// SetInvariantCheck turns the invariant checker on (fn receives a description of each
// violation; fn may panic) or off (nil). For tests only: it applies to every Proto of the
// process, and must be called before any stack runs (an init function of a test file).
func SetInvariantCheck(fn func(msg string)) { invariantFail = fn }

// checkPCB checks c after an event that processed it (c may have been freed by it).
func (t *Proto) checkPCB(c *PCB) {
	if invariantFail != nil {
		t.checkTouched(c)
	}
}

// checkTimer checks c after a run of its timer: besides checkPCB's rules, no deadline may
// still be due, or the Timeout would fire again at once, for ever.
func (t *Proto) checkTimer(c *PCB) {
	if invariantFail != nil {
		t.checkTimerRun(c)
	}
}

func (t *Proto) checkTimerRun(c *PCB) {
	if c.t == t {
		now := t.nowNs()
		for _, d := range c.deadlines() {
			if d != 0 && d <= now {
				invariantFail(c.invariantReport("a deadline is still due after the timer ran (the timer spins)"))
				return
			}
		}
	}
	t.checkTouched(c)
}

// checkInput checks the connection of segment in after its processing: the PCB it
// reached, or the one a listener made for it.
func (t *Proto) checkInput(in *segIn) {
	if invariantFail != nil {
		t.checkTouched(t.findConn(in.hdr.Dst, in.hdr.Src, in.dstPort, in.srcPort))
	}
}

// findConn is lookupConn without its side effects (demux cache, counters).
func (t *Proto) findConn(laddr, raddr netip.Addr, lport, rport uint16) *PCB {
	h := t.hash4(laddr, raddr, lport, rport)
	for c := t.conns[h&t.connMask]; c != nil; c = c.hnext {
		if c.hash == h && c.lport == lport && c.rport == rport && c.raddr == raddr && c.laddr == laddr {
			return c
		}
	}
	return nil
}

func (t *Proto) checkTouched(c *PCB) {
	if c != nil && c.t == t {
		if rule := c.violation(); rule != "" {
			invariantFail(c.invariantReport(rule))
			return
		}
	}
	if rule := t.violation(); rule != "" {
		invariantFail("tcp invariant: " + rule + "\n" + t.dumpPCBs())
	}
}

// violation returns the first rule of Proto's own bookkeeping that does not hold, or "".
func (t *Proto) violation() string {
	n, rx, snd, prom, tw, half, cold, undecided := 0, 0, 0, 0, 0, 0, 0, 0
	var prev *PCB
	for c := t.all.head; c != nil; c = c.all.next {
		if c.all.prev != prev {
			return "Proto.all: broken back link"
		}
		prev = c
		if c.t != t {
			return "Proto.all holds a PCB of another Proto or a freed one"
		}
		n++
		if c.pcbCold != nil {
			cold++
		}
		if c.rcvUnread > 0 {
			rx++
		}
		if c.pcbCold != nil && c.sndBufUsed > 0 {
			snd++
		}
		prom += c.rxProm
		if c.state == StateTimeWait {
			tw++
		}
		if c.halfOpen() {
			half++
		}
		if c.flags&fDeferred != 0 {
			undecided++
		}
	}
	switch {
	case n != t.all.n || prev != t.all.tail:
		return "Proto.all: count or tail wrong"
	case n != t.pcbs.Stats().Used:
		return "Proto.all does not hold every TCP_PCB in use"
	case cold != t.colds.Stats().Used:
		return "the cold parts in use are not those of the PCBs in Proto.all"
	case rx != t.rxHolders:
		return "rxHolders is not the number of PCBs with rcvUnread > 0"
	case snd != t.sndHolders:
		return "sndHolders is not the number of PCBs with sndBufUsed > 0"
	case prom != t.rxPromised:
		return "rxPromised is not the sum of the PCBs' rxProm"
	case tw != t.timeWait.n:
		return "Proto.timeWait does not hold exactly the TIME-WAIT PCBs"
	case half != t.halfOpen.n:
		return "Proto.halfOpen does not hold exactly the listeners' SYN-RECEIVED PCBs"
	case undecided != t.deferred.n:
		return "Proto.deferred does not hold exactly the undecided intercepted PCBs"
	case t.icept != nil && (t.icept.t != t || !t.icept.intercept):
		return "Proto.icept is not this Proto's intercept listener"
	}
	for c := t.deferred.head; c != nil; c = c.tw.next {
		if c.flags&fDeferred == 0 || c.state != StateSynReceived || c.listener == nil || !c.listener.deferred ||
			c.flags&fBacklog == 0 {
			return "Proto.deferred holds a PCB that is not an undecided SYN in its deferred listener's backlog"
		}
	}
	for c := t.timeWait.head; c != nil; c = c.tw.next {
		if c.state != StateTimeWait {
			return "Proto.timeWait holds a PCB not in TIME-WAIT"
		}
	}
	for c := t.halfOpen.head; c != nil; c = c.tw.next {
		if !c.halfOpen() {
			return "Proto.halfOpen holds a PCB that is not half-open"
		}
	}
	pending := func(l *Listener) bool {
		k := 0
		for c := t.all.head; c != nil; c = c.all.next {
			if c.listener == l && c.flags&fBacklog != 0 {
				k++
			}
		}
		return k == l.pending
	}
	for _, l := range t.lbuckets {
		for ; l != nil; l = l.hnext {
			if !pending(l) {
				return "Listener.pending is not the number of its PCBs counted in the backlog"
			}
		}
	}
	if t.icept != nil && !pending(t.icept) {
		return "the intercept listener's pending is not the number of its PCBs counted in the backlog"
	}
	return ""
}

// violation returns the first rule c breaks, or "". The rules come from the fields'
// comments (pcb.go, seg.go) and from what the code that moves them keeps.
func (c *PCB) violation() string {
	if c.pcbCold == nil && c.t != nil {
		// Parked: its own rules, then the others with a zero cold part (what it would
		// get back), lent from the pool for the check.
		if r := c.parkedViolation(); r != "" {
			return r
		}
		c.pcbCold = c.t.colds.Get()
		defer c.dropCold()
	}
	if r := c.stateViolation(); r != "" {
		return r
	}
	if r := c.sendViolation(); r != "" {
		return r
	}
	if r := c.rtxViolation(); r != "" {
		return r
	}
	if r := c.recvViolation(); r != "" {
		return r
	}
	return c.timerViolation()
}

// parkedViolation returns the first rule a parked connection (no cold part) breaks, or "".
func (c *PCB) parkedViolation() string {
	switch {
	case c.busy != 0:
		return "parked inside an entry point"
	case !c.synchronized() && c.flags&fDeferred == 0:
		return "parked before the connection is synchronized (an undecided SYN excepted)"
	case c.sndUna != c.sndNxt:
		return "parked with data queued or in flight"
	case c.flags&(fInRecovery|fRTORecovery|fUndo|fAckNow|fAckBatch|fNeedOutput) != 0:
		return "parked with recovery, undo or output pending"
	case c.parkAt != 0:
		return "parked with parkAt armed"
	}
	return ""
}

func (c *PCB) stateViolation() string {
	s := c.state
	switch {
	case s > StateTimeWait:
		return "state out of range"
	case s == StateListen:
		return "a PCB in LISTEN (listeners are Listener objects)"
	case c.flags&fDying != 0:
		return "fDying set outside abandon"
	case (s != StateClosed) != (c.flags&fHashed != 0):
		return "in the connection hash iff not CLOSED"
	case c.flags&fInRecovery != 0 && c.flags&fRTORecovery != 0:
		return "fast recovery and RTO recovery at once"
	case c.flags&(fInRecovery|fRTORecovery) != 0 && !c.synchronized():
		return "loss recovery before the connection is synchronized"
	case c.frto != frtoOff && c.flags&fRTORecovery == 0:
		return "F-RTO outside RTO recovery"
	case c.flags&fAppClosed != 0 && (c.recvFn != nil || c.sentFn != nil || c.errFn != nil || c.pollFn != nil || c.connFn != nil || c.pollAt != 0):
		return "Close called but callbacks or the poll timer remain"
	case c.sndBufUsed < 0 || c.rcvUnread < 0 || c.ooPbufs < 0 || c.nrtx < 0 || c.dupAcks < 0 || c.keepSent < 0 || c.segsUnacked < 0:
		return "a count is negative"
	case c.persistN < 0 || c.persistN > 16:
		return "persist backoff exponent out of [0, 16]"
	case s != StateClosed && c.mss <= 0:
		return "no send MSS"
	case c.sndWnd < 0 || c.sndWnd > 0xffff<<14:
		return "SND.WND out of range"
	case c.synchronized() && c.sndWnd > c.maxSndWnd:
		return "SND.WND above the largest window the peer offered (maxSndWnd)"
	}
	finRcvd := s == StateCloseWait || s == StateClosing || s == StateLastAck || s == StateTimeWait
	if finRcvd != (c.flags&fFinRcvd != 0) {
		return "fFinRcvd iff CLOSE-WAIT, CLOSING, LAST-ACK or TIME-WAIT"
	}
	switch s {
	case StateFinWait1, StateFinWait2, StateClosing, StateLastAck, StateTimeWait:
		if c.flags&fFinQueued == 0 {
			return "a state past our CLOSE without fFinQueued"
		}
	case StateSynReceived:
	default:
		if c.flags&fFinQueued != 0 {
			return "fFinQueued in a state before our CLOSE"
		}
	}
	switch s {
	case StateClosed:
		if c.sndq.head != nil || c.rtxq.head != nil || c.ooseq.head != nil || c.sndBufUsed != 0 || c.ooPbufs != 0 || c.pos != nil {
			return "a CLOSED PCB holds data"
		}
	case StateSynSent, StateSynReceived:
		if c.flags&fDeferred != 0 {
			if c.sndUna != c.iss || c.sndNxt != c.iss || c.rcvNxt != c.irs+1 || c.rtxq.head != nil {
				return "undecided SYN: something sent (SND.NXT != ISS, a queued SYN-ACK) or RCV.NXT != IRS+1"
			}
			break
		}
		if c.sndUna != c.iss || c.sndNxt != c.iss+1 {
			return "SYN-SENT/SYN-RECEIVED: SND.UNA != ISS or SND.NXT != ISS+1"
		}
		if s == StateSynReceived && c.rcvNxt != c.irs+1 {
			return "SYN-RECEIVED: RCV.NXT != IRS+1"
		}
	case StateFinWait2, StateTimeWait:
		if c.sndUna != c.sndEnd+1 || c.sndNxt != c.sndUna {
			return "FIN-WAIT-2/TIME-WAIT: our FIN (at sndEnd) is not exactly acknowledged"
		}
	case StateFinWait1, StateClosing, StateLastAck:
		if !seqLEQ(c.sndUna, c.sndEnd) {
			return "FIN-WAIT-1/CLOSING/LAST-ACK: our FIN is acknowledged"
		}
	}
	if s == StateTimeWait {
		if c.sndq.head != nil || c.rtxq.head != nil || c.ooseq.head != nil || c.sndBufUsed != 0 || c.ooPbufs != 0 ||
			c.pos != nil || c.sackedBytes != 0 || c.lostBytes != 0 || c.retransOut != 0 {
			return "TIME-WAIT holds buffers or scoreboard counts"
		}
	}
	return ""
}

// sendViolation checks the send sequence space and the send queue (sndq): application data
// from SND.UNA (ISS+1 before the SYN is acknowledged) to sndEnd, one record per pbuf, the
// FIN at sndEnd, and pos the record holding SND.NXT.
func (c *PCB) sendViolation() string {
	if c.state == StateClosed {
		return ""
	}
	if !seqLEQ(c.sndUna, c.sndNxt) {
		return "SND.UNA > SND.NXT"
	}
	limit := c.sndEnd
	if c.flags&fFinQueued != 0 {
		limit++
	}
	if !seqLEQ(c.sndNxt, limit) {
		return "SND.NXT beyond sndEnd (+1 for a queued FIN)"
	}
	base := c.sndUna
	if !c.synchronized() {
		base = c.iss + 1
	}
	if c.flags&fFinQueued != 0 && c.sndUna == c.sndEnd+1 {
		if c.sndq.head != nil || c.sndBufUsed != 0 {
			return "FIN acknowledged but the send queue holds data"
		}
		return ""
	}
	if int(int32(c.sndEnd-base)) != c.sndBufUsed {
		return "sndEnd - SND.UNA != sndBufUsed"
	}
	n, bytes := 0, 0
	var pos *seg
	next := base
	for s := c.sndq.head; s != nil; s = s.next {
		n++
		if s.seq != next {
			return "send queue records not contiguous from SND.UNA"
		}
		if s.len <= 0 || s.p == nil || s.p.Next() != nil || s.off < 0 || s.off+s.len > s.cap || int(s.cap) > s.p.Len() {
			return "send queue record malformed (len, pbuf, off/cap)"
		}
		if s.flags&^(sOwned|sPush) != 0 {
			return "send queue record with retransmission-queue flags"
		}
		if seqLEQ(s.seq, c.sndNxt) && seqLT(c.sndNxt, s.end()) {
			pos = s
		}
		bytes += int(s.len)
		next = s.end()
		if s.next == nil && s != c.sndq.tail {
			return "send queue tail pointer wrong"
		}
	}
	if n != c.sndq.n {
		return "send queue count wrong"
	}
	if bytes != c.sndBufUsed {
		return "send queue bytes != sndBufUsed"
	}
	if next != c.sndEnd {
		return "send queue does not end at sndEnd"
	}
	if c.pos != pos {
		return "pos is not the send queue record holding SND.NXT"
	}
	return ""
}

// rtxViolation checks the retransmission queue (rtxq): one record per segment sent and
// not acknowledged, exactly covering SND.UNA..SND.NXT, and the SACK scoreboard counts kept
// beside it.
func (c *PCB) rtxViolation() string {
	if c.state == StateClosed {
		return ""
	}
	if c.rtxq.head == nil {
		if c.sndNxt != c.sndUna && c.synchronized() {
			return "data outstanding but the retransmission queue is empty"
		}
		// SYN-SENT/SYN-RECEIVED: queueSYN found no record; the timer retries.
	} else if c.rtxq.head.seq != c.sndUna {
		return "retransmission queue does not start at SND.UNA"
	}
	n, sacked, lost, retrans, spare := 0, 0, 0, 0, 0
	var highSacked uint32
	hint := c.rack.hint == nil
	next := c.sndUna
	for s := c.rtxq.head; s != nil; s = s.next {
		n++
		if s.seq != next {
			return "retransmission queue records not contiguous"
		}
		if s.len <= 0 || s.p != nil || s.xmits == 0 {
			return "retransmission queue record malformed (len, pbuf, xmits)"
		}
		if s.flags&(sOwned|sPush) != 0 {
			return "retransmission queue record with send-queue flags"
		}
		if s.flags&sSYN != 0 && (s != c.rtxq.head || s.seq != c.iss || s.len != 1 || c.synchronized()) {
			return "SYN record other than ISS at the head before synchronization"
		}
		if s.flags&sFIN != 0 && (s.next != nil || s.end() != c.sndEnd+1 || c.flags&fFinQueued == 0) {
			return "FIN record other than the last, ending at sndEnd+1"
		}
		if s.flags&sSpare != 0 {
			spare++
			if s != &c.spare {
				return "sSpare on a record that is not the PCB's spare"
			}
		}
		if s == c.rack.hint {
			hint = true
		}
		switch {
		case s.flags&sSacked != 0:
			if s.flags&(sLost|sRetrans) != 0 {
				return "a SACKed record is also marked lost or retransmitted"
			}
			sacked += int(s.len)
			if sacked == int(s.len) || seqGT(s.end(), highSacked) {
				highSacked = s.end()
			}
		default:
			if s.flags&sRetrans != 0 && s.flags&sLost == 0 {
				return "a record retransmitted in recovery (sRetrans) is not marked lost"
			}
			if s.flags&sLost != 0 {
				lost += int(s.len)
			}
			if s.flags&sRetrans != 0 {
				retrans += int(s.len)
			}
		}
		next = s.end()
		if s.next == nil && s != c.rtxq.tail {
			return "retransmission queue tail pointer wrong"
		}
	}
	switch {
	case n != c.rtxq.n:
		return "retransmission queue count wrong"
	case c.rtxq.head != nil && next != c.sndNxt:
		return "retransmission queue does not end at SND.NXT"
	case sacked != c.sackedBytes:
		return "sackedBytes != bytes of the records marked SACKed"
	case lost != c.lostBytes:
		return "lostBytes != bytes of the records marked lost"
	case retrans != c.retransOut:
		return "retransOut != bytes of the records marked retransmitted"
	case sacked > 0 && highSacked != c.highSacked:
		return "highSacked is not the end of the highest SACKed record"
	case (spare != 0) != (c.spare.flags&sSpare != 0):
		return "the PCB's spare record is in use but not in the retransmission queue"
	case !hint:
		return "the SACK walking hint (rack.hint) is not a retransmission queue record"
	case c.flags&fSACK == 0 && (c.sackedBytes != 0 || c.rack.hint != nil):
		return "SACK scoreboard without SACK"
	case c.flags&fSACK != 0 && c.renoSacked != 0:
		return "renoSacked (duplicate ACKs without SACK) with SACK"
	case c.renoSacked < 0:
		return "renoSacked negative"
	case c.renoSacked > max(c.rtxq.n-1, 0):
		return "renoSacked counts more segments than are outstanding beyond the first"
	}
	if p := c.pipe(); p > c.flight() || p < 0 {
		return "pipe outside [0, FlightSize]"
	}
	return ""
}

// recvViolation checks the receive sequence space and the out-of-order queue (ooseq).
func (c *PCB) recvViolation() string {
	if !c.synchronized() {
		if c.ooseq.head != nil || c.nsacks != 0 {
			return "out-of-order data before the connection is synchronized"
		}
		return ""
	}
	adv := c.rcvAdv
	if c.flags&fFinRcvd != 0 {
		adv++ // a FIN is accepted at the edge of a closed window
	}
	if !seqLEQ(c.rcvNxt, adv) {
		return "RCV.NXT beyond the advertised window's right edge (rcvAdv)"
	}
	if int64(int32(c.rcvAdv-c.rcvNxt)) > int64(0xffff)<<c.rcvScale {
		return "advertised window larger than the window field can say"
	}
	if p := int(int32(c.rcvAdv - c.rcvNxt)); c.rcvUnread > 0 && p > 0 && p <= 1<<30 && c.rxProm != p ||
		c.rcvUnread == 0 && c.rxProm != 0 {
		return "rxProm is not the window promised (rcvAdv - RCV.NXT while data is unread)"
	}
	if c.flags&fFinRcvd != 0 && c.ooseq.head != nil {
		return "out-of-order data kept after the FIN (nothing follows a FIN)"
	}
	n, pbufs := 0, 0
	var prev *seg
	for s := c.ooseq.head; s != nil; s = s.next {
		n++
		dl := s.dataLen()
		if s.len <= 0 || dl < 0 || s.flags&^sFIN != 0 {
			return "out-of-order record malformed (len, flags)"
		}
		if dl == 0 && s.p != nil || dl > 0 && (s.p == nil || s.p.TotLen() != dl) {
			return "out-of-order record's pbuf does not hold its data"
		}
		if !seqGT(s.seq, c.rcvNxt) {
			return "out-of-order record at or below RCV.NXT"
		}
		if seqGT(s.seq+uint32(dl), c.rcvAdv) {
			return "out-of-order data beyond the advertised window"
		}
		if prev != nil && seqLT(s.seq, prev.seq+uint32(prev.dataLen())) {
			return "out-of-order queue unsorted or overlapping"
		}
		if s.p != nil {
			pbufs += countPbufs(s.p)
		}
		prev = s
		if s.next == nil && s != c.ooseq.tail {
			return "out-of-order queue tail pointer wrong"
		}
	}
	switch {
	case n != c.ooseq.n:
		return "out-of-order queue count wrong"
	case pbufs != c.ooPbufs:
		return "ooPbufs != pbufs of the out-of-order queue"
	case c.nsacks < 0 || c.nsacks > len(c.sacks):
		return "nsacks out of range"
	case c.nsacks > 0 && c.flags&fSACK == 0:
		return "SACK blocks to report without SACK"
	case c.nsacks > 0 && c.ooseq.head == nil && c.state != StateTimeWait:
		return "SACK blocks to report with an empty out-of-order queue"
	}
	for i := 0; i < c.nsacks; i++ {
		b := c.sacks[i]
		if !seqLT(b.Left, b.Right) || seqLT(b.Left, c.rcvNxt) && c.flags&fFinRcvd == 0 || seqGT(b.Right, c.rcvAdv) {
			return "a SACK block to report is empty or outside (RCV.NXT, rcvAdv]"
		}
	}
	return ""
}

// timerViolation checks the deadlines against what the connection waits for (timers.go).
func (c *PCB) timerViolation() string {
	next := int64(0)
	for _, d := range c.deadlines() {
		if d < 0 {
			return "a negative deadline"
		}
		if d != 0 && (next == 0 || d < next) {
			next = d
		}
	}
	if next != 0 && (!c.tmo.Pending() || c.tmoAt > next) {
		return "the Timeout is not scheduled by the earliest deadline"
	}
	s := c.state
	outstanding := c.sndNxt != c.sndUna
	switch {
	case s == StateTimeWait:
		if c.closeAt == 0 {
			return "TIME-WAIT without its 2 MSL timeout (closeAt)"
		}
		if c.rtoAt != 0 || c.persistAt != 0 || c.tlpAt != 0 || c.reoAt != 0 || c.delackAt != 0 || c.keepAt != 0 ||
			c.retryAt != 0 && c.flags&fNeedOutput == 0 || c.pollAt != 0 && c.pollFn == nil {
			return "TIME-WAIT with a timer other than closeAt (retryAt only to retry an ACK)"
		}
		return ""
	case s == StateClosed:
		if c.rtoAt != 0 || c.persistAt != 0 || c.tlpAt != 0 || c.reoAt != 0 || c.closeAt != 0 || c.retryAt != 0 {
			return "CLOSED with a connection timer"
		}
		return ""
	case c.flags&fDeferred != 0:
		if c.closeAt == 0 || c.rtoAt != 0 || c.delackAt != 0 || c.keepAt != 0 {
			return "undecided SYN without its deadline (closeAt) or with a timer of a connection"
		}
		return ""
	case c.closeAt != 0 && s != StateFinWait2:
		return "closeAt outside TIME-WAIT and FIN-WAIT-2"
	case s == StateFinWait2 && c.flags&fAppClosed != 0 && c.closeAt == 0:
		return "orphaned FIN-WAIT-2 without its timeout (closeAt)"
	case outstanding && c.rtoAt == 0 && c.tlpAt == 0:
		return "data outstanding (SND.NXT != SND.UNA) without the retransmission timer or a TLP"
	case outstanding && c.persistAt != 0:
		return "persist timer armed while data is outstanding"
	case !outstanding && (c.tlpAt != 0 || c.reoAt != 0):
		return "TLP or RACK reordering timer armed with nothing outstanding"
	}
	if !c.synchronized() || outstanding {
		return ""
	}
	unsent := int(int32(c.sndEnd - c.sndNxt))
	wndLeft := int(int32(c.sndUna + uint32(c.sndWnd) - c.sndNxt))
	if unsent > 0 && wndLeft < min(unsent, c.segMSS()) && c.persistAt == 0 && c.retryAt == 0 {
		return "unsent data held by the peer's window with nothing in flight, and no persist timer"
	}
	return ""
}

// invariantReport describes a violation: the rule, the connection, and what it holds.
func (c *PCB) invariantReport(rule string) string {
	t := c.t
	if c.pcbCold == nil {
		c.pcbCold = t.colds.Get() // parked: report a zero cold part
		defer c.dropCold()
	}
	now := t.nowNs()
	i := c.Info()
	i.Timers = c.timersString(now)
	var b strings.Builder
	fmt.Fprintf(&b, "tcp invariant: %s\n  %v\n", rule, i)
	fmt.Fprintf(&b, "  iss=%d irs=%d snd.end=%d fin=%v snd.wl1=%d snd.wl2=%d max.snd.wnd=%d rcv.adv=%d rcv.buf=%d flags=%#x now=%d tmo.pending=%v tmoAt=%d\n",
		c.iss, c.irs, c.sndEnd, c.flags&fFinQueued != 0, c.sndWl1, c.sndWl2, c.maxSndWnd, c.rcvAdv, c.rcvBuf,
		uint32(c.flags), now, c.tmo.Pending(), c.tmoAt)
	fmt.Fprintf(&b, "  deadlines rto=%d persist=%d tlp=%d reo=%d delack=%d keep=%d poll=%d close=%d retry=%d\n",
		c.rtoAt, c.persistAt, c.tlpAt, c.reoAt, c.delackAt, c.keepAt, c.pollAt, c.closeAt, c.retryAt)
	fmt.Fprintf(&b, "  sndBufUsed=%d sacked=%d lost=%d retransOut=%d renoSacked=%d highSacked=%d pipe=%d dupAcks=%d nrtx=%d persistN=%d ooPbufs=%d rxProm=%d nsacks=%d sacks=%v\n",
		c.sndBufUsed, c.sackedBytes, c.lostBytes, c.retransOut, c.renoSacked, c.highSacked, c.pipe(), c.dupAcks,
		c.nrtx, c.persistN, c.ooPbufs, c.rxProm, c.nsacks, c.sacks[:max(0, min(c.nsacks, len(c.sacks)))])
	dump := func(name string, q *segQueue) {
		fmt.Fprintf(&b, "  %s (n=%d):", name, q.n)
		k := 0
		for s := q.head; s != nil && k < 64; s = s.next {
			fmt.Fprintf(&b, " [%d+%d f=%#x x=%d]", s.seq, s.len, uint16(s.flags), s.xmits)
			k++
		}
		b.WriteByte('\n')
	}
	dump("sndq", &c.sndq)
	dump("rtxq", &c.rtxq)
	dump("ooseq", &c.ooseq)
	if c.pos != nil {
		fmt.Fprintf(&b, "  pos=[%d+%d]\n", c.pos.seq, c.pos.len)
	}
	return b.String()
}

// dumpPCBs lists every connection of t, for a violation of Proto's bookkeeping.
func (t *Proto) dumpPCBs() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  rxHolders=%d sndHolders=%d rxPromised=%d timeWait=%d halfOpen=%d all=%d\n",
		t.rxHolders, t.sndHolders, t.rxPromised, t.timeWait.n, t.halfOpen.n, t.all.n)
	now := t.nowNs()
	for c := t.all.head; c != nil && c.t == t; c = c.all.next {
		i := c.Info()
		i.Timers = c.timersString(now)
		fmt.Fprintf(&b, "  %v rxProm=%d\n", i, c.rxProm)
	}
	return b.String()
}

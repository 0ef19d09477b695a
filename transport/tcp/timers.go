package tcp

import (
	"math"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/wire"
)

// Each PCB has one clock.Timeout. The deadlines of its timers (retransmission/persist,
// tail loss probe, RACK reordering, delayed ACK, keepalive, poll, TIME-WAIT) are kept as
// numbers; the Timeout is scheduled for the earliest. Scheduling is lazy: a deadline that
// moves later (the RTO restarted by every ACK) leaves the Timeout where it is, and when it
// fires early it just reschedules. An idle connection without keepalive or poll has no
// deadline and nothing scheduled.

// schedule makes the Timeout fire no later than the earliest deadline.
func (c *PCB) schedule() {
	t := c.t
	if t == nil {
		return
	}
	next := int64(math.MaxInt64)
	for _, d := range c.deadlines() {
		if d != 0 && d < next {
			next = d
		}
	}
	if next == math.MaxInt64 {
		// Nothing due: a pending Timeout is left to fire once and find nothing (cheaper
		// than cancelling and re-arming it around every idle moment of a busy flow).
		return
	}
	if c.tmo.Pending() && c.tmoAt <= next {
		return
	}
	c.tmoAt = next
	t.timers.Schedule(&c.tmo, time.Duration(next-t.nowNs()))
}

// deadlines are c's timers' deadlines; those of a sending connection are in its cold part
// (zero while parked).
func (c *PCB) deadlines() [10]int64 {
	d := [...]int64{0, 0, 0, 0, c.delackAt, c.keepAt, c.pollAt, c.closeAt, 0, c.parkAt}
	if k := c.pcbCold; k != nil {
		d[0], d[1], d[2], d[3], d[8] = k.rtoAt, k.persistAt, k.tlpAt, k.reoAt, k.retryAt
	}
	return d
}

// onTimer runs in core context when the Timeout falls due.
func (c *PCB) onTimer() {
	t := c.t
	if t == nil || c.flags&fDying != 0 {
		return
	}
	held := t.holdClock()
	gen := c.enter()
	due(&c.parkAt, t.nowNs()) // leave parks c or arms it again
	c.timer()
	c.leave(gen)
	t.checkTimer(c)
	t.releaseClock(held)
}

// due reports whether deadline *d (0: none) has come by ns, and clears it if so.
func due(d *int64, ns int64) bool {
	if *d == 0 || ns < *d {
		return false
	}
	*d = 0
	return true
}

func (c *PCB) timer() {
	t := c.t
	now := t.now()
	ns := t.nanos(now)
	gen := c.gen()
	if due(&c.closeAt, ns) {
		if c.flags&fDeferred != 0 {
			c.deferTimeout() // closeAt is an undecided intercepted SYN's deadline
			return
		}
		if c.state == StateTimeWait {
			c.abandon(errs.Clsd)
		} else {
			// FIN-WAIT-2 of a closed connection whose peer never sends its FIN.
			c.abandon(errs.Timeout)
		}
		return
	}
	if due(&c.delackAt, ns) && c.state != StateClosed {
		t.ext.DelayedACKs++
		c.sendAck()
	}
	// A freed PCB has no cold part: each step below checks that c is still alive.
	if due(&c.tlpAt, ns) {
		// Before the RTO: a PTO capped at the RTO's deadline sends the probe instead of
		// the timeout (RFC 8985 §7.2), and the probe re-arms the RTO.
		c.tlpExpired(ns)
		if !c.alive(gen) {
			return
		}
	}
	if due(&c.rtoAt, ns) {
		c.rtoExpired(ns)
		if !c.alive(gen) {
			return
		}
	}
	if due(&c.persistAt, ns) {
		c.persistExpired(ns)
		if !c.alive(gen) {
			return
		}
	}
	if due(&c.retryAt, ns) {
		c.output()
		if !c.alive(gen) {
			return
		}
	}
	if due(&c.reoAt, ns) {
		c.rackDetectLoss(ns)
		c.maybeEnterRecovery(ns)
		c.output()
		if !c.alive(gen) {
			return
		}
	}
	if due(&c.keepAt, ns) {
		c.keepalive(ns)
		if !c.alive(gen) {
			return
		}
	}
	if due(&c.pollAt, ns) {
		if c.pollFn != nil && c.flags&fAppClosed == 0 {
			c.pollFn(c)
			if !c.alive(gen) {
				return
			}
		}
		if c.pollFn != nil && c.pollEvery > 0 {
			c.pollAt = ns + int64(c.pollEvery)
		}
		c.output()
	}
	if c.flags&fNeedOutput != 0 {
		c.output()
	}
	if !c.notifyLowat(gen) {
		return
	}
	c.armKeepalive()
	c.schedule()
}

// rtoExpired handles the retransmission timer: SYN retries, persist probes and the RTO
// proper (RFC 6298 §5.4-5.7).
func (c *PCB) rtoExpired(ns int64) {
	t := c.t
	switch c.state {
	case StateSynSent, StateSynReceived:
		c.nrtx++
		if c.stuckSince == 0 {
			c.stuckSince = max(c.lastSend, 1) // the SYN's departure (0 means unset)
		}
		if c.halfOpen() {
			// A listener's half-open connection: TCPSynAckMaxRtx SYN-ACKs and at most
			// TCPSynRcvdTimeout in all (Linux tcp_synack_retries: about 63 s).
			if c.nrtx > t.opts.TCPSynAckMaxRtx || ns-c.synAt >= int64(t.opts.TCPSynRcvdTimeout) {
				t.ext.HalfOpenTimeouts++
				c.abandon(errs.Timeout) // heard only by a host that saw it (AcceptSyn)
				return
			}
		} else if c.userTimeout > 0 && c.userTimedOut(ns) || c.userTimeout == 0 && c.nrtx > t.opts.TCPSynMaxRtx {
			t.ext.Timeouts++
			err := error(errs.Timeout)
			if c.softErr != nil {
				err = c.softErr
			}
			if c.flags&fPassive != 0 {
				err = nil
			}
			c.abandon(err)
			return
		}
		t.ext.RTOs++
		t.ext.Retransmits++
		c.rtxCount++
		c.retransmitSYN()
		return
	case StateClosed, StateListen, StateTimeWait:
		return
	}
	if c.sndNxt == c.sndUna {
		c.persistExpired(ns)
		return
	}
	if c.flags&fNeedOutput != 0 && c.rtxq.head != nil && c.rtxq.head.xmits == 0 {
		c.output()
		return
	}
	c.nrtx++
	t.ext.RTOs++
	if c.stuckSince == 0 && c.rtxq.head != nil {
		c.stuckSince = max(c.rtxq.head.xmit, 1) // Linux's retrans_stamp: the head's departure
	}
	if c.userTimeout > 0 && c.userTimedOut(ns) || c.userTimeout == 0 && c.nrtx > t.opts.TCPMaxRtx {
		t.ext.Timeouts++
		c.sendRST(c.rstSeq(), c.rcvNxt, true)
		err := error(errs.Timeout)
		if c.softErr != nil {
			err = c.softErr
		}
		c.abandon(err)
		return
	}
	c.onRTO(ns)
	c.armRTO(ns)
}

// persistExpired sends a zero-window probe, or, when the window has opened enough for
// something but sender SWS avoidance held it, sends what fits (RFC 9293 §3.8.6.2.1's
// override timeout).
func (c *PCB) persistExpired(ns int64) {
	t := c.t
	unsent := int(int32(c.sndEnd - c.sndNxt))
	wndLeft := int(int32(c.sndUna + uint32(c.sndWnd) - c.sndNxt))
	if unsent > 0 && wndLeft > 0 {
		n := min(unsent, wndLeft, c.segMSS())
		c.sendSeg(n, false, ns, txOffload{})
		return
	}
	if unsent <= 0 && (c.flags&fFinQueued == 0 || c.finSent()) {
		return
	}
	if unsent <= 0 {
		c.output() // only the FIN is left: it needs no window
		return
	}
	// TCP_USER_TIMEOUT also bounds how long data may wait behind a zero window, counted
	// from the first probe and not reset by the peer's zero-window answers (Linux).
	if c.stuckSince == 0 {
		c.stuckSince = max(ns, 1)
	} else if c.userTimedOut(ns) {
		t.ext.Timeouts++
		c.sendRST(c.rstSeq(), c.rcvNxt, true)
		c.abandon(errs.Timeout)
		return
	}
	// RFC 9293 §3.8.6.1: "The sending TCP peer must regularly transmit at least one octet
	// of new data (if available), or retransmit to the receiving TCP peer even if the send
	// window is zero". Like Linux, the probe is a segment one below SND.UNA, which the
	// receiver must answer with an ACK carrying its current window.
	t.ext.ZeroWindowProbes++
	h := wire.TCPRepr{SeqNum: c.sndUna - 1, Flags: wire.TCPFlagACK}
	_ = c.emit(&h, 0)
	c.persistN = min(c.persistN+1, 16)
	c.armPersist(ns)
}

// armPersist starts the persist timer when queued data waits for the peer's window and
// nothing is in flight. A probe already due keeps its deadline: output runs often (every
// ACK, an application's poll) and must not push the probe back for good.
func (c *PCB) armPersist(ns int64) {
	if c.persistAt != 0 || c.sndNxt != c.sndUna {
		return
	}
	unsent := int(int32(c.sndEnd - c.sndNxt))
	if unsent <= 0 {
		return
	}
	wndLeft := int(int32(c.sndUna + uint32(c.sndWnd) - c.sndNxt))
	if wndLeft >= min(unsent, c.segMSS()) {
		return // not the window that holds the data (Nagle, memory)
	}
	d := c.rtoDuration()
	for i := 0; i < c.persistN && d < c.t.opts.TCPMaxRTO; i++ {
		d *= 2
	}
	c.persistAt = ns + int64(min(d, c.t.opts.TCPMaxRTO))
	c.clampToUserTimeout(&c.persistAt)
	c.schedule()
}

// armTimeWait (re)starts the 2 MSL timeout of TIME-WAIT (RFC 9293 §3.10.7.4).
func (c *PCB) armTimeWait() {
	c.rtoAt, c.persistAt, c.tlpAt, c.reoAt, c.delackAt, c.keepAt, c.pollAt, c.retryAt = 0, 0, 0, 0, 0, 0, 0, 0
	c.closeAt = c.t.nowNs() + int64(2*c.t.opts.TCPMSL)
	c.schedule()
}

// enterTimeWait moves c to TIME-WAIT: buffers are released at once, only the 4-tuple and
// the sequence numbers stay.
func (c *PCB) enterTimeWait() {
	t := c.t
	c.setState(StateTimeWait)
	t.freeQueue(&c.sndq)
	t.freeQueue(&c.rtxq)
	t.freeQueue(&c.ooseq)
	c.pos, c.rack.hint = nil, nil
	c.ooPbufs = 0
	c.sackedBytes, c.lostBytes, c.retransOut, c.renoSacked = 0, 0, 0, 0
	c.armTimeWait()
}

// armKeepalive sets the keepalive deadline of an idle synchronized connection: the last
// segment received plus the idle time, plus an interval per unanswered probe.
func (c *PCB) armKeepalive() {
	if c.flags&fKeepAlive == 0 || c.state != StateEstablished && c.state != StateCloseWait {
		c.keepAt = 0
		return
	}
	c.keepAt = c.lastRecv + int64(c.keepIdle) + int64(c.keepSent)*int64(c.keepIntvl)
	if c.keepAt <= c.lastRecv {
		c.keepAt = c.lastRecv + 1
	}
}

// startKeepalive arms keepalive when a connection with it enabled becomes established.
func (c *PCB) startKeepalive() {
	if c.flags&fKeepAlive != 0 {
		c.lastRecv = c.t.nowNs()
		c.armKeepalive()
		c.schedule()
	}
}

// keepalive sends a probe or gives up (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6).
func (c *PCB) keepalive(ns int64) {
	t := c.t
	if c.flags&fKeepAlive == 0 || c.state != StateEstablished && c.state != StateCloseWait {
		return
	}
	due := c.lastRecv + int64(c.keepIdle) + int64(c.keepSent)*int64(c.keepIntvl)
	if ns < due {
		return
	}
	// A timer that ran late (the clock jumped, the host was suspended) sends one probe now
	// and the next a full interval later, not the missed ones back to back.
	c.lastRecv += ns - due
	if c.sndNxt != c.sndUna {
		// Data in flight: the retransmission timer watches the peer; keepalive looks
		// again an idle time from now. (It set lastRecv to now less the idle time, which
		// made the deadline now: the timer fired again at once, for ever, core held.)
		c.lastRecv = ns
		return
	}
	// With TCP_USER_TIMEOUT, probing ends that long after the last segment received
	// instead of after TCPKeepCnt probes (Linux tcp_keepalive_timer).
	if c.userTimeout > 0 && c.keepSent > 0 && ns-c.lastRecv >= int64(c.userTimeout) ||
		c.userTimeout == 0 && c.keepSent >= c.keepCnt {
		t.ext.KeepaliveTimeouts++
		c.sendRST(c.rstSeq(), c.rcvNxt, true)
		c.abandon(errs.Timeout)
		return
	}
	c.keepSent++
	t.ext.KeepaliveProbes++
	// RFC 1122 §4.2.3.6: a keep-alive segment carries SEG.SEQ = SND.NXT-1.
	h := wire.TCPRepr{SeqNum: c.sndNxt - 1, Flags: wire.TCPFlagACK}
	_ = c.emit(&h, 0)
}

// durationNs converts a nanosecond difference to a Duration (negative becomes 0).
func durationNs(d int64) time.Duration {
	if d < 0 {
		return 0
	}
	return time.Duration(d)
}

package tcp

import "github.com/wispstack/wisp/memp"

// Parking. Most of a PCB (queues, SACK scoreboard, recovery, RACK, PRR, undo, receiver
// autotuning, the congestion controller) only matters while a connection moves data. It
// lives in pcbCold, taken from Proto.colds when a connection starts or wakes and given
// back when it goes quiet, so an idle connection holds only the hot PCB. The pool has one
// element per PCB slot: ensureCold cannot fail, and no new way to run out appears.
//
// A quiet connection parks at once when nothing would be lost (its cold part is what
// ensureCold would make again from the hot PCB), else after an RTO without traffic, when
// RFC 5681 §4.1 restarts the window anyway. What the second loses: CUBIC's W_max, K and
// undo state, RACK's reordering memory, the receiver autotuning's measurement, and the
// minimum RTT's window (reseeded with the current minimum).

// coldExtra is what each TCP_PCB slot reserves for its cold part (element and pool
// bookkeeping), counted in TCP_PCB's element size.
var coldExtra = memp.ElemSize[pcbCold](0)

// ensureCold gives c its cold part back; every entry point calls it before code that
// reads the cold fields.
func (c *PCB) ensureCold() {
	if c.pcbCold != nil || c.t == nil {
		return
	}
	k := c.t.colds.Get() // one element per PCB slot: never nil
	c.pcbCold = k
	if c.parkCwnd == 0 {
		return // parked before the controller started
	}
	mss, iw := max(c.mss, 1), max(c.t.opts.TCPInitCwnd, 1)
	if c.t.opts.TCPCongestion == "newreno" {
		k.ccImpl.reno.Resume(mss, iw, int(c.parkCwnd), int(c.parkSsthresh))
		k.cc = &k.ccImpl.reno
	} else {
		k.ccImpl.cubic.Resume(mss, iw, int(c.parkCwnd), int(c.parkSsthresh))
		k.cc = &k.ccImpl.cubic
	}
	if c.minRTT > 0 {
		n := minSample{c.minRTT, c.t.nowNs()}
		k.minRTTf.s = [3]minSample{n, n, n}
	}
	c.parkCwnd, c.parkSsthresh = 0, 0
}

// quiet reports whether c has nothing in its cold part that a parked connection could
// not have: no data queued, in flight or out of order, no recovery, no output or ACK
// pending, no timer of a sending connection.
func (c *PCB) quiet() bool {
	k := c.pcbCold
	return c.synchronized() && c.flags&(fDying|fInRecovery|fRTORecovery|fAckNow|fAckBatch|fNeedOutput|fWndUpdate|fForceRetx|fLowatWait) == 0 &&
		c.sndUna == c.sndNxt && c.sndNxt == c.sndEnd+b2u(c.flags&fFinQueued != 0) &&
		k.sndq.head == nil && k.rtxq.head == nil && k.ooseq.head == nil && k.pos == nil &&
		k.sndBufUsed == 0 && k.sackedBytes == 0 && k.lostBytes == 0 && k.retransOut == 0 &&
		k.dsack == (pcbCold{}).dsack && k.nsacks == 0 &&
		k.rtoAt == 0 && k.persistAt == 0 && k.tlpAt == 0 && k.reoAt == 0 && k.retryAt == 0
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// tryPark gives c's cold part back if c is quiet and parking loses nothing, or after an
// RTO without traffic; otherwise, quiet, it arms parkAt for that time.
func (c *PCB) tryPark() {
	k := c.pcbCold
	if k != nil && c.flags&fDeferred != 0 {
		// An undecided intercepted SYN stays parked: an entry point (its timer, an API
		// call of the host) took a cold part it did not use.
		if *k == (pcbCold{}) {
			c.dropCold()
		}
		return
	}
	if k == nil || c.t == nil || c.parkAt != 0 || !c.quiet() {
		return // parkAt armed: the timer tries again (the check below is not free)
	}
	mss, iw := max(c.mss, 1), max(c.t.opts.TCPInitCwnd, 1)
	var cwnd, ssthresh int
	exact := true
	switch {
	case k.cc == nil:
	case k.cc == &k.ccImpl.reno:
		cwnd, ssthresh, exact = k.ccImpl.reno.Parked(mss, iw)
	default:
		cwnd, ssthresh, exact = k.ccImpl.cubic.Parked(mss, iw)
	}
	if exact {
		// Everything else as ensureCold makes it; what a quiet connection keeps only
		// about segments already acknowledged does not count.
		x := *k
		x.cc, x.ccImpl, x.minRTTf, x.lastRTT = nil, ccImpl{}, minFilter{}, 0
		x.rack.xmit, x.rack.endSeq, x.rack.rtt, x.rack.fack, x.rack.valid, x.rack.hint = 0, 0, 0, 0, false, nil
		x.rack.fackBefore, x.rack.fackOK = 0, false
		x.recover, x.highSacked, x.undoMarker, x.cwrEnd, x.synAt, x.softErr = 0, 0, 0, 0, 0, nil
		exact = c.flags&fUndo == 0 && x == pcbCold{}
	}
	if !exact {
		ns := c.t.nowNs()
		at := max(c.lastSend, c.lastRecv) + int64(c.rto)
		if ns < at && !parkEager {
			c.parkAt = at
			c.schedule()
			return
		}
	}
	c.flags &^= fUndo
	c.parkCwnd, c.parkSsthresh = int32(cwnd), int32(ssthresh)
	c.parkAt = 0
	c.pcbCold = nil
	c.t.colds.Put(k)
}

// dropCold gives the cold part back when c is freed (its queues already emptied).
func (c *PCB) dropCold() {
	if k := c.pcbCold; k != nil {
		c.pcbCold = nil
		c.t.colds.Put(k)
	}
}

// enter starts an entry point that may reach c's cold part (an API call, a segment, a
// timer run): it takes the part back and counts the nesting, so that a callback's API
// call does not park c under the code that called it. It returns c's generation for leave.
func (c *PCB) enter() uint32 {
	if c == nil || c.t == nil {
		return 0
	}
	c.ensureCold()
	c.busy++
	return c.gen()
}

// leave ends what enter started and, at the outermost level, tries to park c.
func (c *PCB) leave(gen uint32) {
	if c == nil || !c.alive(gen) {
		return
	}
	if c.busy--; c.busy == 0 {
		c.tryPark()
	}
}

// parkedWindow is what Info reports of a parked connection's controller.
func (c *PCB) parkedWindow() (cwnd, ssthresh int, name string) {
	if c.parkCwnd == 0 {
		return 0, 0, ""
	}
	name = "cubic"
	if c.t.opts.TCPCongestion == "newreno" {
		name = "newreno"
	}
	return int(c.parkCwnd), int(c.parkSsthresh), name
}

// parkEager parks a quiet connection at once even when that loses state (tests: every
// path must then work from a fresh cold part).
var parkEager = false

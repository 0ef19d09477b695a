package tcp

import (
	"net/netip"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/transport/tcp/cc"
	"github.com/wispstack/wisp/wire"
)

// PCB is one connection (lwIP struct tcp_pcb). PCBs come from the TCP_PCB pool; what a
// connection needs only while it moves data is in pcbCold, taken from a pool with one
// element per PCB and given back when the connection goes quiet (cold.go), so a
// connection allocates nothing after NewPCB and an idle one holds only this struct.
// Variable names follow RFC 9293 §3.3.1.
type PCB struct {
	// pcbCold is nil while the connection is parked; every entry point takes it first
	// (ensureCold), so code below them reads its fields as the PCB's own.
	*pcbCold

	t     *Proto
	idx   int32 // index in the TCP_PCB pool
	state State
	busy  uint8 // entry points under way (enter/leave, cold.go)
	// Window scale shifts (RFC 7323 §2.3): sndScale for the peer's windows, rcvScale ours.
	sndScale, rcvScale uint8
	flags              pcbFlags

	// Identity. Addresses are kept without zone for demultiplexing; dst is the remote
	// address as the application gave it (a link-local zone selects the netif).
	laddr, raddr netip.Addr
	dst          netip.Addr
	lport, rport uint16
	hash         uint32
	hnext        *PCB    // connection hash chain
	all          pcbLink // Proto.all
	tw           pcbLink // Proto.timeWait in TIME-WAIT, Proto.halfOpen while half-open (never both)
	listener     *Listener
	phsum        uint32 // pseudo-header checksum without the length
	hasRTT       bool   // srtt and rttvar hold a measurement (RFC 6298 §2.2)
	// How often SND.UNA and RCV.NXT went round the sequence space: with them the byte
	// totals (Info.BytesAcked, BytesReceived) cost no 64-bit counters in the hot PCB.
	ackWraps, rcvWraps uint16

	ip.SendOptions // IP_TTL and IP_TOS of the segments (the multicast ones do not apply)

	// Application.
	arg       any
	recvFn    RecvFunc
	sentFn    SentFunc
	errFn     ErrFunc
	pollFn    PollFunc
	connFn    ConnectedFunc
	pollEvery time.Duration

	// Send sequence space (RFC 9293 §3.3.1). sndNxt is the highest sequence number sent
	// (SND.MAX in some texts): retransmissions come from rtxq and never move it back.
	iss, sndUna, sndNxt uint32
	// The send queue (its records are in pcbCold) holds application data from SND.UNA to
	// sndEnd; FIN (once queued) takes the sequence number sndEnd.
	sndEnd         uint32
	sndWl1, sndWl2 uint32
	pushSeq        uint32
	sndSml         uint32 // end of the last partial segment sent (Nagle, Minshall's variant)
	sndWnd         int    // peer's window, scaled, in bytes
	maxSndWnd      int    // largest window the peer has offered (sender SWS, RFC 9293 §3.8.6.2.1)
	mss            int    // effective send MSS (payload bytes per segment, options excluded)
	peerMSS        int
	advMSS         int // the MSS we announced

	// Retransmission timer state (RFC 6298).
	srtt, rttvar, rto time.Duration
	minRTT            time.Duration // windowed minimum of the samples (minRTT filter)
	nrtx              int           // consecutive RTO expirations
	rtxCount          uint64
	lastSend          int64

	rcvMSS int // largest segment received (what "full-sized" means for delayed ACKs)

	// Receive sequence space.
	irs, rcvNxt uint32
	rcvAdv      uint32 // right edge of the window last advertised (never moves left)
	lastAckSent uint32 // RCV.NXT of the last ACK sent (RFC 7323 Last.ACK.sent)
	rcvBuf      int    // current receive buffer (window when the application keeps up)
	rcvBufMax   int    // autotuning limit (TCPMaxWnd or SetRcvBuf)
	rcvUser     int    // SetRcvBuf value, 0 = autotune
	sndBufLim   int    // send buffer: TCPSndBuf, grown towards 2*cwnd, or SetSndBuf's value
	sndUser     int    // SetSndBuf value, 0 = autotune
	rcvUnread   int    // delivered to RecvFunc and not yet Recved

	// Timestamps (RFC 7323).
	tsRecent    uint32
	tsOff       uint32
	tsRecentAge int64

	// Timers: one Timeout, scheduled for the earliest deadline (ns since epoch, 0 = none).
	tmo       clock.Timeout
	tmoAt     int64 // deadline tmo is scheduled for
	delackAt  int64
	keepAt    int64
	pollAt    int64
	closeAt   int64 // TIME-WAIT end, FIN-WAIT-2 timeout
	keepIdle  time.Duration
	keepIntvl time.Duration
	keepCnt   int
	keepSent  int
	lastRecv  int64
	readEpoch int64 // the movingWindow epoch in which the application last consumed data (share.go)

	// User options (useropt.go).
	userMSS      int           // TCP_MAXSEG: cap on the MSS announced and used (0: none)
	userTimeout  time.Duration // TCP_USER_TIMEOUT (0: off)
	stuckSince   int64         // since when data waits unacknowledged (first RTO) or unsent behind a zero window (first probe)
	notSentLowat int           // TCP_NOTSENT_LOWAT (0: off)
	rxProm       int           // this connection's part of Proto.rxPromised

	// The congestion window while parked (cold.go), and when parking is next tried.
	parkCwnd, parkSsthresh int32
	parkAt                 int64
}

// pcbCold is the part of a connection that matters only while it moves data (cold.go).
type pcbCold struct {
	// Send queue: one record per pbuf from SND.UNA to sndEnd, and the cursor at SND.NXT.
	sndq    segQueue
	pos     *seg
	rtxq    segQueue // sent and not acknowledged, one record per segment
	minRTTf minFilter
	lastRTT time.Duration // sample of the last ACK (0: none)
	// Loss recovery.
	cc           cc.Controller
	recover      uint32 // RFC 6582 "recover": SND.NXT when recovery began
	dupAcks      int
	sackedBytes  int
	lostBytes    int
	retransOut   int
	highSacked   uint32 // end of the highest SACKed byte (valid when sackedBytes > 0)
	renoSacked   int    // without SACK: duplicate ACKs counted as segments that left (RFC 6582)
	undoMarker   uint32 // SND.UNA when the last window reduction began (for spurious undo)
	retransTS    uint32 // RFC 3522 RetransmitTS: TSval of the episode's first retransmission
	retransTSSet bool
	undoRetrans  int // retransmissions of the episode not yet proven spurious by D-SACK
	// rtxLog holds the ranges retransmitted in the episode that no D-SACK has reported
	// yet; rtxLogN > len(rtxLog) means it overflowed.
	rtxLog  [16]wire.SACKBlock
	rtxLogN int
	// F-RTO (RFC 5682 §3.2, frto.go): the step of the algorithm after a timeout, and
	// whether the ACK being processed (S)ACKed data sent once before it.
	frto     frtoStep
	frtoOrig bool
	// Proportional Rate Reduction (RFC 6937) during SACK fast recovery.
	prrDelivered  int // prr_delivered: bytes delivered to the receiver since recovery began
	prrOut        int // prr_out: bytes sent since recovery began
	recoverFS     int // RecoverFS: FlightSize when recovery began
	prrSndcnt     int // sndcnt of the latest ACK, less what has been sent since
	lastDelivered int // DeliveredData of the latest ACK
	rack          rackState
	ooseq         segQueue
	ooPbufs       int
	sacks         [wire.TCPMaxSACKBlocks]wire.SACKBlock // blocks to report, most recent first
	nsacks        int
	dsack         wire.SACKBlock // a D-SACK block (RFC 2883) to report once
	drs           drsState
	cwrEnd        uint32 // SND.NXT at the last window reduction for a congested link (linkFull)
	persistN      int    // persist backoff exponent
	softErr       error  // the last ICMP error about data in flight (cleared when parked)
	sndBufUsed    int    // bytes in sndq (unacked and unsent)
	segsUnacked   int    // full segments received since the last ACK (delayed ACK)
	corkSince     int64  // when TCP_CORK began holding a partial segment (0: it holds none)
	synAt         int64  // when a listener made this half-open connection (TCPSynRcvdTimeout)
	// Deadlines of the timers only a sending connection runs (timers.go).
	rtoAt     int64 // RTO or SYN retransmission
	persistAt int64 // the next persist probe (RFC 9293 §3.8.6.1): never pushed back by output
	tlpAt     int64
	reoAt     int64 // RACK reordering timer
	retryAt   int64 // retry of an output stopped by a full link queue (linkFull) or by memory (armRetry)
	// Congestion controllers, embedded so a connection allocates nothing; cc points at one.
	ccImpl ccImpl
	// spare is a retransmission-queue record of the PCB's own: with TCP_SEG exhausted (the
	// send queues hold every record) a connection can still send, coalescing what it sends
	// into this one record, so the acknowledgments that free records can come back.
	spare seg
}

type pcbFlags uint64

const (
	fHashed         pcbFlags = 1 << iota // in the connection hash
	fBound                               // has a local port
	fReuseAddr                           // SO_REUSEADDR
	fNoDelay                             // Nagle off
	fKeepAlive                           // keepalive on
	fAckNow                              // send an ACK at the end of processing
	fFinQueued                           // FIN follows the queued data (Close/Shutdown tx)
	fRxShut                              // receiving side closed: data is answered with RST
	fAppClosed                           // Close called: no more callbacks; the stack frees the PCB
	fSACK                                // SACK-permitted negotiated (RFC 2018)
	fTS                                  // timestamps negotiated (RFC 7323)
	fWS                                  // window scaling negotiated
	fInRecovery                          // fast recovery (RFC 6582 / RFC 6675)
	fRTORecovery                         // after an RTO, until SND.NXT at its time is acked
	fBacklog                             // counted in its listener's backlog
	fBacklogDelayed                      // BacklogDelayed called
	fFinRcvd                             // FIN received and counted in RCV.NXT
	fDying                               // being freed: the ErrFunc runs
	fMore                                // the last write had WriteMore
	fPassive                             // created by a listener
	fNeedOutput                          // output failed for memory: retry from the timer
	fSentErr                             // ErrFunc already scheduled/called
	fRcvdSYNTS                           // peer's SYN carried timestamps
	fRcvdSYNSACK                         // peer's SYN carried SACK-permitted
	fRcvdSYNWS                           // peer's SYN carried window scale
	fWndUpdate                           // a window update is due
	fCwndLimited                         // the last send stopped at the congestion window
	fBoundIdle                           // bound and CLOSED (counted in Proto.boundIdle)
	fV6Only                              // IPV6_V6ONLY: a listener on :: hears no IPv4
	fUndo                                // the last window reduction may still be undone
	fForceRetx                           // the next retransmission ignores pipe (recovery start)
	fAckBatch                            // an ACK is owed at the end of the input batch (Proto.ackq)
	fCork                                // TCP_CORK: partial segments wait (at most corkLimit)
	fLowatWait                           // SndBuf refused a writer for TCP_NOTSENT_LOWAT: tell it when unsent falls below
	fDeferred                            // an intercepted SYN the host has not decided on (AcceptSyn/RefuseSyn): nothing sent, on Proto.deferred
	fOffered                             // handed to the host before ESTABLISHED (Listener.OnSyn): its ErrFunc hears the end of the handshake
)

// alive reports whether c is still the connection it was when gen was read: code that ran
// a callback checks it before touching c again.
func (c *PCB) alive(gen uint32) bool {
	return c.t != nil && c.t.gens[c.idx] == gen && c.flags&fDying == 0
}

// gen returns c's generation.
func (c *PCB) gen() uint32 { return c.t.gens[c.idx] }

// allocPCB takes a PCB from the pool; when it is exhausted the oldest TIME-WAIT PCB is
// recycled (lwIP tcp_alloc). nil (and PCBExhausted) when neither works.
func (t *Proto) allocPCB() *PCB {
	c, i := t.pcbs.GetIndex()
	if c == nil {
		if tw := t.timeWait.head; tw != nil {
			t.ext.TimeWaitRecycled++
			tw.abandon(errs.Abrt) // lwIP tcp_kill_timewait aborts it
			c, i = t.pcbs.GetIndex()
		} else if o := t.oldestOrphan(); o != nil {
			// Then, as lwIP's tcp_kill_state(LAST_ACK / CLOSING), the oldest connection
			// the application has closed and whose data is all acknowledged.
			o.sendRST(o.sndNxt, o.rcvNxt, true)
			o.abandon(nil)
			c, i = t.pcbs.GetIndex()
		} else if h := t.halfOpen.head; h != nil {
			// Then the oldest half-open connection a listener made (Linux drops the
			// oldest request first too): under a SYN flood the flood's own PCBs go
			// before any established connection is touched.
			t.ext.HalfOpenReaped++
			h.abandon(errs.Abrt) // silently (see Listener.reapHalfOpen); only a host that saw it hears
			c, i = t.pcbs.GetIndex()
		} else if d := t.deferred.head; d != nil {
			// Last, the oldest intercepted SYN its host has not decided on: refused with
			// a RST, as the host would have when it gave up (intercept.go).
			t.ext.InterceptRefused++
			d.sendRST(d.sndNxt, d.rcvNxt, true)
			d.abandon(errs.Abrt)
			c, i = t.pcbs.GetIndex()
		}
	}
	if c == nil {
		t.ext.PCBExhausted++
		return nil
	}
	c.t = t
	c.idx = int32(i)
	c.state = StateClosed
	c.SendOptions.Init(t.ip)
	c.SetTTL(t.opts.TCPTTL)
	c.rto = t.opts.TCPInitRTO
	c.keepIdle, c.keepIntvl, c.keepCnt = t.opts.TCPKeepIdle, t.opts.TCPKeepIntvl, t.opts.TCPKeepCnt
	c.rcvBuf = t.opts.TCPWnd
	c.rcvBufMax = max(t.opts.TCPMaxWnd, t.opts.TCPWnd)
	c.sndBufLim = t.opts.TCPSndBuf
	c.tmo.Init(c.onTimer)
	c.ensureCold()
	t.all.push(c)
	return c
}

// oldestOrphan returns the oldest PCB the application closed that waits only for the
// peer (LAST-ACK, CLOSING, FIN-WAIT-2), or nil.
func (t *Proto) oldestOrphan() *PCB {
	for c := t.all.head; c != nil; c = c.all.next {
		if c.flags&fAppClosed != 0 && (c.state == StateLastAck || c.state == StateClosing || c.state == StateFinWait2) {
			return c
		}
	}
	return nil
}

// free releases everything c holds and returns it to the pool. No callback runs.
func (c *PCB) free() {
	t := c.t
	if t == nil {
		return
	}
	t.timers.Cancel(&c.tmo)
	t.hashRemove(c)
	c.leaveStateList()
	if c.flags&fBacklog != 0 && c.listener != nil {
		c.listener.pending--
	}
	if c.flags&fBoundIdle != 0 {
		t.boundIdle--
	}
	c.releaseShares()
	if c.pcbCold != nil {
		t.freeQueue(&c.sndq)
		t.freeQueue(&c.rtxq)
		t.freeQueue(&c.ooseq)
		c.dropCold()
	}
	t.all.remove(c)
	t.gens[c.idx]++
	t.pcbs.Put(c)
}

// abandon ends a connection for good: it leaves every table, tells the application with
// err (unless it closed the PCB already, or err is nil) and frees the PCB.
func (c *PCB) abandon(err error) {
	if c.t == nil || c.flags&fDying != 0 {
		return
	}
	fn := c.errFn
	if c.flags&fAppClosed != 0 || c.flags&(fPassive|fBacklog|fOffered) == fPassive|fBacklog && c.state == StateSynReceived {
		fn = nil // the application never saw this connection, or let it go
	}
	c.flags |= fDying
	c.t.hashRemove(c)
	c.t.timers.Cancel(&c.tmo)
	c.leaveStateList()
	c.state = StateClosed
	if fn != nil && err != nil {
		fn(c, err)
	}
	c.free()
}

// setState moves c to s, keeping the TIME-WAIT and half-open lists in step.
func (c *PCB) setState(s State) {
	if s == c.state {
		return
	}
	c.leaveStateList()
	c.state = s
	switch {
	case s == StateTimeWait:
		c.t.timeWait.push(c)
	case c.halfOpen():
		c.synAt = c.t.nowNs()
		c.t.halfOpen.push(c)
	}
}

// leaveStateList takes c off the TIME-WAIT, half-open or deferred list it is on (an
// undecided PCB stops being one).
func (c *PCB) leaveStateList() {
	if c.state == StateTimeWait {
		c.t.timeWait.remove(c)
	}
	if c.halfOpen() {
		c.t.halfOpen.remove(c)
	}
	if c.flags&fDeferred != 0 {
		c.t.deferred.remove(c)
		c.flags &^= fDeferred
	}
}

// halfOpen reports whether c is a listener's connection still in SYN-RECEIVED (and so on
// Proto.halfOpen): not an undecided intercepted one, which sent nothing (Proto.deferred).
func (c *PCB) halfOpen() bool {
	return c.state == StateSynReceived && c.flags&(fPassive|fDeferred) == fPassive
}

// synchronized reports whether c is in a synchronized state (RFC 9293 §3.5.2, group 3).
func (c *PCB) synchronized() bool { return c.state >= StateEstablished }

// canSend reports whether new data may still be queued.
func (c *PCB) canSend() bool {
	if c.flags&fFinQueued != 0 {
		return false
	}
	switch c.state {
	case StateSynSent, StateSynReceived, StateEstablished, StateCloseWait:
		return true
	}
	return false
}

// mtuMSS returns the largest segment payload the route to the peer carries.
func (c *PCB) mtuMSS() int { return c.t.routeMSS(c.dst) }

// routeMSS returns the largest segment payload (no options) the route to dst carries: the
// netif MTU less IP and TCP headers (a local destination loops back: 64 KiB).
func (t *Proto) routeMSS(dst netip.Addr) int {
	hl := wire.IPv4MinHeaderLen
	if dst.Is6() && !dst.Is4In6() {
		hl = wire.IPv6HeaderLen
	}
	mtu := 0
	if t.ip.IsLocal(dst.WithZone("")) {
		mtu = 65535
	} else if n, _, err := t.ip.Lookup(dst); err == nil && n != nil {
		mtu = n.MTU()
	}
	if mtu <= 0 {
		mtu = 1500
	}
	m := mtu - hl - wire.TCPMinHeaderLen
	if hl == wire.IPv6HeaderLen {
		m = max(m, 1220) // RFC 8200 §5: every IPv6 link carries 1280
	}
	return min(max(m, 64), 65535-hl-wire.TCPMinHeaderLen)
}

// assertCore panics in wispcheck builds unless the core lock is held (clock.Timeouts.
// AssertCore): every exported method of a PCB starts with it. A freed PCB (c.t nil) is not
// checked; its methods see a closed connection.
func (c *PCB) assertCore() {
	if c.t != nil {
		c.t.timers.AssertCore()
	}
}

// setOption sets option flag f when on, else clears it, and option reports it: the bodies
// of the flag options' accessors (core context).
func (c *PCB) setOption(f pcbFlags, on bool) {
	c.assertCore()
	if on {
		c.flags |= f
	} else {
		c.flags &^= f
	}
}

func (c *PCB) option(f pcbFlags) bool {
	c.assertCore()
	return c.flags&f != 0
}

// setField and getField are the bodies of the accessors that set or read one field of a PCB
// or Listener x (core context).
func setField[T any](x interface{ assertCore() }, f *T, v T) {
	x.assertCore()
	*f = v
}

func getField[T any](x interface{ assertCore() }, f *T) T {
	x.assertCore()
	return *f
}

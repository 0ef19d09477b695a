package tcp

import (
	"time"

	"github.com/wispstack/wisp/wire"
)

// Receive window autotuning, in the manner of Linux's dynamic right-sizing: once per
// receiver RTT, when the application consumed more in that RTT than in any before, the
// buffer grows to twice that (the sender may double its window per RTT in slow start), up
// to TCPMaxWnd or SetRcvBuf. The window advertised is still capped by free packet memory
// (rcvSpace), so autotuning never promises what the stack cannot hold.
type drsState struct {
	start    int64  // start of the current measurement period (ns)
	copied   int    // bytes consumed by the application in it
	space    int    // most bytes consumed in one period so far
	rttSeq   uint32 // window-based RTT measurement: RCV.NXT to reach
	rttStart int64
	rtt      time.Duration // receiver's RTT estimate (0: none yet)
}

// drsReceived runs when in-order data arrives (o: the options of its segment): it measures
// the receiver RTT as the time a window of data takes to arrive (Linux
// tcp_rcv_rtt_measure) or, better, from the timestamp the peer echoes.
func (c *PCB) drsReceived(o *wire.TCPOptions) {
	if c.rcvUser > 0 || c.rcvBufMax <= c.rcvBuf {
		return
	}
	if c.flags&fTS != 0 && o.HasTimestamps && o.TSEcr != 0 {
		if ms := int32(c.tsNow() - o.TSEcr); ms >= 0 && ms < 60000 {
			c.drsSample(max(time.Duration(ms)*time.Millisecond, time.Millisecond))
			return
		}
	}
	ns := c.t.nowNs()
	if c.drs.rttStart == 0 {
		c.drs.rttSeq, c.drs.rttStart = c.rcvNxt+uint32(max(c.rcvBuf, c.advMSS)), ns
		return
	}
	if seqGEQ(c.rcvNxt, c.drs.rttSeq) {
		c.drsSample(max(durationNs(ns-c.drs.rttStart), time.Millisecond))
		c.drs.rttSeq, c.drs.rttStart = c.rcvNxt+uint32(max(c.rcvBuf, c.advMSS)), ns
	}
}

func (c *PCB) drsSample(r time.Duration) {
	if c.drs.rtt == 0 || r < c.drs.rtt {
		c.drs.rtt = r
	} else {
		c.drs.rtt = c.drs.rtt - c.drs.rtt/8 + r/8
	}
}

// drsConsumed runs when the application consumed n bytes (Recved).
func (c *PCB) drsConsumed(n int) {
	if c.rcvUser > 0 || c.rcvBufMax <= c.rcvBuf {
		return
	}
	c.drs.copied += n
	rtt := c.drs.rtt
	if c.hasRTT && c.srtt > 0 && (rtt == 0 || c.srtt < rtt) {
		rtt = c.srtt
	}
	if rtt == 0 && !c.hasRTT {
		return // no estimate yet
	}
	rtt = max(rtt, time.Millisecond) // the clock's granularity G
	ns := c.t.nowNs()
	if c.drs.start == 0 {
		c.drs.start = ns
		return
	}
	if ns-c.drs.start < int64(rtt) {
		return
	}
	if c.drs.copied > c.drs.space {
		c.drs.space = c.drs.copied
		if grow := min(2*c.drs.copied+2*c.advMSS, c.rcvBufMax); grow > c.rcvBuf {
			c.rcvBuf = grow
		}
	}
	c.drs.copied, c.drs.start = 0, ns
}

// wscaleFor returns the smallest window shift that expresses buf (RFC 7323 §2.3: ≤ 14).
func wscaleFor(buf int) uint8 {
	s := uint8(0)
	for s < 14 && buf>>s > 0xffff {
		s++
	}
	return s
}

// applySynOptions records what the peer's SYN or SYN-ACK offered and settles what both
// sides use (RFC 7323 §1.3, §2.2, §3.2; RFC 2018 §2; RFC 9293 §3.7.1).
func (c *PCB) applySynOptions(o *wire.TCPOptions) {
	t := c.t
	if o.HasMSS && o.MSS > 0 {
		c.peerMSS = int(o.MSS)
	} else if c.raddr.Is6() {
		c.peerMSS = 1220 // RFC 8200 §8.3: 1280 - 60
	} else {
		c.peerMSS = 536 // RFC 9293 §3.7.1: the default send MSS
	}
	if t.opts.TCPWndScale && o.HasWindowScale {
		c.flags |= fWS
		// RFC 7323 §2.3: "If a Window Scale option is received with a shift.cnt value
		// larger than 14, the TCP SHOULD log the error but MUST use 14 instead".
		c.sndScale = min(o.WindowScale, 14)
	} else {
		c.flags &^= fWS
		c.sndScale, c.rcvScale = 0, 0
		c.rcvBufMax = min(c.rcvBufMax, 0xffff)
		c.rcvBuf = min(c.rcvBuf, 0xffff)
	}
	if t.opts.TCPSACK && o.SACKPermitted {
		c.flags |= fSACK
	}
	if t.opts.TCPTimestamps && o.HasTimestamps {
		c.flags |= fTS
		c.tsRecent, c.tsRecentAge = o.TSVal, t.nowNs()
	}
	c.mss = c.effMSS()
	// Linux's tcp_initialize_rcv_mss: until larger segments arrive, "full-sized" (for
	// delayed ACKs) is the smallest of what either side may send and the 536 default.
	c.rcvMSS = max(min(c.advMSS, c.mss, 536), 64)
}

// effMSS is the payload of a full segment (RFC 9293 §3.7.1, Eff.snd.MSS): the peer's MSS
// and the route MTU less our headers and fixed options, capped by TCPMSS.
func (c *PCB) effMSS() int {
	m := min(c.mtuMSS(), c.t.opts.TCPMSS)
	if c.userMSS > 0 {
		m = min(m, c.userMSS)
	}
	if c.peerMSS > 0 {
		m = min(m, c.peerMSS)
	}
	if c.flags&fTS != 0 {
		m -= 12
	}
	return max(m, 64)
}

// initSend prepares the send side of a new connection: ISN (RFC 6528), MSS to announce,
// window scale, timestamp offset and congestion control.
func (c *PCB) initSend(now time.Time) {
	t := c.t
	c.iss = t.keys.ISN(c.localAP(), c.remoteAP(), now)
	c.sndUna, c.sndNxt, c.sndEnd, c.pushSeq = c.iss, c.iss, c.iss+1, c.iss+1
	c.recover, c.cwrEnd, c.sndSml = c.iss, c.iss, c.iss
	c.advMSS = c.mtuMSS()
	if c.userMSS > 0 {
		c.advMSS = min(c.advMSS, c.userMSS) // TCP_MAXSEG set before connect
	}
	c.rcvMSS = min(c.advMSS, 536)
	if c.mss == 0 {
		c.mss = c.effMSS()
	}
	if t.opts.TCPWndScale {
		c.rcvScale = wscaleFor(c.rcvBufMax)
	}
	c.tsOff = t.keys.TSOffset(c.localAP(), c.remoteAP())
	c.initCC(now)
}

// windowField computes the window to advertise, updates RCV.ADV and returns the field.
// RFC 9293 §3.8.6.2.2 (receiver SWS avoidance): the right edge moves only by at least
// min(RCV.BUFF/2, MSS); it never moves left (§3.8.6.2.2 "shrinking the window" is
// "strongly discouraged"). The window is also capped by the stack's free packet memory.
func (c *PCB) windowField(syn bool) uint16 {
	wnd := c.rcvSpace()
	edge := c.rcvNxt + uint32(wnd)
	if seqGT(edge, c.rcvAdv) && int(edge-c.rcvAdv) < min(c.rcvBuf/2, c.advMSS) && seqGT(c.rcvAdv, c.rcvNxt) {
		edge = c.rcvAdv
	}
	if seqLT(edge, c.rcvAdv) {
		edge = c.rcvAdv
	}
	w := uint32(edge - c.rcvNxt)
	if syn {
		// RFC 7323 §2.2: "The window field in a segment where the SYN bit is set ... MUST
		// NOT be scaled".
		f := min(w, 0xffff)
		c.rcvAdv = c.rcvNxt + f
		c.syncPromise()
		return uint16(f)
	}
	sh := c.rcvScale
	f := w >> sh
	if c.rcvNxt+f<<sh != edge && seqLT(c.rcvNxt+f<<sh, c.rcvAdv) {
		f++ // rounding down would move the advertised edge left
	}
	f = min(f, 0xffff)
	c.rcvAdv = seqMax(c.rcvAdv, c.rcvNxt+f<<sh)
	c.syncPromise()
	return uint16(f)
}

// rcvSpace is the receive window the buffer and the connection's share of the stack's free
// packet memory (share.go) allow.
func (c *PCB) rcvSpace() int {
	w := c.rcvBuf - c.rcvUnread
	if w <= 0 {
		return 0
	}
	if m := c.rxLimit(); w > m {
		if c.t.rxHolders > 1 || c.t.rxHolders == 1 && c.rcvUnread == 0 {
			c.t.ext.RcvShareClamped++
		} else {
			c.t.ext.RcvWndClamped++
		}
		w = m
	}
	return w
}

package tcp

// Control segments: the SYN and SYN-ACK (queued for retransmission), pure ACKs, resets
// (from a connection, or for a segment that has none) and RFC 5961 challenge ACKs.

import (
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/wire"
)

// synOptions fills the options of our SYN or SYN-ACK.
func (c *PCB) synOptions(o *wire.TCPOptions) {
	t := c.t
	*o = wire.TCPOptions{HasMSS: true, MSS: uint16(c.advMSS)}
	active := c.state == StateSynSent
	if active && t.opts.TCPWndScale || !active && c.flags&fWS != 0 {
		o.HasWindowScale, o.WindowScale = true, c.rcvScale
	}
	if active && t.opts.TCPSACK || !active && c.flags&fSACK != 0 {
		o.SACKPermitted = true
	}
	if active && t.opts.TCPTimestamps || !active && c.flags&fTS != 0 {
		o.HasTimestamps, o.TSVal = true, c.tsNow()
		if !active {
			o.TSEcr = c.tsRecent
		}
	}
}

// queueSYN records our SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED) in the retransmission queue
// and sends it.
func (c *PCB) queueSYN() {
	s := c.t.newSeg()
	if s == nil {
		// No record: the handshake is retried by the timer, like a lost SYN.
		c.t.st.Memerr++
		c.armRTO(c.t.nowNs())
		c.sndNxt = c.iss + 1
		return
	}
	s.seq, s.len, s.flags = c.iss, 1, sSYN
	c.rtxq.push(s)
	c.sndNxt = c.iss + 1
	c.sendSYN(s)
}

// sendSYN (re)transmits the SYN or SYN-ACK s.
func (c *PCB) sendSYN(s *seg) {
	var h wire.TCPRepr
	h.SeqNum = c.iss
	h.Flags = wire.TCPFlagSYN
	if c.state == StateSynReceived {
		h.Flags |= wire.TCPFlagACK
	}
	c.synOptions(&h.Options)
	ns := c.t.nowNs()
	if s != nil {
		if s.xmits > 0 {
			s.flags |= sEverRetx
		}
		s.xmits++
		s.xmit = ns
		s.tsval = h.Options.TSVal
	}
	_ = c.emit(&h, 0)
	c.lastSend = ns
	c.armRTO(ns)
}

// retransmitSYN sends the SYN-ACK again (a duplicate SYN arrived, or simultaneous open).
func (c *PCB) retransmitSYN() {
	s := c.rtxq.head
	if s == nil || s.flags&sSYN == 0 {
		c.queueSYN()
		return
	}
	c.sendSYN(s)
}

// ackNow asks for an ACK at the end of the current processing.
func (c *PCB) ackNow() { c.flags |= fAckNow }

// sendAck sends a pure ACK at once.
func (c *PCB) sendAck() {
	h := wire.TCPRepr{SeqNum: c.sndNxt, Flags: wire.TCPFlagACK}
	if c.emit(&h, 0) == errs.Mem {
		c.flags |= fNeedOutput
		c.armRetry()
	}
}

// sendRST sends a RST from c (RFC 9293 §3.10.7 resets carry the connection's numbers),
// with timestamps when the connection uses them (RFC 7323 §3.2: "TCPs SHOULD send a
// Timestamps option ... in <RST> segments").
func (c *PCB) sendRST(seq, ack uint32, withACK bool) {
	h := wire.TCPRepr{SeqNum: seq, Flags: wire.TCPFlagRST}
	if c.flags&fTS != 0 {
		h.Options.HasTimestamps, h.Options.TSVal, h.Options.TSEcr = true, c.tsNow(), c.tsRecent
	}
	if withACK {
		h.Flags |= wire.TCPFlagACK
		h.AckNum = ack
	}
	h.SrcPort, h.DstPort = c.lport, c.rport
	_ = c.t.send(c.laddr, c.dst, &h, nil, 0, c.phsum, c.TTL(), c.TOS(), txOffload{})
}

// rstSeq is the sequence number of a RST the connection sends on its own (abort, timeout,
// close with unread data): SND.NXT, unless that lies beyond the peer's window (a zero
// window probe's byte, or a window the peer shrank), where the window's end is used, as
// Linux's tcp_acceptable_seq. A receiver checks a RST against its window (RFC 9293
// §3.10.7.4) and, under RFC 5961, accepts only RCV.NXT: a RST beyond its window is dropped
// outright, and the peer would wait on a connection that is gone.
func (c *PCB) rstSeq() uint32 {
	if c.state != StateSynReceived {
		if end := c.sndUna + uint32(c.sndWnd); seqGT(c.sndNxt, end) {
			return end
		}
	}
	return c.sndNxt
}

// resetFor answers segment in, which has no connection, with a RST.
func (t *Proto) resetFor(in *segIn, seq, ack uint32, withACK bool) {
	h := wire.TCPRepr{SeqNum: seq, Flags: wire.TCPFlagRST}
	if withACK {
		h.Flags |= wire.TCPFlagACK
		h.AckNum = ack
	}
	h.SrcPort, h.DstPort = in.dstPort, in.srcPort
	_ = t.send(in.hdr.Dst, in.hdr.Src, &h, nil, 0, 0, t.opts.TCPTTL, 0, txOffload{})
}

// challengeACK sends an ACK for a suspicious segment (RFC 5961 §3.2, §4.2, §5.2), at most
// TCPChallengeAckLimit per second for the whole stack (§7).
func (c *PCB) challengeACK() {
	t := c.t
	sec := t.nowNs() / 1e9
	if sec != t.challengeSec {
		t.challengeSec, t.challengeCount = sec, 0
	}
	if t.challengeCount >= t.opts.TCPChallengeAckLimit {
		t.ext.ChallengeACKsLimited++
		return
	}
	t.challengeCount++
	t.ext.ChallengeACKs++
	c.sendAck()
}

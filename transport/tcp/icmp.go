package tcp

import (
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/wire"
)

// ControlInput handles an ICMP error about a segment we sent (ip.Transport): PMTU updates
// on ControlPacketTooBig (RFC 1191, RFC 8201), hard errors (port and protocol unreachable)
// fail a connect in SYN-SENT at once with errs.Refused, soft errors are remembered and
// reported if the connection later times out (RFC 1122 §4.2.3.9). The quoted sequence
// number must lie in [SND.UNA, SND.NXT) (RFC 5927 §4.1) or the message is ignored.
func (t *Proto) ControlInput(h *ip.Header, kind ip.ControlKind, mtu int, quoted []byte) {
	t.timers.AssertCore()
	if t.closed || len(quoted) < h.HeaderLen+8 {
		return
	}
	q := wire.TCP(quoted[h.HeaderLen:]) // the first 8 bytes: ports and sequence number
	sport, dport, seq := q.SrcPort(), q.DstPort(), q.SeqNum()
	c := t.lookupConn(h.Src.Unmap().WithZone(""), h.Dst.Unmap().WithZone(""), sport, dport)
	if c == nil || !seqLEQ(c.sndUna, seq) || !seqLT(seq, c.sndNxt) {
		return
	}
	switch kind {
	case ip.ControlPacketTooBig:
		hl := wire.IPv4MinHeaderLen
		if c.raddr.Is6() {
			hl = wire.IPv6HeaderLen
		}
		// RFC 8201 §4: "A node MUST NOT reduce its estimate of the Path MTU below the
		// IPv6 minimum link MTU"; for IPv4 Linux's 552-byte floor keeps forged messages
		// from shrinking segments to nothing (RFC 1191 allows down to 68).
		floor := 552
		if c.raddr.Is6() {
			if mtu < 1280 {
				return // a forgery or a broken router: IPv6 links carry 1280
			}
			floor = 1280
		}
		m := max(mtu, floor) - hl - wire.TCPMinHeaderLen
		if c.flags&fTS != 0 {
			m -= 12
		}
		if m >= c.mss {
			return
		}
		c.mss = m
		gen := c.enter()
		defer c.leave(gen)
		c.cc.SetMSS(m)
		// RFC 1191 §6.5: retransmit what no longer fits, without treating it as
		// congestion.
		for s := c.rtxq.head; s != nil; s = s.next {
			if s.flags&(sSacked|sLost) == 0 && s.dataLen() > m {
				s.flags |= sLost
				c.lostBytes += int(s.len)
			}
		}
		c.output()
		t.checkPCB(c)
	case ip.ControlPortUnreachable, ip.ControlProtoUnreachable:
		if c.state == StateSynSent {
			c.abandon(errs.Refused)
			return
		}
		c.softErr = errs.Refused
	case ip.ControlNetUnreachable, ip.ControlHostUnreachable, ip.ControlAdminProhibited:
		c.softErr = errs.Rte
	}
}

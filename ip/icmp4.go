package ip

import (
	"net/netip"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// icmp4Input handles an ICMP message (RFC 792); p is positioned at the IP header
// (h.HeaderLen bytes) and owned.
func (l *Layer) icmp4Input(h *Header, p *pbuf.Pbuf) {
	hl := h.HeaderLen
	m := wire.ICMPv4(l.icmpIn(h, p, &l.icmp))
	if m == nil {
		return
	}
	switch m.Type() {
	case wire.ICMPv4EchoRequest:
		// RFC 1122 §3.2.2.6: an echo request to a broadcast or multicast address MAY be
		// silently discarded; wisp does, as lwIP does by default.
		if h.Broadcast || h.Multicast {
			l.dropPkt(p, &l.icmp.Err)
			return
		}
		if h.Intercepted && !l.interceptEcho(h, p, &l.icmp) {
			return
		}
		// RFC 792: "To form an echo reply message, the source and destination addresses
		// are simply reversed, the type code changed to 0, and the checksum recomputed."
		// The data, identifier and sequence number stay as received.
		code := uint16(m.Code())
		m.SetType(wire.ICMPv4EchoReply)
		m.SetChecksumField(wire.ChecksumUpdate16(m.Checksum(), wire.ICMPv4EchoRequest<<8|code, wire.ICMPv4EchoReply<<8|code))
		_ = p.RemoveHeader(hl)
		p.SetFlags(0)
		l.icmp.Xmit++
		_ = l.output4(p, h.Dst, h.Src, wire.ProtoICMP, OutputOptions{TOS: h.TOS})
	case wire.ICMPv4EchoReply:
		// Ping sockets take their replies through the Raw hook, before this point.
		p.Free()
	case wire.ICMPv4DestUnreach, wire.ICMPv4TimeExceeded, wire.ICMPv4ParamProblem:
		kind, mtu := ControlHostUnreachable, 0
		switch m.Type() {
		case wire.ICMPv4DestUnreach:
			switch m.Code() {
			case wire.ICMPv4NetUnreach, 6, 11: // net, net unknown, net for TOS
				kind = ControlNetUnreachable
			case wire.ICMPv4ProtoUnreach:
				kind = ControlProtoUnreachable
			case wire.ICMPv4PortUnreach:
				kind = ControlPortUnreachable
			case wire.ICMPv4FragNeeded:
				kind, mtu = ControlPacketTooBig, int(m.NextHopMTU())
			case 9, 10, wire.ICMPv4AdminProhibited:
				kind = ControlAdminProhibited
			}
		case wire.ICMPv4TimeExceeded:
			kind = ControlTimeExceeded
		default:
			kind = ControlParamProblem
		}
		l.controlInput(h, p, hl+wire.ICMPv4HeaderLen, kind, mtu)
	default:
		// RFC 1122 §3.2.2: "If an ICMP message of unknown type is received, it MUST be
		// silently discarded." Redirects, timestamps and the rest land here.
		l.dropPkt(p, &l.icmp.Proterr)
	}
}

// icmp4Error sends an ICMP error about p (borrowed, positioned at its IPv4 header) back to
// its source, unless RFC 1122 §3.2.2 forbids it, and subject to the rate limit. rest is
// the next-hop MTU of a Fragmentation Needed or the pointer of a Parameter Problem.
func (l *Layer) icmp4Error(n *Netif, p *pbuf.Pbuf, typ, code uint8, rest uint32) {
	var hb [wire.IPv4MinHeaderLen]byte
	if p.CopyOut(hb[:], 0) < len(hb) {
		return
	}
	ip := wire.IPv4(hb[:])
	src, dst := ip.Src(), ip.Dst()
	hl := ip.HeaderLen()
	// RFC 1122 §3.2.2: "An ICMP error message MUST NOT be sent as the result of receiving:
	// an ICMP error message, or a datagram destined to an IP broadcast or IP multicast
	// address, or a datagram sent as a link-layer broadcast, or a non-initial fragment, or
	// a datagram whose source address does not define a single host".
	if p.Flags()&(pbuf.FlagLinkBroadcast|pbuf.FlagLinkMulticast) != 0 || dst.IsMulticast() ||
		n.isBroadcast4(dst) || ip.FragmentOffset() != 0 ||
		src.IsUnspecified() || src.IsMulticast() || src == broadcast4 || isClassE(src) || n.isBroadcast4(src) {
		return
	}
	if ip.Protocol() == wire.ProtoICMP {
		t, ok := p.ByteAt(hl)
		if !ok || wire.ICMPv4([]byte{t, 0, 0, 0}).IsError() || !knownICMP4(t) {
			return
		}
	}
	if !l.icmpAllow(&l.icmp) {
		return
	}
	// RFC 1812 §4.3.2.3: quote as much of the datagram as fits in 576 bytes.
	qlen := min(p.TotLen(), 576-wire.IPv4MinHeaderLen-wire.ICMPv4HeaderLen)
	q := l.quoteAlloc(p, qlen, &l.icmp)
	if q == nil {
		return
	}
	b := q.Payload()
	r := wire.ICMPv4Repr{Type: typ, Code: code, NextHopMTU: uint16(rest), Pointer: uint8(rest), PayloadLen: qlen}
	_ = r.Emit(b)
	l.icmp.Xmit++
	var from netip.Addr
	if l.localNetif(dst) != nil || n.intercepts(dst) {
		from = dst // an intercepted destination answers as if it were ours
	}
	_ = l.output4(q, from, src, wire.ProtoICMP, OutputOptions{})
}

// knownICMP4 reports whether t is an ICMP informational type an error may be sent about
// (echo, timestamp); anything else is treated like an error (RFC 1122 §3.2.2).
func knownICMP4(t uint8) bool {
	return t == wire.ICMPv4EchoRequest || t == wire.ICMPv4EchoReply || t == wire.ICMPv4Timestamp ||
		t == wire.ICMPv4TimestampReply
}

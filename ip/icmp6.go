package ip

import (
	"net/netip"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// icmp6Input handles an ICMPv6 message (RFC 4443, RFC 4861); p is positioned at the IPv6
// header (h.HeaderLen bytes of headers) and owned.
func (l *Layer) icmp6Input(h *Header, p *pbuf.Pbuf) {
	hl := h.HeaderLen
	m := wire.ICMPv6(l.icmpIn(h, p, &l.icmp6))
	if m == nil {
		return
	}
	switch t := m.Type(); t {
	case wire.ICMPv6EchoRequest:
		// RFC 4443 §4.2: "An Echo Reply SHOULD be sent in response to an Echo Request
		// message sent to an IPv6 multicast or anycast address. In this case, the source
		// address of the reply MUST be a unicast address belonging to the interface on which
		// the multicast or anycast Echo Request message was received."
		src := h.Dst
		if h.Multicast {
			var err error
			if src, err = l.SourceFor(h.Src, h.Netif); err != nil {
				l.dropPkt(p, &l.icmp6.Rterr)
				return
			}
		}
		if h.Src.IsUnspecified() {
			l.dropPkt(p, &l.icmp6.Err)
			return
		}
		if h.Intercepted && !l.interceptEcho(h, p, &l.icmp6) {
			return
		}
		// "The data received in the ICMPv6 Echo Request message MUST be returned entirely
		// and unmodified in the ICMPv6 Echo Reply message": only the type and checksum
		// change (and the pseudo-header's source when it was a multicast).
		code := uint16(m.Code())
		m.SetType(wire.ICMPv6EchoReply)
		cs := wire.ChecksumUpdate16(m.Checksum(), wire.ICMPv6EchoRequest<<8|code, wire.ICMPv6EchoReply<<8|code)
		if src != h.Dst {
			cs = wire.ChecksumUpdateAddr(cs, h.Dst, src)
		}
		m.SetChecksumField(cs)
		_ = p.RemoveHeader(hl)
		p.SetFlags(0)
		l.icmp6.Xmit++
		var o OutputOptions
		if h.Src.IsLinkLocalUnicast() || h.Multicast {
			o.Netif = h.Netif
		}
		_ = l.output6(p, src, h.Src, wire.ProtoICMPv6, o)
	case wire.ICMPv6EchoReply:
		// Ping sockets take their replies through the Raw hook, before this point.
		p.Free()
	case wire.ICMPv6DestUnreach, wire.ICMPv6PacketTooBig, wire.ICMPv6TimeExceeded, wire.ICMPv6ParamProblem:
		kind, mtu := ControlHostUnreachable, 0
		switch t {
		case wire.ICMPv6DestUnreach:
			switch m.Code() {
			case wire.ICMPv6NoRoute:
				kind = ControlNetUnreachable
			case wire.ICMPv6PortUnreach:
				kind = ControlPortUnreachable
			case wire.ICMPv6AdminProhibited, wire.ICMPv6SrcPolicyFailed, wire.ICMPv6RejectRoute:
				kind = ControlAdminProhibited
			}
		case wire.ICMPv6PacketTooBig:
			kind, mtu = ControlPacketTooBig, int(min(m.MTU(), 0xffff))
		case wire.ICMPv6TimeExceeded:
			kind = ControlTimeExceeded
		default:
			kind = ControlParamProblem
			if m.Code() == wire.ICMPv6ParamUnknownNextHdr {
				kind = ControlProtoUnreachable
			}
		}
		l.controlInput(h, p, hl+wire.ICMPv6HeaderLen, kind, mtu)
	case wire.ICMPv6RouterSolicit, wire.ICMPv6RouterAdvert, wire.ICMPv6NeighborSolicit,
		wire.ICMPv6NeighborAdvert, wire.ICMPv6Redirect:
		l.nd.input(h, p)
	case wire.ICMPv6MLDQuery, wire.ICMPv6MLDReport, wire.ICMPv6MLDDone, wire.ICMPv6MLDv2Report:
		l.mldInput(h, p)
	default:
		// RFC 4443 §2.4(a), (b): unknown error messages go to the upper layer (none wants
		// them here), unknown informational messages "MUST be silently discarded".
		l.dropPkt(p, &l.icmp6.Proterr)
	}
}

// icmp6Error sends an ICMPv6 error about p (borrowed, positioned at its IPv6 header) back to
// its source unless RFC 4443 §2.4(e) forbids it, subject to the rate limit. param is the
// MTU of a Packet Too Big or the pointer of a Parameter Problem.
func (l *Layer) icmp6Error(n *Netif, p *pbuf.Pbuf, typ, code uint8, param uint32) {
	var hb [wire.IPv6HeaderLen]byte
	if n == nil || p.CopyOut(hb[:], 0) < len(hb) {
		return
	}
	ip := wire.IPv6(hb[:])
	src, dst := ip.Src(), ip.Dst()
	// RFC 4443 §2.4(e): no error in response to a packet destined to a multicast address
	// or sent as a link-layer multicast or broadcast, with two exceptions: "the Packet Too
	// Big Message ... and the Parameter Problem Message, Code 2 ... reporting an
	// unrecognized IPv6 option that has the Option Type highest-order two bits set to 10".
	// The callers only send code 2 for such options (bits 11 to multicast are filtered
	// before).
	exception := typ == wire.ICMPv6PacketTooBig || typ == wire.ICMPv6ParamProblem && code == wire.ICMPv6ParamUnknownOption
	if !exception && (dst.IsMulticast() || p.Flags()&(pbuf.FlagLinkBroadcast|pbuf.FlagLinkMulticast) != 0) {
		return
	}
	// (e.6) nor to "a packet whose source address does not uniquely identify a single
	// node": the unspecified address, a multicast address.
	if src.IsUnspecified() || src.IsMulticast() {
		return
	}
	// (e.1), (e.2): nor to an ICMPv6 error message or a Redirect.
	if c, err := walkChain(p); err == nil && c.Proto == wire.ProtoICMPv6 {
		if c.FragmentOffset == 0 || wire.IPv6Fragment(p.Payload()[c.FragmentOffset:]).FragmentOffset() == 0 {
			if t, ok := p.ByteAt(c.Offset); !ok || t < 128 || t == wire.ICMPv6Redirect {
				return
			}
		}
	}
	if !l.icmpAllow(&l.icmp6) {
		return
	}
	var from netip.Addr
	if !dst.IsMulticast() && (l.localNetif(dst) != nil || n.intercepts(dst)) {
		from = dst // an intercepted destination answers as if it were ours
	} else {
		var err error
		if from, err = l.SourceFor(src, n); err != nil {
			l.icmp6.Drop++
			l.icmp6.Rterr++
			return
		}
	}
	// RFC 4443 §2.4(c): "as much of invoking packet as possible without the ICMPv6 packet
	// exceeding the minimum IPv6 MTU".
	qlen := min(p.TotLen(), maxQuote)
	q := l.quoteAlloc(p, qlen, &l.icmp6)
	if q == nil {
		return
	}
	b := q.Payload()
	r := wire.ICMPv6Repr{Type: typ, Code: code, MTU: param, Pointer: param, PayloadLen: qlen}
	_ = r.Emit(b, from, src)
	l.icmp6.Xmit++
	var o OutputOptions
	if src.IsLinkLocalUnicast() {
		o.Netif = n
	}
	_ = l.output6(q, from, src, wire.ProtoICMPv6, o)
}

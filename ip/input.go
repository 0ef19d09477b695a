package ip

import (
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// ipInput dispatches one received IP packet by its version; it takes ownership. looped is
// set for packets this stack sent to itself.
func (l *Layer) ipInput(n *Netif, p *pbuf.Pbuf, looped bool) {
	b, ok := p.ByteAt(0)
	switch {
	case !ok:
		l.ip.Recv++
		l.dropPkt(p, &l.ip.Lenerr)
	case b>>4 == 4:
		l.input4(n, p, looped)
	case b>>4 == 6:
		l.input6(n, p, looped)
	default:
		// RFC 791 §3.1 / RFC 8200 §3: nothing but versions 4 and 6 is IP.
		l.ip.Recv++
		l.dropPkt(p, &l.ip.Err)
	}
}

// deliver hands p, positioned at the IP header (h.HeaderLen bytes), to its protocol; it
// takes ownership.
func (l *Layer) deliver(h *Header, p *pbuf.Pbuf) {
	v6 := h.Dst.Is6()
	// Raw PCBs and ping sockets are the stack's own: an intercepted packet is not for them.
	if l.rawListen[h.Proto] > 0 && l.raw != nil && !h.Intercepted && l.rawOffer(h, p) {
		return
	}
	switch {
	case !v6 && h.Proto == wire.ProtoICMP:
		l.icmp4Input(h, p)
		return
	case !v6 && h.Proto == wire.ProtoIGMP:
		l.igmpInput(h, p)
		return
	case v6 && h.Proto == wire.ProtoICMPv6:
		l.icmp6Input(h, p)
		return
	}
	if t := l.transports[h.Proto]; t != nil {
		_ = p.RemoveHeader(h.HeaderLen)
		if p.Len() == 0 && p.Next() != nil {
			// The headers filled the first pbuf (a reassembled datagram can look like
			// that): transports want their header at the start of the first pbuf.
			rest := p.Dechain()
			rest.SetFlags(p.Flags())
			rest.SetIfIndex(p.IfIndex())
			p.Free()
			p = rest
		}
		t.Input(h, p)
		return
	}
	if v6 {
		// RFC 8200 §4: an unrecognised Next Header makes the node "send an ICMP Parameter
		// Problem message ... with an ICMP Code value of 1 ... pointing to the
		// unrecognized value"; the caller stored where that field is.
		l.refuse6(h.Netif, p, wire.ICMPv6ParamProblem, wire.ICMPv6ParamUnknownNextHdr, uint32(h.nhOff), &l.ip6.Proterr)
		return
	}
	// RFC 1122 §3.2.2.1: a host SHOULD generate Destination Unreachable messages with code
	// 2 (Protocol Unreachable) when the designated transport protocol is not supported.
	if !h.Broadcast && !h.Multicast {
		l.icmp4Error(h.Netif, p, wire.ICMPv4DestUnreach, wire.ICMPv4ProtoUnreach, 0)
	}
	l.dropPkt(p, &l.ip.Proterr)
}

// rawOffer offers p (at its IP header) to the raw hook positioned at the transport header,
// and restores the IP header when the hook did not eat it. It reports whether p was eaten:
// then the hook owns p; otherwise p stays the caller's.
func (l *Layer) rawOffer(h *Header, p *pbuf.Pbuf) bool {
	if p.Len() < h.HeaderLen {
		return false // headers spread over pbufs (reassembled): not offered
	}
	_ = p.RemoveHeader(h.HeaderLen)
	if l.raw.RawInput(h, p) {
		return true
	}
	_ = p.AddHeader(h.HeaderLen)
	return false
}

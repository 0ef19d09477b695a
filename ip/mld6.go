package ip

import (
	"net/netip"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// MLD (RFC 3810, RFC 2710): ICMPv6 messages read and written through wire.MLD.
const (
	// The Hop-by-Hop header MLD is sent with: Next Header ICMPv6, length 0, Router Alert
	// (RFC 2711 §2.1: type 5, length 2, value 0 "Datagram contains a Multicast Listener
	// Discovery message"), and a 2-byte PadN to fill the 8 bytes.
	mldHBHLen = 8
	mldHdrLen = wire.IPv6HeaderLen + mldHBHLen
)

var (
	mldHBH       = [mldHBHLen]byte{wire.ProtoICMPv6, 0, wire.IPv6OptRouterAlert, 2, 0, 0, wire.IPv6OptPadN, 0}
	allRouters6  = allRouters
	mldUnspecSrc = netip.IPv6Unspecified()
)

// mldInput handles an MLD message whose ICMPv6 checksum was verified; p is positioned at
// the IPv6 header (h.HeaderLen bytes of headers) and owned.
func (l *Layer) mldInput(h *Header, p *pbuf.Pbuf) {
	hl := h.HeaderLen
	mlen, ok := l.messageLen(h, p, &l.mld6, wire.MLDv1Len)
	if !ok {
		return
	}
	// The first bytes are enough for every field read here; m's length tells the query
	// version as the message's would (wire.MLD.QueryVersion).
	var buf [wire.MLDv2QueryLen]byte
	m := wire.MLD(buf[:p.CopyOut(buf[:min(mlen, len(buf))], hl)])
	typ := m.Type()
	// RFC 3810 §5.1.14 (queries) and §5.2.13 (reports): the node checks that the source
	// is a valid link-local address (reports may come from ::, RFC 3590), "if the Hop
	// Limit is set to 1, and if the Router Alert option is present in the Hop-By-Hop
	// Options header of the IPv6 packet. If any of these checks fails, the packet is
	// dropped." RFC 2710 §3 sends MLDv1 the same way.
	okSrc := h.Src.IsLinkLocalUnicast() || typ != wire.ICMPv6MLDQuery && h.Src.IsUnspecified()
	if !okSrc || h.TTL != 1 {
		l.dropPkt(p, &l.mld6.Err)
		return
	}
	if !hasRouterAlert6(p) {
		l.dropPkt(p, &l.mld6.Opterr)
		return
	}
	switch typ {
	case wire.ICMPv6MLDQuery:
		// RFC 3810 §8.1: "MLDv1 Query: length = 24 octets; MLDv2 Query: length >= 28
		// octets. Query messages that do not match any of the above conditions (e.g., a
		// Query of length 26 octets) MUST be silently ignored."
		q := mcQuery{group: m.Group(), maxResp: m.MaxRespTime()}
		switch m.QueryVersion() {
		case 1:
			q.version = modeV2
		case 2:
			if mlen < wire.MLDv2QueryLen+16*m.NumSources() {
				l.dropPkt(p, &l.mld6.Lenerr)
				return
			}
			q.version, q.qrv, q.qqi = modeV3, m.QRV(), m.QQI()
		default:
			l.dropPkt(p, &l.mld6.Lenerr)
			return
		}
		if !q.generalOrMulticast() {
			l.dropPkt(p, &l.mld6.Proterr)
			return
		}
		l.mcQueryInput(h.Netif, true, &q)
	case wire.ICMPv6MLDReport:
		if g := m.Group(); g.IsMulticast() {
			l.mcReportHeard(h.Netif, true, g)
		}
	default:
		// Done and MLDv2 reports are for routers.
	}
	p.Free()
}

// hasRouterAlert6 reports whether the IPv6 packet p carries a Router Alert option for MLD
// (value 0) in its Hop-by-Hop Options header. p is borrowed.
func hasRouterAlert6(p *pbuf.Pbuf) bool {
	c, err := walkChain(p)
	if err != nil || c.HopByHopOffset == 0 {
		return false
	}
	it := wire.IPv6ExtHeader(p.Payload()[c.HopByHopOffset:]).Options()
	for {
		o, ok := it.Next()
		if !ok {
			return false
		}
		if o.Type == wire.IPv6OptRouterAlert && len(o.Data) == 2 && o.Data[0] == 0 && o.Data[1] == 0 {
			return true
		}
	}
}

// mldSource is the source of MLD messages on n: RFC 3810 §5.2.13 "a valid link-local
// address", or, when n has none yet (DAD still running), "the unspecified address (::)"
// (RFC 3590 §4).
func (l *Layer) mldSource(n *Netif) netip.Addr {
	for _, a := range n.addrs {
		if x := a.prefix.Addr(); x.Is6() && x.IsLinkLocalUnicast() && a.usable() {
			return x
		}
	}
	return mldUnspecSrc
}

// mldSend writes the IPv6 and Hop-by-Hop headers in front of the message in p (owned) and
// sends it to dst on n, with a hop limit of 1 (RFC 3810 §5, RFC 2710 §3).
func (l *Layer) mldSend(n *Netif, p *pbuf.Pbuf, dst netip.Addr) {
	b := p.Payload()
	msg := wire.ICMPv6(b[mldHdrLen:])
	src := l.mldSource(n)
	msg.SetChecksum(src, dst)
	r := wire.IPv6Repr{NextHeader: wire.ProtoHopByHop, HopLimit: 1, Src: src, Dst: dst,
		PayloadLen: mldHBHLen + len(msg)}
	_ = r.Emit(b)
	copy(b[wire.IPv6HeaderLen:], mldHBH[:])
	l.mld6.Xmit++
	l.icmp6.Xmit++
	l.ip6.Xmit++
	_ = l.send6(n, p, dst)
}

// mldSendV1 sends an MLDv1 Report for g (to g) or a Done (to ff02::2, RFC 2710 §3.7).
func (l *Layer) mldSendV1(n *Netif, g netip.Addr, done bool) {
	p := l.mcAlloc(true, wire.MLDv1Len)
	if p == nil {
		return
	}
	msg := wire.MLD(p.Payload()[mldHdrLen:])
	dst := g
	msg.SetType(wire.ICMPv6MLDReport)
	if done {
		msg.SetType(wire.ICMPv6MLDDone)
		dst = allRouters6
	}
	msg.SetGroup(g)
	l.mldSend(n, p, dst)
}

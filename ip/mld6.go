package ip

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// MLD messages (RFC 3810 §5, RFC 2710 §3), ICMPv6 types 130, 131, 132 and 143. wire
// knows the types only; the fields are handled here.
const (
	mldV1Len      = 24 // MLDv1 query, report and done
	mldV2QueryLen = 28 // MLDv2 query without sources
	mldV2HdrLen   = 8  // MLDv2 report header
	mldRecLen     = 20 // MLDv2 address record without sources or auxiliary data
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
	l.mld6.Recv++
	hl := h.HeaderLen
	mlen := p.TotLen() - hl
	if mlen < mldV1Len {
		l.dropPkt(p, &l.mld6.Lenerr)
		return
	}
	// RFC 3810 §5.1.14 (queries) and §5.2.13 (reports): the node checks that the source
	// is a valid link-local address (reports may come from ::, RFC 3590), "if the Hop
	// Limit is set to 1, and if the Router Alert option is present in the Hop-By-Hop
	// Options header of the IPv6 packet. If any of these checks fails, the packet is
	// dropped." RFC 2710 §3 sends MLDv1 the same way.
	var m [mldV2QueryLen]byte
	p.CopyOut(m[:min(mlen, len(m))], hl)
	typ := m[0]
	okSrc := h.Src.IsLinkLocalUnicast() || typ != wire.ICMPv6MLDQuery && h.Src.IsUnspecified()
	if !okSrc || h.TTL != 1 {
		l.dropPkt(p, &l.mld6.Err)
		return
	}
	if !hasRouterAlert6(p) {
		l.dropPkt(p, &l.mld6.Opterr)
		return
	}
	group := netip.AddrFrom16([16]byte(m[8:24]))
	switch typ {
	case wire.ICMPv6MLDQuery:
		q := mcQuery{group: group}
		// RFC 3810 §8.1: "MLDv1 Query: length = 24 octets; MLDv2 Query: length >= 28
		// octets. Query messages that do not match any of the above conditions (e.g., a
		// Query of length 26 octets) MUST be silently ignored."
		switch {
		case mlen == mldV1Len:
			q.version = modeV2
			q.maxResp = time.Duration(binary.BigEndian.Uint16(m[4:6])) * time.Millisecond
		case mlen >= mldV2QueryLen:
			ns := int(binary.BigEndian.Uint16(m[26:28]))
			if mlen < mldV2QueryLen+16*ns {
				l.dropPkt(p, &l.mld6.Lenerr)
				return
			}
			q.version = modeV3
			q.maxResp = time.Duration(decodeCode(binary.BigEndian.Uint16(m[4:6]), 16)) * time.Millisecond
			q.qrv = m[24] & 0x07
			q.qqi = time.Duration(decodeCode(uint16(m[25]), 8)) * time.Second
		default:
			l.dropPkt(p, &l.mld6.Lenerr)
			return
		}
		if group.IsUnspecified() {
			q.group = netip.Addr{}
		} else if !group.IsMulticast() {
			l.dropPkt(p, &l.mld6.Proterr)
			return
		}
		l.mcQueryInput(h.Netif, true, &q)
	case wire.ICMPv6MLDReport:
		if group.IsMulticast() {
			l.mcReportHeard(h.Netif, true, group)
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
	p := l.mcAlloc(true, mldV1Len)
	if p == nil {
		return
	}
	msg := p.Payload()[mldHdrLen:]
	dst := g
	msg[0] = wire.ICMPv6MLDReport
	if done {
		msg[0], dst = wire.ICMPv6MLDDone, allRouters6
	}
	a := g.As16()
	copy(msg[8:24], a[:])
	l.mldSend(n, p, dst)
}

package ip

import (
	"net/netip"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

const (
	// IPv4 option 148, Router Alert (RFC 2113 §2.1): type, length 4, value 0 ("Router
	// shall examine packet").
	ipOptRouterAlert = 0x94
	// RFC 3376 §4: IGMP is sent with "IP Precedence of Internetwork Control (e.g., Type of
	// Service 0xc0)".
	igmpTOS = 0xc0
)

var routerAlert4 = [4]byte{ipOptRouterAlert, 4, 0, 0}

// igmpHdrLen is the IPv4 header IGMP is sent with: 20 bytes and the Router Alert option.
const igmpHdrLen = wire.IPv4MinHeaderLen + len(routerAlert4)

// igmpInput handles an IGMP message (protocol 2); p is positioned at the IPv4 header
// (h.HeaderLen bytes, options included) and owned.
func (l *Layer) igmpInput(h *Header, p *pbuf.Pbuf) {
	hl := h.HeaderLen
	mlen, ok := l.messageLen(h, p, &l.igmp, wire.IGMPHeaderLen)
	if !ok {
		return
	}
	// RFC 3376 §4.1.2: the checksum is "the 16-bit one's complement of the one's
	// complement sum of the whole IGMP message"; a wrong one is silently ignored.
	if wire.Finish(p.Checksum(hl, mlen, 0)) != 0 {
		l.dropPkt(p, &l.igmp.Chkerr)
		return
	}
	// The first bytes are enough for every field read here; m's length tells the query
	// version as the message's would (wire.IGMP.QueryVersion).
	var buf [wire.IGMPv3QueryLen]byte
	m := wire.IGMP(buf[:p.CopyOut(buf[:min(mlen, len(buf))], hl)])
	switch m.Type() {
	case wire.IGMPQuery:
		// RFC 3376 §7.1: the query version is found from its length; "Query messages that
		// do not match any of the above conditions (e.g., a Query of length 10 octets)
		// MUST be silently ignored."
		q := mcQuery{group: m.Group(), maxResp: m.MaxRespTime()}
		switch m.QueryVersion() {
		case 1:
			q.version = modeV1
		case 2:
			q.version = modeV2
		case 3:
			if mlen < wire.IGMPv3QueryLen+4*m.NumSources() {
				l.dropPkt(p, &l.igmp.Lenerr)
				return
			}
			q.version, q.qrv, q.qqi = modeV3, m.QRV(), m.QQI()
		default:
			l.dropPkt(p, &l.igmp.Lenerr)
			return
		}
		if !q.generalOrMulticast() {
			l.dropPkt(p, &l.igmp.Proterr)
			return
		}
		// RFC 3376 §9.1: hosts should ignore v2 and v3 queries without the Router Alert
		// option, which makes forged off-link queries harmless.
		if q.version != modeV1 && !hasRouterAlert4(p, hl) {
			l.dropPkt(p, &l.igmp.Opterr)
			return
		}
		l.mcQueryInput(h.Netif, false, &q)
	case wire.IGMPv1Report, wire.IGMPv2Report:
		if g := m.Group(); g.IsMulticast() {
			l.mcReportHeard(h.Netif, false, g)
		}
	case wire.IGMPv2Leave, wire.IGMPv3Report:
		// Meant for routers.
	default:
		// RFC 3376 §4: "Unrecognized message types MUST be silently ignored."
		l.dropPkt(p, &l.igmp.Proterr)
		return
	}
	p.Free()
}

// hasRouterAlert4 reports whether the options of the IPv4 header at the start of p (hl
// bytes) carry a Router Alert (RFC 2113). p is borrowed.
func hasRouterAlert4(p *pbuf.Pbuf, hl int) bool {
	var b [wire.IPv4MaxHeaderLen]byte
	opts := b[:p.CopyOut(b[:hl], 0)]
	if len(opts) < wire.IPv4MinHeaderLen {
		return false
	}
	opts = opts[wire.IPv4MinHeaderLen:]
	for i := 0; i < len(opts); {
		switch t := opts[i]; t {
		case 0: // End of Option List
			return false
		case 1: // No Operation
			i++
		default:
			if i+1 >= len(opts) || opts[i+1] < 2 {
				return false
			}
			if t == ipOptRouterAlert && opts[i+1] == 4 {
				return true
			}
			i += int(opts[i+1])
		}
	}
	return false
}

// igmpSource is the source of IGMP messages on n: an IPv4 address of n, else 0.0.0.0
// (RFC 3376 §4.2.13: "The 0.0.0.0 source address may be used by a system that has not yet
// acquired an IP address").
func (l *Layer) igmpSource(n *Netif) netip.Addr {
	if a, err := l.SourceFor(allSystems4, n); err == nil {
		return a
	}
	return netip.IPv4Unspecified()
}

// igmpSend writes the IPv4 header in front of the message in p (owned) and sends it to dst
// on n. RFC 3376 §4 and RFC 2236 §2: "sent with IP TTL 1" and "the IP Router Alert Option
// (RFC 2113) in their IP header".
func (l *Layer) igmpSend(n *Netif, p *pbuf.Pbuf, dst netip.Addr) {
	b := p.Payload()
	msg := wire.IGMP(b[igmpHdrLen:])
	msg.SetChecksum()
	src := l.igmpSource(n)
	r := wire.IPv4Repr{TOS: igmpTOS, ID: l.ip4ID, TTL: 1, Protocol: wire.ProtoIGMP, Src: src, Dst: dst,
		Options: routerAlert4[:], PayloadLen: len(msg)}
	l.ip4ID++
	_ = r.Emit(b)
	l.igmp.Xmit++
	l.ip.Xmit++
	_ = l.send4(n, p, dst, src)
}

// igmpSendOld sends a v1 or v2 report for g (to g), or a v2 Leave Group (to 224.0.0.2,
// RFC 2236 §3).
func (l *Layer) igmpSendOld(n *Netif, mode mcMode, g netip.Addr, leave bool) {
	p := l.mcAlloc(false, wire.IGMPHeaderLen)
	if p == nil {
		return
	}
	msg := wire.IGMP(p.Payload()[igmpHdrLen:])
	dst := g
	switch {
	case leave:
		msg.SetType(wire.IGMPv2Leave)
		dst = allRouters4
	case mode == modeV1:
		msg.SetType(wire.IGMPv1Report)
	default:
		msg.SetType(wire.IGMPv2Report)
	}
	msg.SetGroup(g)
	l.igmpSend(n, p, dst)
}

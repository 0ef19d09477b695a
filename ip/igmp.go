package ip

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// IGMP messages (RFC 3376 §4, RFC 2236 §2, RFC 1112 Appendix I). wire has no IGMP view; the
// few fields a host reads and writes are handled here.
const (
	igmpQuery    = 0x11 // Membership Query (all versions)
	igmpV1Report = 0x12
	igmpV2Report = 0x16
	igmpV2Leave  = 0x17
	igmpV3Report = 0x22

	igmpMinLen     = 8  // v1/v2 messages, and the shortest query
	igmpV3QueryLen = 12 // v3 query without sources
	igmpRecLen     = 8  // v3 group record without sources or auxiliary data

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

// decodeCode decodes a floating-point Max Resp Code or QQIC of bits bits (RFC 3376
// §4.1.1, §4.1.7 and RFC 3810 §5.1.9: 8; RFC 3810 §5.1.3: 16): below 1<<(bits-1) the
// value itself, else "(mant | 0x10) << (exp + 3)" with a mantissa of bits-4 bits and the
// 3-bit exponent above it.
func decodeCode(c uint16, bits uint) int {
	if c < 1<<(bits-1) {
		return int(c)
	}
	m := bits - 4
	return int(c&(1<<m-1)|1<<m) << ((c>>m)&0x07 + 3)
}

// igmpInput handles an IGMP message (protocol 2); p is positioned at the IPv4 header
// (h.HeaderLen bytes, options included) and owned.
func (l *Layer) igmpInput(h *Header, p *pbuf.Pbuf) {
	l.igmp.Recv++
	hl := h.HeaderLen
	mlen := p.TotLen() - hl
	if mlen < igmpMinLen {
		l.dropPkt(p, &l.igmp.Lenerr)
		return
	}
	// RFC 3376 §4.1.2: the checksum is "the 16-bit one's complement of the one's
	// complement sum of the whole IGMP message"; a wrong one is silently ignored.
	if wire.Finish(ChainChecksum(p, hl, mlen, 0)) != 0 {
		l.dropPkt(p, &l.igmp.Chkerr)
		return
	}
	var m [igmpV3QueryLen]byte
	p.CopyOut(m[:min(mlen, len(m))], hl)
	group := netip.AddrFrom4([4]byte(m[4:8]))
	switch m[0] {
	case igmpQuery:
		q := mcQuery{group: group}
		// RFC 3376 §7.1: the query version is found from its length: "IGMPv1 Query:
		// length = 8 octets AND Max Resp Code field is zero; IGMPv2 Query: length = 8
		// octets AND Max Resp Code field is non-zero; IGMPv3 Query: length >= 12 octets.
		// Query messages that do not match any of the above conditions (e.g., a Query of
		// length 10 octets) MUST be silently ignored."
		switch {
		case mlen == igmpMinLen && m[1] == 0:
			// RFC 2236 §4: a v1 query's Max Response Time "MUST be interpreted as a value
			// of 100 (10 seconds)".
			q.version, q.maxResp = modeV1, 10*time.Second
		case mlen == igmpMinLen:
			q.version, q.maxResp = modeV2, time.Duration(m[1])*100*time.Millisecond
		case mlen >= igmpV3QueryLen:
			ns := int(binary.BigEndian.Uint16(m[10:12]))
			if mlen < igmpV3QueryLen+4*ns {
				l.dropPkt(p, &l.igmp.Lenerr)
				return
			}
			q.version = modeV3
			q.maxResp = time.Duration(decodeCode(uint16(m[1]), 8)) * 100 * time.Millisecond
			q.qrv = m[8] & 0x07
			q.qqi = time.Duration(decodeCode(uint16(m[9]), 8)) * time.Second
		default:
			l.dropPkt(p, &l.igmp.Lenerr)
			return
		}
		if group.IsUnspecified() {
			q.group = netip.Addr{}
		} else if !group.IsMulticast() {
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
	case igmpV1Report, igmpV2Report:
		if group.IsMulticast() {
			l.mcReportHeard(h.Netif, false, group)
		}
	case igmpV2Leave, igmpV3Report:
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
	msg := b[igmpHdrLen:]
	binary.BigEndian.PutUint16(msg[2:4], 0)
	binary.BigEndian.PutUint16(msg[2:4], wire.Finish(wire.Checksum(msg, 0)))
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
	p := l.mcAlloc(false, igmpMinLen)
	if p == nil {
		return
	}
	msg := p.Payload()[igmpHdrLen:]
	dst := g
	switch {
	case leave:
		msg[0], dst = igmpV2Leave, allRouters4
	case mode == modeV1:
		msg[0] = igmpV1Report
	default:
		msg[0] = igmpV2Report
	}
	a := g.As4()
	copy(msg[4:8], a[:])
	l.igmpSend(n, p, dst)
}

package ip

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

var (
	grp1   = mustAddr("239.1.1.1")
	grp2   = mustAddr("239.1.1.2")
	grp3   = mustAddr("239.1.1.3")
	grp6a  = mustAddr("ff02::1:3")
	grp6b  = mustAddr("ff05::db8:1")
	ll6A   = mustAddr("fe80::a")
	ll6Q   = mustAddr("fe80::99")
	query4 = mustAddr("198.18.0.254") // the querier
)

// mcMsg is an IGMP or MLD packet as gopacket decodes it.
type mcMsg struct {
	src, dst netip.Addr
	ttl      uint8
	tos      uint8
	ra       bool   // Router Alert (IPv4 option 148 / IPv6 hop-by-hop option 5 value 0)
	csumOK   bool   // IGMP / ICMPv6 checksum verified
	kind     string // v1report v2report leave v3report mldv1report done mldv2report
	groups   []netip.Addr
	recs     []uint8 // v3 record types, parallel to groups
	ethDst   [6]byte
}

func addrOf(ip []byte) netip.Addr { a, _ := netip.AddrFromSlice(ip); return a.Unmap() }

// decodeMc decodes one frame written by a netif of the given medium; ok is false for
// frames that are not IGMP or MLD.
func decodeMc(t *testing.T, frame []byte, medium link.Medium) (m mcMsg, ok bool) {
	t.Helper()
	first := gopacket.LayerType(layers.LayerTypeEthernet)
	if medium == link.MediumIP {
		first = layers.LayerTypeIPv4
		if frame[0]>>4 == 6 {
			first = layers.LayerTypeIPv6
		}
	}
	pkt := gopacket.NewPacket(frame, first, gopacket.Default)
	if e, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); e != nil {
		copy(m.ethDst[:], e.DstMAC)
	}
	if ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ip != nil {
		if ip.Protocol != layers.IPProtocolIGMP {
			return m, false
		}
		m.src, m.dst, m.ttl, m.tos = addrOf(ip.SrcIP), addrOf(ip.DstIP), ip.TTL, ip.TOS
		for _, o := range ip.Options {
			if o.OptionType == 148 && o.OptionLength == 4 {
				m.ra = true
			}
		}
		m.csumOK = wire.Finish(wire.Checksum(ip.Payload, 0)) == 0
		switch l := pkt.Layer(layers.LayerTypeIGMP).(type) {
		case *layers.IGMPv1or2:
			switch l.Type {
			case layers.IGMPMembershipReportV1:
				m.kind = "v1report"
			case layers.IGMPMembershipReportV2:
				m.kind = "v2report"
			case layers.IGMPLeaveGroup:
				m.kind = "leave"
			default:
				m.kind = "igmp?"
			}
			m.groups = []netip.Addr{addrOf(l.GroupAddress)}
		case *layers.IGMP:
			m.kind = "v3report"
			for _, r := range l.GroupRecords {
				m.groups = append(m.groups, addrOf(r.MulticastAddress))
				m.recs = append(m.recs, uint8(r.Type))
			}
		default:
			t.Fatalf("undecodable IGMP: %v", pkt)
		}
		return m, true
	}
	ip, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	ic, _ := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if ip == nil || ic == nil {
		return m, false
	}
	typ := ic.TypeCode.Type()
	if typ != 131 && typ != 132 && typ != 143 && typ != 130 {
		return m, false
	}
	m.src, m.dst, m.ttl = addrOf(ip.SrcIP), addrOf(ip.DstIP), ip.HopLimit
	if hbh, _ := pkt.Layer(layers.LayerTypeIPv6HopByHop).(*layers.IPv6HopByHop); hbh != nil {
		for _, o := range hbh.Options {
			if o.OptionType == 5 && len(o.OptionData) == 2 && o.OptionData[0] == 0 && o.OptionData[1] == 0 {
				m.ra = true
			}
		}
	}
	msg := append(append([]byte(nil), ic.Contents...), ic.Payload...)
	m.csumOK = wire.Finish(wire.Checksum(msg, wire.PseudoHeaderChecksum(wire.ProtoICMPv6, m.src, m.dst, uint32(len(msg))))) == 0
	switch typ {
	case 131, 132:
		m.kind = "mldv1report"
		if typ == 132 {
			m.kind = "done"
		}
		m.groups = []netip.Addr{wire.MLD(msg).Group()}
	case 143:
		m.kind = "mldv2report"
		r, _ := pkt.Layer(layers.LayerTypeMLDv2MulticastListenerReport).(*layers.MLDv2MulticastListenerReportMessage)
		if r == nil {
			t.Fatalf("undecodable MLDv2 report: %v", pkt)
		}
		for _, rec := range r.MulticastAddressRecords {
			m.groups = append(m.groups, addrOf(rec.MulticastAddress))
			m.recs = append(m.recs, uint8(rec.RecordType))
		}
	default:
		m.kind = "query"
	}
	return m, true
}

// mcMsgs decodes the IGMP and MLD messages among frames, checking the rules every one of
// them must follow: TTL / hop limit 1, Router Alert, a good checksum.
func mcMsgs(t *testing.T, frames [][]byte, medium link.Medium) []mcMsg {
	t.Helper()
	var out []mcMsg
	for _, f := range frames {
		m, ok := decodeMc(t, f, medium)
		if !ok {
			continue
		}
		if m.ttl != 1 || !m.ra || !m.csumOK {
			t.Errorf("%s to %v: ttl %d, router alert %v, checksum ok %v", m.kind, m.dst, m.ttl, m.ra, m.csumOK)
		}
		if m.src.Is4() && m.tos != igmpTOS {
			t.Errorf("%s: TOS %#x", m.kind, m.tos)
		}
		out = append(out, m)
	}
	return out
}

// mcEnv is one layer with an IP-medium netif (v4A/24, fe80::a/64, v6A/64) writing to a
// capturing endpoint.
func mcEnv(t *testing.T, o opt.Options) (*env, *Netif, *linktest.Capture) {
	t.Helper()
	e := newEnv(t, o, 3)
	ep := &linktest.Capture{}
	n, err := e.l.AddNetif(ep, NetifConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{mustPrefix(v4A, 24), mustPrefix(ll6A, 64), mustPrefix(v6A, 64)} {
		if err := n.AddAddr(p); err != nil {
			t.Fatal(err)
		}
	}
	n.SetUp(true)
	t.Cleanup(e.close)
	return e, n, ep
}

// run advances e's clock by d in steps of 10 ms, flushing after each.
func (e *env) run(d time.Duration) {
	for s := time.Duration(0); s < d; s += 10 * time.Millisecond {
		e.clk.Advance(10 * time.Millisecond)
		e.l.Flush()
	}
}

// igmpQueryPkt builds an IGMP query from query4 to dst: version 1 and 2 are 8 bytes, 3 is
// 12 bytes plus sources; ra adds the Router Alert option.
func igmpQueryPkt(dst netip.Addr, version int, code uint8, g netip.Addr, qrv, qqic uint8, ra bool, srcs ...netip.Addr) []byte {
	msg := make([]byte, wire.IGMPHeaderLen)
	if version == 3 {
		msg = make([]byte, wire.IGMPv3QueryLen, wire.IGMPv3QueryLen+4*len(srcs))
		wire.IGMP(msg).SetQuery(qrv, qqic, len(srcs))
		for _, s := range srcs {
			a := s.As4()
			msg = append(msg, a[:]...)
		}
	}
	m := wire.IGMP(msg)
	m.SetType(wire.IGMPQuery)
	if version != 1 {
		m.SetMaxRespCode(code)
	}
	m.SetGroup(g)
	return igmpPkt(query4, dst, msg, ra, 1)
}

// igmpReport is an IGMPv2 report for g, its checksum left to igmpPkt.
func igmpReport(g netip.Addr) []byte {
	m := wire.IGMP(make([]byte, wire.IGMPHeaderLen))
	m.SetType(wire.IGMPv2Report)
	m.SetGroup(g)
	return m
}

// igmpPkt wraps an IGMP message (its checksum filled here) in an IPv4 header.
func igmpPkt(src, dst netip.Addr, msg []byte, ra bool, ttl uint8) []byte {
	wire.IGMP(msg).SetChecksum()
	r := wire.IPv4Repr{TTL: ttl, Protocol: wire.ProtoIGMP, Src: src, Dst: dst, PayloadLen: len(msg), ID: 9}
	if ra {
		r.Options = routerAlert4[:]
	}
	b := make([]byte, r.HeaderLen()+len(msg))
	copy(b[r.HeaderLen():], msg)
	if err := r.Emit(b); err != nil {
		panic(err)
	}
	return b
}

// mldQueryPkt builds an MLD query from src to dst: v1 (24 bytes) or v2 (28 bytes).
func mldQueryPkt(src, dst netip.Addr, v2 bool, maxResp uint16, g netip.Addr, hop uint8, ra bool) []byte {
	msg := make([]byte, wire.MLDv1Len)
	if v2 {
		msg = make([]byte, wire.MLDv2QueryLen)
		wire.MLD(msg).SetQuery(2, 125, 0)
	}
	m := wire.MLD(msg)
	m.SetType(wire.ICMPv6MLDQuery)
	m.SetMaxRespCode(maxResp)
	m.SetGroup(g)
	return mldPkt(src, dst, msg, hop, ra)
}

// mldPkt wraps an MLD message (checksum filled here) in IPv6 with a Hop-by-Hop header
// carrying a Router Alert when ra (else a PadN only).
func mldPkt(src, dst netip.Addr, msg []byte, hop uint8, ra bool) []byte {
	wire.ICMPv6(msg).SetChecksum(src, dst)
	hbh := []byte{wire.ProtoICMPv6, 0, wire.IPv6OptPadN, 4, 0, 0, 0, 0}
	if ra {
		hbh = mldHBH[:]
	}
	return ipv6Packet(src, dst, wire.ProtoHopByHop, hop, append(append([]byte(nil), hbh...), msg...))
}

// udpTo builds a fake UDP packet to a group.
func udpTo(src, dst netip.Addr) []byte {
	if dst.Is4() {
		return ipv4Packet(src, dst, wire.ProtoUDP, 1, udpish(8))
	}
	return ipv6Packet(src, dst, wire.ProtoUDP, 1, udpish(8))
}

// tapEP records every frame a link endpoint is given, and passes it on (Take, as
// linktest.Capture's, returns them).
type tapEP struct {
	link.Endpoint
	frames [][]byte
}

func (t *tapEP) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	for _, p := range pkts {
		t.frames = append(t.frames, p.Bytes(nil))
	}
	return t.Endpoint.WritePackets(pkts)
}

func (t *tapEP) Take() [][]byte { f := t.frames; t.frames = nil; return f }

// newMcPair is a pair (seeds 11 and 12) with MTU 1500, each netif up with v4A/v4B, ULA
// and, on bare IP, link-local addresses.
func newMcPair(t *testing.T, medium link.Medium, o opt.Options) *pair {
	t.Helper()
	p := newPairSeeded(t, medium, 1500, o, 11, 12)
	for i, n := range []*Netif{p.na, p.nb} {
		_ = n.AddAddr(mustPrefix(netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}), 24))
		_ = n.AddAddr(mustPrefix(netip.AddrFrom16([16]byte{0xfd, 0x42, 15: byte(i + 1)}), 64))
		if medium == link.MediumIP {
			_ = n.AddAddr(mustPrefix(netip.AddrFrom16([16]byte{0xfe, 0x80, 15: byte(i + 1)}), 64))
		}
		n.SetUp(true)
	}
	return p
}

// badInput is a packet the layer must drop, and the counter that names its reason.
type badInput struct {
	name  string
	pkt   []byte
	field func(s *stats.Snapshot) uint64
}

// checkDrops injects each case to n and checks that it counts once under its reason and
// once under drop.
func checkDrops(t *testing.T, e *env, n *Netif, cases []badInput, drop func(s *stats.Snapshot) uint64) {
	t.Helper()
	for _, c := range cases {
		before := e.stats()
		e.inject(n, c.pkt)
		after := e.stats()
		if c.field(&after) != c.field(&before)+1 || drop(&after) != drop(&before)+1 {
			t.Errorf("%s: counter %d→%d, drop %d→%d", c.name, c.field(&before), c.field(&after), drop(&before), drop(&after))
		}
	}
}

// joinedEnv is mcEnv with membership of groups, settled: the reports sent and discarded.
func joinedEnv(t *testing.T, groups ...netip.Addr) (*env, *Netif, *linktest.Capture) {
	t.Helper()
	e, n, ep := mcEnv(t, testOptions())
	for _, g := range groups {
		if err := e.l.JoinGroup(n, g); err != nil {
			t.Fatalf("join %v: %v", g, err)
		}
	}
	e.run(2 * time.Second)
	ep.Take()
	return e, n, ep
}

// loopEnv is joinedEnv of grp1 and grp6b with a recording UDP transport.
func loopEnv(t *testing.T) (*env, *Netif, *linktest.Capture, *recTransport) {
	t.Helper()
	e, n, ep := joinedEnv(t, grp1, grp6b)
	tr := &recTransport{l: e.l}
	e.l.RegisterTransport(wire.ProtoUDP, tr)
	return e, n, ep, tr
}

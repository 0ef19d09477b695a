package wire

import (
	"testing"
)

// TestZeroAllocs pins every hot path at zero allocations.
func TestZeroAllocs(t *testing.T) {
	eth := append([]byte(nil), ethFixture...)
	ip4 := ipv4FixturePacket()
	ip6 := ipv6ChainFixture()
	icmp4 := append([]byte(nil), icmpv4EchoFixture...)
	icmp6 := append([]byte(nil), icmpv6EchoFixture...)
	udp := append([]byte(nil), udpFixture...)
	tcp := append([]byte(nil), tcpSynFixture...)
	ns := buildNS(t, make([]byte, 64))
	arp := append([]byte(nil), arpRequestFixture...)
	buf := make([]byte, 256)
	big := make([]byte, 1500)
	tcpOpts := TCPOptions{HasMSS: true, MSS: 1460, HasWindowScale: true, WindowScale: 7,
		SACKPermitted: true, HasTimestamps: true, TSVal: 1, TSEcr: 2}

	var (
		er   EthernetRepr
		ar   ARPRepr
		r4   IPv4Repr
		r6   IPv6Repr
		rf   IPv6FragmentRepr
		ri4  ICMPv4Repr
		ri6  ICMPv6Repr
		ru   UDPRepr
		rt   TCPRepr
		rra  NDPRouterAdvertRepr
		sink uint32
	)
	for name, fn := range map[string]func(){
		"Checksum1500": func() { sink += uint32(Finish(Checksum(big, 0))) },
		"PseudoHeader": func() { sink += PseudoHeaderChecksum(ProtoTCP, v6src, v6dst, 1500) },
		"Update": func() {
			sink += uint32(ChecksumUpdateAddr(ChecksumUpdate32(ChecksumUpdate16(1, 2, 3), 4, 5), v4a, v4b))
		},
		"Ethernet": func() {
			_ = er.Parse(eth)
			_ = er.Emit(buf)
		},
		"ARP": func() {
			_ = ar.Parse(arp)
			_ = ar.Emit(buf)
		},
		"IPv4": func() {
			_ = r4.Parse(ip4)
			_ = r4.Emit(buf)
			IPv4(ip4).SetTTL(IPv4(ip4).TTL() - 1)
			IPv4(ip4).SetSrc(v4a)
			IPv4(ip4).SetFragment(false, false, 0)
			_ = IPv4(ip4).Payload()
		},
		"IPv6": func() {
			_ = r6.Parse(ip6)
			_ = r6.Emit(buf)
			c, _ := WalkIPv6(ip6)
			_ = rf.Parse(ip6[c.FragmentOffset:])
			_ = rf.Emit(buf)
			it := IPv6ExtHeader(ip6[40:]).Options()
			for _, ok := it.Next(); ok; _, ok = it.Next() {
			}
		},
		"ICMPv4": func() {
			_ = ri4.Parse(icmp4)
			_ = ri4.Emit(icmp4)
		},
		"ICMPv6": func() {
			_ = ri6.Parse(icmp6, ll1, ll2)
			_ = ri6.Emit(icmp6, ll1, ll2)
		},
		"NDP": func() {
			_ = CheckICMPv6(ns, ll1, solNode)
			_ = CheckNDPNeighborSolicit(ns)
			it := NDPNeighborSolicit(ns).Options().Iter()
			for o, ok := it.Next(); ok; o, ok = it.Next() {
				_, _ = o.LinkLayerAddr()
			}
			n, _ := EmitNDPNeighborAdvert(buf, NDPNASolicited, targetAddr)
			m, _ := EmitNDPLinkLayerOption(buf[n:], NDPOptTargetLLAddr, macA)
			ICMPv6(buf[:n+m]).SetChecksum(ll1, ll2)
			_, _ = rra.Emit(buf)
		},
		"UDP": func() {
			_ = ru.Parse(udp, v4a, v4b)
			_ = ru.Emit(udp, v4a, v4b)
			_ = ru.EmitHeader(buf)
			UDP(buf).SetChecksumField(UDPChecksum(Checksum(udp, 0)))
		},
		"EchoSetters": func() {
			m := ICMPv4(buf)
			m.SetType(ICMPv4EchoRequest)
			m.SetIdent(1)
			m.SetSeq(2)
			m.SetChecksumField(Finish(Checksum(m[:64], 0)))
			ICMPv6(buf).SetType(ICMPv6EchoReply)
		},
		"IGMP": func() {
			m := IGMP(buf[:IGMPHeaderLen+IGMPv3RecordLen])
			m.SetType(IGMPv3Report)
			m.SetNumRecords(1)
			IGMPv3Record(m[IGMPHeaderLen:]).SetGroup(v4a)
			m.SetChecksum()
			if CheckIGMP(m) == nil && CheckIGMP(igmpV3QueryFixture) == nil {
				readIGMP(t, m)
				readIGMP(t, igmpV3QueryFixture)
			}
		},
		"MLD": func() {
			MLD(buf).SetGroup(v6src)
			MLDv2Record(buf).SetGroup(grp6a)
			_, _ = CheckMLD(mldV2QueryFixture), CheckMLD(mldV2ReportFixture)
			readMLD(t, mldV2ReportFixture)
			readMLD(t, mldV2QueryFixture)
		},
		"TCP": func() {
			_ = rt.Parse(tcp, v4a, v4b)
			_ = rt.Emit(buf, v4a, v4b)
			rt.Options = tcpOpts
			_ = rt.Emit(buf, v6src, v6dst)
			o, _ := ParseTCPOptions(TCP(buf).Options())
			sink += o.TSVal
		},
	} {
		if a := testing.AllocsPerRun(100, fn); a != 0 {
			t.Errorf("%s: %v allocs per run", name, a)
		}
	}
	_ = sink
}

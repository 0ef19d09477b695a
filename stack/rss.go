package stack

import (
	"encoding/binary"
	"net/netip"

	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// Flow steering: which core a TCP segment belongs to. The hash is symmetric (a segment and
// its answer hash alike, as symmetric RSS keys make a NIC's Toeplitz hash) and keyed by a
// per-stack secret, so a peer cannot aim its connections at one core.

// flowHash mixes the two endpoints of a flow in an order-independent way.
func (s *Stack) flowHash(a, b netip.Addr, pa, pb uint16) uint32 {
	ha := endHash(a, pa, s.hashKey)
	hb := endHash(b, pb, s.hashKey)
	return uint32(mix64((ha ^ hb) + s.hashKey))
}

// endHash hashes one endpoint (address and port); an IPv4 address and its IPv4-mapped
// IPv6 form hash alike.
func endHash(a netip.Addr, port uint16, key uint64) uint64 {
	b := a.Unmap().As16()
	h := key ^ uint64(port)<<48
	h = mix64(h ^ binary.LittleEndian.Uint64(b[:8]))
	return mix64(h ^ binary.LittleEndian.Uint64(b[8:]))
}

// mix64 is splitmix64's finalizer.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// coreFor returns the index of the core a TCP connection between the two endpoints lives on.
func (s *Stack) coreFor(a, b netip.Addr, pa, pb uint16) int {
	if len(s.cores) == 1 {
		return 0
	}
	return int(uint64(s.flowHash(a, b, pa, pb)) * uint64(len(s.cores)) >> 32)
}

// CoreFor returns the core on which the TCP connection between local and remote lives (or
// would live): core 0 on a stack with one core.
func (s *Stack) CoreFor(local, remote netip.AddrPort) *Core {
	return s.cores[s.coreFor(local.Addr(), remote.Addr(), local.Port(), remote.Port())]
}

// allCores is what steer returns for a frame every core must see: the ARP and neighbour
// discovery messages of an Ethernet link, from which every core's view of the link learns
// its neighbours (core 0's answers them; the others follow, see ip.NetifConfig.Follower).
const allCores = 0xff

// steer returns the core a received packet goes to: the core of its TCP connection, of the
// TCP connection an ICMP error quotes, every core (allCores) for an Ethernet link's ARP and
// ND messages, or core 0 for everything else (UDP, ICMP, fragments, packets whose headers
// are not in the first pbuf). eth says the frame starts with an Ethernet header. It borrows
// p and reads only its first pbuf; core 0 passes on what it learns later (tcpSteer).
func (s *Stack) steer(p *pbuf.Pbuf, eth bool) int {
	b := p.Payload()
	if eth {
		if len(b) < wire.EthernetHeaderLen {
			return 0
		}
		typ := binary.BigEndian.Uint16(b[12:])
		b = b[wire.EthernetHeaderLen:]
		switch typ {
		case uint16(wire.EtherTypeARP):
			return allCores
		case uint16(wire.EtherTypeIPv6):
			if isND(b) {
				return allCores
			}
		case uint16(wire.EtherTypeIPv4):
		default:
			return 0
		}
	}
	if len(b) < 20 {
		return 0
	}
	switch b[0] >> 4 {
	case 4:
		return s.steer4(b, true)
	case 6:
		return s.steer6(b, true)
	}
	return 0
}

// steer4 steers an IPv4 packet b; outer says whether an ICMP error inside may be followed.
func (s *Stack) steer4(b []byte, outer bool) int {
	hl := int(b[0]&0xf) * 4
	if hl < 20 || len(b) < hl+8 {
		return 0
	}
	if binary.BigEndian.Uint16(b[6:])&0x3fff != 0 { // MF or an offset: reassembly is core 0's
		return 0
	}
	src, _ := netip.AddrFromSlice(b[12:16])
	dst, _ := netip.AddrFromSlice(b[16:20])
	switch b[9] {
	case wire.ProtoTCP:
		return s.coreFor(src, dst, binary.BigEndian.Uint16(b[hl:]), binary.BigEndian.Uint16(b[hl+2:]))
	case wire.ProtoICMP:
		// Destination unreachable, time exceeded, parameter problem quote our packet.
		if t := b[hl]; outer && (t == 3 || t == 11 || t == 12) && len(b) >= hl+8+20 && b[hl+8]>>4 == 4 {
			return s.steer4(b[hl+8:], false)
		}
	}
	return 0
}

// steer6 steers an IPv6 packet b whose next header is TCP or an ICMPv6 error quoting one
// (extension headers go to core 0).
func (s *Stack) steer6(b []byte, outer bool) int {
	if len(b) < 40+8 {
		return 0
	}
	src, _ := netip.AddrFromSlice(b[8:24])
	dst, _ := netip.AddrFromSlice(b[24:40])
	switch b[6] {
	case wire.ProtoTCP:
		return s.coreFor(src, dst, binary.BigEndian.Uint16(b[40:]), binary.BigEndian.Uint16(b[42:]))
	case wire.ProtoICMPv6:
		// Errors are types 1-4 (RFC 4443 §2.1); they quote our packet after 8 bytes.
		if t := b[40]; outer && t >= 1 && t <= 4 && len(b) >= 48+40 && b[48]>>4 == 6 {
			return s.steer6(b[48:], false)
		}
	}
	return 0
}

// isND reports whether IPv6 packet b is a neighbour discovery message (RFC 4861: router
// solicitation and advertisement, neighbour solicitation and advertisement, redirect),
// which carries no extension headers.
func isND(b []byte) bool {
	return len(b) > 40 && b[0]>>4 == 6 && b[6] == wire.ProtoICMPv6 && b[40] >= 133 && b[40] <= 137
}

// tcpSteer is core 0's TCP on a stack with several cores: a segment of a connection of
// another core (reassembled from fragments, or with its headers beyond the first pbuf)
// and an ICMP error about one go on to that core. Core 0's lock is held; another core's is
// taken inside it, which keeps the ascending order of nested core locks.
type tcpSteer Stack

// Input implements ip.Transport; it takes ownership of p.
func (t *tcpSteer) Input(h *ip.Header, p *pbuf.Pbuf) {
	s := (*Stack)(t)
	var ports [4]byte
	k := 0
	if p.CopyOut(ports[:], 0) == 4 {
		k = s.coreFor(h.Src, h.Dst, binary.BigEndian.Uint16(ports[:]), binary.BigEndian.Uint16(ports[2:]))
	}
	if k == 0 {
		s.cores[0].tcp.Input(h, p)
		return
	}
	c := s.cores[k]
	c.lk.Lock()
	h2 := *h
	h2.Netif = s.coreNetif(h.Netif, k)
	c.tcp.Input(&h2, p)
	c.lk.Unlock()
}

// ControlInput implements ip.Transport.
func (t *tcpSteer) ControlInput(h *ip.Header, kind ip.ControlKind, mtu int, quoted []byte) {
	s := (*Stack)(t)
	k := 0
	if len(quoted) >= h.HeaderLen+4 {
		q := quoted[h.HeaderLen:]
		k = s.coreFor(h.Src, h.Dst, binary.BigEndian.Uint16(q), binary.BigEndian.Uint16(q[2:]))
	}
	if k == 0 {
		s.cores[0].tcp.ControlInput(h, kind, mtu, quoted)
		return
	}
	c := s.cores[k]
	c.lk.Lock()
	h2 := *h
	h2.Netif = s.coreNetif(h.Netif, k)
	c.tcp.ControlInput(&h2, kind, mtu, quoted)
	c.lk.Unlock()
}

// coreNetif returns core k's netif for core 0's netif n (core 0's lock held).
func (s *Stack) coreNetif(n *ip.Netif, k int) *ip.Netif {
	for _, nif := range s.netifs {
		if nif.per[0] == n {
			return nif.per[k]
		}
	}
	return nil
}

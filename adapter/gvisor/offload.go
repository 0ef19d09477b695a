package gvisor

import (
	"encoding/binary"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// Offloads between the two stacks. Both name the same thing: one large TCP packet, one
// header, cut into MSS-sized segments by whoever is last before the wire (the host kernel
// behind a virtio-net header, usually), with its TCP checksum field holding the folded
// pseudo-header sum, not complemented (Linux's CHECKSUM_PARTIAL). gVisor marks such a
// PacketBuffer with GSOOptions (Type GSOTCPv4/6, NeedsCsum, CsumOffset 16, MSS, L3HdrLen)
// and writes that sum itself (its TCP's buildTCPHdr); wisp marks a pbuf with SetGSO and
// FlagChecksumPartial and writes the same sum. Only gVisor's host GSO
// (stack.HostGSOSupported) is that: its GVisorGSOSupported asks the endpoint to cut the
// packet in gVisor's own code, which wisp has no use for.
//
//	wisp GSO pbuf ──Link.WritePackets──▶ PacketBuffer + GSOOptions ──▶ fdbased: virtio-net header
//	gVisor TCP ──GSOOptions──▶ Endpoint.WritePackets ──▶ wisp GSO pbuf ──▶ a wisp link with TSO

// hostGSOMax returns the GSOMax wisp may use on gVisor endpoint ep: its GSOMaxSize, at most
// 65535, when it offers host GSO, else 0.
func hostGSOMax(ep stack.LinkEndpoint) int {
	g, ok := ep.(stack.GSOEndpoint)
	if !ok || g.SupportedGSO() != stack.HostGSOSupported {
		return 0
	}
	return int(min(g.GSOMaxSize(), 0xffff))
}

// linkGSOMax returns the GSO packet size a gVisor stack may give the Endpoint over wisp
// link ep: the link's GSOMax, at most 65535, when it segments TCP over both IP versions
// (gVisor asks for host GSO per endpoint, not per version) and completes checksums; else 0.
func linkGSOMax(ep link.Endpoint) int {
	o, ok := ep.(link.Offloader)
	if !ok {
		return 0
	}
	off := o.Offloads()
	if !off.TxChecksum || !off.TSO4 || !off.TSO6 || off.GSOMax <= ep.MTU() {
		return 0
	}
	return min(off.GSOMax, 0xffff)
}

// l4 is where a packet's transport header is: l3 bytes of IP header (extension headers
// included) before it, its protocol, and for TCP the header length (0 otherwise).
type l4 struct {
	l3    int
	proto uint8
	thl   int
	v6    bool
}

// maxL4Probe is how many bytes of a packet l4Of wants to see: an IPv6 header with a few
// extension headers, or IPv4 with options, and a TCP header with options.
const maxL4Probe = 160

// l4Of finds the transport header of IP packet b (its first bytes, up to maxL4Probe):
// wire.IPTransport, and the TCP header length. A fragment (IPv4 or IPv6) or a header that
// does not fit b is not ok.
func l4Of(b []byte) (l4, bool) {
	var r l4
	off, proto, _, ok := wire.IPTransport(b)
	if !ok {
		return r, false
	}
	r.l3, r.proto, r.v6 = off, proto, b[0]>>4 == 6
	if r.proto == uint8(header.TCPProtocolNumber) {
		if len(b) < r.l3+header.TCPMinimumSize {
			return r, false
		}
		r.thl = int(b[r.l3+12]>>4) * 4
		if r.thl < header.TCPMinimumSize {
			return r, false
		}
	}
	return r, true
}

// checksumPartial reports whether the TCP or UDP checksum field of IP packet b (its first
// bytes; t from l4Of) holds the folded pseudo-header sum of the packet, as a partial
// checksum does. The transport length comes from the IP header, not from len(b).
func checksumPartial(b []byte, t l4) bool {
	off := wire.ChecksumOffset(t.proto)
	if off == 0 || len(b) < t.l3+off+2 {
		return false
	}
	var src, dst netip.Addr
	var length int
	if t.v6 {
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		length = header.IPv6MinimumSize + int(binary.BigEndian.Uint16(b[4:6])) - t.l3
	} else {
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		length = int(binary.BigEndian.Uint16(b[2:4])) - t.l3
	}
	if length < off+2 {
		return false
	}
	sum := wire.Fold(wire.PseudoHeaderChecksum(t.proto, src, dst, uint32(length)))
	return binary.BigEndian.Uint16(b[t.l3+off:]) == sum
}

// gsoTypeOf maps gVisor's host GSO types to wisp's.
func gsoTypeOf(t stack.GSOType) pbuf.GSOType {
	switch t {
	case stack.GSOTCPv4:
		return pbuf.GSOTCPv4
	case stack.GSOTCPv6:
		return pbuf.GSOTCPv6
	}
	return pbuf.GSONone
}

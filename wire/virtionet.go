package wire

import "encoding/binary"

// VirtioNetHdrLen is the length of struct virtio_net_hdr, the header a Linux TUN device
// opened with IFF_VNET_HDR puts in front of every packet (virtio 1.x §5.1.6, without the
// num_buffers field of the mergeable-buffers variant).
const VirtioNetHdrLen = 10

// Flags of a virtio-net header.
const (
	// VirtioNetNeedsCsum: the transport checksum is partial; CsumStart and CsumOffset say
	// where the sum starts and where its result goes (VIRTIO_NET_HDR_F_NEEDS_CSUM).
	VirtioNetNeedsCsum = 1
	// VirtioNetDataValid: the checksums were verified (VIRTIO_NET_HDR_F_DATA_VALID).
	VirtioNetDataValid = 2
)

// GSO types of a virtio-net header (VIRTIO_NET_HDR_GSO_*).
const (
	VirtioNetGSONone  = 0
	VirtioNetGSOTCPv4 = 1
	VirtioNetGSOUDP   = 3 // UFO: IP fragmentation of one large datagram; refused
	VirtioNetGSOTCPv6 = 4
	VirtioNetGSOUDPL4 = 5 // USO: a UDP payload cut into datagrams
	// VirtioNetGSOECN is or-ed into a TCP type: the packet has CWR set, and the segments
	// after the first must not (VIRTIO_NET_HDR_GSO_ECN).
	VirtioNetGSOECN = 0x80
)

// VirtioNetHdr is a view of a virtio-net header. Its fields are little-endian: wisp asks
// the TUN device for that byte order (TUNSETVNETLE), which is also the kernel's default on
// little-endian hosts. Validate it with VirtioNetHdrRepr.Parse; the accessors need only
// VirtioNetHdrLen bytes.
type VirtioNetHdr []byte

// Flags is the flags byte (VirtioNetNeedsCsum, VirtioNetDataValid).
func (h VirtioNetHdr) Flags() uint8 { return h[0] }

// GSOType is the gso_type byte, the ECN bit included.
func (h VirtioNetHdr) GSOType() uint8 { return h[1] }

// HdrLen is hdr_len: the length of the headers (a hint for GSO packets).
func (h VirtioNetHdr) HdrLen() uint16 { return binary.LittleEndian.Uint16(h[2:4]) }

// GSOSize is gso_size: the payload bytes of each segment but the last.
func (h VirtioNetHdr) GSOSize() uint16 { return binary.LittleEndian.Uint16(h[4:6]) }

// CsumStart is csum_start: the offset, from the start of the packet, where the checksum
// sum starts (the transport header).
func (h VirtioNetHdr) CsumStart() uint16 { return binary.LittleEndian.Uint16(h[6:8]) }

// CsumOffset is csum_offset: where the checksum goes, from CsumStart (16 for TCP, 6 for UDP).
func (h VirtioNetHdr) CsumOffset() uint16 { return binary.LittleEndian.Uint16(h[8:10]) }

// VirtioNetHdrRepr is a parsed virtio-net header.
type VirtioNetHdrRepr struct {
	Flags      uint8 // VirtioNetNeedsCsum, VirtioNetDataValid
	GSOType    uint8 // VirtioNetGSO*, without the ECN bit
	ECN        bool  // VirtioNetGSOECN was set (TCP types only)
	HdrLen     uint16
	GSOSize    uint16
	CsumStart  uint16
	CsumOffset uint16
}

// Parse validates the header at the start of b against pktLen, the length of the packet
// that follows it, and fills r: known flags only; a known GSO type other than UFO, the ECN
// bit only on TCP; a GSO packet has a segment size and NEEDS_CSUM or DATA_VALID; with
// NEEDS_CSUM, csum_start+csum_offset+2 <= pktLen; hdr_len <= pktLen. It does not look at the
// packet: whether csum_start is really its transport header is the caller's to check.
func (r *VirtioNetHdrRepr) Parse(b []byte, pktLen int) error {
	if len(b) < VirtioNetHdrLen || pktLen < 0 {
		return ErrTruncated
	}
	h := VirtioNetHdr(b)
	if h.Flags()&^(VirtioNetNeedsCsum|VirtioNetDataValid) != 0 {
		return ErrVirtioNetFlags
	}
	typ := h.GSOType() &^ VirtioNetGSOECN
	ecn := h.GSOType()&VirtioNetGSOECN != 0
	switch typ {
	case VirtioNetGSONone, VirtioNetGSOUDPL4:
		if ecn {
			return ErrVirtioNetGSOType
		}
	case VirtioNetGSOTCPv4, VirtioNetGSOTCPv6:
	default:
		return ErrVirtioNetGSOType
	}
	if typ != VirtioNetGSONone && (h.GSOSize() == 0 || h.Flags() == 0) {
		return ErrVirtioNetGSO
	}
	if h.Flags()&VirtioNetNeedsCsum != 0 && int(h.CsumStart())+int(h.CsumOffset())+2 > pktLen {
		return ErrVirtioNetCsum
	}
	if int(h.HdrLen()) > pktLen {
		return ErrVirtioNetHdrLen
	}
	*r = VirtioNetHdrRepr{Flags: h.Flags(), GSOType: typ, ECN: ecn, HdrLen: h.HdrLen(),
		GSOSize: h.GSOSize(), CsumStart: h.CsumStart(), CsumOffset: h.CsumOffset()}
	return nil
}

// Emit writes the header to the start of b. It fails with ErrRepr when GSOType or Flags hold
// bits Parse would refuse, and ErrBufferTooSmall when b is short.
func (r *VirtioNetHdrRepr) Emit(b []byte) error {
	if r.Flags&^(VirtioNetNeedsCsum|VirtioNetDataValid) != 0 || r.GSOType&VirtioNetGSOECN != 0 ||
		(r.ECN && r.GSOType != VirtioNetGSOTCPv4 && r.GSOType != VirtioNetGSOTCPv6) {
		return ErrRepr
	}
	if len(b) < VirtioNetHdrLen {
		return ErrBufferTooSmall
	}
	typ := r.GSOType
	if r.ECN {
		typ |= VirtioNetGSOECN
	}
	b[0], b[1] = r.Flags, typ
	binary.LittleEndian.PutUint16(b[2:4], r.HdrLen)
	binary.LittleEndian.PutUint16(b[4:6], r.GSOSize)
	binary.LittleEndian.PutUint16(b[6:8], r.CsumStart)
	binary.LittleEndian.PutUint16(b[8:10], r.CsumOffset)
	return nil
}

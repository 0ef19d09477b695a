package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 header lengths (RFC 791 §3.1).
const (
	IPv4MinHeaderLen = 20
	IPv4MaxHeaderLen = 60
)

// IPv4 flag bits, in the high bits of the 16-bit flags/fragment-offset word.
const (
	ipv4FlagDF        = 0x4000
	ipv4FlagMF        = 0x2000
	ipv4FragOffMask   = 0x1fff
	ipv4ChecksumField = 10
)

// IPv4 is a view of an IPv4 packet starting at the header. Validate it with
// CheckIPv4; after that, accessors trust IHL and TotalLength, so Payload
// excludes any link-layer padding after TotalLength.
type IPv4 []byte

// CheckIPv4 validates the structure and header checksum of the IPv4 packet at
// the start of b: version 4, IHL >= 5, IHL*4 <= TotalLength <= len(b).
func CheckIPv4(b []byte) error {
	if err := checkIPv4Structure(b); err != nil {
		return err
	}
	if !IPv4(b).ValidChecksum() {
		return ErrChecksum
	}
	return nil
}

func checkIPv4Structure(b []byte) error {
	if len(b) < IPv4MinHeaderLen {
		return ErrTruncated
	}
	ip := IPv4(b)
	if ip.Version() != 4 {
		return ErrVersion
	}
	hl := ip.HeaderLen()
	if hl < IPv4MinHeaderLen {
		return ErrHeaderLen
	}
	if hl > len(b) {
		return ErrTruncated
	}
	tl := int(ip.TotalLength())
	if tl < hl {
		return ErrLength
	}
	if tl > len(b) {
		return ErrTruncated
	}
	return nil
}

// Version is the IP version, 4 for a valid packet.
func (ip IPv4) Version() uint8 { return ip[0] >> 4 }

// IHL is the header length in 32-bit words.
func (ip IPv4) IHL() uint8 { return ip[0] & 0x0f }

// HeaderLen is the header length in bytes, IHL*4.
func (ip IPv4) HeaderLen() int { return int(ip[0]&0x0f) * 4 }

// TOS is the whole Type of Service octet: DSCP<<2 | ECN (RFC 2474, RFC 3168).
func (ip IPv4) TOS() uint8 { return ip[1] }

// DSCP is the Differentiated Services codepoint (RFC 2474).
func (ip IPv4) DSCP() uint8 { return ip[1] >> 2 }

// ECN is the Explicit Congestion Notification field (RFC 3168).
func (ip IPv4) ECN() uint8 { return ip[1] & 0x03 }

// TotalLength is the length of header and payload in bytes.
func (ip IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(ip[2:4]) }

// ID is the Identification field.
func (ip IPv4) ID() uint16 { return binary.BigEndian.Uint16(ip[4:6]) }

// Flags is the 3-bit flags field: reserved, DF, MF.
func (ip IPv4) Flags() uint8 { return ip[6] >> 5 }

// DontFragment reports the DF flag.
func (ip IPv4) DontFragment() bool { return ip[6]&(ipv4FlagDF>>8) != 0 }

// MoreFragments reports the MF flag.
func (ip IPv4) MoreFragments() bool { return ip[6]&(ipv4FlagMF>>8) != 0 }

// FragmentOffset is the offset of this fragment's data in the original
// datagram, in bytes (the field counts 8-byte units).
func (ip IPv4) FragmentOffset() int {
	return int(binary.BigEndian.Uint16(ip[6:8])&ipv4FragOffMask) * 8
}

// IsFragment reports whether the packet is a fragment: MF set or a non-zero
// fragment offset.
func (ip IPv4) IsFragment() bool {
	return binary.BigEndian.Uint16(ip[6:8])&(ipv4FlagMF|ipv4FragOffMask) != 0
}

// TTL is the Time to Live.
func (ip IPv4) TTL() uint8 { return ip[8] }

// Protocol is the upper-layer protocol number (ProtoTCP, ...).
func (ip IPv4) Protocol() uint8 { return ip[9] }

// HeaderChecksum is the header checksum field.
func (ip IPv4) HeaderChecksum() uint16 { return binary.BigEndian.Uint16(ip[10:12]) }

// Src is the source address.
func (ip IPv4) Src() netip.Addr { return netip.AddrFrom4([4]byte(ip[12:16])) }

// Dst is the destination address.
func (ip IPv4) Dst() netip.Addr { return netip.AddrFrom4([4]byte(ip[16:20])) }

// Options is the raw options area, empty when IHL is 5.
func (ip IPv4) Options() []byte { return ip[IPv4MinHeaderLen:ip.HeaderLen()] }

// Payload is the data after the header up to TotalLength.
func (ip IPv4) Payload() []byte { return ip[ip.HeaderLen():ip.TotalLength()] }

// ValidChecksum reports whether the header checksum verifies.
func (ip IPv4) ValidChecksum() bool {
	return Finish(Checksum(ip[:ip.HeaderLen()], 0)) == 0
}

// ComputeChecksum returns the header checksum the header should carry,
// treating the checksum field as zero.
func (ip IPv4) ComputeChecksum() uint16 {
	hl := ip.HeaderLen()
	s := Checksum(ip[:ipv4ChecksumField], 0)
	return Finish(Checksum(ip[ipv4ChecksumField+2:hl], s))
}

// SetChecksum computes and stores the header checksum.
func (ip IPv4) SetChecksum() {
	binary.BigEndian.PutUint16(ip[10:12], ip.ComputeChecksum())
}

// SetTTL sets the TTL and updates the header checksum incrementally.
func (ip IPv4) SetTTL(ttl uint8) {
	// TTL is the high byte of the 16-bit word TTL|Protocol at offset 8.
	old := binary.BigEndian.Uint16(ip[8:10])
	ip[8] = ttl
	ip.updateChecksum16(old, binary.BigEndian.Uint16(ip[8:10]))
}

// SetID sets the Identification field; the checksum is not updated (SetChecksum).
func (ip IPv4) SetID(id uint16) { binary.BigEndian.PutUint16(ip[4:6], id) }

// SetTotalLength sets TotalLength and updates the checksum incrementally.
func (ip IPv4) SetTotalLength(n uint16) {
	old := ip.TotalLength()
	binary.BigEndian.PutUint16(ip[2:4], n)
	ip.updateChecksum16(old, n)
}

// SetFragment sets the Don't Fragment and More Fragments flags and the fragment offset
// (in bytes, a multiple of 8 below 65536); the checksum is not updated.
func (ip IPv4) SetFragment(dontFragment, moreFragments bool, offset int) {
	ff := uint16(offset/8) & ipv4FragOffMask
	if dontFragment {
		ff |= ipv4FlagDF
	}
	if moreFragments {
		ff |= ipv4FlagMF
	}
	binary.BigEndian.PutUint16(ip[6:8], ff)
}

// SetSrc sets the source address, which must be IPv4, and updates the
// checksum incrementally. Other families are ignored.
func (ip IPv4) SetSrc(a netip.Addr) { ip.setAddr(12, a) }

// SetDst sets the destination address, which must be IPv4, and updates the
// checksum incrementally. Other families are ignored.
func (ip IPv4) SetDst(a netip.Addr) { ip.setAddr(16, a) }

func (ip IPv4) setAddr(off int, a netip.Addr) {
	if !a.Is4() {
		return
	}
	old := binary.BigEndian.Uint32(ip[off : off+4])
	a4 := a.As4()
	n := binary.BigEndian.Uint32(a4[:])
	binary.BigEndian.PutUint32(ip[off:off+4], n)
	binary.BigEndian.PutUint16(ip[10:12], ChecksumUpdate32(ip.HeaderChecksum(), old, n))
}

func (ip IPv4) updateChecksum16(old, new uint16) {
	binary.BigEndian.PutUint16(ip[10:12], ChecksumUpdate16(ip.HeaderChecksum(), old, new))
}

// IPv4Repr is a parsed IPv4 header.
type IPv4Repr struct {
	TOS            uint8 // DSCP<<2 | ECN
	ID             uint16
	DontFragment   bool
	MoreFragments  bool
	FragmentOffset int // in bytes; a multiple of 8, below 65536
	TTL            uint8
	Protocol       uint8
	Src, Dst       netip.Addr // IPv4 only
	Options        []byte     // raw options, a multiple of 4 bytes up to 40; aliases the parsed buffer
	PayloadLen     int        // TotalLength - header length
}

// Parse validates b with CheckIPv4 and fills r from it. r.Options aliases b.
func (r *IPv4Repr) Parse(b []byte) error {
	if err := CheckIPv4(b); err != nil {
		return err
	}
	ip := IPv4(b)
	*r = IPv4Repr{
		TOS:            ip.TOS(),
		ID:             ip.ID(),
		DontFragment:   ip.DontFragment(),
		MoreFragments:  ip.MoreFragments(),
		FragmentOffset: ip.FragmentOffset(),
		TTL:            ip.TTL(),
		Protocol:       ip.Protocol(),
		Src:            ip.Src(),
		Dst:            ip.Dst(),
		Options:        ip.Options(),
		PayloadLen:     int(ip.TotalLength()) - ip.HeaderLen(),
	}
	return nil
}

// HeaderLen is the number of bytes Emit writes.
func (r *IPv4Repr) HeaderLen() int { return IPv4MinHeaderLen + len(r.Options) }

// Emit writes the header, with its checksum, to the start of b. The payload
// is not touched. The reserved flag is written as zero.
func (r *IPv4Repr) Emit(b []byte) error {
	hl := r.HeaderLen()
	if len(b) < hl {
		return ErrBufferTooSmall
	}
	if !r.Src.Is4() || !r.Dst.Is4() {
		return ErrAddress
	}
	if len(r.Options)%4 != 0 || hl > IPv4MaxHeaderLen || r.PayloadLen < 0 ||
		hl+r.PayloadLen > 0xffff || r.FragmentOffset < 0 || r.FragmentOffset%8 != 0 ||
		r.FragmentOffset/8 > ipv4FragOffMask {
		return ErrRepr
	}
	b[0] = 4<<4 | uint8(hl/4)
	b[1] = r.TOS
	binary.BigEndian.PutUint16(b[2:4], uint16(hl+r.PayloadLen))
	binary.BigEndian.PutUint16(b[4:6], r.ID)
	IPv4(b).SetFragment(r.DontFragment, r.MoreFragments, r.FragmentOffset)
	b[8] = r.TTL
	b[9] = r.Protocol
	b[10], b[11] = 0, 0
	s, d := r.Src.As4(), r.Dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	copy(b[20:hl], r.Options)
	IPv4(b).SetChecksum()
	return nil
}

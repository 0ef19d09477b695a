package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv6HeaderLen is the length of the fixed IPv6 header (RFC 8200 §3).
const IPv6HeaderLen = 40

// IPv6MinMTU is the minimum link MTU IPv6 requires (RFC 8200 §5).
const IPv6MinMTU = 1280

// IPv6 is a view of an IPv6 packet starting at the fixed header. Validate it
// with CheckIPv6; Payload then ends at PayloadLength, excluding link padding.
type IPv6 []byte

// CheckIPv6 validates the fixed header at the start of b: version 6 and
// 40+PayloadLength <= len(b). Jumbograms (RFC 2675, Payload Length 0 with a
// Jumbo option) are not supported: a zero Payload Length means no payload.
// Extension headers are checked by WalkIPv6.
func CheckIPv6(b []byte) error {
	if len(b) < IPv6HeaderLen {
		return ErrTruncated
	}
	ip := IPv6(b)
	if ip.Version() != 6 {
		return ErrVersion
	}
	if IPv6HeaderLen+int(ip.PayloadLength()) > len(b) {
		return ErrTruncated
	}
	return nil
}

// Version is the IP version, 6 for a valid packet.
func (ip IPv6) Version() uint8 { return ip[0] >> 4 }

// TrafficClass is the 8-bit traffic class: DSCP<<2 | ECN.
func (ip IPv6) TrafficClass() uint8 { return ip[0]<<4 | ip[1]>>4 }

// FlowLabel is the 20-bit flow label (RFC 6437).
func (ip IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(ip[0:4]) & 0x000fffff }

// PayloadLength is the length of everything after the fixed header,
// extension headers included.
func (ip IPv6) PayloadLength() uint16 { return binary.BigEndian.Uint16(ip[4:6]) }

// NextHeader is the type of the header after the fixed header.
func (ip IPv6) NextHeader() uint8 { return ip[6] }

// HopLimit is the hop limit.
func (ip IPv6) HopLimit() uint8 { return ip[7] }

// Src is the source address.
func (ip IPv6) Src() netip.Addr { return netip.AddrFrom16([16]byte(ip[8:24])) }

// Dst is the destination address.
func (ip IPv6) Dst() netip.Addr { return netip.AddrFrom16([16]byte(ip[24:40])) }

// Payload is everything after the fixed header up to PayloadLength.
func (ip IPv6) Payload() []byte { return ip[IPv6HeaderLen : IPv6HeaderLen+int(ip.PayloadLength())] }

// SetHopLimit sets the hop limit.
func (ip IPv6) SetHopLimit(h uint8) { ip[7] = h }

// SetNextHeader sets the next header field.
func (ip IPv6) SetNextHeader(nh uint8) { ip[6] = nh }

// SetPayloadLength sets the payload length.
func (ip IPv6) SetPayloadLength(n uint16) { binary.BigEndian.PutUint16(ip[4:6], n) }

// SetSrc sets the source address; non-IPv6 addresses are ignored.
func (ip IPv6) SetSrc(a netip.Addr) {
	if a.Is6() {
		a16 := a.As16()
		copy(ip[8:24], a16[:])
	}
}

// SetDst sets the destination address; non-IPv6 addresses are ignored.
func (ip IPv6) SetDst(a netip.Addr) {
	if a.Is6() {
		a16 := a.As16()
		copy(ip[24:40], a16[:])
	}
}

// IPv6Repr is a parsed fixed IPv6 header.
type IPv6Repr struct {
	TrafficClass uint8
	FlowLabel    uint32 // 20 bits
	NextHeader   uint8
	HopLimit     uint8
	Src, Dst     netip.Addr // IPv6 only; zones are dropped
	PayloadLen   int        // bytes after the fixed header, up to 65535
}

// Parse validates b with CheckIPv6 and fills r from the fixed header.
func (r *IPv6Repr) Parse(b []byte) error {
	if err := CheckIPv6(b); err != nil {
		return err
	}
	ip := IPv6(b)
	*r = IPv6Repr{
		TrafficClass: ip.TrafficClass(),
		FlowLabel:    ip.FlowLabel(),
		NextHeader:   ip.NextHeader(),
		HopLimit:     ip.HopLimit(),
		Src:          ip.Src(),
		Dst:          ip.Dst(),
		PayloadLen:   int(ip.PayloadLength()),
	}
	return nil
}

// HeaderLen is the number of bytes Emit writes.
func (r *IPv6Repr) HeaderLen() int { return IPv6HeaderLen }

// Emit writes the fixed header to the start of b.
func (r *IPv6Repr) Emit(b []byte) error {
	if len(b) < IPv6HeaderLen {
		return ErrBufferTooSmall
	}
	if !r.Src.Is6() || !r.Dst.Is6() {
		return ErrAddress
	}
	if r.FlowLabel > 0xfffff || r.PayloadLen < 0 || r.PayloadLen > 0xffff {
		return ErrRepr
	}
	binary.BigEndian.PutUint32(b[0:4], 6<<28|uint32(r.TrafficClass)<<20|r.FlowLabel)
	binary.BigEndian.PutUint16(b[4:6], uint16(r.PayloadLen))
	b[6] = r.NextHeader
	b[7] = r.HopLimit
	s, d := r.Src.As16(), r.Dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	return nil
}

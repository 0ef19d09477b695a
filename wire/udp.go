package wire

import (
	"encoding/binary"
	"net/netip"
)

// UDPHeaderLen is the length of the UDP header (RFC 768).
const UDPHeaderLen = 8

// UDP is a view of a UDP datagram. Validate it with CheckUDP; Payload then
// ends at the Length field, excluding any bytes after it.
type UDP []byte

// CheckUDP validates the header: 8 <= Length <= len(b). The checksum needs
// the IP addresses; check it with ValidChecksum.
func CheckUDP(b []byte) error {
	if len(b) < UDPHeaderLen {
		return ErrTruncated
	}
	l := int(UDP(b).Length())
	if l < UDPHeaderLen {
		return ErrLength
	}
	if l > len(b) {
		return ErrTruncated
	}
	return nil
}

// SrcPort is the source port.
func (u UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(u[0:2]) }

// DstPort is the destination port.
func (u UDP) DstPort() uint16 { return binary.BigEndian.Uint16(u[2:4]) }

// Length is the length of header and data.
func (u UDP) Length() uint16 { return binary.BigEndian.Uint16(u[4:6]) }

// Checksum is the checksum field; 0 means none was computed (IPv4 only).
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u[6:8]) }

// Payload is the data up to Length.
func (u UDP) Payload() []byte { return u[UDPHeaderLen:u.Length()] }

// SetSrcPort sets the source port; the checksum is not updated.
func (u UDP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(u[0:2], p) }

// SetDstPort sets the destination port; the checksum is not updated.
func (u UDP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(u[2:4], p) }

// ComputeChecksum returns the checksum the datagram should carry, over the
// pseudo-header for src and dst and the first Length bytes, treating the
// checksum field as zero. A computed 0 is returned as 0xffff (RFC 768: "If
// the computed checksum is zero, it is transmitted as all ones").
func (u UDP) ComputeChecksum(src, dst netip.Addr) uint16 {
	l := u.Length()
	s := PseudoHeaderChecksum(ProtoUDP, src, dst, uint32(l))
	s = Checksum(u[0:6], s)
	return UDPChecksum(Checksum(u[UDPHeaderLen:l], s))
}

// UDPChecksum is the checksum field for sum, the one's-complement sum of the
// pseudo-header and the datagram with a zero checksum field: a computed 0 is sent
// as 0xffff (RFC 768: "If the computed checksum is zero, it is transmitted as all
// ones"), since 0 means none.
func UDPChecksum(sum uint32) uint16 {
	if c := Finish(sum); c != 0 {
		return c
	}
	return 0xffff
}

// SetChecksum computes and stores the checksum.
func (u UDP) SetChecksum(src, dst netip.Addr) { u.SetChecksumField(u.ComputeChecksum(src, dst)) }

// SetLength sets the Length field (header and data).
func (u UDP) SetLength(n uint16) { binary.BigEndian.PutUint16(u[4:6], n) }

// SetChecksumField stores c in the checksum field as it is (0: none, IPv4 only).
func (u UDP) SetChecksumField(c uint16) { binary.BigEndian.PutUint16(u[6:8], c) }

// ValidChecksum reports whether the checksum verifies for src and dst. A zero
// checksum means "none" over IPv4 and is accepted; over IPv6 it is invalid
// (RFC 8200 §8.1: such packets must be discarded).
func (u UDP) ValidChecksum(src, dst netip.Addr) bool {
	if u.Checksum() == 0 {
		return src.Is4()
	}
	s := PseudoHeaderChecksum(ProtoUDP, src, dst, uint32(u.Length()))
	return Finish(Checksum(u[:u.Length()], s)) == 0
}

// UDPRepr is a parsed UDP header.
type UDPRepr struct {
	SrcPort, DstPort uint16
	PayloadLen       int
}

// Parse validates b with CheckUDP and its checksum for src and dst, and
// fills r from it.
func (r *UDPRepr) Parse(b []byte, src, dst netip.Addr) error {
	if err := CheckUDP(b); err != nil {
		return err
	}
	u := UDP(b)
	if !u.ValidChecksum(src, dst) {
		return ErrChecksum
	}
	*r = UDPRepr{SrcPort: u.SrcPort(), DstPort: u.DstPort(), PayloadLen: int(u.Length()) - UDPHeaderLen}
	return nil
}

// HeaderLen is the number of header bytes Emit writes.
func (r *UDPRepr) HeaderLen() int { return UDPHeaderLen }

// Emit writes the header to the start of b and computes the checksum over
// the pseudo-header for src and dst, the header and the PayloadLen bytes
// after it, which the caller has already put in place.
func (r *UDPRepr) Emit(b []byte, src, dst netip.Addr) error {
	if err := r.EmitHeader(b); err != nil {
		return err
	}
	if len(b) < UDPHeaderLen+r.PayloadLen {
		return ErrBufferTooSmall
	}
	UDP(b).SetChecksum(src, dst)
	return nil
}

// EmitHeader writes the header to the start of b with a zero checksum field and
// does not touch the payload, which may not be in b (it may be in a chain of
// buffers): the caller sums the datagram and stores UDPChecksum of the sum with
// SetChecksumField, or leaves 0 (none, IPv4 only).
func (r *UDPRepr) EmitHeader(b []byte) error {
	n := UDPHeaderLen + r.PayloadLen
	if r.PayloadLen < 0 || n > 0xffff {
		return ErrRepr
	}
	if len(b) < UDPHeaderLen {
		return ErrBufferTooSmall
	}
	u := UDP(b)
	u.SetSrcPort(r.SrcPort)
	u.SetDstPort(r.DstPort)
	u.SetLength(uint16(n))
	u.SetChecksumField(0)
	return nil
}

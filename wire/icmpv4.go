package wire

import (
	"encoding/binary"
	"net/netip"
)

// ICMPv4HeaderLen is the length of the ICMP header: type, code, checksum and
// the 4-byte "rest of header" whose meaning depends on the type.
const ICMPv4HeaderLen = 8

// ICMPv4 message types (RFC 792).
const (
	ICMPv4EchoReply      = 0
	ICMPv4DestUnreach    = 3
	ICMPv4Redirect       = 5
	ICMPv4EchoRequest    = 8
	ICMPv4TimeExceeded   = 11
	ICMPv4ParamProblem   = 12
	ICMPv4Timestamp      = 13
	ICMPv4TimestampReply = 14
)

// ICMPv4 Destination Unreachable codes (RFC 792, RFC 1191).
const (
	ICMPv4NetUnreach      = 0
	ICMPv4HostUnreach     = 1
	ICMPv4ProtoUnreach    = 2
	ICMPv4PortUnreach     = 3
	ICMPv4FragNeeded      = 4 // with the next-hop MTU, RFC 1191
	ICMPv4SourceRouteFail = 5
	ICMPv4AdminProhibited = 13 // RFC 1812
)

// ICMPv4 Time Exceeded codes.
const (
	ICMPv4TTLExceeded        = 0
	ICMPv4ReassemblyExceeded = 1
)

// ICMPv4 is a view of an ICMPv4 message. Validate it with CheckICMPv4; every
// accessor reads only the first 8 bytes, so none depends on the type.
type ICMPv4 []byte

// CheckICMPv4 validates that b holds an ICMP header and a correct checksum
// over the whole of b.
func CheckICMPv4(b []byte) error {
	if len(b) < ICMPv4HeaderLen {
		return ErrTruncated
	}
	if !ICMPv4(b).ValidChecksum() {
		return ErrChecksum
	}
	return nil
}

// Type is the message type.
func (m ICMPv4) Type() uint8 { return m[0] }

// Code is the message code.
func (m ICMPv4) Code() uint8 { return m[1] }

// Checksum is the checksum field.
func (m ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:4]) }

// Ident is the identifier of an echo or timestamp message.
func (m ICMPv4) Ident() uint16 { return binary.BigEndian.Uint16(m[4:6]) }

// Seq is the sequence number of an echo or timestamp message.
func (m ICMPv4) Seq() uint16 { return binary.BigEndian.Uint16(m[6:8]) }

// NextHopMTU is the MTU in a Fragmentation Needed message (RFC 1191 §4); 0
// from routers that predate RFC 1191.
func (m ICMPv4) NextHopMTU() uint16 { return binary.BigEndian.Uint16(m[6:8]) }

// Pointer is the octet pointer of a Parameter Problem message.
func (m ICMPv4) Pointer() uint8 { return m[4] }

// Gateway is the gateway address of a Redirect message.
func (m ICMPv4) Gateway() netip.Addr { return netip.AddrFrom4([4]byte(m[4:8])) }

// RestOfHeader is bytes 4 to 8 as a 32-bit word.
func (m ICMPv4) RestOfHeader() uint32 { return binary.BigEndian.Uint32(m[4:8]) }

// Payload is the data after the 8-byte header: echo data, or the invoking
// packet's IP header and first bytes for error messages.
func (m ICMPv4) Payload() []byte { return m[ICMPv4HeaderLen:] }

// IsError reports whether the type is an error message, which must never be
// sent in response to another error (RFC 1122 §3.2.2).
func (m ICMPv4) IsError() bool {
	switch m.Type() {
	case ICMPv4DestUnreach, ICMPv4Redirect, ICMPv4TimeExceeded, ICMPv4ParamProblem, 4 /* source quench */ :
		return true
	}
	return false
}

// ValidChecksum reports whether the checksum over the message verifies.
func (m ICMPv4) ValidChecksum() bool { return Finish(Checksum(m, 0)) == 0 }

// SetChecksum computes and stores the checksum over the whole message.
func (m ICMPv4) SetChecksum() {
	m.SetChecksumField(0)
	m.SetChecksumField(Finish(Checksum(m, 0)))
}

// SetType sets the message type; the checksum is not updated.
func (m ICMPv4) SetType(t uint8) { m[0] = t }

// SetIdent sets the identifier of an echo or timestamp message; the checksum is not
// updated.
func (m ICMPv4) SetIdent(id uint16) { binary.BigEndian.PutUint16(m[4:6], id) }

// SetSeq sets the sequence number of an echo or timestamp message; the checksum is not
// updated.
func (m ICMPv4) SetSeq(seq uint16) { binary.BigEndian.PutUint16(m[6:8], seq) }

// SetChecksumField stores c in the checksum field as it is: a checksum computed
// elsewhere (over a chain of buffers) or updated incrementally.
func (m ICMPv4) SetChecksumField(c uint16) { binary.BigEndian.PutUint16(m[2:4], c) }

// ICMPv4Repr is a parsed ICMPv4 header. Which of Ident/Seq, NextHopMTU,
// Pointer and Gateway are meaningful depends on Type; for other types the
// rest of the header is carried raw in Rest.
type ICMPv4Repr struct {
	Type, Code uint8
	Ident, Seq uint16     // echo, timestamp, information
	NextHopMTU uint16     // dest unreachable, code frag needed
	Pointer    uint8      // parameter problem
	Gateway    netip.Addr // redirect
	Rest       uint32     // other types: bytes 4..8 verbatim
	PayloadLen int
}

// Parse validates b with CheckICMPv4 and fills r from it.
func (r *ICMPv4Repr) Parse(b []byte) error {
	if err := CheckICMPv4(b); err != nil {
		return err
	}
	m := ICMPv4(b)
	*r = ICMPv4Repr{Type: m.Type(), Code: m.Code(), PayloadLen: len(m.Payload())}
	switch r.Type {
	case ICMPv4EchoRequest, ICMPv4EchoReply, ICMPv4Timestamp, ICMPv4TimestampReply:
		r.Ident, r.Seq = m.Ident(), m.Seq()
	case ICMPv4DestUnreach:
		r.NextHopMTU = m.NextHopMTU()
	case ICMPv4ParamProblem:
		r.Pointer = m.Pointer()
	case ICMPv4Redirect:
		r.Gateway = m.Gateway()
	case ICMPv4TimeExceeded:
	default:
		r.Rest = m.RestOfHeader()
	}
	return nil
}

// HeaderLen is the number of header bytes Emit writes.
func (r *ICMPv4Repr) HeaderLen() int { return ICMPv4HeaderLen }

// Emit writes the header to the start of b and computes the checksum over
// the header and the PayloadLen bytes after it, which the caller has already
// put in place. Unused header bytes are zero.
func (r *ICMPv4Repr) Emit(b []byte) error {
	n := ICMPv4HeaderLen + r.PayloadLen
	if r.PayloadLen < 0 || len(b) < n {
		return ErrBufferTooSmall
	}
	m := ICMPv4(b[:n])
	m.SetType(r.Type)
	b[1] = r.Code
	binary.BigEndian.PutUint32(b[4:8], 0)
	switch r.Type {
	case ICMPv4EchoRequest, ICMPv4EchoReply, ICMPv4Timestamp, ICMPv4TimestampReply:
		m.SetIdent(r.Ident)
		m.SetSeq(r.Seq)
	case ICMPv4DestUnreach:
		binary.BigEndian.PutUint16(b[6:8], r.NextHopMTU)
	case ICMPv4ParamProblem:
		b[4] = r.Pointer
	case ICMPv4Redirect:
		if !r.Gateway.Is4() {
			return ErrAddress
		}
		g := r.Gateway.As4()
		copy(b[4:8], g[:])
	case ICMPv4TimeExceeded:
	default:
		binary.BigEndian.PutUint32(b[4:8], r.Rest)
	}
	m.SetChecksum()
	return nil
}

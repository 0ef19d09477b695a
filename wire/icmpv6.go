package wire

import (
	"encoding/binary"
	"net/netip"
)

// ICMPv6HeaderLen is the length of the ICMPv6 header used by every defined
// message: type, code, checksum and a 4-byte type-specific word.
const ICMPv6HeaderLen = 8

// ICMPv6 message types (RFC 4443, RFC 4861, RFC 2710, RFC 3810).
const (
	ICMPv6DestUnreach     = 1
	ICMPv6PacketTooBig    = 2
	ICMPv6TimeExceeded    = 3
	ICMPv6ParamProblem    = 4
	ICMPv6EchoRequest     = 128
	ICMPv6EchoReply       = 129
	ICMPv6MLDQuery        = 130 // Multicast Listener Query (MLDv1 and v2)
	ICMPv6MLDReport       = 131 // MLDv1 Report
	ICMPv6MLDDone         = 132 // MLDv1 Done
	ICMPv6RouterSolicit   = 133
	ICMPv6RouterAdvert    = 134
	ICMPv6NeighborSolicit = 135
	ICMPv6NeighborAdvert  = 136
	ICMPv6Redirect        = 137
	ICMPv6MLDv2Report     = 143 // RFC 3810
)

// ICMPv6 Destination Unreachable codes (RFC 4443 §3.1).
const (
	ICMPv6NoRoute           = 0
	ICMPv6AdminProhibited   = 1
	ICMPv6BeyondScope       = 2
	ICMPv6AddrUnreach       = 3
	ICMPv6PortUnreach       = 4
	ICMPv6SrcPolicyFailed   = 5
	ICMPv6RejectRoute       = 6
	ICMPv6HopLimitExceeded  = 0 // Time Exceeded code
	ICMPv6ReassemblyTimeout = 1 // Time Exceeded code
)

// ICMPv6 Parameter Problem codes (RFC 4443 §3.4).
const (
	ICMPv6ParamErroneousField = 0
	ICMPv6ParamUnknownNextHdr = 1
	ICMPv6ParamUnknownOption  = 2
)

// ICMPv6 is a view of an ICMPv6 message. Validate it with CheckICMPv6; every
// accessor reads only the first 8 bytes, so none depends on the type. NDP
// messages have their own views in ndp.go.
type ICMPv6 []byte

// CheckICMPv6 validates that b holds an ICMPv6 header and that its checksum,
// over the IPv6 pseudo-header for src and dst, verifies.
func CheckICMPv6(b []byte, src, dst netip.Addr) error {
	if len(b) < ICMPv6HeaderLen {
		return ErrTruncated
	}
	if !ICMPv6(b).ValidChecksum(src, dst) {
		return ErrChecksum
	}
	return nil
}

// Type is the message type.
func (m ICMPv6) Type() uint8 { return m[0] }

// Code is the message code.
func (m ICMPv6) Code() uint8 { return m[1] }

// Checksum is the checksum field.
func (m ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:4]) }

// Ident is the identifier of an echo message.
func (m ICMPv6) Ident() uint16 { return binary.BigEndian.Uint16(m[4:6]) }

// Seq is the sequence number of an echo message.
func (m ICMPv6) Seq() uint16 { return binary.BigEndian.Uint16(m[6:8]) }

// MTU is the MTU of a Packet Too Big message.
func (m ICMPv6) MTU() uint32 { return binary.BigEndian.Uint32(m[4:8]) }

// Pointer is the pointer of a Parameter Problem message.
func (m ICMPv6) Pointer() uint32 { return binary.BigEndian.Uint32(m[4:8]) }

// Payload is the data after the 8-byte header: echo data, or as much of the
// invoking packet as fits for error messages.
func (m ICMPv6) Payload() []byte { return m[ICMPv6HeaderLen:] }

// IsError reports whether the message is an error message (RFC 4443 §2.1:
// types 0 to 127).
func (m ICMPv6) IsError() bool { return m[0] < 128 }

// ValidChecksum reports whether the checksum over the pseudo-header for src
// and dst and the whole message verifies.
func (m ICMPv6) ValidChecksum(src, dst netip.Addr) bool {
	s := PseudoHeaderChecksum(ProtoICMPv6, src, dst, uint32(len(m)))
	return Finish(Checksum(m, s)) == 0
}

// SetChecksum computes and stores the checksum over the pseudo-header for
// src and dst and the whole message.
func (m ICMPv6) SetChecksum(src, dst netip.Addr) {
	m.SetChecksumField(0)
	s := PseudoHeaderChecksum(ProtoICMPv6, src, dst, uint32(len(m)))
	m.SetChecksumField(Finish(Checksum(m, s)))
}

// SetType sets the message type; the checksum is not updated.
func (m ICMPv6) SetType(t uint8) { m[0] = t }

// SetIdent sets the identifier of an echo message; the checksum is not updated.
func (m ICMPv6) SetIdent(id uint16) { binary.BigEndian.PutUint16(m[4:6], id) }

// SetSeq sets the sequence number of an echo message; the checksum is not updated.
func (m ICMPv6) SetSeq(seq uint16) { binary.BigEndian.PutUint16(m[6:8], seq) }

// SetChecksumField stores c in the checksum field as it is: a checksum computed
// elsewhere (over a chain of buffers) or updated incrementally.
func (m ICMPv6) SetChecksumField(c uint16) { binary.BigEndian.PutUint16(m[2:4], c) }

// ICMPv6Repr is a parsed ICMPv6 header for the echo and error messages.
// Which of Ident/Seq, MTU and Pointer are meaningful depends on Type; for
// other types (NDP, MLD, unknown) bytes 4..8 are carried raw in Rest.
type ICMPv6Repr struct {
	Type, Code uint8
	Ident, Seq uint16 // echo request/reply
	MTU        uint32 // packet too big
	Pointer    uint32 // parameter problem
	Rest       uint32 // other types: bytes 4..8 verbatim
	PayloadLen int
}

// Parse validates b with CheckICMPv6 and fills r from it.
func (r *ICMPv6Repr) Parse(b []byte, src, dst netip.Addr) error {
	if err := CheckICMPv6(b, src, dst); err != nil {
		return err
	}
	m := ICMPv6(b)
	*r = ICMPv6Repr{Type: m.Type(), Code: m.Code(), PayloadLen: len(m.Payload())}
	switch r.Type {
	case ICMPv6EchoRequest, ICMPv6EchoReply:
		r.Ident, r.Seq = m.Ident(), m.Seq()
	case ICMPv6PacketTooBig:
		r.MTU = m.MTU()
	case ICMPv6ParamProblem:
		r.Pointer = m.Pointer()
	case ICMPv6DestUnreach, ICMPv6TimeExceeded:
	default:
		r.Rest = binary.BigEndian.Uint32(m[4:8])
	}
	return nil
}

// HeaderLen is the number of header bytes Emit writes.
func (r *ICMPv6Repr) HeaderLen() int { return ICMPv6HeaderLen }

// Emit writes the header to the start of b and computes the checksum over the
// pseudo-header, the header and the PayloadLen bytes after it, which the
// caller has already put in place. Unused header bytes are zero.
func (r *ICMPv6Repr) Emit(b []byte, src, dst netip.Addr) error {
	n := ICMPv6HeaderLen + r.PayloadLen
	if r.PayloadLen < 0 || len(b) < n {
		return ErrBufferTooSmall
	}
	m := ICMPv6(b[:n])
	m.SetType(r.Type)
	b[1] = r.Code
	var rest uint32
	switch r.Type {
	case ICMPv6EchoRequest, ICMPv6EchoReply:
		rest = uint32(r.Ident)<<16 | uint32(r.Seq)
	case ICMPv6PacketTooBig:
		rest = r.MTU
	case ICMPv6ParamProblem:
		rest = r.Pointer
	case ICMPv6DestUnreach, ICMPv6TimeExceeded:
	default:
		rest = r.Rest
	}
	binary.BigEndian.PutUint32(b[4:8], rest)
	m.SetChecksum(src, dst)
	return nil
}

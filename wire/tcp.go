package wire

import (
	"encoding/binary"
	"net/netip"
)

// TCP header lengths (RFC 9293 §3.1).
const (
	TCPMinHeaderLen = 20
	TCPMaxHeaderLen = 60
)

// TCPFlags are the control bits in byte 13 of the TCP header.
type TCPFlags uint8

// TCP control bits (RFC 9293 §3.1, RFC 3168 for ECE and CWR).
const (
	TCPFlagFIN TCPFlags = 1 << iota
	TCPFlagSYN
	TCPFlagRST
	TCPFlagPSH
	TCPFlagACK
	TCPFlagURG
	TCPFlagECE
	TCPFlagCWR
)

var tcpFlagNames = [8]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// String lists the set flags from low bit to high joined by "|", such as
// "SYN|ACK", or "0" when none is set.
func (f TCPFlags) String() string {
	if f == 0 {
		return "0"
	}
	var buf [8 * 4]byte
	n := 0
	for i, name := range tcpFlagNames {
		if f&(1<<i) == 0 {
			continue
		}
		if n > 0 {
			buf[n] = '|'
			n++
		}
		n += copy(buf[n:], name)
	}
	return string(buf[:n])
}

// Has reports whether all of the flags in g are set in f.
func (f TCPFlags) Has(g TCPFlags) bool { return f&g == g }

// TCP is a view of a TCP segment: header, options and payload. The view
// should span exactly the segment (the IP payload), since TCP has no length
// field of its own. Validate it with CheckTCP.
type TCP []byte

// CheckTCP validates the header: 5 <= Data Offset and the header fits in b.
// The checksum needs the IP addresses; check it with ValidChecksum.
func CheckTCP(b []byte) error {
	if len(b) < TCPMinHeaderLen {
		return ErrTruncated
	}
	hl := TCP(b).HeaderLen()
	if hl < TCPMinHeaderLen {
		return ErrHeaderLen
	}
	if hl > len(b) {
		return ErrTruncated
	}
	return nil
}

// SrcPort is the source port.
func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t[0:2]) }

// DstPort is the destination port.
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t[2:4]) }

// SeqNum is the sequence number.
func (t TCP) SeqNum() uint32 { return binary.BigEndian.Uint32(t[4:8]) }

// AckNum is the acknowledgment number.
func (t TCP) AckNum() uint32 { return binary.BigEndian.Uint32(t[8:12]) }

// DataOffset is the header length in 32-bit words.
func (t TCP) DataOffset() uint8 { return t[12] >> 4 }

// HeaderLen is the header length in bytes, options included.
func (t TCP) HeaderLen() int { return int(t[12]>>4) * 4 }

// Flags are the control bits.
func (t TCP) Flags() TCPFlags { return TCPFlags(t[13]) }

// Window is the raw, unscaled window.
func (t TCP) Window() uint16 { return binary.BigEndian.Uint16(t[14:16]) }

// Checksum is the checksum field.
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[16:18]) }

// UrgentPointer is the urgent pointer.
func (t TCP) UrgentPointer() uint16 { return binary.BigEndian.Uint16(t[18:20]) }

// Options is the raw options area; parse it with ParseTCPOptions.
func (t TCP) Options() []byte { return t[TCPMinHeaderLen:t.HeaderLen()] }

// Payload is the data after the header.
func (t TCP) Payload() []byte { return t[t.HeaderLen():] }

// SetSrcPort sets the source port; the checksum is not updated.
func (t TCP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(t[0:2], p) }

// SetDstPort sets the destination port; the checksum is not updated.
func (t TCP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(t[2:4], p) }

// SetSeqNum sets the sequence number; the checksum is not updated.
func (t TCP) SetSeqNum(n uint32) { binary.BigEndian.PutUint32(t[4:8], n) }

// SetAckNum sets the acknowledgment number; the checksum is not updated.
func (t TCP) SetAckNum(n uint32) { binary.BigEndian.PutUint32(t[8:12], n) }

// SetFlags sets the control bits; the checksum is not updated.
func (t TCP) SetFlags(f TCPFlags) { t[13] = uint8(f) }

// SetWindow sets the window; the checksum is not updated.
func (t TCP) SetWindow(w uint16) { binary.BigEndian.PutUint16(t[14:16], w) }

// SetHeaderLen sets the Data Offset for a header of n bytes (a multiple of 4, options
// included) and clears the reserved bits.
func (t TCP) SetHeaderLen(n int) { t[12] = uint8(n/4) << 4 }

// SetUrgentPointer sets the urgent pointer; the checksum is not updated.
func (t TCP) SetUrgentPointer(p uint16) { binary.BigEndian.PutUint16(t[18:20], p) }

// SetChecksumField stores c in the checksum field as it is: a checksum computed
// elsewhere (over a chain of buffers, or from a partial sum) or updated
// incrementally.
func (t TCP) SetChecksumField(c uint16) { binary.BigEndian.PutUint16(t[16:18], c) }

// ComputeChecksum returns the checksum the segment should carry, over the
// pseudo-header for src and dst and the whole of t, treating the checksum
// field as zero.
func (t TCP) ComputeChecksum(src, dst netip.Addr) uint16 {
	s := PseudoHeaderChecksum(ProtoTCP, src, dst, uint32(len(t)))
	s = Checksum(t[0:16], s)
	return Finish(Checksum(t[18:], s))
}

// SetChecksum computes and stores the checksum.
func (t TCP) SetChecksum(src, dst netip.Addr) { t.SetChecksumField(t.ComputeChecksum(src, dst)) }

// ValidChecksum reports whether the checksum verifies for src and dst.
func (t TCP) ValidChecksum(src, dst netip.Addr) bool {
	s := PseudoHeaderChecksum(ProtoTCP, src, dst, uint32(len(t)))
	return Finish(Checksum(t, s)) == 0
}

// TCPRepr is a parsed TCP header with its options.
type TCPRepr struct {
	SrcPort, DstPort uint16
	SeqNum, AckNum   uint32
	Flags            TCPFlags
	Window           uint16
	UrgentPointer    uint16
	Options          TCPOptions
	PayloadLen       int
}

// Parse validates b with CheckTCP, its checksum for src and dst and its
// options, and fills r from it.
func (r *TCPRepr) Parse(b []byte, src, dst netip.Addr) error {
	if err := CheckTCP(b); err != nil {
		return err
	}
	t := TCP(b)
	if !t.ValidChecksum(src, dst) {
		return ErrChecksum
	}
	opts, err := ParseTCPOptions(t.Options())
	if err != nil {
		return err
	}
	*r = TCPRepr{
		SrcPort:       t.SrcPort(),
		DstPort:       t.DstPort(),
		SeqNum:        t.SeqNum(),
		AckNum:        t.AckNum(),
		Flags:         t.Flags(),
		Window:        t.Window(),
		UrgentPointer: t.UrgentPointer(),
		Options:       opts,
		PayloadLen:    len(t.Payload()),
	}
	return nil
}

// HeaderLen is the number of bytes Emit writes: header and padded options.
func (r *TCPRepr) HeaderLen() int { return TCPMinHeaderLen + r.Options.Len() }

// Emit writes header and options to the start of b and computes the checksum
// over the pseudo-header for src and dst, the header and the PayloadLen bytes
// after it, which the caller has already put in place. Reserved bits are
// zero.
func (r *TCPRepr) Emit(b []byte, src, dst netip.Addr) error {
	if r.PayloadLen < 0 {
		return ErrRepr
	}
	hl, err := r.EmitHeader(b)
	if err != nil {
		return err
	}
	if len(b) < hl+r.PayloadLen {
		return ErrBufferTooSmall
	}
	TCP(b[:hl+r.PayloadLen]).SetChecksum(src, dst)
	return nil
}

// EmitHeader writes header and options (HeaderLen bytes) to the start of b with
// a zero checksum field and returns their length. It ignores PayloadLen and
// does not touch what follows the header, which may not be in b (a segment's
// data may be in a chain of buffers): the caller sums the segment and stores
// the checksum with SetChecksumField. Reserved bits are zero.
func (r *TCPRepr) EmitHeader(b []byte) (int, error) {
	hl := r.HeaderLen()
	if hl > TCPMaxHeaderLen {
		return 0, ErrRepr
	}
	if len(b) < hl {
		return 0, ErrBufferTooSmall
	}
	t := TCP(b[:hl])
	t.SetSrcPort(r.SrcPort)
	t.SetDstPort(r.DstPort)
	t.SetSeqNum(r.SeqNum)
	t.SetAckNum(r.AckNum)
	t.SetHeaderLen(hl)
	t.SetFlags(r.Flags)
	t.SetWindow(r.Window)
	t.SetChecksumField(0)
	t.SetUrgentPointer(r.UrgentPointer)
	if _, err := r.Options.Emit(t[TCPMinHeaderLen:]); err != nil {
		return 0, err
	}
	return hl, nil
}

package wire

import "encoding/binary"

// TCP option kinds (IANA registry).
const (
	TCPOptEOL           = 0
	TCPOptNOP           = 1
	TCPOptMSS           = 2 // RFC 9293 §3.2
	TCPOptWindowScale   = 3 // RFC 7323 §2
	TCPOptSACKPermitted = 4 // RFC 2018
	TCPOptSACK          = 5 // RFC 2018
	TCPOptTimestamps    = 8 // RFC 7323 §3
)

// TCPMaxOptionsLen is the most option space a TCP header has.
const TCPMaxOptionsLen = TCPMaxHeaderLen - TCPMinHeaderLen

// TCPMaxSACKBlocks is how many SACK blocks fit in the option space.
const TCPMaxSACKBlocks = 4

// SACKBlock is one SACK block: the sequence numbers of the first byte of a
// received block and of the byte just after it.
type SACKBlock struct {
	Left, Right uint32
}

// TCPOptions holds the TCP options wisp understands, parsed into a fixed
// struct so that neither parsing nor emitting allocates. Unknown options are
// dropped on parse.
type TCPOptions struct {
	HasMSS bool
	MSS    uint16

	HasWindowScale bool
	// WindowScale is the shift count as received. RFC 7323 §2.3 says a
	// shift above 14 is used as 14; that clamp is the receiver's job.
	WindowScale uint8

	SACKPermitted bool

	NumSACK    int // blocks in use in SACK, 0 when no SACK option
	SACKBlocks [TCPMaxSACKBlocks]SACKBlock

	HasTimestamps bool
	TSVal, TSEcr  uint32
}

// ParseTCPOptions parses a TCP options area. Unknown options are skipped,
// parsing stops at End of Option List, and a repeated option overrides an
// earlier one. A known option with the wrong length, or any option whose
// length is below 2 or runs past b, gives ErrOption.
func ParseTCPOptions(b []byte) (TCPOptions, error) {
	var o TCPOptions
	for i := 0; i < len(b); {
		kind := b[i]
		switch kind {
		case TCPOptEOL:
			return o, nil
		case TCPOptNOP:
			i++
			continue
		}
		if i+2 > len(b) {
			return o, ErrOption
		}
		l := int(b[i+1])
		if l < 2 || i+l > len(b) {
			return o, ErrOption
		}
		d := b[i+2 : i+l]
		switch kind {
		case TCPOptMSS:
			if l != 4 {
				return o, ErrOption
			}
			o.HasMSS, o.MSS = true, binary.BigEndian.Uint16(d)
		case TCPOptWindowScale:
			if l != 3 {
				return o, ErrOption
			}
			o.HasWindowScale, o.WindowScale = true, d[0]
		case TCPOptSACKPermitted:
			if l != 2 {
				return o, ErrOption
			}
			o.SACKPermitted = true
		case TCPOptSACK:
			n := len(d) / 8
			if len(d)%8 != 0 || n == 0 || n > TCPMaxSACKBlocks {
				return o, ErrOption
			}
			o.NumSACK, o.SACKBlocks = n, [TCPMaxSACKBlocks]SACKBlock{}
			for j := range n {
				o.SACKBlocks[j] = SACKBlock{
					Left:  binary.BigEndian.Uint32(d[8*j:]),
					Right: binary.BigEndian.Uint32(d[8*j+4:]),
				}
			}
		case TCPOptTimestamps:
			if l != 10 {
				return o, ErrOption
			}
			o.HasTimestamps = true
			o.TSVal, o.TSEcr = binary.BigEndian.Uint32(d[0:4]), binary.BigEndian.Uint32(d[4:8])
		}
		i += l
	}
	return o, nil
}

// Len is the number of bytes Emit writes, a multiple of 4. The layout keeps
// 4-byte fields aligned as RFC 7323 Appendix A suggests:
//
//	MSS                          kind len mss mss            4
//	NOP WS                       NOP kind len shift          4
//	SACK-permitted + timestamps  kind len kind len TSval TSecr 12
//	timestamps alone             NOP NOP kind len TSval TSecr 12
//	SACK-permitted alone         NOP NOP kind len            4
//	SACK                         NOP NOP kind len blocks     4+8n
func (o *TCPOptions) Len() int {
	n := 0
	if o.HasMSS {
		n += 4
	}
	if o.HasWindowScale {
		n += 4
	}
	switch {
	case o.HasTimestamps:
		n += 12
	case o.SACKPermitted:
		n += 4
	}
	if o.NumSACK > 0 {
		n += 4 + 8*o.NumSACK
	}
	return n
}

// Emit writes the options to the start of b in the layout described at Len
// and returns the length written. It fails with ErrRepr if they need more
// than TCPMaxOptionsLen bytes or NumSACK is out of range, and with
// ErrBufferTooSmall if b is shorter than Len.
func (o *TCPOptions) Emit(b []byte) (int, error) {
	if o.NumSACK < 0 || o.NumSACK > TCPMaxSACKBlocks {
		return 0, ErrRepr
	}
	n := o.Len()
	if n > TCPMaxOptionsLen {
		return 0, ErrRepr
	}
	if len(b) < n {
		return 0, ErrBufferTooSmall
	}
	i := 0
	if o.HasMSS {
		b[0], b[1] = TCPOptMSS, 4
		binary.BigEndian.PutUint16(b[2:4], o.MSS)
		i = 4
	}
	if o.HasWindowScale {
		b[i], b[i+1], b[i+2], b[i+3] = TCPOptNOP, TCPOptWindowScale, 3, o.WindowScale
		i += 4
	}
	switch {
	case o.HasTimestamps:
		if o.SACKPermitted {
			b[i], b[i+1] = TCPOptSACKPermitted, 2
		} else {
			b[i], b[i+1] = TCPOptNOP, TCPOptNOP
		}
		b[i+2], b[i+3] = TCPOptTimestamps, 10
		binary.BigEndian.PutUint32(b[i+4:], o.TSVal)
		binary.BigEndian.PutUint32(b[i+8:], o.TSEcr)
		i += 12
	case o.SACKPermitted:
		b[i], b[i+1], b[i+2], b[i+3] = TCPOptNOP, TCPOptNOP, TCPOptSACKPermitted, 2
		i += 4
	}
	if o.NumSACK > 0 {
		b[i], b[i+1], b[i+2], b[i+3] = TCPOptNOP, TCPOptNOP, TCPOptSACK, uint8(2+8*o.NumSACK)
		i += 4
		for _, blk := range o.SACKBlocks[:o.NumSACK] {
			binary.BigEndian.PutUint32(b[i:], blk.Left)
			binary.BigEndian.PutUint32(b[i+4:], blk.Right)
			i += 8
		}
	}
	return i, nil
}

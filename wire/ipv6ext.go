package wire

import (
	"encoding/binary"
)

// IPv6 extension headers (RFC 8200 §4). Hop-by-Hop Options, Routing and
// Destination Options share a layout: Next Header, Hdr Ext Len in 8-octet
// units not counting the first 8, then data. The Fragment header is a fixed
// 8 bytes.

// IPv6FragmentHeaderLen is the length of the Fragment header.
const IPv6FragmentHeaderLen = 8

// IPv6ExtHeader is a view of a Hop-by-Hop, Routing or Destination Options
// header. Validate it with CheckIPv6ExtHeader.
type IPv6ExtHeader []byte

// CheckIPv6ExtHeader validates that b starts with a whole extension header
// of the generic layout.
func CheckIPv6ExtHeader(b []byte) error {
	if len(b) < 8 || len(b) < IPv6ExtHeader(b).Len() {
		return ErrTruncated
	}
	return nil
}

// NextHeader is the type of the following header.
func (h IPv6ExtHeader) NextHeader() uint8 { return h[0] }

// HdrExtLen is the raw length field: 8-octet units beyond the first 8.
func (h IPv6ExtHeader) HdrExtLen() uint8 { return h[1] }

// Len is the header length in bytes.
func (h IPv6ExtHeader) Len() int { return (int(h[1]) + 1) * 8 }

// Data is the header after Next Header and Hdr Ext Len: the options of a
// Hop-by-Hop or Destination Options header.
func (h IPv6ExtHeader) Data() []byte { return h[2:h.Len()] }

// RoutingType is the Routing Type of a Routing header.
func (h IPv6ExtHeader) RoutingType() uint8 { return h[2] }

// SegmentsLeft is the Segments Left field of a Routing header.
func (h IPv6ExtHeader) SegmentsLeft() uint8 { return h[3] }

// Options iterates over the TLV options of a Hop-by-Hop or Destination
// Options header.
func (h IPv6ExtHeader) Options() IPv6OptionIter {
	return IPv6OptionIter{b: h[:h.Len()], off: 2}
}

// IPv6 Hop-by-Hop and Destination option types.
const (
	IPv6OptPad1        = 0x00
	IPv6OptPadN        = 0x01
	IPv6OptRouterAlert = 0x05 // RFC 2711
	IPv6OptJumbo       = 0xc2 // RFC 2675
)

// Actions for an unrecognised option, from the two high bits of its type
// (RFC 8200 §4.2).
const (
	IPv6OptActionSkip           = 0 // skip over the option
	IPv6OptActionDiscard        = 1 // discard the packet silently
	IPv6OptActionDiscardICMP    = 2 // discard, send Parameter Problem code 2
	IPv6OptActionDiscardICMPUni = 3 // as 2, unless the destination is multicast
)

// IPv6OptionAction returns the action the two high bits of an option type
// ask for when the option is not recognised.
func IPv6OptionAction(typ uint8) uint8 { return typ >> 6 }

// IPv6Option is one option from a Hop-by-Hop or Destination Options header.
type IPv6Option struct {
	Type   uint8
	Data   []byte // aliases the header
	Offset int    // of the option type byte, from the start of the extension header
}

// IPv6OptionIter walks the options of an extension header without
// allocating. Pad1 and PadN are skipped.
type IPv6OptionIter struct {
	b   []byte
	off int
	err error
}

// Next returns the next option, or false at the end or on a malformed option
// (then Err says which).
func (it *IPv6OptionIter) Next() (IPv6Option, bool) {
	for it.err == nil && it.off < len(it.b) {
		typ := it.b[it.off]
		if typ == IPv6OptPad1 {
			it.off++
			continue
		}
		if it.off+2 > len(it.b) || it.off+2+int(it.b[it.off+1]) > len(it.b) {
			it.err = ErrOption
			return IPv6Option{}, false
		}
		o := IPv6Option{Type: typ, Data: it.b[it.off+2 : it.off+2+int(it.b[it.off+1])], Offset: it.off}
		it.off += 2 + len(o.Data)
		if typ == IPv6OptPadN {
			continue
		}
		return o, true
	}
	return IPv6Option{}, false
}

// Err is ErrOption if an option ran past the end of the header.
func (it *IPv6OptionIter) Err() error { return it.err }

// ErrOffset is the offset, from the start of the extension header, of the
// option that was malformed.
func (it *IPv6OptionIter) ErrOffset() int { return it.off }

// IPv6Fragment is a view of an IPv6 Fragment header (RFC 8200 §4.5).
// Validate it with CheckIPv6Fragment.
type IPv6Fragment []byte

// CheckIPv6Fragment validates that b holds a Fragment header.
func CheckIPv6Fragment(b []byte) error {
	if len(b) < IPv6FragmentHeaderLen {
		return ErrTruncated
	}
	return nil
}

// NextHeader is the type of the header of the fragmentable part.
func (f IPv6Fragment) NextHeader() uint8 { return f[0] }

// FragmentOffset is the offset of this fragment's data in bytes (the field
// counts 8-octet units).
func (f IPv6Fragment) FragmentOffset() int { return int(binary.BigEndian.Uint16(f[2:4])>>3) * 8 }

// MoreFragments is the M flag.
func (f IPv6Fragment) MoreFragments() bool { return f[3]&1 != 0 }

// Identification is the fragment identification.
func (f IPv6Fragment) Identification() uint32 { return binary.BigEndian.Uint32(f[4:8]) }

// IPv6FragmentRepr is a parsed Fragment header.
type IPv6FragmentRepr struct {
	NextHeader     uint8
	FragmentOffset int // bytes, a multiple of 8 below 65536
	MoreFragments  bool
	Identification uint32
}

// Parse validates b and fills r from it.
func (r *IPv6FragmentRepr) Parse(b []byte) error {
	if err := CheckIPv6Fragment(b); err != nil {
		return err
	}
	f := IPv6Fragment(b)
	*r = IPv6FragmentRepr{
		NextHeader:     f.NextHeader(),
		FragmentOffset: f.FragmentOffset(),
		MoreFragments:  f.MoreFragments(),
		Identification: f.Identification(),
	}
	return nil
}

// HeaderLen is the number of bytes Emit writes.
func (r *IPv6FragmentRepr) HeaderLen() int { return IPv6FragmentHeaderLen }

// Emit writes the Fragment header to the start of b; reserved bits are zero.
func (r *IPv6FragmentRepr) Emit(b []byte) error {
	return EmitIPv6Fragment(b, r.NextHeader, r.FragmentOffset, r.MoreFragments, r.Identification)
}

// EmitIPv6Fragment writes a Fragment header to the start of b. offset is in
// bytes and must be a multiple of 8 below 65536.
func EmitIPv6Fragment(b []byte, nextHeader uint8, offset int, more bool, id uint32) error {
	if len(b) < IPv6FragmentHeaderLen {
		return ErrBufferTooSmall
	}
	if offset < 0 || offset%8 != 0 || offset > 0xfff8 {
		return ErrRepr
	}
	b[0] = nextHeader
	b[1] = 0
	v := uint16(offset) // offset/8 << 3 == offset for multiples of 8
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[2:4], v)
	binary.BigEndian.PutUint32(b[4:8], id)
	return nil
}

// IPv6Chain describes an IPv6 packet's extension header chain. Offsets are
// from the start of the IPv6 header; 0 means the header is absent (no
// extension header can sit at offset 0).
type IPv6Chain struct {
	// Proto is the upper-layer protocol: the first Next Header value that is
	// not Hop-by-Hop, Routing, Fragment or Destination Options. After a
	// Fragment header it is the fragment header's Next Header. It may be
	// ProtoNoNextHdr.
	Proto uint8
	// Offset is where the upper-layer header starts, or, after a Fragment
	// header, where the fragment data starts.
	Offset int

	HopByHopOffset int
	RoutingOffset  int
	FragmentOffset int

	// On error, ErrPointer and ErrCode are the Pointer and Code for an
	// ICMPv6 Parameter Problem message (RFC 4443 §3.4).
	ErrPointer int
	ErrCode    uint8
}

// WalkIPv6 validates the IPv6 packet b with CheckIPv6 and walks its
// extension header chain without allocating.
//
// The walk stops at a Fragment header: what follows is fragment data that
// may not hold whole headers, so after reassembly the caller walks the
// reassembled packet again. Options inside Hop-by-Hop and Destination Options
// headers are not interpreted; use IPv6ExtHeader.Options for that.
//
// Errors: ErrTruncated when a header runs past Payload Length (ErrPointer
// names the header's length field, or, when even that is missing, the Next
// Header field that announced the header), ErrExtHeader when a Hop-by-Hop header is not first (ErrPointer
// names the Next Header field that introduced it, ErrCode is 1).
func WalkIPv6(b []byte) (IPv6Chain, error) {
	var c IPv6Chain
	if err := CheckIPv6(b); err != nil {
		return c, err
	}
	end := IPv6HeaderLen + int(IPv6(b).PayloadLength())
	nh, nhField, off := b[6], 6, IPv6HeaderLen
	for {
		switch nh {
		case ProtoHopByHop, ProtoIPv6Route, ProtoIPv6DstOpts:
			if nh == ProtoHopByHop {
				// RFC 8200 §4.1: the Hop-by-Hop Options header, when
				// present, must immediately follow the IPv6 header.
				if off != IPv6HeaderLen {
					c.ErrPointer, c.ErrCode = nhField, ICMPv6ParamUnknownNextHdr
					return c, ErrExtHeader
				}
				c.HopByHopOffset = off
			} else if nh == ProtoIPv6Route && c.RoutingOffset == 0 {
				c.RoutingOffset = off
			}
			if off+2 > end {
				c.ErrPointer, c.ErrCode = nhField, ICMPv6ParamErroneousField
				return c, ErrTruncated
			}
			if off+IPv6ExtHeader(b[off:]).Len() > end {
				c.ErrPointer, c.ErrCode = off+1, ICMPv6ParamErroneousField
				return c, ErrTruncated
			}
			nh, nhField, off = b[off], off, off+IPv6ExtHeader(b[off:]).Len()
		case ProtoIPv6Frag:
			if off+IPv6FragmentHeaderLen > end {
				c.ErrPointer, c.ErrCode = nhField, ICMPv6ParamErroneousField
				return c, ErrTruncated
			}
			c.FragmentOffset = off
			c.Proto, c.Offset = b[off], off+IPv6FragmentHeaderLen
			return c, nil
		default:
			c.Proto, c.Offset = nh, off
			return c, nil
		}
	}
}

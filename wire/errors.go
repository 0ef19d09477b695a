package wire

import "errors"

// Sentinel errors returned by Check, Parse and Emit functions. They carry no
// dynamic data so that returning them never allocates; callers compare with
// errors.Is.
var (
	// ErrTruncated: the buffer is shorter than the header or than a length
	// field inside it says.
	ErrTruncated = errors.New("wire: truncated")
	// ErrVersion: the IP version field does not match the view.
	ErrVersion = errors.New("wire: bad IP version")
	// ErrHeaderLen: a header length field (IHL, TCP data offset) is too small.
	ErrHeaderLen = errors.New("wire: bad header length")
	// ErrLength: a total/payload length field is inconsistent.
	ErrLength = errors.New("wire: bad length field")
	// ErrChecksum: a checksum does not verify.
	ErrChecksum = errors.New("wire: bad checksum")
	// ErrUnsupported: a well-formed packet of a variant wire does not
	// handle (ARP for a non-Ethernet/IPv4 pair, for example).
	ErrUnsupported = errors.New("wire: unsupported format")
	// ErrOption: a TCP, IPv6 or NDP option has a malformed length.
	ErrOption = errors.New("wire: malformed option")
	// ErrType: an ICMP/NDP message has the wrong type or code for the view.
	ErrType = errors.New("wire: wrong message type or code")
	// ErrExtHeader: an IPv6 extension header chain is malformed.
	ErrExtHeader = errors.New("wire: malformed IPv6 extension header chain")
	// ErrBufferTooSmall: Emit was given a buffer too short for the header.
	ErrBufferTooSmall = errors.New("wire: buffer too small")
	// ErrAddress: a Repr holds an address of the wrong family.
	ErrAddress = errors.New("wire: address family mismatch")
	// ErrRepr: a Repr field is out of range for the wire format.
	ErrRepr = errors.New("wire: field out of range")
)

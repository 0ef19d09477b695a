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

	// The errors of VirtioNetHdrRepr.Parse.

	// ErrVirtioNetFlags: a flag bit other than NEEDS_CSUM and DATA_VALID is set.
	ErrVirtioNetFlags = errors.New("wire: virtio-net header: unknown flags")
	// ErrVirtioNetGSOType: the GSO type is unknown, or UFO (VIRTIO_NET_HDR_GSO_UDP), which
	// wisp refuses, or the ECN bit on a type that is not TCP.
	ErrVirtioNetGSOType = errors.New("wire: virtio-net header: unknown or unsupported GSO type")
	// ErrVirtioNetGSO: a GSO packet without a segment size, or without a checksum flag
	// (its checksum field says nothing true about the segments).
	ErrVirtioNetGSO = errors.New("wire: virtio-net header: GSO packet without segment size or checksum flag")
	// ErrVirtioNetCsum: NEEDS_CSUM with a checksum field outside the packet
	// (csum_start+csum_offset+2 > packet length).
	ErrVirtioNetCsum = errors.New("wire: virtio-net header: checksum start/offset outside the packet")
	// ErrVirtioNetHdrLen: hdr_len larger than the packet.
	ErrVirtioNetHdrLen = errors.New("wire: virtio-net header: hdr_len larger than the packet")
)

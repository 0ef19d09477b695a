package wire

import "encoding/binary"

// IPTransport locates the transport header of the IPv4 or IPv6 packet whose first bytes are
// b: its offset and protocol, and end, where the packet ends by its IP length field (which
// may lie beyond len(b)). IPv6 hop-by-hop, routing and destination options headers are
// stepped over. ok is false for a fragment (IPv4 MF or offset; an IPv6 Fragment header is
// returned as the protocol), a bad header length, or headers b does not hold.
func IPTransport(b []byte) (off int, proto uint8, end int, ok bool) {
	if len(b) < 1 {
		return 0, 0, 0, false
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < IPv4MinHeaderLen {
			return 0, 0, 0, false
		}
		ip := IPv4(b)
		off, proto, end = ip.HeaderLen(), ip.Protocol(), int(ip.TotalLength())
		if off < IPv4MinHeaderLen || off > len(b) || ip.IsFragment() {
			return 0, 0, 0, false
		}
	case 6:
		if len(b) < IPv6HeaderLen {
			return 0, 0, 0, false
		}
		ip := IPv6(b)
		off, proto, end = IPv6HeaderLen, ip.NextHeader(), IPv6HeaderLen+int(ip.PayloadLength())
		for proto == ProtoHopByHop || proto == ProtoIPv6Route || proto == ProtoIPv6DstOpts {
			if len(b) < off+2 {
				return 0, 0, 0, false
			}
			proto, off = b[off], off+(int(b[off+1])+1)*8
		}
		if off > len(b) {
			return 0, 0, 0, false
		}
	default:
		return 0, 0, 0, false
	}
	return off, proto, end, true
}

// ChecksumOffset is where the checksum field lies in a TCP or UDP header; 0 for other
// protocols.
func ChecksumOffset(proto uint8) int {
	switch proto {
	case ProtoTCP:
		return 16
	case ProtoUDP:
		return 6
	}
	return 0
}

// CompleteChecksum finishes the TCP or UDP checksum of IP packet b that was left partial:
// its field holds the folded pseudo-header sum (Linux's CHECKSUM_PARTIAL), so the sum over
// the transport header and payload as they stand, complemented, is the final value (UDP's
// zero is sent as all ones, RFC 768). It is what a link with checksum offload does. False,
// and b unchanged, when b does not hold a whole unfragmented TCP or UDP packet.
func CompleteChecksum(b []byte) bool {
	off, proto, end, ok := IPTransport(b)
	co := ChecksumOffset(proto)
	if !ok || co == 0 || end > len(b) || off+co+2 > end {
		return false
	}
	c := Finish(Checksum(b[off:end], 0))
	if c == 0 && proto == ProtoUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[off+co:], c)
	return true
}

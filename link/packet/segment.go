package packet

// Large segments on the way to the host. With offloads on (Config.Offload) the stack
// hands the link TCP segments of up to 64 KiB with one header, a GSO mark (the
// payload bytes of each segment on the wire) and a partial checksum. The host takes one IP
// packet at a time (wireguard-go encrypts one per message), so Read cuts each such frame
// into MTU-sized packets, written straight into the host's buffers (the one copy Read
// always made):
//
//	frame     [IP|TCP|payload ...................................]  GSO size s
//	bufs[n]   [IP|TCP|payload[0:s]]     ID+0, seq+0,   CWR kept, PSH/FIN cleared
//	bufs[n+1] [IP|TCP|payload[s:2s]]    ID+1, seq+s,   CWR, PSH, FIN cleared
//	bufs[n+k] [IP|TCP|payload[ks:]]     ID+k, seq+k·s, CWR cleared, PSH/FIN kept
//
// Each packet's TCP checksum is computed over the bytes just copied, still in cache; the
// partial sum the stack left is not needed. A frame that needs more buffers than one Read
// has is finished by the next Read, before any later frame. wireguard-go's tun package
// has a splitter of its own (for a kernel TUN's virtio-net frames), but it is unexported.

import (
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// hdrMax is the longest header a GSO frame may have: the longest IPv4 header and the
// longest TCP header (IPv6 GSO frames carry no extension header).
const hdrMax = 60 + 60

// cutter is the progress through the GSO frame Read is cutting (Link.rmu guards it).
type cutter struct {
	p      *pbuf.Pbuf // the frame being cut; nil when none is
	hdr    [hdrMax]byte
	ipLen  int    // IP header length
	hdrLen int    // IP and TCP header length
	v6     bool   // IPv6, else IPv4
	size   int    // payload bytes of each segment but the last
	left   int    // payload bytes not cut yet
	seg    int    // index of the next segment
	addrs  uint32 // folded checksum sum of the source and destination addresses
	q      *pbuf.Pbuf
	qo     int // the next payload byte is q's byte qo
}

// start begins cutting p, borrowed, and reports whether its headers are those of a TCP
// GSO packet Read can cut: the IP length covering the whole chain, TCP as the protocol,
// no IPv4 fragment, no IPv6 extension header.
func (c *cutter) start(p *pbuf.Pbuf) bool {
	typ, size := p.GSO()
	tot := p.TotLen()
	b := c.hdr[:p.CopyOut(c.hdr[:], 0)]
	switch typ {
	case pbuf.GSOTCPv4:
		if len(b) < wire.IPv4MinHeaderLen || b[0]>>4 != 4 {
			return false
		}
		ip := wire.IPv4(b)
		c.ipLen, c.v6 = ip.HeaderLen(), false
		if c.ipLen < wire.IPv4MinHeaderLen || ip.Protocol() != wire.ProtoTCP ||
			int(ip.TotalLength()) != tot || ip.IsFragment() {
			return false
		}
		c.addrs = uint32(wire.Fold(wire.Checksum(b[12:20], 0)))
	case pbuf.GSOTCPv6:
		if len(b) < wire.IPv6HeaderLen || b[0]>>4 != 6 {
			return false
		}
		ip := wire.IPv6(b)
		c.ipLen, c.v6 = wire.IPv6HeaderLen, true
		if ip.NextHeader() != wire.ProtoTCP || wire.IPv6HeaderLen+int(ip.PayloadLength()) != tot {
			return false
		}
		c.addrs = uint32(wire.Fold(wire.Checksum(b[8:40], 0)))
	default:
		return false // USO is not offered to the stack
	}
	if len(b) < c.ipLen+wire.TCPMinHeaderLen {
		return false
	}
	th := wire.TCP(b[c.ipLen:]).HeaderLen()
	if th < wire.TCPMinHeaderLen || c.ipLen+th > len(b) || size <= 0 {
		return false
	}
	c.hdrLen = c.ipLen + th
	c.size, c.left, c.seg = size, tot-c.hdrLen, 0
	c.q, c.qo = p.Skip(c.hdrLen)
	c.p = p
	return true
}

// more reports whether segments remain to be cut (a frame without payload is one).
func (c *cutter) more() bool { return c.left > 0 || c.seg == 0 }

// remaining is the number of segments not cut yet.
func (c *cutter) remaining() int {
	if c.left == 0 {
		return 1
	}
	return (c.left + c.size - 1) / c.size
}

// stop forgets the frame (its owner frees it).
func (c *cutter) stop() { c.p, c.q = nil, nil }

// next writes the next segment into dst and returns its length, or 0, writing nothing
// that counts, when it is longer than dst or mtu.
func (c *cutter) next(dst []byte, mtu int) int {
	n := min(c.size, c.left)
	l := c.hdrLen + n
	if l > len(dst) || l > mtu {
		return 0
	}
	dst = dst[:l]
	copy(dst, c.hdr[:c.hdrLen])
	pay := dst[c.hdrLen:]
	for k := 0; k < n; {
		for c.qo >= c.q.Len() { // zero-length pbufs are legal in a chain
			c.q, c.qo = c.q.Next(), 0
		}
		m := copy(pay[k:], c.q.Payload()[c.qo:])
		k += m
		c.qo += m
	}
	last := n == c.left
	if c.v6 {
		wire.IPv6(dst).SetPayloadLength(uint16(l - wire.IPv6HeaderLen))
	} else {
		ip := wire.IPv4(dst[:c.ipLen])
		ip.SetTotalLength(uint16(l))
		// Linux's rule for TSO: each segment takes the next Identification.
		ip.SetID(wire.IPv4(c.hdr[:]).ID() + uint16(c.seg))
		ip.SetChecksum()
	}
	t := wire.TCP(dst[c.ipLen:])
	t.SetSeqNum(t.SeqNum() + uint32(c.seg*c.size))
	f := t.Flags()
	if c.seg > 0 {
		f &^= wire.TCPFlagCWR // RFC 3168 §6.1.2: CWR once, on the first new segment
	}
	if !last {
		f &^= wire.TCPFlagFIN | wire.TCPFlagPSH // they end the data: only the last segment
	}
	t.SetFlags(f)
	t.SetChecksumField(0)
	// RFC 9293 §3.1: the pseudo-header (addresses, protocol, TCP length), then the header
	// and the payload. The header has even length, so the payload's words stay aligned.
	sum := c.addrs + wire.ProtoTCP + uint32(l-c.ipLen)
	sum = wire.Checksum(dst[c.ipLen:c.hdrLen], sum)
	sum = wire.Checksum(pay, sum)
	t.SetChecksumField(wire.Finish(sum))
	c.left -= n
	c.seg++
	return l
}

package ip

import (
	"encoding/binary"
	"net/netip"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// Large segments on the way out. A transport may build one packet of up to the egress
// link's GSOMax with one header and a GSO mark (pbuf.SetGSO: the payload of each segment
// on the wire) and a partial checksum (pbuf.FlagChecksumPartial). Output checks that each
// segment, not the packet, fits the MTU; the netif then hands the packet whole to a link
// that segments it (TSO/USO), or cuts it here, at the last moment, into segments that
// share the packet's memory (software GSO): a copy of the headers per segment, zero-copy
// views of the payload, and one checksum pass over each segment's bytes. Partial
// checksums on packets a link does not complete are completed here too.
//
//	TCP/UDP ──64 KiB, one header──▶ output4/6 ──▶ Netif.xmit ──TSO link──▶ WritePackets
//	                                                      └──otherwise──▶ gsoSoft ──▶ MTU-sized frames

// setOffloads records what ep offers, made consistent: segmentation needs checksum
// offload (as Linux's NETIF_F_TSO needs NETIF_F_CSUM), and a GSOMax that does not
// exceed the MTU means no GSO.
func (n *Netif) setOffloads(ep link.Endpoint) {
	o, ok := ep.(link.Offloader)
	if !ok {
		return
	}
	off := o.Offloads()
	if !off.TxChecksum {
		off.TSO4, off.TSO6, off.USO = false, false, false
	}
	off.GSOMax = min(off.GSOMax, 0xffff)
	if off.GSOMax <= n.mtu {
		off.GSOMax = 0
	}
	n.off = off
}

// TxOffload is what the route to a destination offers a transport (Layer.GSO).
type TxOffload struct {
	// GSOMax is the largest GSO packet, IP header included, the transport may build; 0
	// for none.
	GSOMax int
	// Cut: a GSO packet is cut in software before the link, so it becomes one frame per
	// segment in the link's queue (link.TxRoomer counts frames); otherwise the link takes
	// it as one frame.
	Cut bool
	// CsumPartial: an ordinary packet's checksum may be left partial
	// (pbuf.FlagChecksumPartial): the link completes it. (A GSO packet's always is.)
	CsumPartial bool
	// MTU is the route's MTU for the destination's family: each segment of a GSO packet,
	// headers included, must fit it (a smaller MTU than the transport's segments means
	// fragments, which GSO does not make).
	MTU int
}

// GSO reports what the route to dst offers a transport sending v4 or v6 packets (as dst
// is) of protocol proto (TCP or UDP). Local destinations get nothing: looped packets are
// delivered as they are. Core context.
func (l *Layer) GSO(dst netip.Addr, proto uint8) TxOffload {
	l.timers.AssertCore()
	n, _, local, _, err := l.routeCached(dst, nil)
	if err != nil || local || n.off.GSOMax == 0 {
		if err == nil && !local {
			return TxOffload{CsumPartial: n.off.TxChecksum}
		}
		return TxOffload{}
	}
	var self bool
	switch {
	case proto == wire.ProtoUDP:
		self = n.off.USO
	case dst.Unmap().Is4():
		self = n.off.TSO4
	default:
		self = n.off.TSO6
	}
	return TxOffload{GSOMax: n.off.GSOMax, Cut: !self, CsumPartial: n.off.TxChecksum, MTU: n.mtuFor(!dst.Unmap().Is4())}
}

// gsoSegs returns how many segments GSO packet p (borrowed) makes, or 0 when they would not fit mtu
// or the packet the 16-bit length fields. p holds the transport header at offset l4 (0:
// the IP header, hl bytes, is still to come; hl: p starts with it). A transport builds
// its packets to fit; a path MTU that shrank since, or a forwarded packet, may not.
func gsoSegs(p *pbuf.Pbuf, l4, hl, mtu int, v6 bool) int {
	typ, size := p.GSO()
	th := wire.UDPHeaderLen
	if typ != pbuf.GSOUDPL4 {
		b, ok := p.ByteAt(l4 + 12)
		if !ok {
			return 0
		}
		th = int(b>>4) * 4
	}
	l4len := p.TotLen() - l4
	limit := 0xffff - hl // IPv4 total length
	if v6 {
		limit = 0xffff // IPv6 payload length
	}
	data := l4len - th
	if hl+th+size > mtu || l4len > limit || data <= 0 {
		return 0
	}
	return (data + size - 1) / size
}

// gsoOutput checks GSO packet p on its way out of n: it returns the number of segments,
// or 0 after dropping p (counted in st) when they do not fit. Whatever the link offers,
// the packet leaves: cut in software where the link does not take it whole (a UDP
// sender's UDP_SEGMENT does not ask the route first).
func (l *Layer) gsoOutput(n *Netif, p *pbuf.Pbuf, hl int, v6 bool, st *stats.Proto) int {
	segs := gsoSegs(p, 0, hl, n.mtuFor(v6), v6)
	if segs == 0 {
		l.offload.GSOErr++
		l.dropPkt(p, &st.Lenerr)
	}
	return segs
}

// OffloadStats returns the offload counters, for the stack's GRO stage to count in.
// Core context.
func (l *Layer) OffloadStats() *stats.Offload { return &l.offload }

// txReady takes ownership of frame p and returns it ready for n's link, or nil when it
// went another way: a GSO packet the link cannot segment is cut here (each segment goes
// to the batch); a partial checksum the link does not complete is completed.
func (n *Netif) txReady(p *pbuf.Pbuf) *pbuf.Pbuf {
	typ, _ := p.GSO()
	st := &n.l.offload
	if typ != pbuf.GSONone {
		st.GSOOut++
		if p.TotLen()-n.medium.HeaderLen() <= n.off.GSOMax && (typ == pbuf.GSOTCPv4 && n.off.TSO4 ||
			typ == pbuf.GSOTCPv6 && n.off.TSO6 || typ == pbuf.GSOUDPL4 && n.off.USO) {
			st.TSOOut++
			return p
		}
		n.gsoSoft(p)
		return nil
	}
	if p.Flags()&pbuf.FlagChecksumPartial != 0 && !n.off.TxChecksum {
		if !CompleteChecksum(p, n.medium.HeaderLen()) {
			st.GSOErr++
			n.stats.Drop++
			n.stats.Err++
			p.Free()
			return nil
		}
		st.CsumCompleted++
	}
	return p
}

// frameLayout is where the headers of a frame are: IP header, transport header and
// payload (offsets from the frame's start), and the transport protocol.
type frameLayout struct {
	ip, l4, data int // offsets of the IP header, transport header and payload
	proto        uint8
	v6           bool
}

// layout parses the headers of frame p (lh bytes of link header first), which must all
// lie in its first pbuf (the stack builds them so): wire.IPTransport after the link header,
// and the TCP or UDP header's length.
func layout(p *pbuf.Pbuf, lh int) (frameLayout, bool) {
	b := p.Payload()
	var f frameLayout
	if len(b) < lh+1 {
		return f, false
	}
	off, proto, _, ok := wire.IPTransport(b[lh:])
	if !ok {
		return f, false
	}
	f.ip, f.l4, f.proto, f.v6 = lh, lh+off, proto, b[lh]>>4 == 6
	switch f.proto {
	case wire.ProtoTCP:
		if len(b) < f.l4+wire.TCPMinHeaderLen {
			return f, false
		}
		f.data = f.l4 + int(b[f.l4+12]>>4)*4
	case wire.ProtoUDP:
		f.data = f.l4 + wire.UDPHeaderLen
	default:
		return f, false
	}
	return f, f.data <= len(b) && f.data <= p.TotLen()
}

// CompleteChecksum finishes the partial TCP or UDP checksum of frame p (borrowed; lh bytes
// of link header, then every header in its first pbuf, as the stack builds them): the field
// holds the pseudo-header sum, so the sum over the transport header and payload as they
// stand is the whole sum (Linux's skb_checksum_help; wire.CompleteChecksum for a flat
// packet). It clears FlagChecksumPartial. False, p unchanged, when p is malformed.
func CompleteChecksum(p *pbuf.Pbuf, lh int) bool {
	f, ok := layout(p, lh)
	if !ok {
		return false
	}
	b := p.Payload()
	n := p.TotLen() - f.l4
	var sum uint32
	if p.Next() == nil {
		sum = wire.Checksum(b[f.l4:], 0)
	} else {
		sum = p.Checksum(f.l4, n, 0)
	}
	c := wire.Finish(sum)
	if c == 0 && f.proto == wire.ProtoUDP {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(b[f.l4+wire.ChecksumOffset(f.proto):], c)
	p.SetFlags(p.Flags() &^ pbuf.FlagChecksumPartial)
	return true
}

// completeBeforeFragment completes the partial checksum of transport packet p (borrowed;
// its header first, proto's) that is about to be fragmented: the fragments carry it as it stands, and
// no link completes a checksum across fragments.
func completeBeforeFragment(p *pbuf.Pbuf, proto uint8) {
	if p.Flags()&pbuf.FlagChecksumPartial == 0 || proto != wire.ProtoTCP && proto != wire.ProtoUDP {
		return
	}
	c := wire.Finish(p.Checksum(0, p.TotLen(), 0))
	if c == 0 && proto == wire.ProtoUDP {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	if b, ok := p.Header(wire.ChecksumOffset(proto) + 2); ok {
		binary.BigEndian.PutUint16(b[wire.ChecksumOffset(proto):], c)
	}
	p.SetFlags(p.Flags() &^ pbuf.FlagChecksumPartial)
}

// gsoSoft cuts GSO frame p (taken) into frames of at most its GSO size of payload, each a
// copy of p's headers followed by views of p's payload, and batches them. A segment that
// cannot be built (no memory) is dropped with the rest of the packet: the transport
// recovers it as a loss.
func (n *Netif) gsoSoft(p *pbuf.Pbuf) {
	st := &n.l.offload
	defer p.Free() // the segments' views hold what they need
	lh := n.medium.HeaderLen()
	f, ok := layout(p, lh)
	typ, size := p.GSO()
	if !ok || size <= 0 || (typ == pbuf.GSOUDPL4) != (f.proto == wire.ProtoUDP) {
		st.GSOErr++
		n.stats.Drop++
		n.stats.Err++
		return
	}
	st.GSOSoft++
	hb := p.Payload()[:f.data]
	total := p.TotLen() - f.data
	// The pseudo-header sum without the length: addresses and protocol.
	var addrSum uint32
	if f.v6 {
		addrSum = wire.Checksum(hb[f.ip+8:f.ip+40], uint32(f.proto))
	} else {
		addrSum = wire.Checksum(hb[f.ip+12:f.ip+20], uint32(f.proto))
	}
	var seq uint32
	var id uint16
	var tcpFlags wire.TCPFlags
	if f.proto == wire.ProtoTCP {
		t := wire.TCP(hb[f.l4:f.data])
		seq, tcpFlags = t.SeqNum(), t.Flags()
	}
	if !f.v6 {
		id = wire.IPv4(hb[f.ip:f.l4]).ID()
	}
	for off, i := 0, 0; off < total; off, i = off+size, i+1 {
		segLen := min(size, total-off)
		last := off+segLen == total
		h, err := n.l.alloc.Alloc(pbuf.LayerRaw, f.data, pbuf.RAM)
		if err != nil {
			if h, err = n.l.alloc.Alloc(pbuf.LayerRaw, f.data, pbuf.POOL); err != nil || h.Next() != nil {
				h.Free()
				n.gsoDrop(st)
				return
			}
		}
		v, err := n.l.alloc.RefRange(nil, p, f.data+off, segLen)
		if err != nil {
			h.Free()
			n.gsoDrop(st)
			return
		}
		b := h.Payload()
		copy(b, hb)
		l4len := f.data - f.l4 + segLen
		if f.v6 {
			wire.IPv6(b[f.ip:f.l4]).SetPayloadLength(uint16(f.l4 - f.ip - wire.IPv6HeaderLen + l4len)) // extension headers included
		} else {
			ip := wire.IPv4(b[f.ip:f.l4])
			ip.SetTotalLength(uint16(f.l4 - f.ip + l4len))
			ip.SetID(id + uint16(i))
			ip.SetChecksum()
		}
		var sum uint32
		if f.proto == wire.ProtoTCP {
			t := wire.TCP(b[f.l4:f.data])
			t.SetSeqNum(seq + uint32(off))
			fl := tcpFlags
			if i > 0 {
				fl &^= wire.TCPFlagCWR // RFC 3168 §6.1.2: CWR on the first segment only
			}
			if !last {
				fl &^= wire.TCPFlagFIN | wire.TCPFlagPSH
			}
			t.SetFlags(fl)
			t.SetChecksumField(0)
			sum = wire.Checksum(t, addrSum+uint32(l4len))
		} else {
			u := wire.UDP(b[f.l4:f.data])
			u.SetLength(uint16(l4len))
			u.SetChecksumField(0)
			sum = wire.Checksum(u, addrSum+uint32(l4len))
		}
		if v.Next() == nil {
			sum = wire.Checksum(v.Payload(), sum)
		} else {
			sum = v.Checksum(0, segLen, sum)
		}
		c := wire.Finish(sum)
		if c == 0 && f.proto == wire.ProtoUDP {
			c = 0xffff // RFC 768: a computed zero is sent as all ones
		}
		binary.BigEndian.PutUint16(b[f.l4+wire.ChecksumOffset(f.proto):], c)
		pbuf.Cat(h, v)
		st.GSOSoftSegs++
		n.xmitFrame(h)
	}
}

// gsoDrop counts a software GSO cut that ran out of memory.
func (n *Netif) gsoDrop(st *stats.Offload) {
	st.GSOErr++
	n.stats.Drop++
	n.stats.Memerr++
}

// forwardGSO prepares GSO packet p (borrowed; IP header of hl bytes first), received
// coalesced, to leave by out: true when its segments fit out's MTU (the netif cuts it if the link does
// not). Its checksum field is made partial, as a link that segments it expects; the
// segments cut here get theirs computed whole.
func forwardGSO(out *Netif, p *pbuf.Pbuf, hl int, v6 bool) bool {
	if gsoSegs(p, hl, hl, out.mtuFor(v6), v6) == 0 {
		return false
	}
	if p.Flags()&pbuf.FlagChecksumPartial != 0 {
		return true
	}
	f, ok := layout(p, 0)
	if !ok {
		return false
	}
	b := p.Payload()
	l4len := uint32(p.TotLen() - f.l4)
	var sum uint32
	if v6 {
		ip := wire.IPv6(b[:f.l4])
		sum = wire.PseudoHeaderChecksum(f.proto, ip.Src(), ip.Dst(), l4len)
	} else {
		ip := wire.IPv4(b[:f.l4])
		sum = wire.PseudoHeaderChecksum(f.proto, ip.Src(), ip.Dst(), l4len)
	}
	binary.BigEndian.PutUint16(b[f.l4+wire.ChecksumOffset(f.proto):], wire.Fold(sum))
	p.SetFlags(p.Flags() | pbuf.FlagChecksumPartial)
	return true
}

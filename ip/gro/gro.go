package gro

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// MaxFlows is how many flows an Engine holds a segment for at once; a batch with more
// evicts one (its packet stays where it is, merged so far).
const MaxFlows = 64

// maxIPLen bounds a coalesced packet: IPv4 Total Length, IPv6 Payload Length are 16 bits.
const maxIPLen = 0xffff

// TCP flags: a held segment has none of holdForbidden; a segment with one of lastFlags is
// merged as the last.
const (
	holdForbidden = wire.TCPFlagFIN | wire.TCPFlagPSH | wire.TCPFlagSYN | wire.TCPFlagRST | wire.TCPFlagURG
	lastFlags     = wire.TCPFlagFIN | wire.TCPFlagPSH
)

// Engine coalesces the TCP segments of received batches. The zero value is ready; it keeps
// its scratch between batches and allocates nothing.
type Engine struct {
	flows   [MaxFlows]flow
	n       int     // flows[:n] hold a segment
	seg     segment // the packet being looked at
	discard stats.Offload
}

// flow is the segment held for one flow: the packet later segments merge into.
type flow struct {
	p      *pbuf.Pbuf // the held packet; its slot in the output batch owns it
	hdr    []byte     // its IP and TCP headers, in its first pbuf
	hash   uint32
	v6     bool
	ipHL   int    // IP header length
	hl     int    // IP and TCP header length
	length int    // IP packet length with every segment merged so far
	next   uint32 // the sequence number a segment must carry to be merged
	mss    int    // payload of the first segment: the GSO size
	segs   int
}

// segment is what parse learned of one packet.
type segment struct {
	p       *pbuf.Pbuf
	hdr     []byte // IP header (kind flush) or IP and TCP headers (kind tcp)
	v6      bool
	ipHL    int
	hl      int
	length  int // IP packet length
	payload int
	hash    uint32
	own     bool // every pbuf of the chain is referenced only by us
}

// kind is what parse makes of a packet.
type kind uint8

const (
	kindOther kind = iota // not a TCP segment: passes through
	kindFlush             // may carry TCP of a held flow but cannot be matched: ends merges between its addresses
	kindTCP               // a TCP segment with verified checksums
)

// Coalesce merges the TCP segments of pkts, one received batch of bare IP packets, and
// returns the packets to give to IP input, in order, in pkts' backing array (the slots past
// the result are cleared). It takes ownership of every pbuf of pkts and hands every packet
// it returns to the caller; a merged segment's pbufs are now part of the returned packet
// it was merged into, or freed. Packets it does not understand pass through unchanged, in
// their place; nil entries are dropped. st counts merges (GROMerged) and packets made of
// several segments (GROPackets); it may be nil.
func (e *Engine) Coalesce(pkts []*pbuf.Pbuf, st *stats.Offload) []*pbuf.Pbuf {
	if st == nil {
		st = &e.discard
	}
	out := pkts[:0]
	for _, p := range pkts {
		// out never passes the slot being read: a merged packet leaves a hole behind it.
		if p == nil || e.input(p, st) {
			continue
		}
		out = append(out, p)
	}
	for e.n > 0 {
		e.close(e.n-1, st)
	}
	clear(pkts[len(out):])
	e.seg = segment{}
	return out
}

// input looks at one packet and merges it into the segment held for its flow, returning
// true (p is then consumed), or leaves it in the batch, holding it when later segments may
// merge into it.
func (e *Engine) input(p *pbuf.Pbuf, st *stats.Offload) bool {
	s := &e.seg
	switch e.parse(p) {
	case kindOther:
		return false
	case kindFlush:
		e.closePair(s, st)
		return false
	}
	i := e.find(s)
	if i >= 0 {
		f := &e.flows[i]
		if f.mergeable(s) {
			if e.merge(f, s, st) {
				e.close(i, st)
			}
			return true
		}
		// Anything else of the flow must reach TCP after what is held: stop adding to it.
		e.close(i, st)
	}
	if s.holdable() {
		e.hold(s, st)
	}
	return false
}

// parse fills e.seg from p and says what p is. It verifies the checksums of a TCP segment
// (marking p FlagChecksumOK) and trims link padding from a segment it may merge.
func (e *Engine) parse(p *pbuf.Pbuf) kind {
	s := &e.seg
	*s = segment{p: p}
	b, ok := p.Header(1)
	if !ok {
		return kindOther
	}
	switch b[0] >> 4 {
	case 4:
		if b, ok = p.Header(wire.IPv4MinHeaderLen); !ok {
			return kindOther
		}
		ip := wire.IPv4(b)
		s.ipHL, s.length = ip.HeaderLen(), int(ip.TotalLength())
		if s.ipHL < wire.IPv4MinHeaderLen || s.length < s.ipHL || s.length > p.TotLen() ||
			ip.Protocol() != wire.ProtoTCP {
			return kindOther
		}
		if s.ipHL != wire.IPv4MinHeaderLen || ip.IsFragment() {
			s.hdr = b
			return kindFlush
		}
	case 6:
		if b, ok = p.Header(wire.IPv6HeaderLen); !ok {
			return kindOther
		}
		ip := wire.IPv6(b)
		s.v6, s.ipHL, s.length = true, wire.IPv6HeaderLen, wire.IPv6HeaderLen+int(ip.PayloadLength())
		if s.length > p.TotLen() {
			return kindOther
		}
		switch ip.NextHeader() {
		case wire.ProtoTCP:
		case wire.ProtoUDP, wire.ProtoICMPv6, wire.ProtoNoNextHdr:
			return kindOther
		default:
			// An extension header: TCP may follow it.
			s.hdr = b
			return kindFlush
		}
	default:
		return kindOther
	}
	if s.length-s.ipHL < wire.TCPMinHeaderLen {
		return kindOther
	}
	if b, ok = p.Header(s.ipHL + wire.TCPMinHeaderLen); !ok {
		return kindOther
	}
	thl := wire.TCP(b[s.ipHL:]).HeaderLen()
	s.hl = s.ipHL + thl
	if thl < wire.TCPMinHeaderLen || s.hl > s.length {
		return kindOther
	}
	if s.hdr, ok = p.Header(s.hl); !ok {
		return kindOther
	}
	if p.Flags()&pbuf.FlagChecksumOK == 0 {
		if !s.v6 && !wire.IPv4(s.hdr).ValidChecksum() {
			return kindOther
		}
		sum := wire.PseudoHeaderChecksum(wire.ProtoTCP, s.src(), s.dst(), uint32(s.length-s.ipHL))
		if wire.Finish(p.Checksum(s.ipHL, s.length-s.ipHL, sum)) != 0 {
			return kindOther // TCP counts and drops it; it cannot reorder anything
		}
		p.SetFlags(p.Flags() | pbuf.FlagChecksumOK)
	}
	s.payload = s.length - s.hl
	s.own = true
	for q := p; q != nil; q = q.Next() {
		if q.Refs() != 1 {
			s.own = false
			break
		}
	}
	if s.own && p.TotLen() > s.length {
		p.Shrink(s.length) // link padding after the IP packet is not payload
	}
	s.hash = flowHash(s.hdr, s.ipHL, s.v6)
	return kindTCP
}

// src and dst are the segment's addresses.
func (s *segment) src() netip.Addr {
	if s.v6 {
		return wire.IPv6(s.hdr).Src()
	}
	return wire.IPv4(s.hdr).Src()
}

func (s *segment) dst() netip.Addr {
	if s.v6 {
		return wire.IPv6(s.hdr).Dst()
	}
	return wire.IPv4(s.hdr).Dst()
}

func (s *segment) flags() wire.TCPFlags { return wire.TCP(s.hdr[s.ipHL:]).Flags() }

// holdable reports whether later segments may be merged into s: it is rewritten in place
// and has none of the flags that end a burst.
func (s *segment) holdable() bool {
	if !s.own || s.payload == 0 || s.flags()&holdForbidden != 0 {
		return false
	}
	if t, _ := s.p.GSO(); t != pbuf.GSONone {
		return false
	}
	switch s.p.Type() {
	case pbuf.POOL, pbuf.RAM:
		return true
	case pbuf.REF:
		return s.p.Flags()&pbuf.FlagWritable != 0
	}
	return false
}

// addrs returns the address bytes of an IP header: source and destination.
func addrs(hdr []byte, v6 bool) []byte {
	if v6 {
		return hdr[8:40]
	}
	return hdr[12:20]
}

// flowHash mixes ports and addresses; find compares the bytes after it.
func flowHash(hdr []byte, ipHL int, v6 bool) uint32 {
	h := binary.BigEndian.Uint32(hdr[ipHL:])
	a := addrs(hdr, v6)
	for i := 0; i < len(a); i += 4 {
		h = bits.RotateLeft32(h, 5) ^ binary.BigEndian.Uint32(a[i:])
	}
	return h * 0x9e3779b1
}

// find returns the index of the flow s belongs to, or -1.
func (e *Engine) find(s *segment) int {
	for i := range e.flows[:e.n] {
		f := &e.flows[i]
		if f.hash == s.hash && f.v6 == s.v6 &&
			bytes.Equal(addrs(f.hdr, f.v6), addrs(s.hdr, s.v6)) &&
			bytes.Equal(f.hdr[f.ipHL:f.ipHL+4], s.hdr[s.ipHL:s.ipHL+4]) {
			return i
		}
	}
	return -1
}

// closePair ends the flows between the addresses of s (whatever their ports).
func (e *Engine) closePair(s *segment, st *stats.Offload) {
	for i := e.n - 1; i >= 0; i-- {
		f := &e.flows[i]
		if f.v6 == s.v6 && bytes.Equal(addrs(f.hdr, f.v6), addrs(s.hdr, s.v6)) {
			e.close(i, st)
		}
	}
}

// hold makes s the segment later ones of its flow merge into.
func (e *Engine) hold(s *segment, st *stats.Offload) {
	if e.n == MaxFlows {
		e.close(0, st)
	}
	e.flows[e.n] = flow{p: s.p, hdr: s.hdr, hash: s.hash, v6: s.v6, ipHL: s.ipHL, hl: s.hl,
		length: s.length, next: wire.TCP(s.hdr[s.ipHL:]).SeqNum() + uint32(s.payload),
		mss: s.payload, segs: 1}
	e.n++
}

// mergeable reports whether s continues what f holds, as one more segment of the same GSO
// packet (the package doc lists the rules).
func (f *flow) mergeable(s *segment) bool {
	if !s.own || s.payload == 0 || s.payload > f.mss {
		return false
	}
	if t, _ := s.p.GSO(); t != pbuf.GSONone {
		return false
	}
	a, b := f.hdr, s.hdr
	if s.v6 {
		if f.length-f.ipHL+s.payload > maxIPLen {
			return false
		}
		// Version, traffic class, flow label; hop limit.
		if !bytes.Equal(a[0:4], b[0:4]) || a[7] != b[7] {
			return false
		}
	} else {
		if f.length+s.payload > maxIPLen {
			return false
		}
		// TOS, TTL, DF and the reserved flag (MF is clear: not a fragment).
		if a[1] != b[1] || a[8] != b[8] || (a[6]^b[6])&0xc0 != 0 {
			return false
		}
		// RFC 6864 §4.1: a non-atomic datagram's ID must not repeat, so the segments of
		// one GSO packet carry consecutive IDs; an atomic datagram's ID means nothing.
		ia, ib := wire.IPv4(a), wire.IPv4(b)
		if !ib.DontFragment() && ib.ID() != ia.ID()+uint16(f.segs) {
			return false
		}
	}
	ta, tb := wire.TCP(a[f.ipHL:f.hl]), wire.TCP(b[s.ipHL:s.hl])
	// The held flags (ACK, ECE; no FIN, PSH, SYN, RST, URG) but CWR, which only the first
	// may carry, and maybe FIN or PSH.
	if tb.Flags()&^lastFlags != ta.Flags()&^wire.TCPFlagCWR {
		return false
	}
	// Data offset and reserved bits (byte 12), window, ACK, options, and no gap.
	return tb.SeqNum() == f.next && ta.AckNum() == tb.AckNum() && ta[12] == tb[12] &&
		ta.Window() == tb.Window() && bytes.Equal(ta.Options(), tb.Options())
}

// merge appends the payload of s to f's packet and frees s's headers; it reports whether
// s was the last segment f can take.
func (e *Engine) merge(f *flow, s *segment, st *stats.Offload) bool {
	last := s.flags() & lastFlags // read before the headers go
	q := s.p
	if q.Len() == s.hl {
		rest := q.Dechain() // the first pbuf held only headers
		q.Free()
		q = rest
	} else {
		_ = q.RemoveHeader(s.hl) // within the first pbuf: Header(s.hl) succeeded
	}
	pbuf.Cat(f.p, q)
	f.length += s.payload
	f.next += uint32(s.payload)
	f.segs++
	st.GROMerged++
	if last != 0 {
		th := wire.TCP(f.hdr[f.ipHL:f.hl])
		th.SetFlags(th.Flags() | last)
		return true
	}
	limit := maxIPLen
	if f.v6 {
		limit += f.ipHL
	}
	return s.payload < f.mss || f.length+f.mss > limit
}

// close stops holding flow i and finishes its packet.
func (e *Engine) close(i int, st *stats.Offload) {
	f := &e.flows[i]
	if f.segs > 1 {
		f.finish(st)
	}
	e.n--
	e.flows[i] = e.flows[e.n]
	e.flows[e.n] = flow{}
}

// finish writes the coalesced packet's lengths, partial checksum and GSO mark.
func (f *flow) finish(st *stats.Offload) {
	typ := pbuf.GSOTCPv4
	var src, dst netip.Addr
	if f.v6 {
		ip := wire.IPv6(f.hdr)
		ip.SetPayloadLength(uint16(f.length - f.ipHL))
		src, dst, typ = ip.Src(), ip.Dst(), pbuf.GSOTCPv6
	} else {
		ip := wire.IPv4(f.hdr)
		ip.SetTotalLength(uint16(f.length)) // updates the header checksum
		src, dst = ip.Src(), ip.Dst()
	}
	// The contract's partial checksum: the folded pseudo-header sum over the whole TCP
	// length, not complemented, for whoever cuts or sends the packet to complete.
	sum := wire.PseudoHeaderChecksum(wire.ProtoTCP, src, dst, uint32(f.length-f.ipHL))
	wire.TCP(f.hdr[f.ipHL:f.hl]).SetChecksumField(wire.Fold(sum))
	f.p.SetFlags(f.p.Flags() | pbuf.FlagChecksumOK | pbuf.FlagChecksumPartial)
	f.p.SetGSO(typ, f.mss)
	st.GROPackets++
}

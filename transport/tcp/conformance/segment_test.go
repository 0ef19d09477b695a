package conformance

// The peer's side of the wire: segments the test builds and injects, and the stack's
// segments parsed back and checked.

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// segment is a segment the test (the peer) sends.
type segment struct {
	srcPort, dstPort uint16
	seq, ack         uint32
	flags            wire.TCPFlags
	wnd              uint16
	opts             wire.TCPOptions
	data             []byte

	// Malformations.
	rawOpts     []byte // options area as given (padded to 4 by the builder), instead of opts
	badChecksum bool
	dataOff     int // header length in 32-bit words to write instead of the real one (0: real)
	truncate    int // bytes cut from the end of the TCP segment after building it
	src, dst    netip.Addr
}

func (s segment) String() string {
	return fmt.Sprintf("%d>%d [%v] seq=%d ack=%d win=%d len=%d", s.srcPort, s.dstPort,
		s.flags, s.seq, s.ack, s.wnd, len(s.data))
}

// build returns the TCP segment bytes for s between src and dst.
func (s *segment) build(src, dst netip.Addr) []byte {
	optLen := s.opts.Len()
	if s.rawOpts != nil {
		optLen = (len(s.rawOpts) + 3) &^ 3
	}
	hl := wire.TCPMinHeaderLen + optLen
	b := make([]byte, hl+len(s.data))
	copy(b[hl:], s.data)
	r := wire.TCPRepr{SrcPort: s.srcPort, DstPort: s.dstPort, SeqNum: s.seq, AckNum: s.ack,
		Flags: s.flags, Window: s.wnd, PayloadLen: len(s.data)}
	if s.rawOpts == nil {
		r.Options = s.opts
		if err := r.Emit(b, src, dst); err != nil {
			panic(err)
		}
	} else {
		if err := r.Emit(b, src, dst); err != nil { // header without options
			panic(err)
		}
		// Emit wrote a 20-byte header followed by the payload at hl; move things into place.
		copy(b[wire.TCPMinHeaderLen:hl], s.rawOpts)
		for i := wire.TCPMinHeaderLen + len(s.rawOpts); i < hl; i++ {
			b[i] = wire.TCPOptEOL
		}
		copy(b[hl:], s.data)
		b[12] = uint8(hl/4) << 4
		wire.TCP(b).SetChecksum(src, dst)
	}
	if s.dataOff != 0 {
		b[12] = uint8(s.dataOff) << 4
		wire.TCP(b).SetChecksum(src, dst)
	}
	if s.truncate > 0 {
		b = b[:len(b)-s.truncate]
		if len(b) >= 18 {
			b[16], b[17] = 0, 0
			wire.TCP(b).SetChecksum(src, dst)
		}
	}
	if s.badChecksum {
		b[16] ^= 0x5a
	}
	return b
}

// inject sends s from the peer to the stack and flushes what the stack answers.
func (e *env) inject(s segment) {
	e.t.Helper()
	src, dst := e.remote, e.local
	if s.src.IsValid() {
		src = s.src
	}
	if s.dst.IsValid() {
		dst = s.dst
	}
	if trace {
		r := rxSeg{TCPRepr: wire.TCPRepr{SrcPort: s.srcPort, DstPort: s.dstPort, SeqNum: s.seq, AckNum: s.ack,
			Flags: s.flags, Window: s.wnd, Options: s.opts}, data: s.data, at: e.elapsed()}
		e.t.Logf("-> %v", &r)
	}
	e.injected++
	e.injectIP(src, dst, s.build(src, dst))
}

// notePeerEnd records the highest sequence number the peer has sent on a 4-tuple (SYN and
// FIN included), from the bytes of a segment as sent: the bound for the stack's ACKs
// (invariants_test.go). The first SYN starts it (the stack's SYN-ACK restarts it); later
// segments raise it only by plausible amounts, so junk sequence numbers from the random
// tests do not count.
func (e *env) notePeerEnd(seg []byte, src, dst netip.Addr) {
	if wire.CheckTCP(seg) != nil || !wire.TCP(seg).ValidChecksum(src, dst) {
		return
	}
	h := wire.TCP(seg)
	if h.Flags().Has(wire.TCPFlagRST) {
		return
	}
	end := h.SeqNum() + uint32(len(h.Payload()))
	if h.Flags().Has(wire.TCPFlagSYN) {
		end++
	}
	if h.Flags().Has(wire.TCPFlagFIN) {
		end++
	}
	key := [2]uint16{h.DstPort(), h.SrcPort()} // as the stack's segments see it
	old, ok := e.peerEnd[key]
	if !ok {
		if h.Flags().Has(wire.TCPFlagSYN) {
			e.peerEnd[key] = end
		}
		return
	}
	if seqGT(end, old) && end-old < 1<<20 {
		e.peerEnd[key] = end
	}
}

// injectIP wraps a TCP segment in an IP header and feeds it to the netif.
func (e *env) injectIP(src, dst netip.Addr, seg []byte) {
	e.t.Helper()
	e.injectFrame(e.ipPacket(src, dst, seg))
}

// ipPacket wraps a TCP segment from src to dst in an IP header and notes the peer's end.
func (e *env) ipPacket(src, dst netip.Addr, seg []byte) []byte {
	e.t.Helper()
	e.notePeerEnd(seg, src, dst)
	var pkt []byte
	if src.Is4() {
		r := wire.IPv4Repr{TTL: 64, Protocol: wire.ProtoTCP, Src: src, Dst: dst, PayloadLen: len(seg), ID: 1}
		pkt = make([]byte, r.HeaderLen()+len(seg))
		copy(pkt[r.HeaderLen():], seg)
		if err := r.Emit(pkt); err != nil {
			e.t.Fatal(err)
		}
	} else {
		r := wire.IPv6Repr{NextHeader: wire.ProtoTCP, HopLimit: 64, Src: src, Dst: dst, PayloadLen: len(seg)}
		pkt = make([]byte, wire.IPv6HeaderLen+len(seg))
		copy(pkt[wire.IPv6HeaderLen:], seg)
		if err := r.Emit(pkt); err != nil {
			e.t.Fatal(err)
		}
	}
	return pkt
}

// injectBatch feeds segments from the peer (default addresses) as one link batch, as
// stack.Netif.DeliverPackets does (tcp.Proto.BeginBatch ... EndBatch under one hold of the
// core lock), and flushes what the stack answers.
func (e *env) injectBatch(segs []segment) {
	e.t.Helper()
	ps := make([]*pbuf.Pbuf, len(segs))
	for i, s := range segs {
		pkt := e.ipPacket(e.remote, e.local, s.build(e.remote, e.local))
		p, err := e.Alloc.Alloc(pbuf.LayerRaw, len(pkt), pbuf.POOL)
		if err != nil {
			e.t.Fatalf("inject: %v", err)
		}
		if err := p.CopyIn(pkt, 0); err != nil {
			e.t.Fatal(err)
		}
		ps[i] = p
		e.injected++
	}
	e.tcp.BeginBatch()
	for _, p := range ps {
		e.Netif.Input(p)
	}
	e.tcp.EndBatch()
	e.IP.Flush()
}

// injectFrame feeds one received frame (a bare IP packet) to the netif, as the link's
// dispatcher would, and flushes what the stack answers.
func (e *env) injectFrame(pkt []byte) {
	e.t.Helper()
	p, err := e.Alloc.Alloc(pbuf.LayerRaw, len(pkt), pbuf.POOL)
	if err != nil {
		e.t.Fatalf("inject: %v", err)
	}
	if err := p.CopyIn(pkt, 0); err != nil {
		e.t.Fatal(err)
	}
	e.Netif.Input(p)
	e.IP.Flush()
}

// rxSeg is a segment the stack sent, parsed back.
type rxSeg struct {
	wire.TCPRepr
	src, dst netip.Addr
	ttl, tos uint8
	data     []byte
	at       time.Duration // fake time it was written to the link
	raw      []byte        // the whole IP packet
}

func (s *rxSeg) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "@%v %d>%d [%v] seq=%d ack=%d win=%d len=%d", s.at, s.SrcPort, s.DstPort, s.Flags,
		s.SeqNum, s.AckNum, s.Window, len(s.data))
	o := &s.Options
	if o.HasMSS {
		fmt.Fprintf(&b, " mss=%d", o.MSS)
	}
	if o.HasWindowScale {
		fmt.Fprintf(&b, " ws=%d", o.WindowScale)
	}
	if o.SACKPermitted {
		b.WriteString(" sackOK")
	}
	if o.HasTimestamps {
		fmt.Fprintf(&b, " ts=%d/%d", o.TSVal, o.TSEcr)
	}
	for _, blk := range o.SACKBlocks[:o.NumSACK] {
		fmt.Fprintf(&b, " sack=%d-%d", blk.Left, blk.Right)
	}
	return b.String()
}

// seqLen is the sequence space the segment occupies.
func (s *rxSeg) seqLen() uint32 {
	n := uint32(len(s.data))
	if s.Flags.Has(wire.TCPFlagSYN) {
		n++
	}
	if s.Flags.Has(wire.TCPFlagFIN) {
		n++
	}
	return n
}

// end is the sequence number after the segment.
func (s *rxSeg) end() uint32 { return s.SeqNum + s.seqLen() }

// collect parses every frame the link recorded into e.out.
func (e *env) collect() {
	e.t.Helper()
	e.IP.Flush()
	at := e.cap.At
	for i, b := range e.cap.Take() {
		if s := e.parse(b, at[i].Sub(e.start)); s != nil {
			e.out = append(e.out, s)
		}
	}
}

// parse decodes one frame; non-TCP frames are logged and skipped, malformed TCP fails.
func (e *env) parse(b []byte, at time.Duration) *rxSeg {
	e.t.Helper()
	s := &rxSeg{at: at, raw: b}
	var payload []byte
	var proto uint8
	switch {
	case len(b) > 0 && b[0]>>4 == 4:
		if err := wire.CheckIPv4(b); err != nil {
			e.t.Errorf("stack sent a bad IPv4 packet: %v (% x)", err, b)
			return nil
		}
		h := wire.IPv4(b)
		if h.IsFragment() {
			e.fragment(h.FragmentOffset() == 0, len(b))
			return nil
		}
		s.src, s.dst, s.ttl, s.tos, proto, payload = h.Src(), h.Dst(), h.TTL(), h.TOS(), h.Protocol(), h.Payload()
	case len(b) > 0 && b[0]>>4 == 6:
		if err := wire.CheckIPv6(b); err != nil {
			e.t.Errorf("stack sent a bad IPv6 packet: %v (% x)", err, b)
			return nil
		}
		h := wire.IPv6(b)
		if h.NextHeader() == wire.ProtoIPv6Frag {
			e.fragment(len(b) > 48 && wire.IPv6Fragment(b[40:]).FragmentOffset() == 0, len(b))
			return nil
		}
		s.src, s.dst, s.ttl, s.tos, proto, payload = h.Src(), h.Dst(), h.HopLimit(), h.TrafficClass(), h.NextHeader(), h.Payload()
	default:
		e.t.Errorf("stack sent a non-IP frame: % x", b)
		return nil
	}
	if proto != wire.ProtoTCP {
		e.t.Logf("stack sent a non-TCP packet (protocol %d), ignored: % x", proto, b)
		return nil
	}
	if err := s.TCPRepr.Parse(payload, s.src, s.dst); err != nil {
		e.t.Errorf("stack sent a TCP segment that does not parse: %v (% x)", err, payload)
		return nil
	}
	s.data = wire.TCP(payload).Payload()
	if s.Options.HasTimestamps {
		e.lastTSval = s.Options.TSVal
	}
	e.captured++
	e.checkInvariants(s)
	if trace {
		e.t.Logf("<- %v", s)
	}
	return s
}

// fragment reports an IP fragment on the link: TCP handed IP a segment larger than the MTU
// (RFC 9293 §3.7.1: segments fit the MSS and the route MTU), so IP fragmented it. The first
// fragment counts as the segment TCP sent.
func (e *env) fragment(first bool, n int) {
	e.t.Helper()
	if first {
		e.captured++
		e.t.Errorf("stack sent a TCP segment larger than the %d-byte MTU: IP fragmented it (first fragment %d bytes)", e.cap.MTU(), n)
	}
}

// trace logs every segment in both directions: TCPTRACE=1 go test -v -run X.
var trace = os.Getenv("TCPTRACE") != ""

package gro_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/wispstack/wisp/ip/gro"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// in is one input packet as it was before Coalesce.
type in struct {
	p     *pbuf.Pbuf
	b     []byte
	first int // bytes in the first pbuf
	flags pbuf.Flags
}

func snapshot(pkts []*pbuf.Pbuf) []in {
	s := make([]in, len(pkts))
	for i, p := range pkts {
		s[i] = in{p: p, b: p.Bytes(nil), first: p.Len(), flags: p.Flags()}
	}
	return s
}

// tcpSeg returns the flow key and payload of b if the stack would deliver it to TCP as a
// whole segment: a TCP packet, not a fragment, its IPv4 or IPv6 (without extension
// headers) and TCP headers in the first pbuf (first bytes), lengths that fit, and checksums
// that verify unless ok (FlagChecksumOK). The key is the version, addresses and ports.
func tcpSeg(b []byte, first int, ok bool) (string, []byte, bool) {
	if len(b) < 1 {
		return "", nil, false
	}
	var ipHL, length int
	var src, dst netip.Addr
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 || first < 20 {
			return "", nil, false
		}
		ip := wire.IPv4(b)
		ipHL, length = ip.HeaderLen(), int(ip.TotalLength())
		if ipHL < 20 || first < ipHL || length < ipHL || length > len(b) || ip.Protocol() != wire.ProtoTCP ||
			ip.IsFragment() || !ok && !ip.ValidChecksum() {
			return "", nil, false
		}
		src, dst = ip.Src(), ip.Dst()
	case 6:
		if len(b) < 40 || first < 40 {
			return "", nil, false
		}
		ip := wire.IPv6(b)
		ipHL, length = 40, 40+int(ip.PayloadLength())
		if length > len(b) || ip.NextHeader() != wire.ProtoTCP {
			return "", nil, false
		}
		src, dst = ip.Src(), ip.Dst()
	default:
		return "", nil, false
	}
	if length-ipHL < 20 || first < ipHL+20 {
		return "", nil, false
	}
	tcp := wire.TCP(b[ipHL:length])
	hl := tcp.HeaderLen()
	if hl < 20 || hl > len(tcp) || first < ipHL+hl || !ok && !tcp.ValidChecksum(src, dst) {
		return "", nil, false
	}
	key := string(b[0]>>4) + src.String() + dst.String() + string(tcp[0:4])
	return key, tcp[hl:], true
}

// checkFlows fails t unless out, what Coalesce made of the batch before, delivers every
// flow's payload whole and in order, keeps every packet it returns in its input order,
// returns untouched packets as they were (link padding aside), and made every coalesced
// packet valid: lengths that agree, the IPv4 header checksum, the partial TCP checksum,
// a GSO size below its payload.
func checkFlows(t testing.TB, before []in, out []*pbuf.Pbuf) {
	t.Helper()
	wantData := map[string][]byte{}
	for _, x := range before {
		if k, d, ok := tcpSeg(x.b, x.first, x.flags&pbuf.FlagChecksumOK != 0); ok {
			wantData[k] = append(wantData[k], d...)
		}
	}
	gotData := map[string][]byte{}
	j := 0
	for i, p := range out {
		for j < len(before) && before[j].p != p {
			j++
		}
		if j == len(before) {
			t.Fatalf("out %d: not an input packet, or out of order", i)
		}
		if err := p.Check(); err != nil {
			t.Fatalf("out %d: %v", i, err)
		}
		b := p.Bytes(nil)
		typ, size := p.GSO()
		if typ == pbuf.GSONone {
			if !bytes.HasPrefix(before[j].b, b) { // link padding may be gone
				t.Fatalf("out %d: input %d changed:\n got %x\nwant %x", i, j, b, before[j].b)
			}
		} else {
			checkCoalesced(t, i, p, b, typ, size)
		}
		if k, d, ok := tcpSeg(b, p.Len(), p.Flags()&pbuf.FlagChecksumOK != 0); ok {
			gotData[k] = append(gotData[k], d...)
		} else if typ != pbuf.GSONone {
			t.Fatalf("out %d: coalesced packet is no valid segment: %x", i, b)
		}
		j++
	}
	for k, w := range wantData {
		if !bytes.Equal(gotData[k], w) {
			t.Fatalf("flow %q: %d payload bytes out, %d in, or not in order", k, len(gotData[k]), len(w))
		}
	}
	if len(gotData) != len(wantData) {
		t.Fatalf("%d flows out, %d in", len(gotData), len(wantData))
	}
}

// checkCoalesced checks what Coalesce promises of a packet it made.
func checkCoalesced(t testing.TB, i int, p *pbuf.Pbuf, b []byte, typ pbuf.GSOType, size int) {
	t.Helper()
	if p.Flags()&pbuf.FlagChecksumOK == 0 || p.Flags()&pbuf.FlagChecksumPartial == 0 {
		t.Fatalf("out %d: coalesced without checksum OK and partial (flags %b)", i, p.Flags())
	}
	var ipHL int
	var src, dst netip.Addr
	switch typ {
	case pbuf.GSOTCPv4:
		ip := wire.IPv4(b)
		if ip.Version() != 4 || ip.HeaderLen() != 20 || int(ip.TotalLength()) != len(b) || !ip.ValidChecksum() {
			t.Fatalf("out %d: IPv4 header %x of a %d-byte packet", i, b[:20], len(b))
		}
		ipHL, src, dst = 20, ip.Src(), ip.Dst()
	case pbuf.GSOTCPv6:
		ip := wire.IPv6(b)
		if ip.Version() != 6 || 40+int(ip.PayloadLength()) != len(b) || ip.NextHeader() != wire.ProtoTCP {
			t.Fatalf("out %d: IPv6 header %x of a %d-byte packet", i, b[:40], len(b))
		}
		ipHL, src, dst = 40, ip.Src(), ip.Dst()
	default:
		t.Fatalf("out %d: GSO type %v", i, typ)
	}
	tcp := wire.TCP(b[ipHL:])
	if want := wire.Fold(wire.PseudoHeaderChecksum(wire.ProtoTCP, src, dst, uint32(len(tcp)))); tcp.Checksum() != want {
		t.Fatalf("out %d: TCP checksum field %#04x, want the partial sum %#04x", i, tcp.Checksum(), want)
	}
	if n := len(tcp) - tcp.HeaderLen(); size <= 0 || n <= size {
		t.Fatalf("out %d: GSO size %d for %d payload bytes", i, size, n)
	}
}

// FuzzCoalesce builds a batch from the fuzz bytes and checks that Coalesce never panics,
// delivers each flow's bytes whole and in order, returns valid packets (checkFlows), and
// that every pbuf comes back to the pools.
//
// The bytes are read as packets: op >= 0xf0 is a raw packet of the next byte's count of
// bytes; else op&3 picks a flow (0-1 IPv4, 2-3 IPv6), op>>2&3 a payload size, and the next
// byte m changes the segment that continues the flow: flags (1), a sequence shift (2), a
// size from the next byte (4), ACK or timestamp (8), a bad checksum (16), TOS/TTL or DF
// (32), FlagChecksumOK (64), padding (128). Each packet then takes a byte for its chain
// shape: one RAM pbuf, POOL buffers, or RAM pieces cut at the next two bytes.
func FuzzCoalesce(f *testing.F) {
	f.Add([]byte{0x04, 0, 1, 0x04, 0, 1, 0x04, 0, 1, 0x04, 0x01, 1, 4, 1})                            // v4 in order, PSH last
	f.Add(bytes.Repeat([]byte{0x06, 0, 2, 0, 99, 1}, 4))                                              // v6 in order, cut chains
	f.Add([]byte{0x08, 0, 1, 0x08, 0x02, 1, 7, 0x08, 0, 1, 0xf0, 3, 0x45, 0, 0, 0x08, 0x40, 1})       // a gap, garbage
	f.Add([]byte{0x0c, 0, 0, 0x0c, 0, 0, 0x0c, 0x01, 1, 3, 0x0c, 0, 0, 0x0c, 0x20, 1, 0})             // FIN, TTL
	f.Add([]byte{0x04, 0, 1, 0x05, 0, 1, 0x04, 0, 1, 0x05, 0, 1, 0x06, 0, 1, 0x07, 0, 1, 0x06, 0, 1}) // interleaved
	f.Add(bytes.Repeat([]byte{0x08, 0, 1}, 60))                                                       // the 64 KiB limit
	f.Add(bytes.Repeat([]byte{0x0a, 0x80, 2, 0, 100, 0}, 20))                                         // v6 padded, cut chains
	a := pbuf.NewAllocator(pbuf.Config{PoolCount: 1024, PoolBufSize: 512, HeapSize: 1 << 20,
		RefCount: 64, RAMCount: 1024})
	var e gro.Engine
	sizes := [4]int{100, 1000, 1448, 37}
	flags := [8]wire.TCPFlags{wire.TCPFlagPSH, wire.TCPFlagFIN, wire.TCPFlagCWR, wire.TCPFlagECE,
		wire.TCPFlagURG, wire.TCPFlagSYN, wire.TCPFlagRST, wire.TCPFlagPSH | wire.TCPFlagECE}
	f.Fuzz(func(t *testing.T, data []byte) {
		defer linktest.CheckZero(t, a)
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			c := data[0]
			data = data[1:]
			return c
		}
		var seq [4]uint32
		var ids [4]uint16
		var pkts []*pbuf.Pbuf
		for len(data) > 0 && len(pkts) < 64 {
			op := next()
			var b []byte
			var ok bool
			if op >= 0xf0 {
				n := min(int(next()), len(data))
				b, data = append([]byte(nil), data[:n]...), data[n:]
			} else {
				fl := int(op & 3)
				s := seg{flow: fl, seq: seq[fl], n: sizes[op>>2&3], id: ids[fl]}
				m := next()
				if m&1 != 0 {
					s.flags = flags[next()&7]
				}
				if m&2 != 0 {
					s.seq += uint32(int8(next()))
				}
				if m&4 != 0 {
					s.n = int(next()) * 7
				}
				if m&8 != 0 {
					s.ack, s.tsval = 2, 1
				}
				s.bad = m&16 != 0
				if m&32 != 0 {
					switch next() & 3 {
					case 0:
						s.ipEd = editTOS
					case 1:
						s.ipEd = editTTL
					case 2:
						s.noDF = true
					case 3:
						s.ipEd = editLabel
					}
				}
				ok = m&64 != 0
				if m&128 != 0 {
					s.pad = 3
				}
				b = append(s.bytes(), make([]byte, s.pad)...)
				seq[fl], ids[fl] = s.seq+uint32(s.n), ids[fl]+1
			}
			if len(b) == 0 {
				continue
			}
			p := fuzzChain(a, b, next(), next)
			if p == nil {
				break // the pools are out
			}
			if ok {
				p.SetFlags(p.Flags() | pbuf.FlagChecksumOK)
			}
			pkts = append(pkts, p)
		}
		before := snapshot(pkts)
		var st stats.Offload
		out := e.Coalesce(pkts, &st)
		defer freeAll(out)
		checkFlows(t, before, out)
		if len(out)+int(st.GROMerged) != len(before) {
			t.Fatalf("%d packets out and %d merged from %d", len(out), st.GROMerged, len(before))
		}
	})
}

// fuzzChain puts b into a chain of the shape c picks (nil when the pools are out).
func fuzzChain(a *pbuf.Allocator, b []byte, c byte, next func() byte) *pbuf.Pbuf {
	switch c % 3 {
	case 0:
		p, err := a.Alloc(pbuf.LayerLink, len(b), pbuf.RAM)
		if err != nil {
			return nil
		}
		_ = p.CopyIn(b, 0)
		return p
	case 1:
		p, err := a.Alloc(pbuf.LayerRaw, len(b), pbuf.POOL)
		if err != nil {
			return nil
		}
		_ = p.CopyIn(b, 0)
		return p
	}
	cut1 := 1 + int(binary.BigEndian.Uint16([]byte{next() & 7, next()}))%len(b)
	cut2 := cut1 + int(next())
	var p *pbuf.Pbuf
	for _, r := range [][2]int{{0, cut1}, {cut1, cut2}, {cut2, len(b)}} {
		lo, hi := min(r[0], len(b)), min(r[1], len(b))
		if lo >= hi {
			continue
		}
		q, err := a.Alloc(pbuf.LayerLink, hi-lo, pbuf.RAM)
		if err != nil {
			p.Free()
			return nil
		}
		_ = q.CopyIn(b[lo:hi], 0)
		if p == nil {
			p = q
		} else {
			pbuf.Cat(p, q)
		}
	}
	return p
}

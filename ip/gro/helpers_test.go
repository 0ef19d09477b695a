package gro_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wispstack/wisp/ip/gro"
	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// The test flows: addresses from iptest's pair, ports apart. 0 and 1 are IPv4, 2 and 3 IPv6.
var flows = [...]struct {
	src, dst     netip.Addr
	sport, dport uint16
}{
	{iptest.AddrA[0], iptest.AddrB[0], 40000, 80},
	{iptest.AddrA[0], iptest.AddrB[0], 40001, 80},
	{iptest.AddrA[1], iptest.AddrB[1], 40000, 80},
	{iptest.AddrA[1], iptest.AddrB[1], 40001, 80},
}

// seg describes one packet of a test batch: a TCP segment of flows[flow] (ACK always set,
// ACK number 1 and window 500 unless given, timestamps option), or raw bytes.
type seg struct {
	flow  int
	seq   uint32
	n     int // payload bytes: dataAt(flow, seq...)
	flags wire.TCPFlags
	ack   uint32
	wnd   uint16
	tsval uint32
	noDF  bool         // IPv4 without DF
	id    uint16       // IPv4 ID
	ipEd  func([]byte) // edits the IP header; the IPv4 header checksum is redone after
	badIP bool         // IPv4 header checksum broken
	bad   bool         // TCP checksum broken
	ok    bool         // the pbuf carries FlagChecksumOK
	pad   int          // bytes after the IP packet in the pbuf (link padding)
	refd  bool         // the pbuf has a second reference (the test drops it)
	gso   bool         // the pbuf is marked GSO (a link's own GRO) with n as the size
	raw   []byte       // a packet as is instead of a segment
}

// dataAt is payload byte i of the segment of flow f with sequence number seq.
func dataAt(f int, seq uint32, i int) byte {
	x := seq + uint32(i)
	return byte(x) ^ byte(x>>8)*7 ^ byte(f*0x35)
}

func (s *seg) payload() []byte {
	b := make([]byte, s.n)
	for i := range b {
		b[i] = dataAt(s.flow, s.seq, i)
	}
	return b
}

func (s *seg) v6() bool { return flows[s.flow].src.Is6() }

// bytes builds the packet: the TCP segment through wire.TCPRepr, the IP header through
// iptest.Packet, then s's changes.
func (s *seg) bytes() []byte {
	if s.raw != nil {
		return s.raw
	}
	f := flows[s.flow]
	r := wire.TCPRepr{SrcPort: f.sport, DstPort: f.dport, SeqNum: s.seq, AckNum: s.ack,
		Flags: s.flags | wire.TCPFlagACK, Window: s.wnd, PayloadLen: s.n,
		Options: wire.TCPOptions{HasTimestamps: true, TSVal: s.tsval, TSEcr: 7}}
	if r.AckNum == 0 {
		r.AckNum = 1
	}
	if r.Window == 0 {
		r.Window = 500
	}
	tcp := make([]byte, r.HeaderLen()+s.n)
	copy(tcp[r.HeaderLen():], s.payload())
	if err := r.Emit(tcp, f.src, f.dst); err != nil {
		panic(err)
	}
	if s.bad {
		tcp[16] ^= 0x5a
	}
	b := iptest.Packet(wire.ProtoTCP, f.src, f.dst, tcp)
	if !s.v6() {
		ip := wire.IPv4(b)
		ip.SetFragment(!s.noDF, false, 0) // Linux sends TCP with DF (path MTU discovery)
		binary.BigEndian.PutUint16(b[4:6], s.id)
	}
	if s.ipEd != nil {
		s.ipEd(b)
	}
	if !s.v6() {
		wire.IPv4(b).SetChecksum()
		if s.badIP {
			b[11] ^= 0x21
		}
	}
	return b
}

// maker puts a packet's bytes into a pbuf chain of one of the shapes links deliver.
type maker struct {
	name string
	make func(t testing.TB, a *pbuf.Allocator, b []byte) *pbuf.Pbuf
}

var makers = []maker{
	{"ram", func(t testing.TB, a *pbuf.Allocator, b []byte) *pbuf.Pbuf { return linktest.Frame(t, a, b) }},
	{"pool", poolChain},
	{"cut", cutChain},
	{"ref", refFrame},
}

// refFrame is what an AF_XDP link lends in zero-copy receive: one REF pbuf over memory the
// stack may rewrite (pbuf.FlagWritable).
func refFrame(t testing.TB, a *pbuf.Allocator, b []byte) *pbuf.Pbuf {
	t.Helper()
	p, err := a.AllocRef(append([]byte(nil), b...), pbuf.REF, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.SetFlags(pbuf.FlagWritable)
	return p
}

// poolChain is what a link's AllocRx gives: a POOL chain of 512-byte buffers.
func poolChain(t testing.TB, a *pbuf.Allocator, b []byte) *pbuf.Pbuf {
	t.Helper()
	p, err := a.Alloc(pbuf.LayerRaw, len(b), pbuf.POOL)
	if err != nil {
		t.Fatalf("alloc %d bytes: %v", len(b), err)
	}
	if err := p.CopyIn(b, 0); err != nil {
		t.Fatal(err)
	}
	return p
}

// cutChain is a chain of RAM pbufs of odd lengths: the first holds only the headers, then
// come pieces of 1, 3, 7, 333 bytes and the rest.
func cutChain(t testing.TB, a *pbuf.Allocator, b []byte) *pbuf.Pbuf {
	t.Helper()
	at := headerLen(b)
	p := linktest.Frame(t, a, b[:at])
	for _, n := range []int{1, 3, 7, 333, len(b)} {
		if at == len(b) {
			break
		}
		n = min(n, len(b)-at)
		pbuf.Cat(p, linktest.Frame(t, a, b[at:at+n]))
		at += n
	}
	return p
}

// headerLen is the IP and TCP header length of a test packet (the IP header alone, or the
// whole packet, when it is not TCP).
func headerLen(b []byte) int {
	if len(b) < 1 {
		return len(b)
	}
	hl, proto := 0, uint8(0)
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return len(b)
		}
		hl, proto = int(b[0]&15)*4, b[9]
	case 6:
		if len(b) < 40 {
			return len(b)
		}
		hl, proto = 40, b[6]
	default:
		return len(b)
	}
	if proto == wire.ProtoTCP && len(b) >= hl+20 {
		hl += int(b[hl+12]>>4) * 4
	}
	return min(hl, len(b))
}

// newAlloc returns an allocator with room for several 64 KiB batches; the test fails unless
// every pool and heap byte is back when it ends.
func newAlloc(t testing.TB) *pbuf.Allocator {
	a := pbuf.NewAllocator(pbuf.Config{PoolCount: 1024, PoolBufSize: 512, HeapSize: 1 << 20,
		RefCount: 512, RAMCount: 1024})
	t.Cleanup(func() { linktest.CheckZero(t, a) })
	return a
}

// batch builds the pbufs of segs with mk.
func batch(t testing.TB, a *pbuf.Allocator, mk maker, segs []seg) ([]*pbuf.Pbuf, [][]byte) {
	t.Helper()
	pkts := make([]*pbuf.Pbuf, len(segs))
	raw := make([][]byte, len(segs))
	for i := range segs {
		s := &segs[i]
		raw[i] = s.bytes()
		b := append(append([]byte(nil), raw[i]...), make([]byte, s.pad)...)
		pkts[i] = mk.make(t, a, b)
		if s.ok {
			pkts[i].SetFlags(pkts[i].Flags() | pbuf.FlagChecksumOK)
		}
		if s.refd {
			pkts[i].Ref()
		}
		if s.gso {
			pkts[i].SetGSO(pbuf.GSOTCPv4, s.n)
		}
	}
	return pkts, raw
}

func freeAll(pkts []*pbuf.Pbuf) {
	for _, p := range pkts {
		p.Free()
	}
}

// checkOut fails t unless out is the batch segs coalesced as want says: output i is made
// of segs want[i]..., in that order. A single packet is its input bytes unchanged; a
// coalesced one is checked field by field against its segments, through gopacket.
func checkOut(t testing.TB, segs []seg, raw [][]byte, out []*pbuf.Pbuf, want [][]int) {
	t.Helper()
	if len(out) != len(want) {
		t.Fatalf("%d packets out, want %d (%v)", len(out), len(want), want)
	}
	for i, w := range want {
		p := out[i]
		if err := p.Check(); err != nil {
			t.Fatalf("out %d: %v", i, err)
		}
		b := p.Bytes(nil)
		typ, size := p.GSO()
		if len(w) == 1 {
			if !bytes.Equal(b, raw[w[0]]) {
				t.Fatalf("out %d: not input %d unchanged:\n got %x\nwant %x", i, w[0], b, raw[w[0]])
			}
			if typ != pbuf.GSONone && !segs[w[0]].gso {
				t.Errorf("out %d: single segment marked GSO %v/%d", i, typ, size)
			}
			continue
		}
		first, last := &segs[w[0]], &segs[w[len(w)-1]]
		var data []byte
		for _, j := range w {
			data = append(data, segs[j].payload()...)
		}
		v6 := first.v6()
		wantTyp := pbuf.GSOTCPv4
		if v6 {
			wantTyp = pbuf.GSOTCPv6
		}
		if typ != wantTyp || size != first.n {
			t.Errorf("out %d: GSO %v/%d, want %v/%d", i, typ, size, wantTyp, first.n)
		}
		if f := p.Flags(); f&pbuf.FlagChecksumOK == 0 || f&pbuf.FlagChecksumPartial == 0 {
			t.Errorf("out %d: flags %b, want checksum OK and partial", i, f)
		}
		tcp := checkPartial(t, i, b, v6)
		if tcp.Seq != first.seq || !bytes.Equal(tcp.Payload, data) {
			t.Errorf("out %d: seq %d, %d payload bytes; want seq %d, %d bytes of segments %v",
				i, tcp.Seq, len(tcp.Payload), first.seq, len(data), w)
		}
		if tcp.PSH != (last.flags&wire.TCPFlagPSH != 0) || tcp.FIN != (last.flags&wire.TCPFlagFIN != 0) ||
			tcp.CWR != (first.flags&wire.TCPFlagCWR != 0) || !tcp.ACK {
			t.Errorf("out %d: flags FIN %v PSH %v CWR %v ACK %v, want the first's CWR and the last's FIN/PSH",
				i, tcp.FIN, tcp.PSH, tcp.CWR, tcp.ACK)
		}
		if hl := headerLen(raw[w[0]]); !bytes.Equal(b[:hl], fixHeader(raw[w[0]][:hl:hl], b[:hl], v6)) {
			t.Errorf("out %d: headers\n got %x\nwant the first segment's %x with new lengths", i, b[:hl], raw[w[0]][:hl])
		}
	}
}

// fixHeader is the first segment's headers h with the lengths, IPv4 header checksum, TCP
// checksum and FIN/PSH of the coalesced headers got.
func fixHeader(h, got []byte, v6 bool) []byte {
	w := append([]byte(nil), h...)
	ipHL := 40
	if v6 {
		copy(w[4:6], got[4:6])
	} else {
		ipHL = 20
		copy(w[2:4], got[2:4])
		copy(w[10:12], got[10:12])
	}
	w[ipHL+13] |= got[ipHL+13] & byte(wire.TCPFlagFIN|wire.TCPFlagPSH)
	copy(w[ipHL+16:ipHL+18], got[ipHL+16:ipHL+18])
	return w
}

// checkPartial decodes coalesced packet b with gopacket: its lengths must agree with its
// size, its TCP checksum field must hold the folded pseudo-header sum, and completing it as
// a NIC does (the sum from the TCP header on) must give a packet whose checksums verify.
func checkPartial(t testing.TB, i int, b []byte, v6 bool) *layers.TCP {
	t.Helper()
	ipHL, first := 20, layers.LayerTypeIPv4
	var src, dst netip.Addr
	if v6 {
		ipHL, first = 40, layers.LayerTypeIPv6
		src, dst = wire.IPv6(b).Src(), wire.IPv6(b).Dst()
	} else {
		src, dst = wire.IPv4(b).Src(), wire.IPv4(b).Dst()
		if !wire.IPv4(b).ValidChecksum() {
			t.Errorf("out %d: IPv4 header checksum does not verify", i)
		}
	}
	th := wire.TCP(b[ipHL:])
	if want := wire.Fold(wire.PseudoHeaderChecksum(wire.ProtoTCP, src, dst, uint32(len(b)-ipHL))); th.Checksum() != want {
		t.Errorf("out %d: TCP checksum field %#04x, want the partial sum %#04x", i, th.Checksum(), want)
	}
	c := append([]byte(nil), b...)
	wire.TCP(c[ipHL:]).SetChecksumField(wire.Finish(wire.Checksum(c[ipHL:], 0)))
	pkt := gopacket.NewPacket(c, first, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("out %d: gopacket: %v", i, el.Error())
	}
	tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if tcp == nil {
		t.Fatalf("out %d: gopacket finds no TCP layer", i)
	}
	if err := tcp.SetNetworkLayerForChecksum(pkt.NetworkLayer()); err != nil {
		t.Fatal(err)
	}
	if err, mism := pkt.VerifyChecksums(); err != nil || len(mism) != 0 {
		t.Errorf("out %d: completed checksums: %v %+v", i, err, mism)
	}
	if v6 {
		ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if int(ip.Length)+40 != len(b) {
			t.Errorf("out %d: IPv6 payload length %d for a %d-byte packet", i, ip.Length, len(b))
		}
	} else {
		ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if int(ip.Length) != len(b) || ip.IHL != 5 {
			t.Errorf("out %d: IPv4 total length %d, IHL %d for a %d-byte packet", i, ip.Length, ip.IHL, len(b))
		}
	}
	return tcp
}

// run coalesces segs built with each maker and checks the result against want and the
// counters.
func run(t *testing.T, segs []seg, want [][]int) {
	t.Helper()
	for _, mk := range makers {
		t.Run(mk.name, func(t *testing.T) {
			a := newAlloc(t)
			pkts, raw := batch(t, a, mk, segs)
			var e gro.Engine
			var st stats.Offload
			var extra []*pbuf.Pbuf
			for i, s := range segs {
				if s.refd {
					extra = append(extra, pkts[i])
				}
			}
			out := e.Coalesce(pkts, &st)
			defer freeAll(extra)
			defer freeAll(out)
			checkOut(t, segs, raw, out, want)
			merged, made := 0, 0
			for _, w := range want {
				if len(w) > 1 {
					merged += len(w) - 1
					made++
				}
			}
			if st.GROMerged != uint64(merged) || st.GROPackets != uint64(made) {
				t.Errorf("GROMerged %d, GROPackets %d; want %d, %d", st.GROMerged, st.GROPackets, merged, made)
			}
			for i := len(out); i < len(pkts); i++ {
				if pkts[i] != nil {
					t.Errorf("slot %d past the result not cleared", i)
				}
			}
		})
	}
}

// train returns n segments of flow f with payloads of size bytes, from sequence number seq.
func train(f int, seq uint32, n, size int) []seg {
	s := make([]seg, n)
	for i := range s {
		s[i] = seg{flow: f, seq: seq + uint32(i*size), n: size, id: uint16(i)}
	}
	return s
}

// span is [from, to) as a want group.
func span(from, to int) []int {
	w := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		w = append(w, i)
	}
	return w
}

package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/wire"
)

// These tests hand the device large segments as the stack builds them (one header, a GSO
// mark, the checksum field holding the pseudo-header sum) and check with gopacket, an
// independent decoder, every packet Read cuts from them.

// gsoSpec is a large segment to build.
type gsoSpec struct {
	v6       bool
	ipOpts   []byte // IPv4 options (a multiple of 4 bytes)
	flags    wire.TCPFlags
	payload  int   // payload bytes
	size     int   // GSO size: payload bytes per segment
	pieces   []int // payload chain piece lengths (the rest in one last piece)
	seq      uint32
	id       uint16
	noGSO    bool // an ordinary packet with a partial checksum
	udp      bool // (with noGSO) UDP instead of TCP
	totalLen int  // if set, the IP length field written (a malformed frame)
}

const tcpHdrLen = 32 // with timestamps

// build returns the frame as a chain the caller owns: headers in a first pbuf, the payload
// (filled with a pattern) in pbufs of the lengths asked for, and the payload itself.
func (s gsoSpec) build(t testing.TB, alloc *pbuf.Allocator) (*pbuf.Pbuf, []byte) {
	t.Helper()
	payload := make([]byte, s.payload)
	for i := range payload {
		payload[i] = byte(i*7 + i>>8)
	}
	l4Len := tcpHdrLen
	if s.udp {
		l4Len = wire.UDPHeaderLen
	}
	l4Len += s.payload
	ipLen := wire.IPv6HeaderLen
	if !s.v6 {
		ipLen = wire.IPv4MinHeaderLen + len(s.ipOpts)
	}
	h, err := alloc.Alloc(pbuf.LayerRaw, ipLen+l4Len-s.payload, pbuf.POOL)
	if err != nil {
		t.Fatal(err)
	}
	b := h.Payload()
	proto := uint8(wire.ProtoTCP)
	if s.udp {
		proto = wire.ProtoUDP
	}
	src, dst := stackV4, hostV4
	if s.v6 {
		src, dst = stackV6, hostV6
		r := wire.IPv6Repr{TrafficClass: 0x02, FlowLabel: 0x12345, NextHeader: proto, HopLimit: 64,
			Src: src, Dst: dst, PayloadLen: l4Len}
		if err := r.Emit(b); err != nil {
			t.Fatal(err)
		}
	} else {
		r := wire.IPv4Repr{TOS: 0x02, ID: s.id, DontFragment: true, TTL: 64, Protocol: proto,
			Src: src, Dst: dst, Options: s.ipOpts, PayloadLen: l4Len}
		if err := r.Emit(b); err != nil {
			t.Fatal(err)
		}
	}
	if s.totalLen != 0 {
		if s.v6 {
			wire.IPv6(b).SetPayloadLength(uint16(s.totalLen - wire.IPv6HeaderLen))
		} else {
			wire.IPv4(b).SetTotalLength(uint16(s.totalLen))
		}
	}
	partial := wire.Fold(wire.PseudoHeaderChecksum(proto, src, dst, uint32(l4Len)))
	if s.udp {
		u := b[ipLen:]
		binary.BigEndian.PutUint16(u[0:], 40000)
		binary.BigEndian.PutUint16(u[2:], 40001)
		binary.BigEndian.PutUint16(u[4:], uint16(l4Len))
		binary.BigEndian.PutUint16(u[6:], partial)
	} else {
		r := wire.TCPRepr{SrcPort: 443, DstPort: 50000, SeqNum: s.seq, AckNum: 0x01020304,
			Flags: s.flags, Window: 1000,
			Options: wire.TCPOptions{HasTimestamps: true, TSVal: 11, TSEcr: 22}}
		if n, err := r.EmitHeader(b[ipLen:]); err != nil || n != tcpHdrLen {
			t.Fatalf("EmitHeader = %d, %v", n, err)
		}
		wire.TCP(b[ipLen:]).SetChecksumField(partial)
	}
	rest := payload
	add := func(n int, typ pbuf.Type) {
		if n == 0 {
			return
		}
		q, err := alloc.Alloc(pbuf.LayerRaw, n, typ)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.CopyIn(rest[:n], 0); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
		pbuf.Cat(h, q)
	}
	for i, n := range s.pieces {
		typ := pbuf.POOL
		if i%2 == 1 {
			typ = pbuf.RAM
		}
		add(min(n, len(rest)), typ)
	}
	add(len(rest), pbuf.POOL)
	h.SetFlags(h.Flags() | pbuf.FlagChecksumPartial)
	if !s.noGSO {
		typ := pbuf.GSOTCPv4
		if s.v6 {
			typ = pbuf.GSOTCPv6
		}
		h.SetGSO(typ, s.size)
	}
	return h, payload
}

// readAll reads until want packets came (each Read given per buffers of bufLen bytes at
// offset off) and returns them.
func readAll(t *testing.T, d *Link, want, per, bufLen, off int) [][]byte {
	t.Helper()
	bufs := make([][]byte, per)
	for i := range bufs {
		bufs[i] = make([]byte, off+bufLen)
	}
	sizes := make([]int, per)
	var got [][]byte
	for len(got) < want {
		n, err := d.Read(bufs, sizes, off)
		if err != nil {
			t.Fatalf("Read after %d packets: %v", len(got), err)
		}
		if n > per {
			t.Fatalf("Read returned %d packets for %d buffers", n, per)
		}
		for i := range n {
			got = append(got, bytes.Clone(bufs[i][off:off+sizes[i]]))
		}
	}
	return got
}

// decodeIP decodes an IP packet with gopacket and checks every checksum in it.
func decodeIP(t *testing.T, b []byte) gopacket.Packet {
	t.Helper()
	first := layers.LayerTypeIPv4
	if b[0]>>4 == 6 {
		first = layers.LayerTypeIPv6
	}
	p := gopacket.NewPacket(b, first, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v\n% x", el.Error(), b[:min(len(b), 80)])
	}
	for _, l := range p.Layers() {
		if c, ok := l.(interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}); ok {
			if err := c.SetNetworkLayerForChecksum(p.NetworkLayer()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err, mism := p.VerifyChecksums(); err != nil || len(mism) != 0 {
		t.Fatalf("gopacket checksums: %v %+v\n% x", err, mism, b[:min(len(b), 80)])
	}
	return p
}

// checkCut checks the packets cut from the segment s with the given payload: lengths,
// IPv4 ID, TCP sequence numbers, flags, options and the payload, in order.
func checkCut(t *testing.T, s gsoSpec, payload []byte, got [][]byte) {
	t.Helper()
	nseg := max(1, (s.payload+s.size-1)/s.size)
	if len(got) != nseg {
		t.Fatalf("%d packets, want %d", len(got), nseg)
	}
	var joined []byte
	for i, b := range got {
		p := decodeIP(t, b)
		last := i == nseg-1
		want := min(s.size, s.payload-i*s.size)
		if s.v6 {
			ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			if int(ip.Length) != len(b)-40 || ip.FlowLabel != 0x12345 || ip.HopLimit != 64 || ip.TrafficClass != 2 {
				t.Errorf("segment %d: IPv6 %+v", i, ip)
			}
		} else {
			ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			if int(ip.Length) != len(b) || ip.Id != s.id+uint16(i) || ip.Flags != layers.IPv4DontFragment ||
				ip.TTL != 64 || ip.TOS != 2 || int(ip.IHL)*4 != 20+len(s.ipOpts) {
				t.Errorf("segment %d: IPv4 length %d id %d flags %v ttl %d ihl %d (packet %d bytes)",
					i, ip.Length, ip.Id, ip.Flags, ip.TTL, ip.IHL, len(b))
			}
		}
		tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp.Seq != s.seq+uint32(i*s.size) || tcp.Ack != 0x01020304 || tcp.SrcPort != 443 || tcp.DstPort != 50000 ||
			tcp.Window != 1000 || len(tcp.Payload) != want {
			t.Errorf("segment %d: seq %d (want %d) ack %d ports %d>%d window %d payload %d (want %d)", i,
				tcp.Seq, s.seq+uint32(i*s.size), tcp.Ack, tcp.SrcPort, tcp.DstPort, tcp.Window, len(tcp.Payload), want)
		}
		if tcp.CWR != (s.flags.Has(wire.TCPFlagCWR) && i == 0) ||
			tcp.PSH != (s.flags.Has(wire.TCPFlagPSH) && last) ||
			tcp.FIN != (s.flags.Has(wire.TCPFlagFIN) && last) ||
			tcp.ECE != s.flags.Has(wire.TCPFlagECE) || tcp.ACK != s.flags.Has(wire.TCPFlagACK) ||
			tcp.SYN || tcp.RST || tcp.URG {
			t.Errorf("segment %d of %d: flags %v from %v", i, nseg, wire.TCP(tcp.Contents).Flags(), s.flags)
		}
		ts := false
		for _, o := range tcp.Options {
			if o.OptionType == layers.TCPOptionKindTimestamps &&
				binary.BigEndian.Uint32(o.OptionData) == 11 && binary.BigEndian.Uint32(o.OptionData[4:]) == 22 {
				ts = true
			}
		}
		if !ts {
			t.Errorf("segment %d: timestamps lost: %v", i, tcp.Options)
		}
		if len(b) > 1420 {
			t.Errorf("segment %d: %d bytes, over the MTU", i, len(b))
		}
		joined = append(joined, tcp.Payload...)
	}
	if !bytes.Equal(joined, payload) {
		t.Error("the payload cut and joined again differs")
	}
}

// TestReadCutsGSO: IPv4 (with and without IP options) and IPv6 large segments come out
// of Read as MTU-sized packets that gopacket decodes with good checksums, with the
// headers Linux's TSO would write.
func TestReadCutsGSO(t *testing.T) {
	d, st := newTestLink(t, Config{Offload: true})
	ep := d.Endpoint().(*linkEP)
	alloc := st.Allocator()
	all := wire.TCPFlagACK | wire.TCPFlagPSH | wire.TCPFlagFIN | wire.TCPFlagCWR | wire.TCPFlagECE
	const mss4, mss6 = 1420 - 20 - tcpHdrLen, 1420 - 40 - tcpHdrLen
	for _, s := range []gsoSpec{
		{flags: all, payload: 20000, size: mss4, pieces: []int{1, 777, 2000, 3, 4096}, seq: 0xfffff000, id: 0xfffe},
		{flags: wire.TCPFlagACK | wire.TCPFlagPSH, payload: 3 * mss4, size: mss4, id: 7},
		{ipOpts: []byte{1, 1, 1, 0}, flags: all, payload: 5000, size: mss4 - 4, pieces: []int{1000, 1000}},
		{flags: all, payload: 500, size: mss4, seq: 9},         // one segment: every flag stays
		{flags: wire.TCPFlagACK | wire.TCPFlagFIN, size: mss4}, // no payload: one segment
		{v6: true, flags: all, payload: 65535 - 40 - tcpHdrLen, size: mss6, pieces: []int{1, 2, 3, 1234}, seq: 1},
		{v6: true, flags: wire.TCPFlagACK | wire.TCPFlagCWR, payload: 10001, size: 1000},
	} {
		name := fmt.Sprintf("v6=%v/opts=%d/%d by %d", s.v6, len(s.ipOpts), s.payload, s.size)
		t.Run(name, func(t *testing.T) {
			p, payload := s.build(t, alloc)
			if w, err := ep.WritePackets([]*pbuf.Pbuf{p}); w != 1 || err != nil {
				t.Fatalf("WritePackets = %d, %v", w, err)
			}
			f0, s0, _ := d.OffloadStats()
			tx0, _, _, _ := d.Stats()
			nseg := max(1, (s.payload+s.size-1)/s.size)
			checkCut(t, s, payload, readAll(t, d, nseg, 64, 65535, 16))
			f1, s1, _ := d.OffloadStats()
			tx1, _, _, _ := d.Stats()
			if f1-f0 != 1 || s1-s0 != uint64(nseg) || tx1-tx0 != uint64(nseg) {
				t.Errorf("OffloadStats +%d frames +%d segments, tx +%d; want 1, %d, %d", f1-f0, s1-s0, tx1-tx0, nseg, nseg)
			}
		})
	}
}

// TestReadGSOCarriesOver: a large segment needing more buffers than a Read has is finished
// by the following Reads, before the frames queued after it, and nothing is lost or
// reordered; the buffers of one Read may be of different sizes.
func TestReadGSOCarriesOver(t *testing.T) {
	d, st := newTestLink(t, Config{Offload: true})
	ep := d.Endpoint().(*linkEP)
	alloc := st.Allocator()
	const mss = 1420 - 20 - tcpHdrLen
	s1 := gsoSpec{flags: wire.TCPFlagACK | wire.TCPFlagPSH, payload: 10 * mss, size: mss, pieces: []int{3000}, seq: 100, id: 1}
	s2 := gsoSpec{v6: true, flags: wire.TCPFlagACK | wire.TCPFlagFIN, payload: 4*1000 + 1, size: 1000, seq: 5}
	plain := func(id uint16) *pbuf.Pbuf {
		p, _ := gsoSpec{noGSO: true, flags: wire.TCPFlagACK, payload: 100, id: id}.build(t, alloc)
		return p
	}
	g1, pay1 := s1.build(t, alloc)
	g2, pay2 := s2.build(t, alloc)
	frames := []*pbuf.Pbuf{plain(1000), g1, plain(1001), g2, plain(1002)}
	if w, err := ep.WritePackets(frames); w != len(frames) || err != nil {
		t.Fatalf("WritePackets = %d, %v", w, err)
	}
	// Reads of 3 buffers: the plain packet and two segments, then three segments at a
	// time; the buffers' sizes vary, all large enough.
	const off = 16
	bufs := [][]byte{make([]byte, off+1420), make([]byte, off+65535), make([]byte, off+1500)}
	sizes := make([]int, len(bufs))
	var got [][]byte
	var per []int
	for len(got) < 1+10+1+5+1 {
		r, err := d.Read(bufs, sizes, off)
		if err != nil {
			t.Fatal(err)
		}
		per = append(per, r)
		for i := range r {
			got = append(got, bytes.Clone(bufs[i][off:off+sizes[i]]))
		}
	}
	if want := []int{3, 3, 3, 3, 3, 3}; fmt.Sprint(per) != fmt.Sprint(want) {
		t.Errorf("packets per Read %v, want %v", per, want)
	}
	idOf := func(b []byte) uint16 { return wire.IPv4(b).ID() }
	if idOf(got[0]) != 1000 || idOf(got[11]) != 1001 || idOf(got[17]) != 1002 {
		t.Errorf("plain packets out of place: IDs %d, %d, %d", idOf(got[0]), idOf(got[11]), idOf(got[17]))
	}
	for _, i := range []int{0, 11, 17} {
		decodeIP(t, got[i])
	}
	checkCut(t, s1, pay1, got[1:11])
	checkCut(t, s2, pay2, got[12:17])
	if tx, txd, _, _ := d.Stats(); tx != 18 || txd != 0 {
		t.Errorf("Stats: tx %d (%d dropped), want 18 (0)", tx, txd)
	}
}

// TestReadGSOCloseMidFrame: Close frees a large segment Read had begun to cut and the
// frames queued behind it (newTestLink's cleanup checks the pools).
func TestReadGSOCloseMidFrame(t *testing.T) {
	d, st := newTestLink(t, Config{Offload: true})
	ep := d.Endpoint().(*linkEP)
	alloc := st.Allocator()
	g, _ := gsoSpec{flags: wire.TCPFlagACK, payload: 20000, size: 1000}.build(t, alloc)
	p, _ := gsoSpec{noGSO: true, flags: wire.TCPFlagACK, payload: 10}.build(t, alloc)
	q, _ := gsoSpec{noGSO: true, flags: wire.TCPFlagACK, payload: 10}.build(t, alloc)
	if w, err := ep.WritePackets([]*pbuf.Pbuf{g, p, q}); w != 3 || err != nil {
		t.Fatalf("WritePackets = %d, %v", w, err)
	}
	readAll(t, d, 2, 2, 1500, 0)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if r, err := d.Read([][]byte{make([]byte, 1500)}, make([]int, 1), 0); r != 0 || !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close = %d, %v", r, err)
	}
}

// TestReadCompletesChecksum: ordinary packets left with a partial checksum (TCP and UDP,
// IPv4 and IPv6) leave Read with a complete one.
func TestReadCompletesChecksum(t *testing.T) {
	d, st := newTestLink(t, Config{Offload: true})
	ep := d.Endpoint().(*linkEP)
	alloc := st.Allocator()
	for _, s := range []gsoSpec{
		{noGSO: true, flags: wire.TCPFlagACK | wire.TCPFlagPSH, payload: 1001, pieces: []int{17, 3}},
		{noGSO: true, v6: true, flags: wire.TCPFlagACK, payload: 1300},
		{noGSO: true, udp: true, payload: 555, pieces: []int{100}},
		{noGSO: true, udp: true, v6: true, payload: 0},
	} {
		p, payload := s.build(t, alloc)
		if w, err := ep.WritePackets([]*pbuf.Pbuf{p}); w != 1 || err != nil {
			t.Fatalf("WritePackets = %d, %v", w, err)
		}
		_, _, c0 := d.OffloadStats()
		got := readAll(t, d, 1, 4, 1500, 0)
		if _, _, c1 := d.OffloadStats(); c1 != c0+1 {
			t.Errorf("%+v: %d checksums completed, want 1", s, c1-c0)
		}
		pk := decodeIP(t, got[0])
		if tl := pk.TransportLayer(); tl == nil || !bytes.Equal(tl.LayerPayload(), payload) {
			t.Errorf("%+v: payload differs", s)
		}
	}
}

// TestReadGSODrops: a segment longer than the host's buffer drops the rest of its
// frame; a malformed GSO frame is dropped whole; both are counted and the frames behind
// them still come out.
func TestReadGSODrops(t *testing.T) {
	d, st := newTestLink(t, Config{Offload: true})
	ep := d.Endpoint().(*linkEP)
	alloc := st.Allocator()
	big, _ := gsoSpec{flags: wire.TCPFlagACK, payload: 5000, size: 1000}.build(t, alloc)
	bad, _ := gsoSpec{flags: wire.TCPFlagACK, payload: 5000, size: 1000, totalLen: 4000}.build(t, alloc)
	bad6, _ := gsoSpec{v6: true, flags: wire.TCPFlagACK, payload: 5000, size: 1000, totalLen: 6000}.build(t, alloc)
	ok, _ := gsoSpec{noGSO: true, flags: wire.TCPFlagACK, payload: 100, id: 77}.build(t, alloc)
	if w, err := ep.WritePackets([]*pbuf.Pbuf{big, bad, bad6, ok}); w != 4 || err != nil {
		t.Fatalf("WritePackets = %d, %v", w, err)
	}
	got := readAll(t, d, 1, 4, 1000, 0) // each segment is 1052 bytes
	if len(got) != 1 || wire.IPv4(got[0]).ID() != 77 {
		t.Fatalf("got %d packets, the first with ID %d", len(got), wire.IPv4(got[0]).ID())
	}
	if _, txd, _, _ := d.Stats(); txd != 5+2 {
		t.Errorf("%d dropped, want 5 segments too big and 2 malformed frames", txd)
	}
}

// TestOffloadsOption: offloads are on by default; NoOffload offers the stack none, and
// the device then refuses a frame over the MTU, GSO or not.
func TestOffloadsOption(t *testing.T) {
	d, st := newTestLink(t, Config{Offload: true})
	want := link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: 65535}
	if got := d.Endpoint().(link.Offloader).Offloads(); got != want {
		t.Errorf("Offloads() = %+v, want %+v", got, want)
	}
	udp, _ := gsoSpec{noGSO: true, udp: true, payload: 2000}.build(t, st.Allocator())
	if w, err := d.Endpoint().WritePackets([]*pbuf.Pbuf{udp}); w != 0 || !errors.Is(err, errs.Val) {
		t.Errorf("WritePackets(UDP over the MTU) = %d, %v", w, err)
	}

	d, st = newTestLink(t, Config{})
	if got := d.Endpoint().(link.Offloader).Offloads(); got != (link.Offloads{}) {
		t.Errorf("NoOffload: Offloads() = %+v", got)
	}
	g, _ := gsoSpec{flags: wire.TCPFlagACK, payload: 5000, size: 1000}.build(t, st.Allocator())
	if w, err := d.Endpoint().WritePackets([]*pbuf.Pbuf{g}); w != 0 || !errors.Is(err, errs.Val) {
		t.Errorf("NoOffload: WritePackets(GSO) = %d, %v", w, err)
	}
}

// TestReadGSOAllocs pins cutting a large segment at zero allocations: each run queues a
// copy of a 30,000-byte segment (a pool chain) and reads its 30 packets, 8 per Read.
func TestReadGSOAllocs(t *testing.T) {
	d, st := newTestLink(t, Config{Offload: true})
	ep := d.Endpoint().(*linkEP)
	alloc := st.Allocator()
	tmpl, _ := gsoSpec{flags: wire.TCPFlagACK | wire.TCPFlagPSH, payload: 30000, size: 1000, pieces: []int{5000}}.build(t, alloc)
	defer tmpl.Free()
	const per = 8
	bufs := make([][]byte, per)
	for i := range bufs {
		bufs[i] = make([]byte, 16+1500)
	}
	sizes := make([]int, per)
	frames := make([]*pbuf.Pbuf, 1)
	round := func() {
		p, err := alloc.Clone(pbuf.LayerRaw, pbuf.POOL, tmpl)
		if err != nil {
			t.Fatal(err)
		}
		frames[0] = p
		if w, err := ep.WritePackets(frames); w != 1 || err != nil {
			t.Fatalf("WritePackets = %d, %v", w, err)
		}
		for got := 0; got < 30; {
			r, err := d.Read(bufs, sizes, 16)
			if err != nil {
				t.Fatal(err)
			}
			got += r
		}
	}
	if a := testing.AllocsPerRun(50, round); a != 0 {
		t.Errorf("%v allocations per large segment cut, want 0", a)
	}
	if f, s, _ := d.OffloadStats(); f != 51 || s != 51*30 {
		t.Errorf("OffloadStats = %d frames, %d segments", f, s)
	}
}

// TestTxRoomCountsPackets: a large segment takes the ring's room of the packets it is cut
// into, and gives it back when Read takes it; the ring still takes it into its last room.
func TestTxRoomCountsPackets(t *testing.T) {
	d, st := newTestLink(t, Config{Offload: true, QueueLen: 16})
	ep := d.Endpoint().(*linkEP)
	alloc := st.Allocator()
	g, _ := gsoSpec{flags: wire.TCPFlagACK, payload: 10 * 1000, size: 1000}.build(t, alloc)
	p, _ := gsoSpec{noGSO: true, flags: wire.TCPFlagACK, payload: 10}.build(t, alloc)
	if w, err := ep.WritePackets([]*pbuf.Pbuf{g, p}); w != 2 || err != nil {
		t.Fatalf("WritePackets = %d, %v", w, err)
	}
	if room := ep.TxRoom(); room != 16-10-1 {
		t.Errorf("TxRoom = %d with a 10-packet segment and a packet queued, want 5", room)
	}
	g2, _ := gsoSpec{flags: wire.TCPFlagACK, payload: 8 * 1000, size: 1000}.build(t, alloc)
	if w, err := ep.WritePackets([]*pbuf.Pbuf{g2}); w != 1 || err != nil {
		t.Fatalf("WritePackets(into the last room) = %d, %v", w, err)
	}
	if room := ep.TxRoom(); room != 0 {
		t.Errorf("TxRoom = %d over the limit, want 0", room)
	}
	readAll(t, d, 10+1+8, 32, 1500, 0)
	if room := ep.TxRoom(); room != 16 {
		t.Errorf("TxRoom = %d after the reads, want 16", room)
	}
}

// FuzzCut feeds the cutter and the checksum completion arbitrary frames: they never panic;
// every segment the cutter makes fits its buffer and the MTU, carries the next slice of the
// payload and valid IP and TCP checksums; a completed checksum verifies.
func FuzzCut(f *testing.F) {
	alloc := pbuf.NewAllocator(pbuf.Config{PoolCount: 64, PoolBufSize: 512, HeapSize: 64 << 10, RefCount: 8, RAMCount: 64})
	for _, s := range []gsoSpec{
		{flags: wire.TCPFlagACK | wire.TCPFlagFIN, payload: 3000, size: 1000},
		{v6: true, flags: wire.TCPFlagACK | wire.TCPFlagPSH, payload: 2500, size: 1000},
		{ipOpts: []byte{1, 1, 1, 0}, flags: wire.TCPFlagCWR, payload: 10, size: 4},
		{noGSO: true, udp: true, payload: 33},
	} {
		p, _ := s.build(f, alloc)
		typ, size := p.GSO()
		f.Add(p.Bytes(nil), uint8(typ), uint16(size), uint16(700))
		p.Free()
	}
	f.Fuzz(func(t *testing.T, frame []byte, typ uint8, size, cut uint16) {
		defer linktest.CheckZero(t, alloc)
		if len(frame) == 0 || len(frame) > 16<<10 {
			return
		}
		// The frame in two pbufs (a RAM one and a pool chain), cut where the fuzzer says.
		at := 1 + int(cut)%len(frame)
		p, err := alloc.Alloc(pbuf.LayerRaw, at, pbuf.RAM)
		if err != nil {
			t.Skip(err)
		}
		defer p.Free()
		_ = p.CopyIn(frame[:at], 0)
		if at < len(frame) {
			q, err := alloc.Alloc(pbuf.LayerRaw, len(frame)-at, pbuf.POOL)
			if err != nil {
				t.Skip(err)
			}
			_ = q.CopyIn(frame[at:], 0)
			pbuf.Cat(p, q)
		}
		p.SetGSO(pbuf.GSOType(typ%4), int(size))
		var c cutter
		dst := make([]byte, 1500)
		if c.start(p) {
			var payload []byte
			for i := 0; c.more(); i++ {
				l := c.next(dst, 1500)
				if l == 0 {
					if c.hdrLen+min(c.size, c.left) <= 1500 {
						t.Fatalf("segment %d refused, %d+%d bytes", i, c.hdrLen, min(c.size, c.left))
					}
					break
				}
				checkSums(t, dst[:l], c.ipLen)
				payload = append(payload, dst[c.hdrLen:l]...)
			}
			if c.left == 0 && !bytes.Equal(payload, frame[c.hdrLen:]) {
				t.Fatal("the segments' payload differs from the frame's")
			}
			c.stop()
		}
		b := bytes.Clone(frame)
		if wire.CompleteChecksum(b) {
			// The field held the pseudo-header sum the stack would have put there: with
			// that sum, the completed checksum verifies.
			l4, end, proto := wire.IPv6HeaderLen, wire.IPv6HeaderLen+int(wire.IPv6(b).PayloadLength()), wire.IPv6(b).NextHeader()
			if b[0]>>4 == 4 {
				l4, end, proto = wire.IPv4(b).HeaderLen(), int(wire.IPv4(b).TotalLength()), wire.IPv4(b).Protocol()
			}
			field := l4 + 16
			if proto == wire.ProtoUDP {
				field = l4 + 6
			}
			pseudo := binary.BigEndian.Uint16(frame[field:])
			if c := wire.Finish(wire.Checksum(b[l4:end], uint32(pseudo))); c != 0 {
				t.Fatalf("completed checksum does not verify (residue %#04x)", c)
			}
		}
	})
}

// checkSums checks the checksums of IP packet b: the IPv4 header's, if IPv4, and the
// transport header's at l4 over the length the IP header gives.
func checkSums(t *testing.T, b []byte, l4 int) {
	t.Helper()
	var src, dst netip.Addr
	var proto uint8
	end := 0
	if b[0]>>4 == 4 {
		ip := wire.IPv4(b)
		if !ip.ValidChecksum() {
			t.Fatalf("bad IPv4 header checksum: % x", b[:l4])
		}
		src, dst, proto, end = ip.Src(), ip.Dst(), ip.Protocol(), int(ip.TotalLength())
	} else {
		ip := wire.IPv6(b)
		src, dst, proto, end = ip.Src(), ip.Dst(), ip.NextHeader(), wire.IPv6HeaderLen+int(ip.PayloadLength())
	}
	sum := wire.PseudoHeaderChecksum(proto, src, dst, uint32(end-l4))
	if c := wire.Finish(wire.Checksum(b[l4:end], sum)); c != 0 {
		t.Fatalf("bad transport checksum (residue %#04x): % x", c, b[:min(end, l4+20)])
	}
}

// TestReadGSOConcurrent: the stack queues large segments and ordinary packets while
// the host reads them a few at a time, concurrently (run with -race): the packets come
// out whole and in order, the sequence numbers running on without a gap.
func TestReadGSOConcurrent(t *testing.T) {
	d, st := newTestLink(t, Config{Offload: true, QueueLen: 64})
	stacktest.OnFail(t, stacktest.Side{Name: "wisp", Stack: st, Links: []any{d}})
	ep := d.Endpoint().(*linkEP)
	alloc := st.Allocator()
	const frames = 60
	var pkts []*pbuf.Pbuf
	want := 0
	seq := uint32(1)
	for i := range frames {
		s := gsoSpec{flags: wire.TCPFlagACK, payload: 1000 * (1 + i%9), size: 1000, pieces: []int{700 + i}, seq: seq}
		if i%4 == 3 {
			s = gsoSpec{noGSO: true, flags: wire.TCPFlagACK, payload: 1000, seq: seq}
		}
		p, _ := s.build(t, alloc)
		pkts = append(pkts, p)
		seq += uint32(s.payload)
		want += max(1, s.payload/1000)
	}
	// Read has no deadline: a watchdog, or a writer that fails, closes the device to end it.
	watchdog := time.AfterFunc(20*time.Second, func() { d.Close() })
	defer watchdog.Stop()
	errc := make(chan error, 1)
	go func() {
		var err error
		defer func() {
			if err != nil {
				d.Close()
			}
			errc <- err
		}()
		deadline := time.Now().Add(10 * time.Second)
		for i, p := range pkts {
			for ep.TxRoom() == 0 { // only the reader makes room: the write below is taken
				if time.Now().After(deadline) {
					for _, q := range pkts[i:] {
						q.Free()
					}
					err = fmt.Errorf("no room for frame %d within 10 s", i)
					return
				}
				time.Sleep(50 * time.Microsecond)
			}
			if w, werr := ep.WritePackets([]*pbuf.Pbuf{p}); w != 1 || werr != nil {
				for _, q := range pkts[i+1:] {
					q.Free()
				}
				err = fmt.Errorf("WritePackets(frame %d) = %d, %v", i, w, werr)
				return
			}
		}
	}()
	got := readAll(t, d, want, 3, 1500, 8)
	if err := stacktest.WaitErr(t, errc, 10*time.Second, "writer"); err != nil {
		t.Fatal(err)
	}
	next := uint32(1)
	for i, b := range got {
		tcp := wire.TCP(b[20:])
		if tcp.SeqNum() != next || len(tcp.Payload()) != 1000 {
			t.Fatalf("packet %d: seq %d, %d bytes; want seq %d, 1000 bytes", i, tcp.SeqNum(), len(tcp.Payload()), next)
		}
		checkSums(t, b, 20)
		next += 1000
	}
}

// BenchmarkReadGSO measures Read cutting 64 KiB large segments into 1420-byte packets,
// 32 per Read (b.SetBytes: the payload).
func BenchmarkReadGSO(b *testing.B) {
	d, st := newTestLink(b, Config{Offload: true})
	ep := d.Endpoint().(*linkEP)
	alloc := st.Allocator()
	const mss = 1420 - 20 - tcpHdrLen
	s := gsoSpec{flags: wire.TCPFlagACK, payload: 47 * mss, size: mss}
	tmpl, _ := s.build(b, alloc)
	defer tmpl.Free()
	bufs := make([][]byte, 32)
	for i := range bufs {
		bufs[i] = make([]byte, 16+1500)
	}
	sizes := make([]int, len(bufs))
	frames := make([]*pbuf.Pbuf, 1)
	b.SetBytes(int64(s.payload))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		p, err := alloc.Clone(pbuf.LayerRaw, pbuf.POOL, tmpl)
		if err != nil {
			b.Fatal(err)
		}
		frames[0] = p
		if w, err := ep.WritePackets(frames); w != 1 || err != nil {
			b.Fatalf("WritePackets = %d, %v", w, err)
		}
		b.StartTimer()
		for got := 0; got < 47; {
			r, err := d.Read(bufs, sizes, 16)
			if err != nil {
				b.Fatal(err)
			}
			got += r
		}
	}
}

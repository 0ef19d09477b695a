package gvisor_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/wispstack/wisp/adapter/gvisor"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/wire"
)

// Hand-built packets: the conversions between wisp's GSO pbufs and gVisor's GSOOptions,
// without either stack.

// segment returns an IP packet (IPv6 when v6) carrying a TCP segment (or, with udp, a UDP
// datagram) of payload bytes. Its transport checksum is complete, or with partial the
// pseudo-header sum as gVisor's buildTCPHdr writes it for NeedsCsum.
func segment(v6, udp bool, payload int, partial bool) []byte {
	l3, th := header.IPv4MinimumSize, header.TCPMinimumSize
	proto := header.TCPProtocolNumber
	if v6 {
		l3 = header.IPv6MinimumSize
	}
	if udp {
		th, proto = header.UDPMinimumSize, header.UDPProtocolNumber
	}
	b := make([]byte, l3+th+payload)
	copy(b[l3+th:], linktest.Pattern(payload, byte(payload)))
	var src, dst tcpip.Address
	if v6 {
		src, dst = tcpip.AddrFromSlice(wispV6.Addr().AsSlice()), tcpip.AddrFromSlice(gvV6.Addr().AsSlice())
		header.IPv6(b).Encode(&header.IPv6Fields{PayloadLength: uint16(th + payload),
			TransportProtocol: proto, HopLimit: 64, SrcAddr: src, DstAddr: dst})
	} else {
		src, dst = tcpip.AddrFromSlice(wispV4.Addr().AsSlice()), tcpip.AddrFromSlice(gvV4.Addr().AsSlice())
		ip := header.IPv4(b)
		ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(b)), ID: 7, TTL: 64,
			Protocol: uint8(proto), SrcAddr: src, DstAddr: dst})
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	t := b[l3:]
	if udp {
		header.UDP(t).Encode(&header.UDPFields{SrcPort: 5000, DstPort: 5001, Length: uint16(th + payload)})
	} else {
		header.TCP(t).Encode(&header.TCPFields{SrcPort: 5000, DstPort: 5001, SeqNum: 1000, AckNum: 2000,
			DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck | header.TCPFlagPsh, WindowSize: 4096})
	}
	xsum := header.PseudoHeaderChecksum(proto, src, dst, uint16(th+payload))
	if !partial {
		xsum = ^checksum.Checksum(t, xsum)
	}
	binary.BigEndian.PutUint16(t[csumAt(udp):], xsum)
	return b
}

func csumAt(udp bool) int {
	if udp {
		return header.UDPMinimumSize - 2
	}
	return header.TCPChecksumOffset
}

// transportValid reports whether IP packet b's transport checksum is right (wisp's
// checksum code checking what segment and the adapter wrote).
func transportValid(b []byte) bool {
	var src, dst netip.Addr
	var l3 int
	var proto uint8
	if b[0]>>4 == 6 {
		src, dst, l3, proto = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40])), 40, b[6]
	} else {
		src, dst, l3, proto = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20])), int(b[0]&0xf)*4, b[9]
	}
	t := b[l3:]
	return wire.Finish(wire.Checksum(t, wire.PseudoHeaderChecksum(proto, src, dst, uint32(len(t))))) == 0
}

// completeAt completes a partial checksum the way a virtio-net device does for
// NEEDS_CSUM: the one's complement sum of everything from start on, complemented, stored
// at start+off.
func completeAt(b []byte, start, off int) []byte {
	c := append([]byte(nil), b...)
	binary.BigEndian.PutUint16(c[start+off:], wire.Finish(wire.Checksum(c[start:], 0)))
	return c
}

func gsoTypeFor(v6 bool) (pbuf.GSOType, gstack.GSOType) {
	if v6 {
		return pbuf.GSOTCPv6, gstack.GSOTCPv6
	}
	return pbuf.GSOTCPv4, gstack.GSOTCPv4
}

func etherTypeFor(v6 bool) uint16 {
	if v6 {
		return uint16(header.IPv6ProtocolNumber)
	}
	return uint16(header.IPv4ProtocolNumber)
}

func TestLinkOffloads(t *testing.T) {
	full := link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: 1 << 15}
	for _, c := range []struct {
		name string
		eth  bool
		gso  gstack.SupportedGSO
		cfg  gvisor.LinkConfig
		want link.Offloads
	}{
		{"none", false, gstack.GSONotSupported, gvisor.LinkConfig{}, link.Offloads{}},
		{"host", false, gstack.HostGSOSupported, gvisor.LinkConfig{}, full},
		{"host/ethernet", true, gstack.HostGSOSupported, gvisor.LinkConfig{}, full},
		{"gvisor-gso", false, gstack.GVisorGSOSupported, gvisor.LinkConfig{}, link.Offloads{}},
		{"host/declined", false, gstack.HostGSOSupported, gvisor.LinkConfig{NoOffloads: true}, link.Offloads{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, _, _, _ := newChannelLinkGSO(t, c.eth, c.gso, c.cfg)
			if got := l.Offloads(); got != c.want {
				t.Errorf("Offloads() = %+v, want %+v", got, c.want)
			}
		})
	}
}

// TestLinkTxGSO: a wisp GSO packet reaches a host-GSO endpoint as one PacketBuffer with the
// GSOOptions gVisor's TCP would set, headers apart and the payload as Data, its bytes
// untouched; completing the checksum as the virtio-net header asks gives the right one.
func TestLinkTxGSO(t *testing.T) {
	for _, eth := range []bool{false, true} {
		for _, v6 := range []bool{false, true} {
			name := map[bool]string{false: "ip", true: "ethernet"}[eth] + map[bool]string{false: "/v4", true: "/v6"}[v6]
			t.Run(name, func(t *testing.T) {
				l, ch, _, a := newChannelLinkGSO(t, eth, gstack.HostGSOSupported, gvisor.LinkConfig{})
				hl, l3 := 0, header.IPv4MinimumSize
				if eth {
					hl = 14
				}
				if v6 {
					l3 = header.IPv6MinimumSize
				}
				wt, gt := gsoTypeFor(v6)
				frame := func(payload int, udp bool) []byte {
					b := segment(v6, udp, payload, true)
					if eth {
						b = ethFrame(macB, macA, etherTypeFor(v6), b)
					}
					return b
				}
				write := func(f []byte, typ pbuf.GSOType, size int) *gstack.PacketBuffer {
					t.Helper()
					p := linktest.Frame(t, a, f)
					p.SetGSO(typ, size)
					p.SetFlags(pbuf.FlagChecksumPartial)
					if n, err := l.WritePackets([]*pbuf.Pbuf{p}); n != 1 || err != nil {
						t.Fatalf("WritePackets: %d %v", n, err)
					}
					out := ch.Read()
					if out == nil {
						t.Fatal("nothing written to the channel")
					}
					return out
				}
				bytesOf := func(pkt *gstack.PacketBuffer) []byte {
					v := pkt.ToView()
					defer v.Release()
					return append([]byte(nil), v.AsSlice()...)
				}

				// A GSO packet: 5000 bytes in 1000-byte segments.
				f := frame(5000, false)
				out := write(f, wt, 1000)
				want := gstack.GSO{Type: gt, NeedsCsum: true, CsumOffset: 16, MSS: 1000, L3HdrLen: uint16(l3), MaxSize: 1 << 15}
				if out.GSOOptions != want {
					t.Errorf("GSOOptions %+v, want %+v", out.GSOOptions, want)
				}
				if out.HeaderSize() != hl+l3+20 || out.Data().Size() != 5000 || out.TransportProtocolNumber != header.TCPProtocolNumber {
					t.Errorf("headers %d bytes, data %d, transport %d; want %d, 5000, TCP", out.HeaderSize(), out.Data().Size(),
						out.TransportProtocolNumber, hl+l3+20)
				}
				got := bytesOf(out)
				out.DecRef()
				if !bytes.Equal(got, f) {
					t.Fatal("GSO packet bytes changed")
				}
				if !transportValid(completeAt(got, hl+l3, 16)[hl:]) {
					t.Error("the checksum completed from csum_start = L3HdrLen (+ link header), csum_offset 16 is wrong")
				}

				// An ordinary TCP packet with a partial checksum: the same options (gVisor's
				// TCP sets them on every packet of a host-GSO endpoint), the MTU's MSS.
				f = frame(1000, false)
				out = write(f, pbuf.GSONone, 0)
				want.MSS = uint16(1500 - l3 - 20)
				if out.GSOOptions != want || out.Data().Size() != 1000 {
					t.Errorf("partial TCP: GSOOptions %+v data %d, want %+v 1000", out.GSOOptions, out.Data().Size(), want)
				}
				got = bytesOf(out)
				out.DecRef()
				if !bytes.Equal(got, f) || !transportValid(completeAt(got, hl+l3, 16)[hl:]) {
					t.Error("partial TCP: bytes changed or the completed checksum is wrong")
				}

				// A UDP datagram with a partial checksum: completed here, no options.
				f = frame(700, true)
				out = write(f, pbuf.GSONone, 0)
				if out.GSOOptions != (gstack.GSO{}) {
					t.Errorf("partial UDP: GSOOptions %+v, want none", out.GSOOptions)
				}
				got = bytesOf(out)
				out.DecRef()
				if !transportValid(got[hl:]) || !bytes.Equal(got[:hl+l3+6], f[:hl+l3+6]) || !bytes.Equal(got[hl+l3+8:], f[hl+l3+8:]) {
					t.Error("partial UDP: checksum not completed, or other bytes changed")
				}
				if st := l.Stats(); st.TxGSO != 1 || st.TxCsum != 1 || st.TxPackets != 3 {
					t.Errorf("counters %+v", st)
				}
			})
		}
	}
}

// TestLinkTxOffloadRefused: GSO requests the endpoint or the packet cannot honour are
// ERR_VAL and freed; without host GSO a partial checksum is completed (the stack would
// have done it: the Link offers no TxChecksum).
func TestLinkTxOffloadRefused(t *testing.T) {
	l, ch, _, a := newChannelLinkGSO(t, false, gstack.HostGSOSupported, gvisor.LinkConfig{})
	for _, c := range []struct {
		name  string
		b     []byte
		typ   pbuf.GSOType
		flags pbuf.Flags
	}{
		{"not partial", segment(false, false, 5000, true), pbuf.GSOTCPv4, 0},
		{"wrong version", segment(false, false, 5000, true), pbuf.GSOTCPv6, pbuf.FlagChecksumPartial},
		{"UDP", segment(false, true, 5000, true), pbuf.GSOUDPL4, pbuf.FlagChecksumPartial},
		{"beyond GSOMax", segment(false, false, 40000, true), pbuf.GSOTCPv4, pbuf.FlagChecksumPartial},
		{"not IP", append([]byte{0x45}, make([]byte, 5)...), pbuf.GSOTCPv4, pbuf.FlagChecksumPartial},
	} {
		p := linktest.Frame(t, a, c.b)
		p.SetGSO(c.typ, 1000)
		p.SetFlags(c.flags)
		if n, err := l.WritePackets([]*pbuf.Pbuf{p}); n != 0 || !errors.Is(err, errs.Val) {
			t.Errorf("%s: %d %v, want 0 ERR_VAL", c.name, n, err)
		}
	}
	if ch.NumQueued() != 0 {
		t.Error("a refused packet was written")
	}

	plain, ch2, _, a2 := newChannelLinkGSO(t, false, gstack.GSONotSupported, gvisor.LinkConfig{})
	p := linktest.Frame(t, a2, segment(false, false, 5000, true))
	p.SetGSO(pbuf.GSOTCPv4, 1000)
	p.SetFlags(pbuf.FlagChecksumPartial)
	if n, err := plain.WritePackets([]*pbuf.Pbuf{p}); n != 0 || !errors.Is(err, errs.Val) {
		t.Errorf("GSO without host GSO: %d %v, want 0 ERR_VAL", n, err)
	}
	p = linktest.Frame(t, a2, segment(true, false, 1000, true))
	p.SetFlags(pbuf.FlagChecksumPartial)
	if n, err := plain.WritePackets([]*pbuf.Pbuf{p}); n != 1 || err != nil {
		t.Fatalf("partial TCP without host GSO: %d %v", n, err)
	}
	out := ch2.Read()
	v := out.ToView()
	if out.GSOOptions != (gstack.GSO{}) || !transportValid(v.AsSlice()) {
		t.Errorf("partial TCP without host GSO: options %+v, checksum valid %v", out.GSOOptions, transportValid(v.AsSlice()))
	}
	v.Release()
	out.DecRef()
}

// rxMeta is what a test dispatcher saw of a delivered pbuf.
type rxMeta struct {
	typ   pbuf.GSOType
	size  int
	flags pbuf.Flags
	b     []byte
}

// recordMeta makes d record each frame's offload marks and bytes.
func recordMeta(d *linktest.Dispatcher) func() []rxMeta {
	var mu sync.Mutex
	var got []rxMeta
	d.OnDeliver = func(p *pbuf.Pbuf) {
		typ, size := p.GSO()
		m := rxMeta{typ, size, p.Flags(), p.Bytes(nil)}
		p.Free()
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}
	return func() []rxMeta {
		mu.Lock()
		defer mu.Unlock()
		g := got
		got = nil
		return g
	}
}

// TestLinkRxOffload: what gVisor knows of a received packet's checksum and segments
// reaches wisp as pbuf marks.
func TestLinkRxOffload(t *testing.T) {
	l, ch, d, _ := newChannelLinkGSO(t, false, gstack.HostGSOSupported, gvisor.LinkConfig{})
	take := recordMeta(d)
	const ok, partial = pbuf.FlagChecksumOK, pbuf.FlagChecksumPartial
	for _, c := range []struct {
		name      string
		b         []byte
		gso       gstack.GSO
		validated bool
		want      rxMeta
	}{
		{"plain", segment(false, false, 100, false), gstack.GSO{}, false, rxMeta{}},
		{"validated", segment(false, false, 100, false), gstack.GSO{}, true, rxMeta{flags: ok}},
		{"validated partial", segment(false, false, 100, true), gstack.GSO{}, true, rxMeta{flags: ok | partial}},
		{"validated partial UDP v6", segment(true, true, 100, true), gstack.GSO{}, true, rxMeta{flags: ok | partial}},
		{"not validated partial", segment(false, false, 100, true), gstack.GSO{}, false, rxMeta{}},
		{"coalesced partial v4", segment(false, false, 5000, true),
			gstack.GSO{Type: gstack.GSOTCPv4, NeedsCsum: true, CsumOffset: 16, MSS: 1000, L3HdrLen: 20}, false,
			rxMeta{typ: pbuf.GSOTCPv4, size: 1000, flags: ok | partial}},
		{"coalesced partial v6", segment(true, false, 5000, true),
			gstack.GSO{Type: gstack.GSOTCPv6, NeedsCsum: true, CsumOffset: 16, MSS: 1200, L3HdrLen: 40}, false,
			rxMeta{typ: pbuf.GSOTCPv6, size: 1200, flags: ok | partial}},
		{"partial small", segment(false, false, 100, true),
			gstack.GSO{Type: gstack.GSOTCPv4, NeedsCsum: true, CsumOffset: 16, MSS: 1460, L3HdrLen: 20}, false,
			rxMeta{flags: ok | partial}},
		{"large bare v4", segment(false, false, 5000, false), gstack.GSO{}, true,
			rxMeta{typ: pbuf.GSOTCPv4, size: 1460, flags: ok}},
		{"large bare v6", segment(true, false, 5000, false), gstack.GSO{}, false,
			rxMeta{typ: pbuf.GSOTCPv6, size: 1440}},
		{"large bare partial v6", segment(true, false, 5000, true), gstack.GSO{}, true,
			rxMeta{typ: pbuf.GSOTCPv6, size: 1440, flags: ok | partial}},
		{"large UDP", segment(false, true, 5000, false), gstack.GSO{}, false, rxMeta{}},
	} {
		pkt := inbound(c.b)
		pkt.GSOOptions = c.gso
		pkt.RXChecksumValidated = c.validated
		ch.InjectInbound(0, pkt)
		pkt.DecRef()
		got := take()
		if len(got) != 1 {
			t.Fatalf("%s: %d frames delivered", c.name, len(got))
		}
		g := got[0]
		if g.typ != c.want.typ || g.size != c.want.size || g.flags != c.want.flags || !bytes.Equal(g.b, c.b) {
			t.Errorf("%s: GSO %v/%d flags %#x (bytes equal: %v), want %v/%d %#x", c.name, g.typ, g.size, g.flags,
				bytes.Equal(g.b, c.b), c.want.typ, c.want.size, c.want.flags)
		}
	}
	if st := l.Stats(); st.RxGSO != 5 || st.RxPackets != 12 {
		t.Errorf("counters %+v", st)
	}
}

// tsoLink is a wisp link that says it segments TCP (Offloads) and records what it is given.
type tsoLink struct {
	linktest.Capture
	off     link.Offloads
	meta    []rxMeta
	d       link.Dispatcher
	discard bool // record nothing (allocation tests)
}

func (l *tsoLink) Offloads() link.Offloads { return l.off }

func (l *tsoLink) Attach(d link.Dispatcher) { l.d = d }

func (l *tsoLink) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	l.Capture.Discard = l.discard
	for _, p := range pkts {
		if l.discard {
			break
		}
		typ, size := p.GSO()
		l.meta = append(l.meta, rxMeta{typ, size, p.Flags(), p.Bytes(nil)})
	}
	return l.Capture.WritePackets(pkts)
}

// linkOnly hides a link's Offloads.
type linkOnly struct{ link.Endpoint }

func TestEndpointGSOOffer(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	full := link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: 65535}
	for _, c := range []struct {
		name string
		ep   link.Endpoint
		want uint32
	}{
		{"tso", &tsoLink{off: full}, 65535},
		{"tso/capped", &tsoLink{off: link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: 1 << 20}}, 65535},
		{"tso4 only", &tsoLink{off: link.Offloads{TxChecksum: true, TSO4: true, GSOMax: 65535}}, 0},
		{"no checksum", &tsoLink{off: link.Offloads{TSO4: true, TSO6: true, GSOMax: 65535}}, 0},
		{"GSOMax within the MTU", &tsoLink{off: link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: 1500}}, 0},
		{"no Offloader", linkOnly{&tsoLink{off: full}}, 0},
	} {
		e := gvisor.NewEndpoint(c.ep, linktest.NewAllocator())
		want := gstack.GSONotSupported
		if c.want > 0 {
			want = gstack.HostGSOSupported
		}
		if e.GSOMaxSize() != c.want || e.SupportedGSO() != want {
			t.Errorf("%s: GSOMaxSize %d SupportedGSO %d, want %d %d", c.name, e.GSOMaxSize(), e.SupportedGSO(), c.want, want)
		}
		e.Close()
	}
}

// gvPacket returns IP packet b as gVisor's TCP hands its packets to a link: headers apart
// (consumed here, pushed there: the same bytes), the payload as Data, GSOOptions set.
func gvPacket(b []byte, v6 bool, mss uint16) *gstack.PacketBuffer {
	l3 := header.IPv4MinimumSize
	_, gt := gsoTypeFor(v6)
	proto := header.IPv4ProtocolNumber
	if v6 {
		l3, proto = header.IPv6MinimumSize, header.IPv6ProtocolNumber
	}
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	pkt.NetworkHeader().Consume(l3)
	pkt.TransportHeader().Consume(header.TCPMinimumSize)
	pkt.NetworkProtocolNumber = proto
	pkt.GSOOptions = gstack.GSO{Type: gt, NeedsCsum: true, CsumOffset: 16, MSS: mss, L3HdrLen: uint16(l3), MaxSize: 65535}
	return pkt
}

// TestEndpointGSO: gVisor's host-GSO packets reach a wisp link with TSO as GSO pbufs with
// partial checksums; partial checksums the wisp link delivers reach gVisor completed.
func TestEndpointGSO(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	tl := &tsoLink{off: link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: 65535}}
	a := linktest.NewAllocator()
	e := gvisor.NewEndpoint(tl, a)
	sink := &gvSink{}
	e.Attach(sink)
	defer func() {
		e.Close()
		linktest.CheckZero(t, a)
	}()

	var list gstack.PacketBufferList
	var want []rxMeta
	for _, v6 := range []bool{false, true} {
		wt, _ := gsoTypeFor(v6)
		big, small := segment(v6, false, 5000, true), segment(v6, false, 100, true)
		list.PushBack(gvPacket(big, v6, 1000))
		list.PushBack(gvPacket(small, v6, 1000))
		want = append(want, rxMeta{wt, 1000, pbuf.FlagChecksumPartial, big}, rxMeta{flags: pbuf.FlagChecksumPartial, b: small})
	}
	plain := segment(false, false, 100, false)
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(plain)})
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	list.PushBack(pkt)
	want = append(want, rxMeta{b: plain})
	if n, err := e.WritePackets(list); n != len(want) || err != nil {
		t.Fatalf("WritePackets: %d %v", n, err)
	}
	list.Reset()
	if len(tl.meta) != len(want) {
		t.Fatalf("%d packets reached the wisp link, want %d", len(tl.meta), len(want))
	}
	for i, g := range tl.meta {
		w := want[i]
		if g.typ != w.typ || g.size != w.size || g.flags != w.flags || !bytes.Equal(g.b, w.b) {
			t.Errorf("packet %d: GSO %v/%d flags %#x, want %v/%d %#x (bytes equal: %v)", i, g.typ, g.size, g.flags,
				w.typ, w.size, w.flags, bytes.Equal(g.b, w.b))
		}
	}

	// Inbound: gVisor checks every checksum (its NIC decides RXChecksumValidated from the
	// endpoint's capabilities alone), so a partial one arrives completed, the rest as sent.
	for _, c := range []struct {
		b     []byte
		typ   pbuf.GSOType
		flags pbuf.Flags
	}{
		{segment(false, false, 100, false), pbuf.GSONone, 0},
		{segment(false, false, 100, false), pbuf.GSONone, pbuf.FlagChecksumOK},
		{segment(true, false, 5000, true), pbuf.GSOTCPv6, pbuf.FlagChecksumOK | pbuf.FlagChecksumPartial},
		{segment(false, true, 300, true), pbuf.GSONone, pbuf.FlagChecksumOK | pbuf.FlagChecksumPartial},
	} {
		p := tl.d.AllocRx(len(c.b))
		_ = p.CopyIn(c.b, 0)
		p.SetGSO(c.typ, 1000)
		p.SetFlags(c.flags)
		tl.d.DeliverPackets([]*pbuf.Pbuf{p})
		got := sink.take()
		if len(got) != 1 {
			t.Fatalf("flags %#x: %d delivered", c.flags, len(got))
		}
		want := c.b
		if c.flags&pbuf.FlagChecksumPartial != 0 {
			udp := c.b[0]>>4 == 4 && c.b[9] == 17
			l3 := map[bool]int{false: 20, true: 40}[c.b[0]>>4 == 6]
			want = completeAt(c.b, l3, csumAt(udp))
		}
		if !bytes.Equal(got[0].data, want) || !transportValid(got[0].data) {
			t.Errorf("flags %#x: delivered bytes differ or their checksum is wrong", c.flags)
		}
	}
	if st := e.Stats(); st.TxGSO != 2 || st.RxGSO != 1 || st.RxCsum != 2 {
		t.Errorf("counters %+v", st)
	}
}

// TestOffloadAllocs pins the offload paths of both adapters at zero allocations in the
// steady state: a GSO packet and a partial checksum each way.
func TestOffloadAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	l, ch, d, a := newChannelLinkGSO(t, false, gstack.HostGSOSupported, gvisor.LinkConfig{})
	d.Discard = true
	big := segment(false, false, 5000, true)
	frames := make([]*pbuf.Pbuf, 1)
	linkOut := testing.AllocsPerRun(500, func() {
		p, _ := a.Alloc(pbuf.LayerLink, len(big), pbuf.RAM)
		_ = p.CopyIn(big, 0)
		p.SetGSO(pbuf.GSOTCPv4, 1000)
		p.SetFlags(pbuf.FlagChecksumPartial)
		frames[0] = p
		l.WritePackets(frames)
		ch.Read().DecRef()
	})
	linkIn := testing.AllocsPerRun(500, func() {
		pkt := inbound(big)
		pkt.RXChecksumValidated = true
		ch.InjectInbound(0, pkt)
		pkt.DecRef()
	})

	tl := &tsoLink{off: link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: 65535}, discard: true}
	ea := linktest.NewAllocator()
	e := gvisor.NewEndpoint(tl, ea)
	e.Attach(&gvSink{discard: true})
	defer func() {
		e.Close()
		linktest.CheckZero(t, ea)
	}()
	var list gstack.PacketBufferList
	endpointOut := testing.AllocsPerRun(500, func() {
		list.PushBack(gvPacket(big, false, 1000))
		e.WritePackets(list)
		list.Reset()
	})
	endpointIn := testing.AllocsPerRun(500, func() {
		p := tl.d.AllocRx(len(big))
		_ = p.CopyIn(big, 0)
		p.SetGSO(pbuf.GSOTCPv4, 1000)
		p.SetFlags(pbuf.FlagChecksumOK | pbuf.FlagChecksumPartial)
		frames[0] = p
		tl.d.DeliverPackets(frames)
	})
	if linkOut != 0 || linkIn != 0 || endpointOut != 0 || endpointIn != 0 {
		t.Errorf("allocations per packet: Link out %.1f in %.1f, Endpoint out %.1f in %.1f; want 0",
			linkOut, linkIn, endpointOut, endpointIn)
	}
	if st := l.Stats(); st.TxGSO == 0 || st.RxGSO == 0 {
		t.Errorf("Link counters %+v: the offload paths did not run", st)
	}
	if st := e.Stats(); st.TxGSO == 0 || st.RxCsum == 0 {
		t.Errorf("Endpoint counters %+v: the offload paths did not run", st)
	}
}

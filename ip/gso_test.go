package ip

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

var (
	gsoSrc4, gsoDst4 = mustAddr("198.18.0.1"), mustAddr("198.18.0.2")
	gsoSrc6, gsoDst6 = mustAddr("fd42:5eed::1"), mustAddr("fd42:5eed::2")
)

// gsoPacket builds a transport GSO packet (transport header first, partial checksum) of n
// payload bytes cut at size, with LayerIP header room.
func gsoPacket(t testing.TB, e *env, proto uint8, src, dst netip.Addr, n, size int, flags wire.TCPFlags) *pbuf.Pbuf {
	t.Helper()
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i*13 + i>>8)
	}
	var hdr []byte
	typ := pbuf.GSOUDPL4
	if proto == wire.ProtoTCP {
		r := wire.TCPRepr{SrcPort: 1000, DstPort: 80, SeqNum: 0xfffff000, AckNum: 77, Flags: flags | wire.TCPFlagACK, Window: 500}
		r.Options.HasTimestamps, r.Options.TSVal, r.Options.TSEcr = true, 1, 2
		hdr = make([]byte, r.HeaderLen())
		if _, err := r.EmitHeader(hdr); err != nil {
			t.Fatal(err)
		}
		typ = pbuf.GSOTCPv6
		if src.Is4() {
			typ = pbuf.GSOTCPv4
		}
	} else {
		hdr = make([]byte, wire.UDPHeaderLen)
		u := wire.UDP(hdr)
		u.SetSrcPort(40000)
		u.SetDstPort(40001)
		u.SetLength(uint16(len(hdr) + n))
	}
	tl := len(hdr) + n
	ps := wire.Fold(wire.PseudoHeaderChecksum(proto, src, dst, uint32(tl)))
	hdr[wire.ChecksumOffset(proto)], hdr[wire.ChecksumOffset(proto)+1] = byte(ps>>8), byte(ps)
	p, err := e.alloc.Alloc(pbuf.LayerIP, tl, pbuf.RAM)
	if err != nil {
		t.Fatal(err)
	}
	_ = p.CopyIn(append(hdr, payload...), 0)
	p.SetGSO(typ, size)
	p.SetFlags(pbuf.FlagChecksumPartial)
	return p
}

// checkSegments decodes the frames with gopacket and checks what software GSO must give:
// each fits mtu with a correct checksum, the payloads join into want, sequence numbers
// and IPv4 IDs follow each other, and CWR/PSH/FIN sit where Linux puts them.
func checkSegments(t *testing.T, frames [][]byte, first gopacket.LayerType, want []byte, size, mtu, lh int, flags wire.TCPFlags) {
	t.Helper()
	if n := (len(want) + size - 1) / size; len(frames) != n {
		t.Fatalf("%d frames, want %d", len(frames), n)
	}
	var got []byte
	var id0 uint16
	for i, f := range frames {
		if len(f)-lh > mtu {
			t.Fatalf("frame %d: %d bytes past the link header, MTU %d", i, len(f)-lh, mtu)
		}
		pk := gopacket.NewPacket(f, first, gopacket.Default)
		if el := pk.ErrorLayer(); el != nil {
			t.Fatalf("frame %d: %v", i, el.Error())
		}
		if ip4, ok := pk.NetworkLayer().(*layers.IPv4); ok {
			if i == 0 {
				id0 = ip4.Id
			} else if ip4.Id != id0+uint16(i) {
				t.Errorf("frame %d: IPv4 ID %d, want %d", i, ip4.Id, id0+uint16(i))
			}
			hb := f[lh : lh+int(ip4.IHL)*4]
			if wire.Finish(wire.Checksum(hb, 0)) != 0 {
				t.Errorf("frame %d: bad IPv4 header checksum", i)
			}
		}
		last := i == len(frames)-1
		var l gopacket.SerializableLayer
		var payload []byte
		var sum uint16
		switch tl := pk.TransportLayer().(type) {
		case *layers.TCP:
			if seq := uint32(0xfffff000) + uint32(i*size); tl.Seq != seq {
				t.Errorf("frame %d: seq %#x, want %#x", i, tl.Seq, seq)
			}
			if tl.CWR != (i == 0 && flags&wire.TCPFlagCWR != 0) || tl.PSH != (last && flags&wire.TCPFlagPSH != 0) ||
				tl.FIN != (last && flags&wire.TCPFlagFIN != 0) || !tl.ACK {
				t.Errorf("frame %d: flags CWR %v PSH %v FIN %v ACK %v", i, tl.CWR, tl.PSH, tl.FIN, tl.ACK)
			}
			_ = tl.SetNetworkLayerForChecksum(pk.NetworkLayer())
			payload, sum, l = tl.Payload, tl.Checksum, tl
			tl.Checksum = 0
		case *layers.UDP:
			if int(tl.Length) != len(tl.Payload)+8 {
				t.Errorf("frame %d: UDP length %d for %d bytes", i, tl.Length, len(tl.Payload))
			}
			_ = tl.SetNetworkLayerForChecksum(pk.NetworkLayer())
			payload, sum, l = tl.Payload, tl.Checksum, tl
			tl.Checksum = 0
		default:
			t.Fatalf("frame %d: no transport layer", i)
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, l, gopacket.Payload(payload)); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		co := 16
		if _, ok := l.(*layers.UDP); ok {
			co = 6
		}
		if want := uint16(b[co])<<8 | uint16(b[co+1]); sum != want {
			t.Errorf("frame %d: checksum %#04x, gopacket computes %#04x", i, sum, want)
		}
		got = append(got, payload...)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("payloads join into %d bytes, not the %d sent", len(got), len(want))
	}
}

// Software GSO: a GSO packet sent to a link without TSO leaves as MTU-sized segments, on
// both families, TCP (flags split as Linux does) and UDP, on IP and Ethernet framing.
func TestGSOSoftCut(t *testing.T) {
	for _, c := range []struct {
		proto    uint8
		v6       bool
		n, size  int
		flags    wire.TCPFlags
		ethernet bool
	}{
		{wire.ProtoTCP, false, 20000, 1448, wire.TCPFlagPSH | wire.TCPFlagFIN | wire.TCPFlagCWR, false},
		{wire.ProtoTCP, true, 14480, 1428, wire.TCPFlagPSH, false},
		{wire.ProtoTCP, false, 60000, 1448, 0, true},
		{wire.ProtoTCP, true, 3000, 1428, wire.TCPFlagFIN, true},
		{wire.ProtoUDP, false, 9000, 1000, 0, false},
		{wire.ProtoUDP, true, 5001, 1200, 0, true},
	} {
		name := fmt.Sprintf("proto%d/v6=%v/eth=%v/%d", c.proto, c.v6, c.ethernet, c.n)
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, testOptions(), 1)
			defer e.close()
			src, dst := gsoSrc4, gsoDst4
			if c.v6 {
				src, dst = gsoSrc6, gsoDst6
			}
			capt := &linktest.Capture{Off: link.Offloads{GSOMax: 65535}}
			first := gopacket.LayerType(layers.LayerTypeIPv4)
			if c.v6 {
				first = layers.LayerTypeIPv6
			}
			lh := 0
			if c.ethernet {
				capt.Med, capt.HW = link.MediumEthernet, [6]byte{2, 0, 0, 0, 0, 1}
				first, lh = layers.LayerTypeEthernet, 14
			}
			n := e.addNetif(capt, netip.PrefixFrom(src, 24))
			e.core.Lock()
			e.l.Flush()
			capt.Take() // what bringing the netif up sent (a gratuitous ARP)
			p := gsoPacket(t, e, c.proto, src, dst, c.n, c.size, c.flags)
			want := p.Bytes(nil)[len(p.Bytes(nil))-c.n:]
			if c.ethernet {
				// The frame as ARP or ND would hand it to the netif: Ethernet header, then IP.
				var err error
				if p, err = e.l.prepend(p, ipHeaderLen(c.v6), n); err != nil {
					t.Fatal(err)
				}
				emitIP(t, p, src, dst, c.proto, c.v6)
				_ = p.AddHeader(14)
				eh, _ := p.Header(14)
				et := wire.EtherTypeIPv4
				if c.v6 {
					et = wire.EtherTypeIPv6
				}
				wire.Ethernet(eh).SetDst(wire.MAC{2, 0, 0, 0, 0, 2})
				wire.Ethernet(eh).SetSrc(wire.MAC{2, 0, 0, 0, 0, 1})
				wire.Ethernet(eh).SetEtherType(et)
				n.xmit(p)
			} else if err := e.l.Output(p, src, dst, c.proto, OutputOptions{}); err != nil {
				t.Fatal(err)
			}
			e.l.Flush()
			e.core.Unlock()
			checkSegments(t, capt.Take(), first, want, c.size, 1500, lh, c.flags)
			if o := e.stats().Offload; o.GSOSoft != 1 || o.GSOErr != 0 {
				t.Errorf("offload counters %+v", o)
			}
		})
	}
}

func ipHeaderLen(v6 bool) int {
	if v6 {
		return wire.IPv6HeaderLen
	}
	return wire.IPv4MinHeaderLen
}

// emitIP writes the IP header at the front of p for a payload of the rest.
func emitIP(t *testing.T, p *pbuf.Pbuf, src, dst netip.Addr, proto uint8, v6 bool) {
	b, _ := p.Header(ipHeaderLen(v6))
	var err error
	if v6 {
		r := wire.IPv6Repr{NextHeader: proto, HopLimit: 64, Src: src, Dst: dst, PayloadLen: p.TotLen() - len(b)}
		err = r.Emit(b)
	} else {
		r := wire.IPv4Repr{ID: 100, TTL: 64, Protocol: proto, Src: src, Dst: dst, PayloadLen: p.TotLen() - len(b)}
		err = r.Emit(b)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// A link with TSO takes the GSO packet whole; one without checksum offload gets ordinary
// packets with their partial checksum completed; a GSO packet whose segments do not fit
// the MTU is refused and counted.
func TestGSOOutputPaths(t *testing.T) {
	e := newEnv(t, testOptions(), 1)
	defer e.close()
	tso := &linktest.Capture{Off: link.Offloads{TxChecksum: true, TSO4: true, GSOMax: 65535}}
	e.addNetif(tso, netip.PrefixFrom(gsoSrc4, 24))
	plain := &linktest.Capture{}
	e.addNetif(plain, netip.PrefixFrom(gsoSrc6, 64))
	e.core.Lock()
	defer e.core.Unlock()
	if err := e.l.Output(gsoPacket(t, e, wire.ProtoTCP, gsoSrc4, gsoDst4, 30000, 1448, 0), gsoSrc4, gsoDst4, wire.ProtoTCP, OutputOptions{}); err != nil {
		t.Fatal(err)
	}
	// An ordinary packet with a partial checksum to a link without checksum offload.
	p := gsoPacket(t, e, wire.ProtoTCP, gsoSrc6, gsoDst6, 1000, 1428, 0)
	p.SetGSO(pbuf.GSONone, 0)
	want := p.Bytes(nil)[len(p.Bytes(nil))-1000:]
	if err := e.l.Output(p, gsoSrc6, gsoDst6, wire.ProtoTCP, OutputOptions{}); err != nil {
		t.Fatal(err)
	}
	// A GSO packet to a link that takes none is cut all the same.
	p = gsoPacket(t, e, wire.ProtoTCP, gsoSrc6, gsoDst6, 3000, 1428, 0)
	want = append(want, p.Bytes(nil)[len(p.Bytes(nil))-3000:]...)
	if err := e.l.Output(p, gsoSrc6, gsoDst6, wire.ProtoTCP, OutputOptions{}); err != nil {
		t.Fatal(err)
	}
	// Segments larger than the MTU are refused.
	if err := e.l.Output(gsoPacket(t, e, wire.ProtoTCP, gsoSrc4, gsoDst4, 6000, 2000, 0), gsoSrc4, gsoDst4, wire.ProtoTCP, OutputOptions{}); err == nil {
		t.Error("GSO packet with 2000-byte segments accepted for MTU 1500")
	}
	e.l.Flush()
	if f := tso.Take(); len(f) != 1 || len(f[0]) != 20+32+30000 {
		t.Errorf("TSO link got %d frames, want the one GSO packet", len(f))
	}
	f := plain.Take()
	if len(f) != 4 {
		t.Fatalf("plain link got %d frames, want 1 + 3", len(f))
	}
	checkSegments(t, f[:1], layers.LayerTypeIPv6, want[:1000], 1428, 1500, 0, 0)
	checkSegments(t, f[1:], layers.LayerTypeIPv6, want[1000:], 1428, 1500, 0, 0)
	o := e.stats().Offload
	if o.TSOOut != 1 || o.CsumCompleted != 1 || o.GSOSoft != 1 || o.GSOErr != 1 {
		t.Errorf("offload counters %+v", o)
	}
}

// Cutting a GSO packet allocates nothing from the Go heap.
func TestGSOSoftNoAllocs(t *testing.T) {
	e := newEnv(t, testOptions(), 1)
	defer e.close()
	capt := &linktest.Capture{Off: link.Offloads{GSOMax: 65535}, Discard: true}
	e.addNetif(capt, netip.PrefixFrom(gsoSrc4, 24))
	e.core.Lock()
	defer e.core.Unlock()
	send := func() {
		p := gsoPacket(t, e, wire.ProtoTCP, gsoSrc4, gsoDst4, 60000, 1448, 0)
		if err := e.l.Output(p, gsoSrc4, gsoDst4, wire.ProtoTCP, OutputOptions{}); err != nil {
			t.Fatal(err)
		}
		e.l.Flush()
	}
	send() // warm the pools and the netif's batch
	if n := testing.AllocsPerRun(50, func() {
		p, _ := e.alloc.Alloc(pbuf.LayerIP, 60000+32, pbuf.RAM)
		p.SetGSO(pbuf.GSOTCPv4, 1448)
		p.SetFlags(pbuf.FlagChecksumPartial)
		b, _ := p.Header(20)
		b[12] = 8 << 4 // a 32-byte TCP header
		_ = e.l.Output(p, gsoSrc4, gsoDst4, wire.ProtoTCP, OutputOptions{})
		e.l.Flush()
	}); n != 0 {
		t.Errorf("%v allocations per GSO packet cut", n)
	}
	if capt.Count < 40 {
		t.Errorf("%d frames written", capt.Count)
	}
}

// A packet with a partial checksum that must be fragmented has its checksum completed
// first: the fragments carry it as it stands, and no link completes it across them.
func TestPartialChecksumCompletedBeforeFragmenting(t *testing.T) {
	e := newEnv(t, testOptions(), 1)
	defer e.close()
	capt := &linktest.Capture{Off: link.Offloads{TxChecksum: true}}
	e.addNetif(capt, netip.PrefixFrom(gsoSrc4, 24))
	e.core.Lock()
	defer e.core.Unlock()
	p := gsoPacket(t, e, wire.ProtoUDP, gsoSrc4, gsoDst4, 4000, 1000, 0)
	p.SetGSO(pbuf.GSONone, 0) // an ordinary 4008-byte datagram, checksum left partial
	if err := e.l.Output(p, gsoSrc4, gsoDst4, wire.ProtoUDP, OutputOptions{}); err != nil {
		t.Fatal(err)
	}
	e.l.Flush()
	frames := capt.Take()
	if len(frames) < 3 {
		t.Fatalf("%d frames, want the datagram in fragments", len(frames))
	}
	dgram := make([]byte, 4008)
	for _, f := range frames {
		ip := wire.IPv4(f)
		copy(dgram[ip.FragmentOffset():], f[ip.HeaderLen():ip.TotalLength()])
	}
	if wire.Finish(wire.Checksum(dgram, wire.PseudoHeaderChecksum(wire.ProtoUDP, gsoSrc4, gsoDst4, uint32(len(dgram))))) != 0 {
		t.Error("the reassembled datagram's checksum does not verify")
	}
}

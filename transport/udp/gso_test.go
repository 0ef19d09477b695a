package udp_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/transport/udp"
	"github.com/wispstack/wisp/wire"
)

// uso is a pipe that takes UDP GSO packets whole, as a virtio-net link with USO does.
var uso = link.Offloads{TxChecksum: true, USO: true, GSOMax: 65535}

// tee records a copy of every frame its stack writes, then passes them on to the pipe.
type tee struct {
	link.Endpoint
	frames [][]byte
}

func (t *tee) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	for _, p := range pkts {
		t.frames = append(t.frames, p.Bytes(nil))
	}
	return t.Endpoint.WritePackets(pkts)
}

// Offloads passes on what the pipe offers.
func (t *tee) Offloads() link.Offloads { return t.Endpoint.(link.Offloader).Offloads() }

// udpFrames returns the IP packets carrying UDP among the frames recorded, link header
// (of medium m) removed.
func (t *tee) udpFrames(m link.Medium) [][]byte {
	var out [][]byte
	for _, f := range t.frames {
		if m == link.MediumEthernet {
			f = f[14:]
		}
		if len(f) >= 28 && (f[0]>>4 == 4 && f[9] == wire.ProtoUDP || f[0]>>4 == 6 && f[6] == wire.ProtoUDP) {
			out = append(out, f)
		}
	}
	return out
}

// gsoPair is a pair (over medium m, MediumIP by default) whose A side is recorded by a tee.
func gsoPair(t *testing.T, off link.Offloads, m ...link.Medium) (*pair, *tee) {
	tp := &tee{}
	c := pairConfig{off: off}
	if len(m) > 0 {
		c.medium = m[0]
	}
	c.wrapA = func(_ *stack.Stack, ep link.Endpoint) link.Endpoint {
		tp.Endpoint = ep
		return tp
	}
	p := newPair(t, c)
	tp.frames = nil
	return p, tp
}

// segmentPCB returns a new PCB of s bound to addr with UDP_SEGMENT seg.
func segmentPCB(t testing.TB, s *stack.Stack, addr string, seg int) *udp.PCB {
	t.Helper()
	c, _ := listen(t, s, addr)
	var err error
	s.Callback(func() { err = c.SetSegmentSize(seg) })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkDatagrams checks that k got data as datagrams of seg bytes (the last shorter).
func checkDatagrams(t *testing.T, k *sink, data []byte, seg int) {
	t.Helper()
	n := (len(data) + seg - 1) / seg
	if len(k.got) != n {
		t.Fatalf("received %d datagrams, want %d", len(k.got), n)
	}
	for i, g := range k.got {
		want := data[i*seg : min((i+1)*seg, len(data))]
		if !bytes.Equal(g.data, want) {
			t.Fatalf("datagram %d: %d bytes, want %d bytes of the payload from %d", i, len(g.data), len(want), i*seg)
		}
	}
}

// checkWire decodes frames with gopacket: each an IP packet holding one UDP datagram with
// a correct checksum (gopacket computes it again) and the right length.
func checkWire(t *testing.T, frames [][]byte, v6 bool, data []byte, seg int) {
	t.Helper()
	first := gopacket.LayerType(layers.LayerTypeIPv4)
	if v6 {
		first = layers.LayerTypeIPv6
	}
	var got []byte
	for i, f := range frames {
		if len(f) > 1500 {
			t.Errorf("frame %d: %d bytes on an MTU of 1500", i, len(f))
		}
		pk := gopacket.NewPacket(f, first, gopacket.Default)
		if el := pk.ErrorLayer(); el != nil {
			t.Fatalf("frame %d: %v", i, el.Error())
		}
		u, ok := pk.TransportLayer().(*layers.UDP)
		if !ok {
			t.Fatalf("frame %d: no UDP", i)
		}
		if int(u.Length) != len(u.Payload)+8 || len(u.Payload) != min(seg, len(data)-len(got)) {
			t.Errorf("frame %d: UDP length %d with %d bytes", i, u.Length, len(u.Payload))
		}
		sum := u.Checksum
		_ = u.SetNetworkLayerForChecksum(pk.NetworkLayer())
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, u, gopacket.Payload(u.Payload)); err != nil {
			t.Fatal(err)
		}
		if b := buf.Bytes(); sum != uint16(b[6])<<8|uint16(b[7]) {
			t.Errorf("frame %d: checksum %#04x, gopacket computes %#04x", i, sum, uint16(b[6])<<8|uint16(b[7]))
		}
		got = append(got, u.Payload...)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("the frames carry %d bytes, not the %d sent", len(got), len(data))
	}
}

// UDP_SEGMENT: 10,500 bytes in datagrams of 1,000 arrive as 11 datagrams, 1,000 bytes
// each and 500 last, on both families — cut in software before a link without USO (the
// frames checked by gopacket), or handed whole to a pipe that takes USO, across which the
// receiver gets one coalesced packet and splits it for the socket.
func TestSegmentSend(t *testing.T) {
	data := pattern(10500)
	for _, c := range []struct {
		name   string
		off    link.Offloads
		medium link.Medium
	}{
		{"soft", link.Offloads{}, link.MediumIP},
		{"soft-gso", link.Offloads{GSOMax: 65535}, link.MediumIP},
		{"uso", uso, link.MediumIP},
		{"soft-eth", link.Offloads{GSOMax: 65535}, link.MediumEthernet},
		{"uso-eth", uso, link.MediumEthernet},
	} {
		for _, dst := range []string{"198.18.0.2:9", "[fd42:5eed::2]:9"} {
			t.Run(fmt.Sprintf("%s/%s", c.name, dst), func(t *testing.T) {
				p, tp := gsoPair(t, c.off, c.medium)
				srv, k := listen(t, p.B, "[::]:9")
				cli := segmentPCB(t, p.A, "[::]:0", 1000)
				if err := sendTo(t, p.A, cli, dst, data); err != nil {
					t.Fatal(err)
				}
				p.flush()
				checkDatagrams(t, k, data, 1000)
				v6 := netip.MustParseAddrPort(dst).Addr().Is6()
				oa := p.A.Stats().Offload
				frames := tp.udpFrames(c.medium)
				if c.off.USO {
					if len(frames) != 1 || oa.TSOOut != 1 || oa.GSOSoft != 0 {
						t.Errorf("USO link: %d frames, offload %+v; want the GSO packet whole", len(frames), oa)
					}
				} else {
					checkWire(t, frames, v6, data, 1000)
					if oa.GSOSoft != 1 || oa.GSOSoftSegs != 11 || oa.TSOOut != 0 {
						t.Errorf("offload %+v, want one software cut into 11", oa)
					}
				}
				sa, sb := p.A.Stats().UDP, p.B.Stats().UDP
				if sa.Xmit != 11 || sb.Recv != 11 || sa.Drop+sb.Drop != 0 {
					t.Errorf("counters a %+v b %+v", sa, sb)
				}
				p.A.Callback(cli.Close)
				p.B.Callback(srv.Close)
			})
		}
	}
}

// A payload no larger than the segment size leaves as one ordinary datagram (Linux: "only
// do GSO if # of segs > 1"); so does any send once UDP_SEGMENT is back to 0.
func TestSegmentSmallSend(t *testing.T) {
	p, tp := gsoPair(t, link.Offloads{GSOMax: 65535})
	srv, k := listen(t, p.B, "[::]:9")
	cli := segmentPCB(t, p.A, "0.0.0.0:0", 1000)
	for _, n := range []int{1, 1000} {
		if err := sendTo(t, p.A, cli, "198.18.0.2:9", pattern(n)); err != nil {
			t.Fatal(err)
		}
	}
	p.A.Callback(func() { _ = cli.SetSegmentSize(0) })
	if err := sendTo(t, p.A, cli, "198.18.0.2:9", pattern(1400)); err != nil {
		t.Fatal(err)
	}
	p.flush()
	if len(k.got) != 3 || len(k.got[0].data) != 1 || len(k.got[1].data) != 1000 || len(k.got[2].data) != 1400 {
		t.Fatalf("got %d datagrams", len(k.got))
	}
	checkWire(t, tp.udpFrames(link.MediumIP)[:1], false, pattern(1), 1000)
	if o := p.A.Stats().Offload; o.GSOOut != 0 {
		t.Errorf("GSO packets for single datagrams: %+v", o)
	}
	p.A.Callback(cli.Close)
	p.B.Callback(srv.Close)
}

// Linux's rules and errors: UDP_SEGMENT takes 0..65535; a segment (or a shorter payload)
// that does not fit the MTU is EMSGSIZE (Linux since 2025; EINVAL before); more than
// MaxSegments datagrams, or SO_NO_CHECK on IPv4, EINVAL. Refused sends are counted.
func TestSegmentErrors(t *testing.T) {
	p, _ := gsoPair(t, uso)
	srv, k := listen(t, p.B, "[::]:9")
	c := segmentPCB(t, p.A, "[::]:0", 0)
	defer p.A.Callback(c.Close)
	defer p.B.Callback(srv.Close)
	var errs1 [3]error
	p.A.Callback(func() {
		errs1[0], errs1[1], errs1[2] = c.SetSegmentSize(-1), c.SetSegmentSize(65536), c.SetSegmentSize(65535)
	})
	if errs1[0] != errs.Val || errs1[1] != errs.Val || errs1[2] != nil {
		t.Errorf("SetSegmentSize -1, 65536, 65535: %v", errs1)
	}
	cases := []struct {
		seg, size int
		dst       string
		noCheck   bool
		want      error
	}{
		{1473, 3000, "198.18.0.2:9", false, errs.MsgSize},     // 20 + 8 + 1473 > 1500
		{1472, 3000, "198.18.0.2:9", false, nil},              // fits exactly
		{1453, 3000, "[fd42:5eed::2]:9", false, errs.MsgSize}, // 40 + 8 + 1453 > 1500
		{1452, 3000, "[fd42:5eed::2]:9", false, nil},
		{2000, 1600, "198.18.0.2:9", false, errs.MsgSize}, // one datagram, still too large
		{2000, 1400, "198.18.0.2:9", false, nil},          // one datagram that fits
		{100, 100*udp.MaxSegments + 1, "198.18.0.2:9", false, errs.Val},
		{100, 100 * udp.MaxSegments, "198.18.0.2:9", false, nil},
		{1000, 3000, "198.18.0.2:9", true, errs.Val}, // SO_NO_CHECK
		{1000, 3000, "[fd42:5eed::2]:9", true, nil},  // IPv6 always has a checksum
		{1000, udp.MaxPayload4 + 1, "198.18.0.2:9", false, errs.MsgSize},
	}
	sent := 0
	for _, tc := range cases {
		p.A.Callback(func() {
			_ = c.SetSegmentSize(tc.seg)
			c.SetNoChecksum(tc.noCheck)
		})
		if err := sendTo(t, p.A, c, tc.dst, pattern(tc.size)); err != tc.want {
			t.Errorf("segment %d, %d bytes to %s (no check %v): %v, want %v", tc.seg, tc.size, tc.dst, tc.noCheck, err, tc.want)
		} else if err == nil {
			sent += (tc.size + tc.seg - 1) / tc.seg
		}
		p.flush()
	}
	if len(k.got) != sent {
		t.Errorf("received %d datagrams, want %d", len(k.got), sent)
	}
	if s := p.A.Stats().UDP; s.Drop != 6 || s.Lenerr != 4 || s.Err != 2 || s.Xmit != uint64(sent) {
		t.Errorf("counters %+v", s)
	}
}

// A send to this host itself is cut by UDP, datagram by datagram (ip delivers a looped
// packet as it is): the receiver still gets the datagrams.
func TestSegmentLocal(t *testing.T) {
	p, _ := gsoPair(t, uso)
	srv, k := listen(t, p.A, "[::]:9")
	cli := segmentPCB(t, p.A, "[::]:0", 1000)
	data := pattern(10500)
	for _, dst := range []string{"198.18.0.1:9", "[fd42:5eed::1]:9"} {
		k.got = nil
		if err := sendTo(t, p.A, cli, dst, data); err != nil {
			t.Fatal(err)
		}
		p.flush()
		checkDatagrams(t, k, data, 1000)
	}
	if o := p.A.Stats().Offload; o.GSOOut != 0 {
		t.Errorf("GSO packets to this host: %+v", o)
	}
	p.A.Callback(cli.Close)
	p.A.Callback(srv.Close)
}

// A callback that closes its PCB while a coalesced packet is being split gets no more of
// it; the datagrams left count as dropped.
func TestSegmentReceiveCloseInCallback(t *testing.T) {
	p, _ := gsoPair(t, uso)
	srv, _ := listen(t, p.B, "[::]:9")
	n := 0
	p.B.Callback(func() {
		srv.OnRecv(func(c *udp.PCB, q *pbuf.Pbuf, info *udp.RecvInfo) {
			n++
			q.Free()
			if n == 3 {
				c.Close()
			}
		})
	})
	cli := segmentPCB(t, p.A, "0.0.0.0:0", 1000)
	if err := sendTo(t, p.A, cli, "198.18.0.2:9", pattern(10500)); err != nil {
		t.Fatal(err)
	}
	p.flush()
	if s := p.B.Stats().UDP; n != 3 || s.Recv != 11 || s.Drop != 8 || s.Err != 8 {
		t.Errorf("delivered %d, counters %+v", n, s)
	}
	p.A.Callback(cli.Close)
}

// A UDP_SEGMENT send allocates nothing on the Go heap, cut in software or handed to a
// USO link, and neither does the receiver splitting it; nor does an ordinary datagram
// whose checksum the link completes.
func TestSegmentSendAllocs(t *testing.T) {
	for _, c := range []struct {
		name      string
		off       link.Offloads
		seg, size int
	}{{"soft", link.Offloads{}, 1200, 12000}, {"uso", uso, 1200, 12000}, {"csum-partial", link.Offloads{TxChecksum: true}, 0, 1200}} {
		t.Run(c.name, func(t *testing.T) {
			p := newPair(t, pairConfig{off: c.off})
			srv, _ := listen(t, p.B, "[::]:9")
			n := 0
			p.B.Callback(func() {
				srv.OnRecv(func(c *udp.PCB, q *pbuf.Pbuf, info *udp.RecvInfo) { n++; q.Free() })
			})
			cli := segmentPCB(t, p.A, "[::]:0", c.seg)
			dsts := []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:9"), netip.MustParseAddrPort("[fd42:5eed::2]:9")}
			alloc := p.A.Allocator()
			var err error
			i := 0
			step := func() {
				p.A.Lock()
				q, _ := alloc.Alloc(pbuf.LayerTransport, c.size, pbuf.RAM)
				if e := cli.SendTo(q, dsts[i%2]); e != nil {
					err = e
				}
				i++
				p.A.Unlock()
				p.flush()
			}
			step()
			if a := testing.AllocsPerRun(100, step); a != 0 {
				t.Errorf("%v allocations per UDP_SEGMENT send", a)
			}
			want := 102 // datagrams: one per send
			if c.seg > 0 {
				want = 102 * c.size / c.seg
			}
			if err != nil || n != want {
				t.Errorf("err %v, received %d datagrams, want %d", err, n, want)
			}
			p.A.Callback(cli.Close)
			p.B.Callback(srv.Close)
		})
	}
}

// A send the stack must cut into more frames than the link's queue has room for fails
// whole with errs.Mem (the datagram sender hears ENOMEM, as for one datagram); a link
// that takes the GSO packet whole needs one slot.
func TestSegmentFullLink(t *testing.T) {
	for _, c := range []struct {
		name string
		off  link.Offloads
		want error
	}{{"soft", link.Offloads{GSOMax: 65535}, errs.Mem}, {"uso", uso, nil}} {
		t.Run(c.name, func(t *testing.T) {
			p := newPair(t, pairConfig{off: c.off, queueLen: 8})
			srv, k := listen(t, p.B, "[::]:9")
			cli := segmentPCB(t, p.A, "0.0.0.0:0", 1000)
			if err := sendTo(t, p.A, cli, "198.18.0.2:9", pattern(10500)); err != c.want {
				t.Errorf("11 datagrams into a queue of 8: %v, want %v", err, c.want)
			}
			if err := sendTo(t, p.A, cli, "198.18.0.2:9", pattern(8000)); err != nil {
				t.Errorf("8 datagrams into a queue of 8: %v", err)
			}
			p.flush()
			if s := p.A.Stats().UDP; c.want != nil && (s.Memerr != 1 || len(k.got) != 8) {
				t.Errorf("counters %+v, received %d", s, len(k.got))
			}
			p.A.Callback(cli.Close)
			p.B.Callback(srv.Close)
		})
	}
}

// A multicast UDP_SEGMENT send reaches the group's members on the link and, through
// multicast loop, on the sender's own stack as separate datagrams.
func TestSegmentMulticast(t *testing.T) {
	for _, g := range []string{"239.1.2.3", "ff15::1234"} {
		t.Run(g, func(t *testing.T) {
			p := newPair(t, pairConfig{medium: link.MediumEthernet, off: uso})
			join(t, p.B, p.NetifB, g)
			join(t, p.A, p.NetifA, g)
			wild := "0.0.0.0:5000"
			if netip.MustParseAddr(g).Is6() {
				wild = "[::]:5000"
			}
			w, kw := reuseListen(t, p.B, wild)
			self, ks := reuseListen(t, p.A, wild)
			data := pattern(3500)
			var err error
			p.A.Callback(func() {
				_ = self.SetSegmentSize(1000)
				err = self.SendTo(payload(t, p.A, data), netip.AddrPortFrom(netip.MustParseAddr(g), 5000))
			})
			if err != nil {
				t.Fatal(err)
			}
			p.flush()
			checkDatagrams(t, kw, data, 1000)
			checkDatagrams(t, ks, data, 1000)
			p.B.Callback(w.Close)
			p.A.Callback(self.Close)
		})
	}
}

// FuzzInputGSO delivers arbitrary UDP datagrams marked as coalesced by the link (GSOUDPL4
// with any segment size, the checksum taken as verified, as a virtio-net link marks them)
// to PCBs that take each datagram, one that closes itself on the second, and none; whatever
// the length field and segment size say, every pbuf comes back.
func FuzzInputGSO(f *testing.F) {
	f.Add(udpHeader(addrA, addrB, 1, 9, pattern(3000)), uint16(1000), false)
	f.Add(udpHeader(addrA6, addrB6, 1, 11, pattern(2500)), uint16(1), true)
	f.Add(udpHeader(addrA, addrB, 1, 10, pattern(100)), uint16(100), false)
	f.Add([]byte{0, 1, 0, 9, 0, 8, 0, 0}, uint16(0), false)
	p := newPair(f, pairConfig{})
	srv, _ := listen(f, p.B, "[::]:9")
	closer, _ := listen(f, p.B, "[::]:11")
	n := 0
	var recv udp.RecvFunc
	recv = func(c *udp.PCB, q *pbuf.Pbuf, info *udp.RecvInfo) {
		q.Free()
		if n++; n%2 == 0 { // close, and bind a new PCB in its place
			c.Close()
			if closer, _ = p.B.UDP().NewPCB(); closer != nil {
				_ = closer.Bind(netip.MustParseAddrPort("[::]:11"))
				closer.OnRecv(recv)
			}
		}
	}
	p.B.Callback(func() { closer.OnRecv(recv) })
	defer p.B.Callback(func() { srv.Close(); closer.Close() })
	f.Fuzz(func(t *testing.T, b []byte, seg uint16, v6 bool) {
		if len(b) > 60000 {
			return
		}
		src, dst := addrA, addrB
		if v6 {
			src, dst = addrA6, addrB6
		}
		pkt := datagram(src, dst, b)
		q := p.NetifB.AllocRx(len(pkt))
		if q == nil {
			t.Fatalf("AllocRx of %d bytes failed", len(pkt))
		}
		_ = q.CopyIn(pkt, 0)
		q.SetGSO(pbuf.GSOUDPL4, int(seg))
		q.SetFlags(pbuf.FlagChecksumOK | pbuf.FlagChecksumPartial)
		p.NetifB.DeliverPackets([]*pbuf.Pbuf{q})
		p.flush()
		stacktest.BuffersZero(t, p.B)
	})
}

// BenchmarkSegmentSend sends 64 KB as datagrams of 1,400 bytes from one stack to the other
// over a synchronous pipe, both sides' work included: one datagram per send, or one
// UDP_SEGMENT send cut in software (no offloads), or handed to a pipe that takes USO (the
// receiver splits it).
func BenchmarkSegmentSend(b *testing.B) {
	const total, seg = 46 * 1400, 1400
	for _, c := range []struct {
		name string
		off  link.Offloads
		gso  bool
	}{
		{"datagrams", link.Offloads{}, false},
		{"datagrams-csum-offload", link.Offloads{TxChecksum: true}, false},
		{"segment-soft", link.Offloads{}, true},
		{"segment-uso", uso, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			o := testOpts()
			o.MemSize = 4 << 20
			p := newPair(b, pairConfig{off: c.off, o: o})
			srv, _ := listen(b, p.B, "0.0.0.0:9")
			n := 0
			p.B.Callback(func() {
				srv.OnRecv(func(c *udp.PCB, q *pbuf.Pbuf, info *udp.RecvInfo) { n++; q.Free() })
			})
			cli := segmentPCB(b, p.A, "0.0.0.0:0", 0)
			if c.gso {
				p.A.Callback(func() { _ = cli.SetSegmentSize(seg) })
			}
			dst := netip.MustParseAddrPort("198.18.0.2:9")
			alloc := p.A.Allocator()
			b.SetBytes(total)
			b.ResetTimer()
			for range b.N {
				p.A.Lock()
				if c.gso {
					q, _ := alloc.Alloc(pbuf.LayerTransport, total, pbuf.RAM)
					if err := cli.SendTo(q, dst); err != nil {
						b.Fatal(err)
					}
				} else {
					for range total / seg {
						q, _ := alloc.Alloc(pbuf.LayerTransport, seg, pbuf.RAM)
						if err := cli.SendTo(q, dst); err != nil {
							b.Fatal(err)
						}
					}
				}
				p.A.Unlock()
				p.flush()
			}
			b.StopTimer()
			if n != b.N*total/seg {
				b.Fatalf("received %d datagrams, want %d", n, b.N*total/seg)
			}
			p.A.Callback(cli.Close)
			p.B.Callback(srv.Close)
		})
	}
}

// Where the link completes checksums (TxChecksum), an ordinary datagram leaves with its
// checksum partial (the pseudo-header sum, folded, not complemented) — unless it is
// fragmented (IPv4 beyond the MTU, IPv6 beyond 1280 bytes) or looped to this host (a
// multicast copy), when it is computed in full. Every datagram arrives.
func TestChecksumPartial(t *testing.T) {
	p, tp := gsoPair(t, link.Offloads{TxChecksum: true})
	srv, k := listen(t, p.B, "[::]:9")
	cli, _ := listen(t, p.A, "[::]:7")
	for _, c := range []struct {
		dst     string
		n       int
		partial bool
	}{
		{"198.18.0.2:9", 1472, true},
		{"198.18.0.2:9", 3000, false}, // fragmented
		{"[fd42:5eed::2]:9", 1232, true},
		{"[fd42:5eed::2]:9", 1233, false}, // past 1280
	} {
		tp.frames = nil
		k.got = nil
		data := pattern(c.n)
		if err := sendTo(t, p.A, cli, c.dst, data); err != nil {
			t.Fatal(err)
		}
		p.flush()
		if len(k.got) != 1 || !bytes.Equal(k.got[0].data, data) {
			t.Fatalf("%d bytes to %s: not received", c.n, c.dst)
		}
		dst := netip.MustParseAddrPort(c.dst).Addr()
		src, hl := addrA, 20
		if dst.Is6() {
			src, hl = addrA6, 40
		}
		f := tp.udpFrames(link.MediumIP)[0]
		field := uint16(f[hl+6])<<8 | uint16(f[hl+7])
		want := udpHeader(src, dst, 7, 9, data)
		full := uint16(want[6])<<8 | uint16(want[7])
		partial := wire.Fold(wire.PseudoHeaderChecksum(wire.ProtoUDP, src, dst, uint32(8+c.n)))
		if c.partial && field != partial || !c.partial && field != full {
			t.Errorf("%d bytes to %s: checksum field %#04x; partial %#04x, full %#04x, want partial %v",
				c.n, c.dst, field, partial, full, c.partial)
		}
	}
	// A multicast datagram looped to this host's member is checked as received: full.
	join(t, p.A, p.NetifA, "239.1.2.3")
	self, ks := reuseListen(t, p.A, "0.0.0.0:5000")
	var err error
	p.A.Callback(func() { err = cli.SendTo(payload(t, p.A, pattern(100)), netip.MustParseAddrPort("239.1.2.3:5000")) })
	if err != nil {
		t.Fatal(err)
	}
	p.flush()
	if len(ks.got) != 1 || p.A.Stats().UDP.Chkerr != 0 {
		t.Errorf("looped multicast: received %d, counters %+v", len(ks.got), p.A.Stats().UDP)
	}
	p.A.Callback(func() { cli.Close(); self.Close() })
	p.B.Callback(srv.Close)
}

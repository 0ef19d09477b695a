package tcp

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// tap wraps a's end of the pipe: it keeps a copy of every frame a sends and drops those
// drop picks; it offers what the pipe offers, so the stack's GSO cut runs before it.
type tap struct {
	link.Endpoint
	frames [][]byte
	drop   func(i int, frame []byte) bool // i counts the frames that carry TCP data
	data   int
}

func (l *tap) Offloads() link.Offloads {
	if o, ok := l.Endpoint.(link.Offloader); ok {
		return o.Offloads()
	}
	return link.Offloads{}
}

func (l *tap) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	out := pkts[:0]
	for _, p := range pkts {
		b := p.Bytes(nil)
		l.frames = append(l.frames, b)
		if tcpPayloadLen(b) > 0 {
			l.data++
			if l.drop != nil && l.drop(l.data, b) {
				p.Free()
				continue
			}
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return len(pkts), nil
	}
	_, err := l.Endpoint.WritePackets(out)
	return len(pkts), err
}

// tcpPayloadLen is the TCP payload length of a bare IP packet (0 when it is not TCP).
func tcpPayloadLen(b []byte) int {
	pk := decodeIP(b)
	if tl, ok := pk.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
		return len(tl.Payload)
	}
	return 0
}

func decodeIP(b []byte) gopacket.Packet {
	first := layers.LayerTypeIPv4
	if len(b) > 0 && b[0]>>4 == 6 {
		first = layers.LayerTypeIPv6
	}
	return gopacket.NewPacket(b, first, gopacket.Default)
}

// gsoTransfer sends size bytes from a to b over w (closing after) and checks them.
func gsoTransfer(t *testing.T, w *world, dst netip.AddrPort, size int) {
	t.Helper()
	srv := newApp(w.b)
	listen(t, w.b, dst.Port(), srv)
	cli := newApp(w.a)
	connected := dial(t, w.a, dst, cli)
	w.Run(time.Millisecond)
	if !*connected {
		t.Fatalf("not connected: client state %v", w.a.state(cli.c))
	}
	s := newSender(cli, size, 5)
	s.close = true
	w.a.Do(s.start)
	if !w.Until(20*time.Second, func() bool { return srv.fin }) {
		t.Fatalf("no FIN: got %d of %d bytes\na: %v\nb: %v", srv.rcvd, size, w.a.stats().TCPExt, w.b.stats().TCPExt)
	}
	if srv.rcvd != size || !bytes.Equal(srv.sum(), s.h.d.Sum(nil)) {
		t.Fatalf("got %d bytes, want %d; sha mismatch=%v", srv.rcvd, size, !bytes.Equal(srv.sum(), s.h.d.Sum(nil)))
	}
	w.b.Do(func() { srv.accepted[0].Close() })
	w.Run(time.Second)
}

// The segments software GSO cuts are what TCP would have sent one by one: each fits the
// MTU, carries the full checksum (gopacket checks it), the sequence numbers follow each
// other, and PSH and FIN ride only on the last segment of a GSO packet.
func TestGSOSoftwareSegmentsOnWire(t *testing.T) {
	for _, dst := range []netip.Addr{addrB, addrB6} {
		t.Run(dst.String(), func(t *testing.T) {
			tp := &tap{}
			w := newWorld(t, worldCfg{offloads: link.Offloads{GSOMax: 65535},
				wrapA: func(ep link.Endpoint) link.Endpoint { tp.Endpoint = ep; return tp }})
			gsoTransfer(t, w, netip.AddrPortFrom(dst, 80), 1<<20+777)
			st := w.a.stats()
			if st.Offload.GSOSoft == 0 || st.Offload.GSOSoftSegs < 4*st.Offload.GSOSoft {
				t.Errorf("want GSO packets cut in software: %+v", st.Offload)
			}
			next := uint32(0)
			fins, data := 0, 0
			for _, b := range tp.frames {
				if len(b) > 1500 {
					t.Fatalf("frame of %d bytes on an MTU 1500 link", len(b))
				}
				pk := decodeIP(b)
				tl, ok := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if !ok {
					continue
				}
				if err := tl.SetNetworkLayerForChecksum(pk.NetworkLayer()); err != nil {
					t.Fatal(err)
				}
				want := tl.Checksum
				tl.Checksum = 0
				buf := gopacket.NewSerializeBuffer()
				if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, tl, gopacket.Payload(tl.Payload)); err != nil {
					t.Fatal(err)
				}
				if got := wire.TCP(buf.Bytes()).Checksum(); got != want {
					t.Fatalf("segment seq %d: checksum %#04x, want %#04x", tl.Seq, want, got)
				}
				if len(tl.Payload) == 0 && !tl.FIN {
					continue
				}
				data++
				if next != 0 && tl.Seq != next {
					t.Fatalf("segment seq %d, want %d (a hole or an overlap)", tl.Seq, next)
				}
				next = tl.Seq + uint32(len(tl.Payload))
				if tl.FIN {
					fins++
					next++
				}
			}
			if fins != 1 || data < 700 {
				t.Errorf("%d FINs, %d data segments", fins, data)
			}
		})
	}
}

// A segment lost from the middle of a GSO packet is recovered by SACK, as when TCP sent
// the segments one by one: one fast retransmission, no RTO.
func TestGSOLossInsideRecoveredBySACK(t *testing.T) {
	tp := &tap{drop: func(i int, _ []byte) bool { return i == 40 }}
	w := newWorld(t, worldCfg{offloads: link.Offloads{GSOMax: 65535},
		wrapA: func(ep link.Endpoint) link.Endpoint { tp.Endpoint = ep; return tp }})
	gsoTransfer(t, w, netip.AddrPortFrom(addrB, 80), 2<<20)
	st := w.a.stats()
	if st.Offload.GSOSoft == 0 {
		t.Errorf("no GSO: %+v", st.Offload)
	}
	x := st.TCPExt
	if x.SACKRecoveries != 1 || x.RTOs != 0 || x.Retransmits != 1 {
		t.Errorf("want one SACK recovery with one retransmission and no RTO: %+v", x)
	}
}

// Over a link that segments (TSO), the GSO packets cross whole and the receiver takes
// each as one segment of many MSS; the transfer is exact in both families.
func TestTSOTransfer(t *testing.T) {
	for _, dst := range []netip.Addr{addrB, addrB6} {
		t.Run(dst.String(), func(t *testing.T) {
			tp := &tap{}
			w := newWorld(t, worldCfg{offloads: link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: 65535},
				wrapA: func(ep link.Endpoint) link.Endpoint { tp.Endpoint = ep; return tp }})
			gsoTransfer(t, w, netip.AddrPortFrom(dst, 80), 1<<20+777)
			st := w.a.stats()
			if st.Offload.TSOOut == 0 || st.Offload.GSOSoft != 0 {
				t.Errorf("want GSO packets handed whole to the link: %+v", st.Offload)
			}
			big := 0
			for _, b := range tp.frames {
				if len(b) > 1500 {
					big++
				}
			}
			if big == 0 {
				t.Errorf("no frame larger than the MTU among %d", len(tp.frames))
			}
			if x := st.TCPExt; x.Retransmits != 0 {
				t.Errorf("retransmissions on a clean link: %+v", x)
			}
		})
	}
}

// Below an MTU that a full segment does not fit (its headers and the smallest MSS need
// fragments), TCP sends segments one by one for IP to fragment, rather than GSO packets
// whose cut segments the link would refuse: the transfer takes no RTO.
func TestGSONotWhenSegmentsNeedFragments(t *testing.T) {
	w := newWorld(t, worldCfg{mtu: 68, offloads: link.Offloads{GSOMax: 65535}})
	gsoTransfer(t, w, netip.AddrPortFrom(addrB, 80), 64<<10)
	st := w.a.stats()
	if st.Offload.GSOOut != 0 || st.Offload.GSOErr != 0 || st.TCPExt.RTOs != 0 {
		t.Errorf("offload %+v, RTOs %d", st.Offload, st.TCPExt.RTOs)
	}
}

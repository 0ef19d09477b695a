package gvisor_test

import (
	"bytes"
	"errors"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/wispstack/wisp/adapter/gvisor"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack/stacktest"
)

// ipPacket returns n bytes that start like an IPv4 (v == 4) or IPv6 packet.
func ipPacket(v byte, n int, seed byte) []byte {
	b := linktest.Pattern(n, seed)
	b[0] = v<<4 | 5
	return b
}

var (
	macA = [6]byte{0x02, 0, 0, 0, 0xaa, 1}
	macB = [6]byte{0x02, 0, 0, 0, 0xaa, 2}
)

func ethFrame(dst, src [6]byte, etherType uint16, payload []byte) []byte {
	f := append(append(append([]byte{}, dst[:]...), src[:]...), byte(etherType>>8), byte(etherType))
	return append(f, payload...)
}

// inbound returns a received frame as a PacketBuffer (gVisor's ethernet.Endpoint, the
// channel's dispatcher on Ethernet links, consumes the header into LinkHeader).
func inbound(frame []byte) *gstack.PacketBuffer {
	return gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
}

func newChannelLink(t testing.TB, eth bool) (*gvisor.Link, *channel.Endpoint, *linktest.Dispatcher, *pbuf.Allocator) {
	return newChannelLinkGSO(t, eth, gstack.GSONotSupported, gvisor.LinkConfig{})
}

// newChannelLinkGSO is newChannelLink with a channel endpoint that reports gso (its
// GSOMaxSize is 32768) and the Link made with cfg.
func newChannelLinkGSO(t testing.TB, eth bool, gso gstack.SupportedGSO, cfg gvisor.LinkConfig) (*gvisor.Link, *channel.Endpoint, *linktest.Dispatcher, *pbuf.Allocator) {
	t.Helper()
	stacktest.NoGoroutineLeak(t)
	var ch *channel.Endpoint
	var ep gstack.LinkEndpoint
	if eth {
		ch = channel.New(64, 1500, tcpip.LinkAddress(macA[:]))
		ep = ethernet.New(ch)
	} else {
		ch = channel.New(64, 1500, "")
		ep = ch
	}
	ch.SupportedGSOKind = gso
	l, err := gvisor.NewLink(ep, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := linktest.NewAllocator()
	d := linktest.NewDispatcher(a)
	l.Attach(d)
	t.Cleanup(func() {
		l.Close()
		linktest.CheckZero(t, a)
	})
	return l, ch, d, a
}

func TestLinkMedium(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	ip, err := gvisor.NewLink(channel.New(1, 1280, ""), gvisor.LinkConfig{})
	if err != nil || ip.Medium() != link.MediumIP || ip.MTU() != 1280 || ip.HardwareAddr() != [6]byte{} {
		t.Fatalf("channel without address: %v %v %d %v", err, ip.Medium(), ip.MTU(), ip.HardwareAddr())
	}
	eth, err := gvisor.NewLink(ethernet.New(channel.New(1, 1500, tcpip.LinkAddress(macA[:]))), gvisor.LinkConfig{})
	if err != nil || eth.Medium() != link.MediumEthernet || eth.HardwareAddr() != macA {
		t.Fatalf("ethernet: %v %v %v", err, eth.Medium(), eth.HardwareAddr())
	}
	// An Ethernet endpoint without a MAC cannot be used unless one is given.
	if _, err := gvisor.NewLink(ethernet.New(channel.New(1, 1500, "")), gvisor.LinkConfig{}); !errors.Is(err, errs.Val) {
		t.Fatalf("ethernet without MAC: %v, want ERR_VAL", err)
	}
	withMAC, err := gvisor.NewLink(ethernet.New(channel.New(1, 1500, "")), gvisor.LinkConfig{HardwareAddr: macB})
	if err != nil || withMAC.HardwareAddr() != macB {
		t.Fatalf("ethernet with configured MAC: %v %v", err, withMAC.HardwareAddr())
	}
	forced, err := gvisor.NewLink(channel.New(1, 1500, tcpip.LinkAddress(macA[:])), gvisor.LinkConfig{Medium: link.MediumIP})
	if err != nil || forced.Medium() != link.MediumIP {
		t.Fatalf("forced IP: %v %v", err, forced.Medium())
	}
	if _, err := gvisor.NewLink(nil, gvisor.LinkConfig{}); !errors.Is(err, errs.Arg) {
		t.Fatalf("nil endpoint: %v", err)
	}
	for _, l := range []*gvisor.Link{ip, eth, withMAC, forced} {
		l.Close()
	}
}

func TestLinkRoundTrip(t *testing.T) {
	for _, eth := range []bool{false, true} {
		name := map[bool]string{false: "ip", true: "ethernet"}[eth]
		t.Run(name, func(t *testing.T) {
			l, ch, d, a := newChannelLink(t, eth)

			// Inbound: the frame wisp gets is the link header (Ethernet) and the packet.
			for _, v := range []byte{4, 6} {
				frame := ipPacket(v, 1000, v)
				if eth {
					frame = ethFrame(macA, macB, uint16(map[byte]tcpip.NetworkProtocolNumber{4: header.IPv4ProtocolNumber, 6: header.IPv6ProtocolNumber}[v]), frame)
				}
				pkt := inbound(frame)
				ch.InjectInbound(0, pkt)
				pkt.DecRef()
				got := d.Frames()
				if len(got) != 1 || !bytes.Equal(got[0], frame) {
					t.Fatalf("IPv%d inbound: got %d frames, want the frame back", v, len(got))
				}
				d.Reset()
			}

			// Outbound: gVisor's endpoint gets a packet whose data is the IP packet and whose
			// link header is wisp's Ethernet header.
			for _, v := range []byte{4, 6} {
				pkt := ipPacket(v, 1400, v+1)
				frame := pkt
				want := header.IPv4ProtocolNumber
				if v == 6 {
					want = header.IPv6ProtocolNumber
				}
				if eth {
					frame = ethFrame(macB, macA, uint16(want), pkt)
				}
				n, err := l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, a, frame)})
				if n != 1 || err != nil {
					t.Fatalf("WritePackets: %d %v", n, err)
				}
				out := ch.Read()
				if out == nil {
					t.Fatal("nothing written to the channel")
				}
				if out.NetworkProtocolNumber != want {
					t.Errorf("protocol %d, want %d", out.NetworkProtocolNumber, want)
				}
				if eth && !bytes.Equal(out.LinkHeader().Slice(), frame[:14]) {
					t.Errorf("link header %x, want %x", out.LinkHeader().Slice(), frame[:14])
				}
				if v := out.ToView(); !bytes.Equal(v.AsSlice(), frame) {
					t.Errorf("written frame differs")
				} else {
					v.Release()
				}
				out.DecRef()
			}

			// Too long, and too short: ERR_VAL, frame and the rest of the batch freed.
			big := ipPacket(4, 1501+link.Medium(map[bool]link.Medium{false: link.MediumIP, true: link.MediumEthernet}[eth]).HeaderLen(), 0)
			n, err := l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, a, big), linktest.Frame(t, a, ipPacket(4, 100, 0))})
			if n != 0 || !errors.Is(err, errs.Val) {
				t.Fatalf("oversized frame: %d %v, want 0 ERR_VAL", n, err)
			}
			if ch.NumQueued() != 0 {
				t.Fatal("a frame after the refused one was written")
			}

			// No receive buffer: dropped and counted, never blocks.
			d.Alloc = pbuf.NewAllocator(pbuf.Config{PoolCount: 0, PoolBufSize: 512, HeapSize: 4096, RefCount: 1, RAMCount: 1})
			pkt := inbound(frame4(eth))
			ch.InjectInbound(0, pkt)
			pkt.DecRef()
			d.Alloc = a
			// Detached: dropped and counted.
			l.Attach(nil)
			pkt = inbound(frame4(eth))
			ch.InjectInbound(0, pkt)
			pkt.DecRef()
			st := l.Stats()
			if st.RxNoBuffer != 1 || st.RxDropped != 1 || st.RxPackets != 2 || st.TxPackets != 2 || st.TxDropped != 2 {
				t.Errorf("counters %+v", st)
			}

			// Closed: writes fail with ERR_CLSD and free their frames; Close is idempotent.
			l.Close()
			if n, err := l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, a, frame4(eth))}); n != 0 || !errors.Is(err, errs.Clsd) {
				t.Fatalf("write after Close: %d %v", n, err)
			}
			l.Close()
			if l.Endpoint().IsAttached() {
				t.Error("gVisor endpoint still attached after Close")
			}
		})
	}
}

func frame4(eth bool) []byte {
	if eth {
		return ethFrame(macB, macA, 0x0800, ipPacket(4, 60, 0))
	}
	return ipPacket(4, 60, 0)
}

// TestLinkAllocs pins the steady state of both directions at zero allocations: gVisor's
// PacketBuffers, Views and chunks come from its sync.Pools, wisp's pbufs from its pools,
// the one-frame batch from a sync.Pool, and the PacketBufferList is reused.
func TestLinkAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	for _, eth := range []bool{false, true} {
		l, ch, d, a := newChannelLink(t, eth)
		d.Discard = true
		frame := frame4(eth)
		in := testing.AllocsPerRun(1000, func() {
			pkt := inbound(frame)
			ch.InjectInbound(0, pkt)
			pkt.DecRef()
		})
		frames := make([]*pbuf.Pbuf, 1)
		out := testing.AllocsPerRun(1000, func() {
			p, _ := a.Alloc(pbuf.LayerLink, len(frame), pbuf.RAM)
			_ = p.CopyIn(frame, 0)
			frames[0] = p
			l.WritePackets(frames)
			ch.Read().DecRef()
		})
		if in != 0 || out != 0 {
			t.Errorf("eth=%v: %.1f allocations per inbound frame, %.1f per outbound frame; want 0", eth, in, out)
		}
	}
}

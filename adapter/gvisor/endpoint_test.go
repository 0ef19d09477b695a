package gvisor_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/wispstack/wisp/adapter/gvisor"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack/stacktest"
)

var linkA = tcpip.LinkAddress(macA[:])

// gvSink is a gVisor NetworkDispatcher that records what it is given.
type gvSink struct {
	mu      sync.Mutex
	discard bool
	got     []gvRecv
}

type gvRecv struct {
	proto      tcpip.NetworkProtocolNumber
	typ        tcpip.PacketType
	link, data []byte
}

func (s *gvSink) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	if s.discard {
		return
	}
	r := gvRecv{proto: proto, typ: pkt.PktType,
		link: append([]byte(nil), pkt.LinkHeader().Slice()...), data: pkt.Data().AsRange().ToSlice()}
	s.mu.Lock()
	s.got = append(s.got, r)
	s.mu.Unlock()
}

func (s *gvSink) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer) {}

func (s *gvSink) take() []gvRecv {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.got
	s.got = nil
	return g
}

// endpointRig is a sync pipe: End a with a recording wisp dispatcher, End b behind
// NewEndpoint with a recording gVisor dispatcher.
type endpointRig struct {
	a      *pipe.End
	da     *linktest.Dispatcher
	aa, ab *pbuf.Allocator
	e      *gvisor.Endpoint
	sink   *gvSink
}

func newEndpointRig(t testing.TB, medium link.Medium) *endpointRig {
	t.Helper()
	stacktest.NoGoroutineLeak(t)
	a, b := pipe.New(pipe.Config{MTU: 1500, Medium: medium, Sync: true, MACs: [2][6]byte{macA, macB}})
	r := &endpointRig{a: a, aa: linktest.NewAllocator(), ab: linktest.NewAllocator(), sink: &gvSink{}}
	r.da = linktest.NewDispatcher(r.aa)
	a.Attach(r.da)
	r.e = gvisor.NewEndpoint(b, r.ab)
	r.e.Attach(r.sink)
	t.Cleanup(func() {
		r.e.Close()
		a.Close()
		linktest.CheckZero(t, r.aa)
		linktest.CheckZero(t, r.ab)
	})
	return r
}

// send writes frame on End a and delivers it.
func (r *endpointRig) send(t *testing.T, frame []byte) {
	t.Helper()
	if n, err := r.a.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, r.aa, frame)}); n != 1 || err != nil {
		t.Fatalf("pipe write: %d %v", n, err)
	}
	r.a.Flush()
}

// outPacket builds a gVisor outbound packet carrying payload, its link header added by e.
func outPacket(e *gvisor.Endpoint, proto tcpip.NetworkProtocolNumber, dst tcpip.LinkAddress, payload []byte) *gstack.PacketBuffer {
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{
		ReserveHeaderBytes: int(e.MaxHeaderLength()),
		Payload:            buffer.MakeWithData(payload),
	})
	pkt.NetworkProtocolNumber = proto
	pkt.EgressRoute.RemoteLinkAddress = dst
	e.AddHeader(pkt)
	return pkt
}

func TestEndpointProperties(t *testing.T) {
	r := newEndpointRig(t, link.MediumEthernet)
	e := r.e
	if e.MTU() != 1500 || e.MaxHeaderLength() != 14 || e.LinkAddress() != tcpip.LinkAddress(macB[:]) ||
		e.ARPHardwareType() != header.ARPHardwareEther || e.Capabilities() != gstack.CapabilityResolutionRequired ||
		!e.IsAttached() {
		t.Fatalf("ethernet: mtu %d hdr %d addr %v arp %v caps %v attached %v", e.MTU(), e.MaxHeaderLength(),
			e.LinkAddress(), e.ARPHardwareType(), e.Capabilities(), e.IsAttached())
	}
	e.SetMTU(1400)
	e.SetLinkAddress(tcpip.LinkAddress(macA[:]))
	if e.MTU() != 1400 || e.LinkAddress() != tcpip.LinkAddress(macA[:]) {
		t.Fatalf("SetMTU/SetLinkAddress: %d %v", e.MTU(), e.LinkAddress())
	}
	closed := false
	e.SetOnCloseAction(func() { closed = true })
	e.Close()
	if !closed || e.IsAttached() {
		t.Fatalf("Close: action ran %v, attached %v", closed, e.IsAttached())
	}
	var list gstack.PacketBufferList
	list.PushBack(outPacket(e, header.IPv4ProtocolNumber, linkA, ipPacket(4, 100, 0)))
	if _, err := e.WritePackets(list); err == nil {
		t.Fatal("WritePackets after Close succeeded")
	}
	list.Reset()
	e.Close()

	ip := newEndpointRig(t, link.MediumIP).e
	if ip.MaxHeaderLength() != 0 || ip.LinkAddress() != "" || ip.ARPHardwareType() != header.ARPHardwareNone ||
		ip.Capabilities() != gstack.CapabilityNone {
		t.Fatalf("ip: hdr %d addr %q arp %v caps %v", ip.MaxHeaderLength(), ip.LinkAddress(), ip.ARPHardwareType(), ip.Capabilities())
	}
}

func TestEndpointInbound(t *testing.T) {
	t.Run("ip", func(t *testing.T) {
		r := newEndpointRig(t, link.MediumIP)
		for _, v := range []byte{4, 6, 5} {
			r.send(t, ipPacket(v, 700, v))
		}
		got := r.sink.take()
		if len(got) != 2 || got[0].proto != header.IPv4ProtocolNumber || got[1].proto != header.IPv6ProtocolNumber ||
			!bytes.Equal(got[0].data, ipPacket(4, 700, 4)) || len(got[0].link) != 0 {
			t.Fatalf("got %d packets: %+v", len(got), got)
		}
		if st := r.e.Stats(); st.RxPackets != 2 || st.RxInvalid != 1 {
			t.Errorf("counters %+v", st)
		}
	})
	t.Run("ethernet", func(t *testing.T) {
		r := newEndpointRig(t, link.MediumEthernet)
		payload := ipPacket(4, 300, 1)
		cases := []struct {
			dst [6]byte
			typ tcpip.PacketType
		}{
			{macB, tcpip.PacketHost},
			{[6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, tcpip.PacketBroadcast},
			{[6]byte{0x33, 0x33, 0, 0, 0, 1}, tcpip.PacketMulticast},
			{[6]byte{0x02, 9, 9, 9, 9, 9}, tcpip.PacketOtherHost},
		}
		for _, c := range cases {
			frame := ethFrame(c.dst, macA, 0x0800, payload)
			r.send(t, frame)
			got := r.sink.take()
			if len(got) != 1 || got[0].typ != c.typ || got[0].proto != header.IPv4ProtocolNumber ||
				!bytes.Equal(got[0].link, frame[:14]) || !bytes.Equal(got[0].data, payload) {
				t.Fatalf("dst %x: got %+v", c.dst, got)
			}
		}
		r.send(t, ethFrame(macB, macA, 0x0800, nil)[:14]) // header only
		if st := r.e.Stats(); st.RxPackets != 4 || st.RxInvalid != 1 {
			t.Errorf("counters %+v", st)
		}
		// Detached by gVisor: the wisp link stops delivering to the adapter.
		r.e.Attach(nil)
		r.send(t, ethFrame(macB, macA, 0x0800, payload))
		if got := r.sink.take(); len(got) != 0 {
			t.Fatalf("delivered while detached: %+v", got)
		}
	})
}

func TestEndpointOutbound(t *testing.T) {
	for _, medium := range []link.Medium{link.MediumIP, link.MediumEthernet} {
		t.Run(medium.String(), func(t *testing.T) {
			r := newEndpointRig(t, medium)
			// More than one wisp batch in one call.
			var list gstack.PacketBufferList
			var want [][]byte
			for i := range 3*link.MaxBatch + 5 {
				payload := ipPacket(4, 40+i*7, byte(i))
				pkt := outPacket(r.e, header.IPv4ProtocolNumber, linkA, payload)
				f := payload
				if medium == link.MediumEthernet {
					f = ethFrame(macA, macB, 0x0800, payload)
				}
				want = append(want, f)
				list.PushBack(pkt)
			}
			n, err := r.e.WritePackets(list)
			list.Reset()
			if n != len(want) || err != nil {
				t.Fatalf("WritePackets: %d %v, want %d", n, err, len(want))
			}
			r.a.Flush()
			got := r.da.Frames()
			if len(got) != len(want) {
				t.Fatalf("%d frames arrived, want %d", len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("frame %d differs:\n got %x\nwant %x", i, got[i], want[i])
				}
			}
			// ParseHeader consumes what AddHeader pushed.
			if medium == link.MediumEthernet {
				pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(want[0])})
				if !r.e.ParseHeader(pkt) || pkt.NetworkProtocolNumber != header.IPv4ProtocolNumber || pkt.Data().Size() != len(want[0])-14 {
					t.Error("ParseHeader")
				}
				pkt.DecRef()
			}
		})
	}
}

func TestEndpointNoBuffer(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	a, b := pipe.New(pipe.Config{MTU: 1500, Medium: link.MediumIP, Sync: true})
	aa := linktest.NewAllocator()
	a.Attach(linktest.NewDispatcher(aa))
	// Room for one 1000-byte frame, RAM or POOL, not two.
	small := pbuf.NewAllocator(pbuf.Config{PoolCount: 1, PoolBufSize: 512, HeapSize: 1024, RefCount: 1, RAMCount: 1})
	e := gvisor.NewEndpoint(b, small)
	sink := &gvSink{}
	e.Attach(sink)
	var list gstack.PacketBufferList
	for range 3 {
		list.PushBack(outPacket(e, header.IPv4ProtocolNumber, linkA, ipPacket(4, 1000, 0)))
	}
	n, err := e.WritePackets(list)
	list.Reset()
	if _, ok := err.(*tcpip.ErrNoBufferSpace); n != 1 || !ok {
		t.Fatalf("WritePackets with memory for one: %d %v", n, err)
	}
	if st := e.Stats(); st.TxNoBuffer != 2 || st.TxPackets != 1 {
		t.Errorf("counters %+v", st)
	}
	// Inbound: the pipe frees the sender's frame only after delivery, so the pool empties
	// and the next frame finds no receive buffer.
	a.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, aa, ipPacket(4, 1400, 0))})
	a.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, aa, ipPacket(4, 1400, 0))})
	a.Flush()
	e.Close()
	if st := e.Stats(); st.RxPackets+st.RxNoBuffer != 2 {
		t.Errorf("counters %+v", st)
	}
	linktest.CheckZero(t, small)
	linktest.CheckZero(t, aa)
}

// TestEndpointAllocs pins both directions through a sync pipe at zero allocations in the
// steady state.
func TestEndpointAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	for _, medium := range []link.Medium{link.MediumIP, link.MediumEthernet} {
		r := newEndpointRig(t, medium)
		r.sink.discard = true
		r.da.Discard = true
		frame := frame4(medium == link.MediumEthernet)
		frames := make([]*pbuf.Pbuf, 1)
		in := testing.AllocsPerRun(1000, func() {
			p, _ := r.aa.Alloc(pbuf.LayerLink, len(frame), pbuf.RAM)
			_ = p.CopyIn(frame, 0)
			frames[0] = p
			r.a.WritePackets(frames)
			r.a.Flush()
		})
		var list gstack.PacketBufferList
		payload := ipPacket(4, 1400, 0)
		out := testing.AllocsPerRun(1000, func() {
			list.PushBack(outPacket(r.e, header.IPv4ProtocolNumber, linkA, payload))
			r.e.WritePackets(list)
			list.Reset()
			r.a.Flush()
		})
		if in != 0 || out != 0 {
			t.Errorf("%v: %.1f allocations per inbound frame, %.1f per outbound packet; want 0", medium, in, out)
		}
	}
}

// A full transmit queue (link.TxRoomer) makes WritePackets wait for room, as gVisor's
// fdbased link blocks on a full socket, instead of dropping what does not fit: 64 frames
// through an 8-frame queue that a reader drains arrive, none dropped.
func TestEndpointWaitsForRoom(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	a, b := pipe.New(pipe.Config{MTU: 1500, Medium: link.MediumIP, Sync: true, QueueLen: 8})
	aa := linktest.NewAllocator()
	da := linktest.NewDispatcher(aa)
	da.Discard = true
	a.Attach(da)
	ba := linktest.NewAllocator()
	e := gvisor.NewEndpoint(b, ba)
	e.Attach(&gvSink{})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the reader: moves queued frames across every 200 µs
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
				b.Flush()
			}
		}
	}()
	var list gstack.PacketBufferList
	for range 64 {
		list.PushBack(outPacket(e, header.IPv4ProtocolNumber, linkA, ipPacket(4, 200, 0)))
	}
	n, err := e.WritePackets(list)
	list.Reset()
	close(stop)
	<-done
	b.Flush()
	if n != 64 || err != nil {
		t.Fatalf("WritePackets: %d, %v; want 64 through the 8-frame queue", n, err)
	}
	if st := e.Stats(); st.TxPackets != 64 || st.TxDropped != 0 {
		t.Errorf("counters %+v: want 64 sent, none dropped", st)
	}
	e.Close()
	linktest.CheckZero(t, ba)
	linktest.CheckZero(t, aa)
}

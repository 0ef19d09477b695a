package gvisor_test

import (
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
)

// The adapter's per-frame cost in each direction (one copy each way), 1500-byte packets.

func BenchmarkLinkInbound(b *testing.B) {
	_, ch, d, _ := newChannelLink(b, true)
	d.Discard = true
	frame := ethFrame(macA, macB, 0x0800, ipPacket(4, 1500, 0))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		pkt := inbound(frame)
		ch.InjectInbound(0, pkt)
		pkt.DecRef()
	}
}

func BenchmarkLinkOutbound(b *testing.B) {
	l, ch, _, a := newChannelLink(b, true)
	frame := ethFrame(macB, macA, 0x0800, ipPacket(4, 1500, 0))
	frames := make([]*pbuf.Pbuf, 1)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		p, _ := a.Alloc(pbuf.LayerLink, len(frame), pbuf.RAM)
		_ = p.CopyIn(frame, 0)
		frames[0] = p
		l.WritePackets(frames)
		ch.Read().DecRef()
	}
}

func BenchmarkEndpointInbound(b *testing.B) {
	r := newEndpointRig(b, link.MediumEthernet)
	r.sink.discard = true
	frame := ethFrame(macB, macA, 0x0800, ipPacket(4, 1500, 0))
	frames := make([]*pbuf.Pbuf, 1)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		p, _ := r.aa.Alloc(pbuf.LayerLink, len(frame), pbuf.RAM)
		_ = p.CopyIn(frame, 0)
		frames[0] = p
		r.a.WritePackets(frames)
		r.a.Flush()
	}
}

func BenchmarkEndpointOutbound(b *testing.B) {
	r := newEndpointRig(b, link.MediumEthernet)
	r.da.Discard = true
	payload := ipPacket(4, 1500, 0)
	var list gstack.PacketBufferList
	b.SetBytes(int64(len(payload) + 14))
	b.ReportAllocs()
	for b.Loop() {
		list.PushBack(outPacket(r.e, header.IPv4ProtocolNumber, linkA, payload))
		r.e.WritePackets(list)
		list.Reset()
		r.a.Flush()
	}
}

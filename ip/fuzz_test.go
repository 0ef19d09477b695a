package ip

import (
	"net/netip"

	"testing"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// FuzzNetifInput feeds arbitrary frames to an IP-medium and an Ethernet netif: no panic,
// and after Close nothing is left in any pool.
func FuzzNetifInput(f *testing.F) {
	f.Add(ipv4Packet(v4B, v4A, wire.ProtoICMP, 64, echo4(1, 1, []byte("ping"))), false)
	f.Add(ipv6Packet(v6B, v6A, wire.ProtoICMPv6, 64, echo6(v6B, v6A, 1, 1, []byte("ping"))), false)
	f.Add(ipv6Packet(v6B, v6A, wire.ProtoIPv6Frag, 64, []byte{17, 0, 0, 1, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8}), false)
	f.Add(ipv4Packet(v4B, v4A, wire.ProtoUDP, 64, udpish(3)), false)
	f.Add(raFrame(1800, mustPrefix(mustAddr("fd42:5eed:0:7::"), 64), 3600, 1800, 1400), true)
	f.Add([]byte{0x45}, true)
	f.Add(ipv4Packet(v4B, mustAddr("198.19.9.9"), wire.ProtoICMP, 64, echo4(1, 1, []byte("intercepted"))), false)
	f.Add(ipv6Packet(v6B, mustAddr("fd42:5eed:0:99::9"), wire.ProtoUDP, 64, udpish(2)), false)
	f.Fuzz(func(t *testing.T, data []byte, eth bool) {
		o := testOptions()
		o.IPv6AutoConfig = true
		o.IPForward = len(data)%2 == 0
		e := newEnv(t, o, 9)
		medium := link.MediumIP
		var frame []byte
		if eth {
			medium = link.MediumEthernet
			frame = append([]byte{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x86, 0xdd}, data...)
			if len(data) > 0 && data[0]>>4 == 4 {
				frame[13] = 0x00
				frame[12] = 0x08
			}
		} else {
			frame = data
		}
		ep := &linktest.Capture{Med: medium, Mtu: 1500, HW: [6]byte{0x02, 0, 0, 0, 0, 1}, Discard: true}
		n := e.addNetif(ep, mustPrefix(v4A, 24), mustPrefix(v6A, 64))
		ep2 := &linktest.Capture{Mtu: 1280, Discard: true}
		e.addNetif(ep2, mustPrefix(mustAddr("fd42:5eed:0:1::1"), 64), mustPrefix(mustAddr("198.19.0.1"), 24))
		e.l.RegisterTransport(wire.ProtoUDP, &recTransport{l: e.l, unreach: true})
		if len(data)%3 == 0 {
			// A TUN proxy's netif: every other address intercepted, echo by the length.
			_ = n.SetIntercept(&Intercept{Exclude: []netip.Prefix{mustPrefix(mustAddr("198.19.7.0"), 24)}})
			e.l.SetInterceptEcho(EchoMode(len(data)/3%3), func(h *Header, p *pbuf.Pbuf) { p.Free() })
		}
		if len(frame) == 0 || len(frame) > 14+0xffff { // no link delivers these
			e.close()
			return
		}
		p, err := e.alloc.Alloc(pbuf.LayerRaw, len(frame), pbuf.POOL)
		if err != nil {
			t.Fatalf("a %d-byte frame does not fit the empty pool: %v", len(frame), err)
		}
		_ = p.CopyIn(frame, 0)
		n.Input(p)
		e.l.Flush()
		e.clk.Advance(e.l.opts.IPReassMaxAge + 10*1e9)
		e.l.Flush()
		e.close()
	})
}

package ip

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// interceptEnv is a layer with one netif (198.18.0.2/24, fd42:5eed::2/64) over a capture,
// a recording UDP transport, and the client at 198.18.0.1 / fd42:5eed::1.
func interceptEnv(t *testing.T, ic *Intercept) (*env, *Netif, *linktest.Capture, *recTransport) {
	e := newEnv(t, testOptions(), 1)
	ep := &linktest.Capture{}
	n, err := e.l.AddNetif(ep, NetifConfig{Intercept: ic})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recTransport{l: e.l}
	e.l.RegisterTransport(wire.ProtoUDP, rec)
	_ = n.AddAddr(netip.PrefixFrom(v4B, 24))
	_ = n.AddAddr(netip.PrefixFrom(v6B, 64))
	n.SetUp(true)
	ep.Take()
	return e, n, ep, rec
}

func TestInterceptDelivers(t *testing.T) {
	far4, far6 := mustAddr("198.19.7.7"), mustAddr("fd42:5eed:0:99::7")
	cases := []struct {
		name string
		ic   *Intercept
		dst  netip.Addr
		want bool
	}{
		{"off", nil, far4, false},
		{"v4 any", &Intercept{}, far4, true},
		{"v6 any", &Intercept{}, far6, true},
		{"own address stays ours", &Intercept{}, v4B, false}, // delivered, but not intercepted
		{"include hit", &Intercept{Include: []netip.Prefix{netip.MustParsePrefix("198.19.0.0/16")}}, far4, true},
		{"include miss", &Intercept{Include: []netip.Prefix{netip.MustParsePrefix("198.18.128.0/17")}}, far4, false},
		{"exclude", &Intercept{Exclude: []netip.Prefix{netip.MustParsePrefix("198.19.7.0/24")}}, far4, false},
		{"exclude v6", &Intercept{Exclude: []netip.Prefix{netip.MustParsePrefix("fd42:5eed:0:99::/64")}}, far6, false},
		{"multicast", &Intercept{}, mustAddr("239.1.2.3"), false},
		{"v6 multicast", &Intercept{}, mustAddr("ff0e::1"), false},
		{"link-local", &Intercept{}, mustAddr("169.254.1.1"), false},
		{"v6 link-local", &Intercept{}, mustAddr("fe80::9"), false},
		{"limited broadcast", &Intercept{}, mustAddr("255.255.255.255"), false},
		{"directed broadcast", &Intercept{}, mustAddr("198.18.0.255"), false},
		{"class E", &Intercept{}, mustAddr("240.0.0.9"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, n, _, rec := interceptEnv(t, c.ic)
			defer e.close()
			src := v4A
			var pkt []byte
			if c.dst.Is6() {
				pkt = ipv6Packet(v6A, c.dst, wire.ProtoUDP, 64, udpish(8))
				src = v6A
			} else {
				pkt = ipv4Packet(src, c.dst, wire.ProtoUDP, 64, udpish(8))
			}
			for range 2 { // the second time through the input cache
				rec.inputs = rec.inputs[:0]
				e.inject(n, pkt)
				got := len(rec.inputs) == 1 && rec.inputs[0].Intercepted
				if got != c.want {
					t.Fatalf("to %v: intercepted %v (inputs %+v), want %v", c.dst, got, rec.inputs, c.want)
				}
				if got && (rec.inputs[0].Dst != c.dst || rec.inputs[0].Src != src) {
					t.Fatalf("header %v → %v, want %v → %v", rec.inputs[0].Src, rec.inputs[0].Dst, src, c.dst)
				}
			}
		})
	}
}

// TestInterceptSetAtRunTime checks that SetIntercept takes effect at once (the input cache
// remembers the last decision).
func TestInterceptSetAtRunTime(t *testing.T) {
	e, n, _, rec := interceptEnv(t, nil)
	defer e.close()
	far := mustAddr("198.19.1.1")
	pkt := ipv4Packet(v4A, far, wire.ProtoUDP, 64, udpish(8))
	e.inject(n, pkt)
	if len(rec.inputs) != 0 {
		t.Fatal("delivered before interception")
	}
	if err := n.SetIntercept(&Intercept{}); err != nil {
		t.Fatal(err)
	}
	e.inject(n, pkt)
	if len(rec.inputs) != 1 {
		t.Fatal("not delivered after SetIntercept")
	}
	if err := n.SetIntercept(&Intercept{Exclude: []netip.Prefix{{}}}); err == nil {
		t.Fatal("an invalid prefix was taken")
	}
	if n.Intercept() == nil {
		t.Fatal("a refused SetIntercept turned interception off")
	}
	_ = n.SetIntercept(nil)
	e.inject(n, pkt)
	if len(rec.inputs) != 1 {
		t.Fatal("delivered after SetIntercept(nil)")
	}
}

// TestInterceptFragments checks that an intercepted datagram is reassembled first, both
// families.
func TestInterceptFragments(t *testing.T) {
	e, n, _, rec := interceptEnv(t, &Intercept{})
	defer e.close()
	for _, dst := range []netip.Addr{mustAddr("198.19.2.2"), mustAddr("fd42:5eed:0:99::2")} {
		src := v4A
		if dst.Is6() {
			src = v6A
		}
		// A 3,000-byte datagram from a peer, fragmented by our own sender of the other
		// direction: build it with a second layer's fragmentation through Output.
		peer := newEnv(t, testOptions(), 2)
		cap := &linktest.Capture{Mtu: 1280}
		pn, _ := peer.l.AddNetif(cap, NetifConfig{})
		_ = pn.AddAddr(netip.PrefixFrom(src, 24))
		if src.Is6() {
			_ = pn.AddAddr(netip.PrefixFrom(src, 64))
		}
		pn.SetUp(true)
		_ = peer.l.AddRoute(Route{Dst: netip.PrefixFrom(dst, dst.BitLen()), Netif: pn})
		cap.Take()
		if err := peer.sendUDP(src, dst, 3000, OutputOptions{}); err != nil {
			t.Fatal(err)
		}
		peer.l.Flush()
		frames := cap.Take()
		if len(frames) < 3 {
			t.Fatalf("%d fragments", len(frames))
		}
		rec.inputs, rec.data = rec.inputs[:0], rec.data[:0]
		for _, f := range frames {
			e.inject(n, f)
		}
		if len(rec.inputs) != 1 || !rec.inputs[0].Intercepted || len(rec.data[0]) != 3008 {
			t.Fatalf("to %v: %d inputs (%+v)", dst, len(rec.inputs), rec.inputs)
		}
		peer.close()
	}
}

func TestInterceptEcho(t *testing.T) {
	far4, far6 := mustAddr("198.19.3.3"), mustAddr("fd42:5eed:0:99::3")
	ping := func(dst netip.Addr) []byte {
		if dst.Is6() {
			return ipv6Packet(v6A, dst, wire.ProtoICMPv6, 64, echo6(v6A, dst, 7, 1, []byte("hello")))
		}
		return ipv4Packet(v4A, dst, wire.ProtoICMP, 64, echo4(7, 1, []byte("hello")))
	}
	checkReply := func(t *testing.T, f []byte, from, to netip.Addr) {
		t.Helper()
		if to.Is4() {
			ip := wire.IPv4(f)
			m := wire.ICMPv4(f[ip.HeaderLen():])
			if ip.Src() != from || ip.Dst() != to || m.Type() != wire.ICMPv4EchoReply ||
				string(f[ip.HeaderLen()+8:]) != "hello" || wire.Finish(wire.Checksum(m, 0)) != 0 {
				t.Fatalf("reply % x", f)
			}
			return
		}
		ip := wire.IPv6(f)
		m := f[wire.IPv6HeaderLen:]
		sum := wire.PseudoHeaderChecksum(wire.ProtoICMPv6, from, to, uint32(len(m)))
		if ip.Src() != from || ip.Dst() != to || m[0] != wire.ICMPv6EchoReply ||
			string(m[8:]) != "hello" || wire.Finish(wire.Checksum(m, sum)) != 0 {
			t.Fatalf("reply % x", f)
		}
	}
	for _, dst := range []netip.Addr{far4, far6} {
		src := v4A
		if dst.Is6() {
			src = v6A
		}
		t.Run("local "+dst.String(), func(t *testing.T) {
			e, n, ep, _ := interceptEnv(t, &Intercept{})
			defer e.close()
			e.inject(n, ping(dst))
			f := ep.Take()
			if len(f) != 1 {
				t.Fatalf("%d frames", len(f))
			}
			checkReply(t, f[0], dst, src)
		})
		t.Run("drop "+dst.String(), func(t *testing.T) {
			e, n, ep, _ := interceptEnv(t, &Intercept{})
			defer e.close()
			e.l.SetInterceptEcho(EchoDrop, nil)
			e.inject(n, ping(dst))
			if f := ep.Take(); len(f) != 0 {
				t.Fatalf("%d frames", len(f))
			}
			s := e.stats()
			if s.ICMP.Drop+s.ICMP6.Drop == 0 {
				t.Fatal("drop not counted")
			}
		})
		t.Run("host "+dst.String(), func(t *testing.T) {
			e, n, ep, _ := interceptEnv(t, &Intercept{})
			defer e.close()
			var got []Header
			var id, seq uint16
			var data []byte
			e.l.SetInterceptEcho(EchoHost, func(h *Header, p *pbuf.Pbuf) {
				got = append(got, *h)
				b := p.Bytes(nil)
				id, seq, data = binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]), b[8:]
				p.Free()
			})
			e.inject(n, ping(dst))
			if len(got) != 1 || got[0].Dst != dst || !got[0].Intercepted || id != 7 || seq != 1 || string(data) != "hello" {
				t.Fatalf("hook got %+v id %d seq %d %q", got, id, seq, data)
			}
			if f := ep.Take(); len(f) != 0 {
				t.Fatalf("%d frames before the host answers", len(f))
			}
			e.core.Lock()
			err := e.l.SendEchoReply(dst, src, id, seq, data)
			e.l.Flush()
			e.core.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			f := ep.Take()
			if len(f) != 1 {
				t.Fatalf("%d frames", len(f))
			}
			checkReply(t, f[0], dst, src)
		})
	}
}

func TestSendPortUnreachable(t *testing.T) {
	e, _, ep, _ := interceptEnv(t, &Intercept{})
	defer e.close()
	for _, c := range []struct{ client, dst netip.AddrPort }{
		{netip.AddrPortFrom(v4A, 40000), netip.MustParseAddrPort("198.19.4.4:53")},
		{netip.AddrPortFrom(v6A, 40000), netip.MustParseAddrPort("[fd42:5eed:0:99::4]:53")},
	} {
		e.core.Lock()
		err := e.l.SendPortUnreachable(c.client, c.dst, []byte("query"))
		e.l.Flush()
		e.core.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		f := ep.Take()
		if len(f) != 1 {
			t.Fatalf("%v: %d frames", c.dst, len(f))
		}
		b := f[0]
		var from, to netip.Addr
		var typ, code uint8
		var quote []byte
		if c.client.Addr().Is4() {
			ip := wire.IPv4(b)
			from, to = ip.Src(), ip.Dst()
			m := b[ip.HeaderLen():]
			typ, code, quote = m[0], m[1], m[8:]
			q := wire.IPv4(quote)
			if q.Src() != c.client.Addr() || q.Dst() != c.dst.Addr() || q.Protocol() != wire.ProtoUDP {
				t.Fatalf("quoted header % x", quote[:20])
			}
			quote = quote[q.HeaderLen():]
		} else {
			ip := wire.IPv6(b)
			from, to = ip.Src(), ip.Dst()
			m := b[wire.IPv6HeaderLen:]
			typ, code, quote = m[0], m[1], m[8+wire.IPv6HeaderLen:]
		}
		wantT, wantC := uint8(wire.ICMPv4DestUnreach), uint8(wire.ICMPv4PortUnreach)
		if c.client.Addr().Is6() {
			wantT, wantC = wire.ICMPv6DestUnreach, wire.ICMPv6PortUnreach
		}
		if from != c.dst.Addr() || to != c.client.Addr() || typ != wantT || code != wantC ||
			binary.BigEndian.Uint16(quote[0:]) != c.client.Port() || binary.BigEndian.Uint16(quote[2:]) != c.dst.Port() ||
			string(quote[8:]) != "query" {
			t.Fatalf("%v → %v type %d code %d quote % x", from, to, typ, code, quote)
		}
	}
	e.core.Lock()
	if err := e.l.SendPortUnreachable(netip.AddrPortFrom(v4A, 1), netip.MustParseAddrPort("[fd42:5eed::9]:1"), nil); err == nil {
		t.Error("mixed families accepted")
	}
	e.core.Unlock()
}

package ip

import (
	"net/netip"
	"testing"

	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// nullTransport frees what it is given.
type nullTransport struct{ n int }

func (t *nullTransport) Input(h *Header, p *pbuf.Pbuf)                  { t.n++; p.Free() }
func (t *nullTransport) ControlInput(*Header, ControlKind, int, []byte) {}

// hotEnv is a layer with one up netif holding v4A/24 and v6A/64 behind a discarding
// endpoint, with a null UDP transport, and two addresses besides (a realistic netif has
// more than one).
func hotEnv(tb testing.TB) (*env, *Netif, *nullTransport) {
	e := newEnv(tb, testOptions(), 1)
	n, _ := e.l.AddNetif(&linktest.Capture{Discard: true}, NetifConfig{})
	_ = n.AddAddr(netip.MustParsePrefix("198.18.9.1/16"))
	_ = n.AddAddr(netip.PrefixFrom(v4A, 24))
	_ = n.AddAddr(netip.MustParsePrefix("fd42:5eed:0:9::1/64"))
	_ = n.AddAddr(netip.PrefixFrom(v6A, 64))
	n.SetUp(true)
	_ = e.l.AddRoute(Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: mustAddr("198.18.0.254"), Netif: n})
	tr := &nullTransport{}
	e.l.RegisterTransport(wire.ProtoUDP, tr)
	return e, n, tr
}

// input returns a function that feeds one copy of pkt to n.
func input(e *env, n *Netif, pkt []byte) func() {
	return func() {
		p, err := e.alloc.Alloc(pbuf.LayerRaw, len(pkt), pbuf.POOL)
		if err != nil {
			panic(err)
		}
		_ = p.CopyIn(pkt, 0)
		n.Input(p)
	}
}

// output returns a function that sends one 1200-byte UDP-like packet to dst and flushes.
func output(e *env, dst netip.Addr) func() {
	return func() {
		p, err := e.alloc.Alloc(pbuf.LayerTransport, 1200, pbuf.RAM)
		if err != nil {
			panic(err)
		}
		if err := e.l.Output(p, netip.Addr{}, dst, wire.ProtoUDP, OutputOptions{}); err != nil {
			panic(err)
		}
		e.l.Flush()
	}
}

func BenchmarkInput4(b *testing.B) {
	e, n, _ := hotEnv(b)
	defer e.close()
	f := input(e, n, ipv4Packet(v4B, v4A, wire.ProtoUDP, 64, udpish(1200)))
	b.ReportAllocs()
	for b.Loop() {
		f()
	}
}

func BenchmarkInput6(b *testing.B) {
	e, n, _ := hotEnv(b)
	defer e.close()
	f := input(e, n, ipv6Packet(v6B, v6A, wire.ProtoUDP, 64, udpish(1200)))
	b.ReportAllocs()
	for b.Loop() {
		f()
	}
}

func BenchmarkOutput4(b *testing.B) {
	e, _, _ := hotEnv(b)
	defer e.close()
	f := output(e, mustAddr("203.0.113.9"))
	b.ReportAllocs()
	for b.Loop() {
		f()
	}
}

func BenchmarkOutput6(b *testing.B) {
	e, _, _ := hotEnv(b)
	defer e.close()
	f := output(e, v6B)
	b.ReportAllocs()
	for b.Loop() {
		f()
	}
}

// TestHotPathNoAllocs pins IPv4 and IPv6 input and output at zero allocations.
func TestHotPathNoAllocs(t *testing.T) {
	e, n, tr := hotEnv(t)
	defer e.close()
	for name, f := range map[string]func(){
		"input4":  input(e, n, ipv4Packet(v4B, v4A, wire.ProtoUDP, 64, udpish(1200))),
		"input6":  input(e, n, ipv6Packet(v6B, v6A, wire.ProtoUDP, 64, udpish(1200))),
		"output4": output(e, mustAddr("203.0.113.9")),
		"output6": output(e, v6B),
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocations", name, a)
		}
	}
	if tr.n != 2*101 {
		t.Errorf("%d packets delivered, want %d", tr.n, 2*101)
	}
}

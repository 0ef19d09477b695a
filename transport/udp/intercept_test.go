package udp_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/transport/udp"
)

// Intercepted destinations: addresses neither stack owns.
var (
	far4 = netip.MustParseAddr("198.19.7.7")
	far6 = netip.MustParseAddr("fd42:5eed:0:77::7")
)

// inputIntercepted hands s's UDP a datagram src→dst as ip hands an intercepted one
// (ip.Header.Intercepted), without a netif that intercepts.
func inputIntercepted(t testing.TB, s *stack.Stack, nif *stack.Netif, src, dst netip.AddrPort, data []byte) {
	t.Helper()
	b := udpHeader(src.Addr(), dst.Addr(), src.Port(), dst.Port(), data)
	s.Callback(func() {
		p, err := s.Allocator().Alloc(pbuf.LayerRaw, len(b), pbuf.POOL)
		if err != nil {
			t.Error(err)
			return
		}
		_ = p.CopyIn(b, 0)
		h := ip.Header{Src: src.Addr(), Dst: dst.Addr(), Proto: 17, TTL: 64, Netif: nif.IP(), Intercepted: true}
		s.UDP().Input(&h, p)
	})
}

// interceptor makes an intercept PCB on s collecting what it gets.
func interceptor(t testing.TB, s *stack.Stack) (*udp.PCB, *sink) {
	t.Helper()
	k := &sink{}
	var c *udp.PCB
	var err error
	s.Callback(func() {
		if c, err = s.UDP().NewPCB(); err != nil {
			return
		}
		c.OnRecv(k.recv)
		s.UDP().SetIntercept(c)
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func TestInterceptDeliveryAndSendFrom(t *testing.T) {
	p := newPair(t, pairConfig{})
	// An ordinary PCB on the port must not see intercepted datagrams.
	plain, pk := listen(t, p.B, "[::]:53")
	defer p.B.Callback(plain.Close)
	ic, k := interceptor(t, p.B)
	defer p.B.Callback(ic.Close)
	cli, ck := listen(t, p.A, "[::]:0")
	defer p.A.Callback(cli.Close)
	var cport uint16
	p.A.Callback(func() { cport = cli.LocalAddr().Port() })
	for i, fam := range []struct{ cli, far netip.Addr }{{addrA, far4}, {addrA6, far6}} {
		src := netip.AddrPortFrom(fam.cli, cport)
		dst := netip.AddrPortFrom(fam.far, 53)
		inputIntercepted(t, p.B, p.NetifB, src, dst, []byte("query"))
		if len(k.got) != i+1 || string(k.got[i].data) != "query" {
			t.Fatalf("%v: intercept PCB got %d datagrams", dst, len(k.got))
		}
		info := k.got[i].info
		if info.Src != src || info.Dst != fam.far || info.DstPort != 53 || !info.Intercepted {
			t.Errorf("%v: info %+v", dst, info)
		}
		// The reply leaves from the intercepted address and a port of another address too.
		for j, from := range []netip.AddrPort{dst, netip.AddrPortFrom(fam.far.Next(), 5353)} {
			data := pattern(40 + j)
			var err error
			p.B.Callback(func() { err = ic.SendFrom(payload(t, p.B, data), from, src) })
			if err != nil {
				t.Fatalf("SendFrom %v → %v: %v", from, src, err)
			}
			p.flush()
			g := ck.got[len(ck.got)-1]
			if !bytes.Equal(g.data, data) || g.info.Src.Addr().Unmap() != from.Addr() || g.info.Src.Port() != from.Port() {
				t.Errorf("client got %+v from %v, want %v", len(g.data), g.info.Src, from)
			}
		}
	}
	if len(pk.got) != 0 {
		t.Errorf("an ordinary PCB got %d intercepted datagrams", len(pk.got))
	}
	p.B.Callback(func() {
		if ic.LocalAddr().IsValid() {
			t.Errorf("SendFrom bound the intercept PCB to %v", ic.LocalAddr())
		}
	})
	stacktest.BuffersZero(t, p.B)
}

func TestInterceptOffIsPortUnreachable(t *testing.T) {
	p := newPair(t, pairConfig{})
	plain, pk := listen(t, p.B, "[::]:53")
	defer p.B.Callback(plain.Close)
	ic, k := interceptor(t, p.B)
	p.B.Callback(func() {
		if p.B.UDP().Intercepting() != ic {
			t.Error("Intercepting does not report the intercept PCB")
		}
		ic.Close() // closing the intercept PCB turns interception off
		if p.B.UDP().Intercepting() != nil {
			t.Error("Close left the PCB intercepting")
		}
	})
	before := p.B.Stats().UDP
	inputIntercepted(t, p.B, p.NetifB, netip.AddrPortFrom(addrA, 1000), netip.AddrPortFrom(far4, 53), []byte("x"))
	after := p.B.Stats().UDP
	if len(k.got)+len(pk.got) != 0 || after.Proterr != before.Proterr+1 {
		t.Errorf("delivered %d/%d; Proterr %d → %d", len(k.got), len(pk.got), before.Proterr, after.Proterr)
	}
	p.flush()
	stacktest.BuffersZero(t, p.B)
}

func TestSendFromValidation(t *testing.T) {
	p := newPair(t, pairConfig{})
	ic, _ := interceptor(t, p.B)
	defer p.B.Callback(ic.Close)
	to := netip.AddrPortFrom(addrA, 1000)
	for _, c := range []struct {
		src, dst netip.AddrPort
		want     error
	}{
		{netip.AddrPort{}, to, errs.Val},
		{netip.AddrPortFrom(far4, 0), to, errs.Val},
		{netip.MustParseAddrPort("0.0.0.0:53"), to, errs.Val},
		{netip.MustParseAddrPort("224.0.0.9:53"), to, errs.Val},
		{netip.AddrPortFrom(far6, 53), to, errs.Val},
		{netip.AddrPortFrom(far4, 53), netip.AddrPortFrom(addrA, 0), errs.Val},
	} {
		var err error
		p.B.Callback(func() { err = ic.SendFrom(payload(t, p.B, []byte("x")), c.src, c.dst) })
		if !errors.Is(err, c.want) {
			t.Errorf("SendFrom(%v, %v) = %v, want %v", c.src, c.dst, err, c.want)
		}
	}
	p.flush()
	stacktest.BuffersZero(t, p.B)
}

// TestSendFromFragments: a reply larger than the MTU leaves in fragments, as any send, and
// the client reassembles it; both families.
func TestSendFromFragments(t *testing.T) {
	p := newPair(t, pairConfig{})
	ic, _ := interceptor(t, p.B)
	defer p.B.Callback(ic.Close)
	cli, ck := listen(t, p.A, "[::]:4000")
	defer p.A.Callback(cli.Close)
	data := pattern(4000)
	for i, c := range [][2]netip.Addr{{far4, addrA}, {far6, addrA6}} {
		var err error
		p.B.Callback(func() {
			err = ic.SendFrom(payload(t, p.B, data), netip.AddrPortFrom(c[0], 9), netip.AddrPortFrom(c[1], 4000))
		})
		if err != nil {
			t.Fatal(err)
		}
		p.flush()
		if len(ck.got) != i+1 || !bytes.Equal(ck.got[i].data, data) {
			t.Fatalf("%v: client got %d datagrams", c[0], len(ck.got))
		}
	}
	p.flush()
	stacktest.BuffersZero(t, p.A)
	stacktest.BuffersZero(t, p.B)
}

// TestSendFromAllocs pins the reply path at zero allocations.
func TestSendFromAllocs(t *testing.T) {
	p := newPair(t, pairConfig{})
	ic, _ := interceptor(t, p.B)
	defer p.B.Callback(ic.Close)
	cli, _ := listen(t, p.A, "0.0.0.0:4000")
	defer p.A.Callback(cli.Close)
	got := 0
	p.A.Callback(func() {
		cli.OnRecv(func(c *udp.PCB, q *pbuf.Pbuf, info *udp.RecvInfo) { got++; q.Free() })
	})
	from, to := netip.AddrPortFrom(far4, 53), netip.AddrPortFrom(addrA, 4000)
	alloc := p.B.Allocator()
	var err error
	step := func() {
		p.B.Lock()
		q, _ := alloc.Alloc(pbuf.LayerTransport, 100, pbuf.RAM)
		err = ic.SendFrom(q, from, to)
		p.B.Unlock()
		p.flush()
	}
	step()
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Errorf("SendFrom: %v allocations per datagram", n)
	}
	if err != nil || got != 102 {
		t.Errorf("err %v, client got %d datagrams, want 102", err, got)
	}
}

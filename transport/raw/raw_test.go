package raw_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/link/loopback"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/transport/raw"
	"github.com/wispstack/wisp/wire"
)

// testOpts is iptest's small configuration (no DAD, no autoconfiguration) with a few raw
// PCBs.
func testOpts() opt.Options {
	o := iptest.Options()
	o.MempNumRawPCB = 8
	return o
}

// newPair connects two stacks (testOpts) by a synchronous pipe of bare IP frames on a fake
// clock.
func newPair(t testing.TB) *stacktest.Pair {
	t.Helper()
	clk := clock.NewFake(time.Unix(1e9, 0))
	return stacktest.NewPair(t, stacktest.PairConfig{Options: testOpts(), Clock: clk})
}

// echoRequest builds an ICMP (v6: ICMPv6) echo request with an identifier the stack will
// overwrite.
func echoRequest(v6 bool, seq uint16, data []byte) []byte {
	b := make([]byte, 8+len(data))
	b[0] = wire.ICMPv4EchoRequest
	if v6 {
		b[0] = wire.ICMPv6EchoRequest
	}
	binary.BigEndian.PutUint16(b[4:], 0xdead)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], data)
	return b
}

type msg struct {
	b    []byte
	info raw.RecvInfo
}

type sink struct{ got []msg }

func (k *sink) recv(c *raw.PCB, p *pbuf.Pbuf, info *raw.RecvInfo) {
	k.got = append(k.got, msg{p.Bytes(nil), *info})
	p.Free()
}

func buf(t testing.TB, s *stack.Stack, b []byte) *pbuf.Pbuf {
	t.Helper()
	p, err := s.Allocator().Alloc(pbuf.LayerIP, len(b), pbuf.RAM)
	if err != nil {
		t.Fatal(err)
	}
	_ = p.CopyIn(b, 0)
	return p
}

func TestPingSecondStack(t *testing.T) {
	p := newPair(t)
	for _, dst := range []netip.Addr{stacktest.AddrB[0], stacktest.AddrB[1]} {
		v6 := dst.Is6()
		var c *raw.PCB
		k := &sink{}
		var err error
		p.A.Callback(func() {
			if c, err = p.A.Raw().NewPing(v6); err != nil {
				return
			}
			c.OnRecv(k.recv)
			if err = c.Bind(netip.Addr{}); err != nil {
				return
			}
			err = c.SendTo(buf(t, p.A, echoRequest(v6, 7, []byte("payload"))), dst)
		})
		if err != nil {
			t.Fatalf("%v: %v", dst, err)
		}
		p.PipeA.Flush()
		if len(k.got) != 1 {
			t.Fatalf("%v: %d replies", dst, len(k.got))
		}
		m := wire.ICMPv4(k.got[0].b)
		want := uint8(wire.ICMPv4EchoReply)
		if v6 {
			want = wire.ICMPv6EchoReply
		}
		var ident uint16
		p.A.Callback(func() { ident = c.Ident() })
		if m.Type() != want || m.Ident() != ident || m.Seq() != 7 || !bytes.Equal(m.Payload(), []byte("payload")) {
			t.Errorf("%v: reply % x (ident %d)", dst, k.got[0].b, ident)
		}
		if k.got[0].info.Src != dst || k.got[0].info.IfIndex != p.NetifA.Index() {
			t.Errorf("info %+v", k.got[0].info)
		}
		p.A.Callback(c.Close)
	}
	// The PCB ate the replies before ICMP saw them (as lwIP's raw_input does).
	if s := p.A.Stats(); s.ICMP.Recv != 0 || s.ICMP6.Recv != 0 {
		t.Errorf("ICMP counters %+v %+v", s.ICMP, s.ICMP6)
	}
}

// An echo request through a ping PCB and its reply allocate nothing on the Go heap, IPv4
// and IPv6 alike: the header is written through wire's setters, the checksum over the
// chain.
func TestPingAllocs(t *testing.T) {
	p := newPair(t)
	k := 0
	var pcbs [2]*raw.PCB
	p.A.Callback(func() {
		for i, v6 := range []bool{false, true} {
			pcbs[i], _ = p.A.Raw().NewPing(v6)
			pcbs[i].OnRecv(func(_ *raw.PCB, q *pbuf.Pbuf, _ *raw.RecvInfo) { k++; q.Free() })
		}
	})
	reqs := [2][]byte{echoRequest(false, 1, make([]byte, 56)), echoRequest(true, 1, make([]byte, 56))}
	dsts := [2]netip.Addr{stacktest.AddrB[0], stacktest.AddrB[1]}
	var err error
	i := 0
	step := func() {
		p.A.Lock()
		q, _ := p.A.Allocator().Alloc(pbuf.LayerIP, len(reqs[i%2]), pbuf.RAM)
		_ = q.CopyIn(reqs[i%2], 0)
		err = pcbs[i%2].SendTo(q, dsts[i%2])
		i++
		p.A.Unlock()
		p.PipeA.Flush()
	}
	step()
	if a := testing.AllocsPerRun(200, step); a != 0 {
		t.Errorf("%v allocations per ping", a)
	}
	if err != nil || k != 202 {
		t.Errorf("err %v, %d replies", err, k)
	}
	p.A.Callback(func() { pcbs[0].Close(); pcbs[1].Close() })
}

// A ping to our own address goes round the loopback link.
func TestPingSelfOverLoopback(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	s, err := stack.New(stack.Config{Options: testOpts(), Clock: clock.NewFake(time.Unix(1e9, 0)), Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, s)
	lo := loopback.New(loopback.Config{Sync: true})
	if _, err := s.AddNetif(lo, stack.NetifConfig{Name: "lo", Addrs: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")}}); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()} {
		var c *raw.PCB
		k := &sink{}
		var err error
		s.Callback(func() {
			c, _ = s.Raw().NewPing(dst.Is6())
			c.OnRecv(k.recv)
			if err = c.Connect(dst); err == nil {
				err = c.Send(buf(t, s, echoRequest(dst.Is6(), 1, []byte("me"))))
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			lo.Flush()
			s.Callback(func() {}) // Unlock flushes what delivery queued
		}
		if len(k.got) != 1 || k.got[0].info.Src != dst {
			t.Fatalf("%v: %d replies", dst, len(k.got))
		}
		s.Callback(c.Close)
	}
}

func TestPingRules(t *testing.T) {
	p := newPair(t)
	p.A.Callback(func() {
		r := p.A.Raw()
		a, _ := r.NewPing(false)
		b, _ := r.NewPing(false)
		c, _ := r.NewPing(true)
		if err := a.BindIdent(100); err != nil {
			t.Fatal(err)
		}
		if err := b.BindIdent(100); err != errs.Use {
			t.Errorf("duplicate identifier: %v", err)
		}
		if err := c.BindIdent(100); err != nil {
			t.Errorf("other family: %v", err)
		}
		if err := b.Bind(netip.MustParseAddr("198.18.0.9")); err != errs.AddrNotAvail {
			t.Errorf("foreign address: %v", err)
		}
		if err := b.Bind(netip.MustParseAddr("fd42:5eed::1")); err != errs.Val {
			t.Errorf("wrong family: %v", err)
		}
		// Not an echo request.
		bad := echoRequest(false, 1, nil)
		bad[0] = wire.ICMPv4EchoReply
		if err := a.SendTo(buf(t, p.A, bad), stacktest.AddrB[0]); err != errs.Val {
			t.Errorf("echo reply sent: %v", err)
		}
		if err := a.SendTo(buf(t, p.A, []byte{8, 0}), stacktest.AddrB[0]); err != errs.Val {
			t.Errorf("short message: %v", err)
		}
		if err := a.SendTo(buf(t, p.A, echoRequest(false, 1, nil)), netip.MustParseAddr("10.9.9.9")); err != errs.NetUnreach {
			t.Errorf("no route: %v", err)
		}
		if err := a.Send(buf(t, p.A, echoRequest(false, 1, nil))); err != errs.Conn {
			t.Errorf("unconnected Send: %v", err)
		}
		for _, x := range []*raw.PCB{a, b, c} {
			x.Close()
		}
		if r.NumPCBs() != 0 {
			t.Errorf("%d PCBs left", r.NumPCBs())
		}
	})
}

// Raw PCBs get copies: of ICMP (which ip still answers), and of a protocol nobody
// implements, which then earns no protocol unreachable.
func TestRawCopies(t *testing.T) {
	p := newPair(t)
	var icmp, icmp6, exp, exp6, tx, tx6 *raw.PCB
	ki, ki6, ke, ke6 := &sink{}, &sink{}, &sink{}, &sink{}
	p.B.Callback(func() {
		r := p.B.Raw()
		icmp, _ = r.NewRaw(false, wire.ProtoICMP)
		icmp6, _ = r.NewRaw(true, wire.ProtoICMPv6)
		exp, _ = r.NewRaw(false, 253)
		exp6, _ = r.NewRaw(true, 253)
		if err := exp6.SetChecksumOffset(2); err != nil {
			t.Fatal(err)
		}
		icmp.OnRecv(ki.recv)
		icmp6.OnRecv(ki6.recv)
		exp.OnRecv(ke.recv)
		exp6.OnRecv(ke6.recv)
	})
	p.A.Callback(func() {
		r := p.A.Raw()
		tx, _ = r.NewRaw(false, 253)
		tx6, _ = r.NewRaw(true, 253)
		if err := tx6.SetChecksumOffset(3); err != errs.Val {
			t.Errorf("odd offset: %v", err)
		}
		if err := tx.SetChecksumOffset(2); err != errs.Val {
			t.Errorf("IPv4 offset: %v", err)
		}
		_ = tx6.SetChecksumOffset(2)
		for _, x := range []struct {
			c   *raw.PCB
			dst netip.Addr
		}{{tx, stacktest.AddrB[0]}, {tx6, stacktest.AddrB[1]}} {
			if err := x.c.SendTo(buf(t, p.A, []byte("abcdefgh")), x.dst); err != nil {
				t.Fatal(err)
			}
		}
	})
	p.PipeA.Flush()
	if len(ke.got) != 1 || string(ke.got[0].b) != "abcdefgh" || len(ke6.got) != 1 || ke6.got[0].b[0] != 'a' {
		t.Fatalf("protocol 253: v4 %d, v6 %d", len(ke.got), len(ke6.got))
	}
	if s := p.A.Stats(); s.ICMP.Recv+s.ICMP6.Recv != 0 {
		t.Errorf("protocol unreachable sent for a protocol a raw PCB took: %+v %+v", s.ICMP, s.ICMP6)
	}
	// Pings from A reach B's raw ICMP PCBs as copies; B still answers them.
	p.A.Callback(func() {
		for _, dst := range []netip.Addr{stacktest.AddrB[0], stacktest.AddrB[1]} {
			c, _ := p.A.Raw().NewPing(dst.Is6())
			_ = c.SendTo(buf(t, p.A, echoRequest(dst.Is6(), 1, []byte("x"))), dst)
			c.Close()
		}
	})
	p.PipeA.Flush()
	if len(ki.got) != 1 || ki.got[0].b[0] != wire.ICMPv4EchoRequest || len(ki6.got) != 1 || ki6.got[0].b[0] != wire.ICMPv6EchoRequest {
		t.Errorf("raw ICMP copies: v4 %d v6 %d", len(ki.got), len(ki6.got))
	}
	if s := p.B.Stats(); s.ICMP.Xmit != 1 || s.ICMP6.Xmit != 1 {
		t.Errorf("B did not answer: %+v %+v", s.ICMP, s.ICMP6)
	}
	p.A.Callback(func() { tx.Close(); tx6.Close() })
	p.B.Callback(func() { icmp.Close(); icmp6.Close(); exp.Close(); exp6.Close() })
}

// FuzzRawInput offers arbitrary ICMP, ICMPv6 and protocol-253 packets to a stack with ping
// and raw PCBs; every pbuf must come back.
func FuzzRawInput(f *testing.F) {
	f.Add(echoRequest(false, 1, []byte("x")), uint8(0), true)
	f.Add([]byte{0, 0, 0, 0, 0, 5, 0, 1}, uint8(0), true)
	f.Add([]byte{129, 0, 0, 0, 0, 5, 0, 1, 9}, uint8(1), true)
	f.Add([]byte{1, 2, 3}, uint8(2), false)
	p := newPair(f)
	var pcbs []*raw.PCB
	var err error
	p.B.Callback(func() {
		r := p.B.Raw()
		for _, v6 := range []bool{false, true} {
			var pg, c *raw.PCB
			if pg, err = r.NewPing(v6); err != nil {
				return
			}
			pcbs = append(pcbs, pg)
			if err = pg.BindIdent(5); err != nil {
				return
			}
			if c, err = r.NewRaw(v6, 253); err != nil {
				return
			}
			pcbs = append(pcbs, c)
			if v6 {
				if err = c.SetChecksumOffset(0); err != nil {
					return
				}
			}
			for _, x := range []*raw.PCB{pg, c} {
				x.OnRecv(func(_ *raw.PCB, q *pbuf.Pbuf, _ *raw.RecvInfo) { q.Free() })
			}
		}
	})
	defer p.B.Callback(func() {
		for _, c := range pcbs {
			c.Close()
		}
	})
	if err != nil { // a broken harness must not pass
		f.Fatalf("setup: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte, kind uint8, fix bool) {
		if len(b) > 1400 {
			return
		}
		proto, src, dst := uint8(wire.ProtoICMP), stacktest.AddrA[0], stacktest.AddrB[0]
		switch kind % 4 {
		case 1:
			proto, src, dst = wire.ProtoICMPv6, stacktest.AddrA[1], stacktest.AddrB[1]
		case 2:
			proto = 253
		case 3:
			proto, src, dst = 253, stacktest.AddrA[1], stacktest.AddrB[1]
		}
		b = append([]byte(nil), b...)
		if fix && len(b) >= 4 {
			b[2], b[3] = 0, 0
			var s uint32
			if dst.Is6() {
				s = wire.PseudoHeaderChecksum(proto, src, dst, uint32(len(b)))
			}
			binary.BigEndian.PutUint16(b[2:], wire.Finish(wire.Checksum(b, s)))
		}
		stacktest.Inject(t, p.NetifB, iptest.Packet(proto, src, dst, b))
		p.PipeA.Flush()
		stacktest.BuffersZero(t, p.B)
	})
}

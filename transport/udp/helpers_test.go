package udp_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/transport/udp"
)

var (
	pfxA4  = netip.MustParsePrefix("198.18.0.1/24")
	pfxB4  = netip.MustParsePrefix("198.18.0.2/24")
	pfxA6  = netip.MustParsePrefix("fd42:5eed::1/64")
	pfxB6  = netip.MustParsePrefix("fd42:5eed::2/64")
	addrA  = pfxA4.Addr()
	addrB  = pfxB4.Addr()
	addrA6 = pfxA6.Addr()
	addrB6 = pfxB6.Addr()
)

// testOpts is a small tunnel-like configuration without DAD or autoconfiguration, so a
// synchronous pipe on a fake clock runs every exchange in one Flush.
func testOpts() opt.Options {
	o := opt.Tunnel()
	o.MemSize = 4 << 20
	o.PbufPoolSize = 1024
	o.PbufPoolBufSize = 2048
	o.MempNumPbuf = 1024
	o.MempNumPbufRAM = 1024
	o.MempNumUDPPCB = 16
	o.MempNumTCPPCB = 8
	o.MempNumTCPSeg = 4096
	o.MempNumReassData = 8
	o.IPReassMaxPbufs = 128
	o.MempNumFragPbuf = 64
	o.ND6NumNeighbors = 8
	o.MempNumND6Queue = 16
	o.ARPTableSize = 8
	o.MempNumARPQueue = 64
	o.IPv6AutoConfig = false
	o.IPv6DupAddrDetectTransmits = 0
	return o
}

type pair struct {
	a, b   *stack.Stack
	na, nb *stack.Netif
	pa, pb *pipe.End
	clk    *clock.Fake
}

type pairConfig struct {
	medium   link.Medium
	o        opt.Options
	queueLen int
	mtu      int
}

// newPair connects two stacks over a synchronous pipe on a fake clock; the test moves frames
// with flush.
func newPair(t testing.TB, c pairConfig) *pair {
	t.Helper()
	if _, fuzz := t.(*testing.F); !fuzz { // the fuzzing engine starts goroutines of its own
		stacktest.NoGoroutineLeak(t)
	}
	if c.o == (opt.Options{}) {
		c.o = testOpts()
	}
	if c.medium == 0 {
		c.medium = link.MediumIP
	}
	p := &pair{clk: clock.NewFake(time.Unix(1e9, 0))}
	p.pa, p.pb = pipe.New(pipe.Config{MTU: c.mtu, Medium: c.medium, Sync: true, QueueLen: c.queueLen})
	var err error
	if p.a, err = stack.New(stack.Config{Options: c.o, Clock: p.clk, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, p.a)
	if p.b, err = stack.New(stack.Config{Options: c.o, Clock: p.clk, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, p.b)
	if p.na, err = p.a.AddNetif(p.pa, stack.NetifConfig{Name: "a0", Addrs: []netip.Prefix{pfxA4, pfxA6}}); err != nil {
		t.Fatal(err)
	}
	if p.nb, err = p.b.AddNetif(p.pb, stack.NetifConfig{Name: "b0", Addrs: []netip.Prefix{pfxB4, pfxB6}}); err != nil {
		t.Fatal(err)
	}
	p.flush()
	return p
}

// flush moves every queued frame both ways.
func (p *pair) flush() { p.pa.Flush() }

// got is one received datagram, copied out of its pbuf.
type got struct {
	data []byte
	info udp.RecvInfo
}

// sink collects what a PCB receives (its callback frees the pbuf).
type sink struct{ got []got }

func (s *sink) recv(c *udp.PCB, p *pbuf.Pbuf, info *udp.RecvInfo) {
	s.got = append(s.got, got{data: p.Bytes(nil), info: *info})
	p.Free()
}

// listen binds a new PCB of s to addr and collects its datagrams.
func listen(t testing.TB, s *stack.Stack, addr string) (*udp.PCB, *sink) {
	t.Helper()
	var c *udp.PCB
	var err error
	k := &sink{}
	s.Callback(func() {
		if c, err = s.UDP().NewPCB(); err != nil {
			return
		}
		if err = c.Bind(netip.MustParseAddrPort(addr)); err != nil {
			c.Close()
			return
		}
		c.OnRecv(k.recv)
	})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	return c, k
}

// payload returns a pbuf of s holding data, with room for the headers.
func payload(t testing.TB, s *stack.Stack, data []byte) *pbuf.Pbuf {
	t.Helper()
	p, err := s.Allocator().Alloc(pbuf.LayerTransport, len(data), pbuf.RAM)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CopyIn(data, 0); err != nil {
		t.Fatal(err)
	}
	return p
}

// sendTo sends data from c (a PCB of s) to dst in core context.
func sendTo(t testing.TB, s *stack.Stack, c *udp.PCB, dst string, data []byte) error {
	t.Helper()
	var err error
	s.Callback(func() { err = c.SendTo(payload(t, s, data), netip.MustParseAddrPort(dst)) })
	return err
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

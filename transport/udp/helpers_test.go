package udp_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/transport/udp"
)

// The pair's addresses (stacktest.AddrA, AddrB).
var (
	addrA, addrA6 = stacktest.AddrA[0], stacktest.AddrA[1]
	addrB, addrB6 = stacktest.AddrB[0], stacktest.AddrB[1]
)

// testOpts is iptest's small configuration without DAD or autoconfiguration (a synchronous
// pipe on a fake clock runs every exchange in one flush), with room for a few PCBs.
func testOpts() opt.Options {
	o := iptest.Options()
	o.MempNumUDPPCB = 16
	o.MempNumTCPPCB = 8
	o.MempNumTCPSeg = 4096
	return o
}

// pair is a stacktest.Pair on a fake clock: the test moves frames with flush.
type pair struct {
	*stacktest.Pair
	clk *clock.Fake
}

type pairConfig struct {
	medium   link.Medium
	o        opt.Options
	queueLen int
	mtu      int
	off      link.Offloads                                   // the pipe's offloads
	wrapA    func(*stack.Stack, link.Endpoint) link.Endpoint // stacktest.PairConfig.WrapA
}

// newPair connects two stacks (options testOpts unless c.o) over a synchronous pipe on a
// fake clock.
func newPair(t testing.TB, c pairConfig) *pair {
	t.Helper()
	if c.o == (opt.Options{}) {
		c.o = testOpts()
	}
	p := &pair{clk: clock.NewFake(time.Unix(1e9, 0))}
	p.Pair = stacktest.NewPair(t, stacktest.PairConfig{Options: c.o, Medium: c.medium, MTU: c.mtu,
		QueueLen: c.queueLen, Clock: p.clk, Offloads: c.off, WrapA: c.wrapA})
	p.flush()
	return p
}

// flush moves every queued frame both ways.
func (p *pair) flush() { p.PipeA.Flush() }

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

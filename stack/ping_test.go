package stack_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/internal/ping"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/transport/raw"
	"github.com/wispstack/wisp/wire"
)

// pingOnce pings dst from s through a ping socket, as applications and the CLI do.
func pingOnce(ctx context.Context, s *stack.Stack, dst netip.Addr, size int) error {
	_, err := ping.Once(ctx, endpoint.New(s), dst, size)
	return err
}

func TestPingOverPipe(t *testing.T) {
	for _, medium := range []link.Medium{link.MediumEthernet, link.MediumIP} {
		for _, preset := range []string{"embedded", "tunnel"} {
			t.Run(medium.String()+"/"+preset, func(t *testing.T) {
				o, _ := opt.Preset(preset)
				p := newPair(t, medium, o, nil)
				stacktest.WaitReady(t, p.NetifA, p.NetifB)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				for _, dst := range []netip.Addr{addrB4.Addr(), addrB6.Addr()} {
					for _, size := range []int{0, 56, 1400, 4000} {
						err := pingOnce(ctx, p.A, dst, size)
						if preset == "embedded" && size == 4000 {
							// lwIP's default heap is 1600 bytes: a 4000-byte datagram
							// cannot be built, and the socket says so.
							if !errors.Is(err, syscall.ENOMEM) {
								t.Fatalf("ping %v size %d with a 1600-byte heap: %v, want ENOMEM", dst, size, err)
							}
							continue
						}
						if err != nil {
							t.Fatalf("ping %v size %d: %v", dst, size, err)
						}
					}
				}
				if preset == "embedded" { // it still receives and answers big fragmented pings
					if err := pingOnce(ctx, p.B, addrA4.Addr(), 100); err != nil {
						t.Fatal(err)
					}
				}
				// And the other way round.
				if err := pingOnce(ctx, p.B, addrA6.Addr(), 100); err != nil {
					t.Fatal(err)
				}
				// The answering side counts; the ping sockets' own requests and replies
				// bypass ICMP's counters, as lwIP's raw PCBs do.
				sa, sb := p.A.Stats(), p.B.Stats()
				if sb.ICMP.Xmit == 0 || sb.ICMP6.Xmit == 0 {
					t.Errorf("ICMP counters did not move: %+v %+v", sb.ICMP, sb.ICMP6)
				}
				if preset == "tunnel" && (sb.IPFrag.Recv == 0 || sb.IP6Frag.Recv == 0) {
					t.Errorf("4000-byte pings did not arrive fragmented: %+v %+v", sb.IPFrag, sb.IP6Frag)
				}
				if medium == link.MediumEthernet && sa.Etharp.Recv == 0 {
					t.Errorf("no ARP traffic on Ethernet: %+v", sa.Etharp)
				}
			})
		}
	}
}

// With a fake clock and a synchronous pipe the whole exchange is deterministic.
func TestPingDeterministic(t *testing.T) {
	clk := clock.NewFake(time.Unix(1e9, 0))
	o := opt.Embedded()
	o.MemSize = 16 << 10 // room for a 3000-byte datagram
	p := newPair(t, link.MediumEthernet, o, clk)
	drive := func(done func() bool) {
		t.Helper()
		for i := 0; i < 10000 && !done(); i++ {
			p.PipeA.Flush()
			clk.Advance(10 * time.Millisecond)
		}
	}
	allPreferred := func() bool {
		for _, n := range []*stack.Netif{p.NetifA, p.NetifB} {
			for _, a := range n.Addrs() {
				if a.State != ip.Preferred {
					return false
				}
			}
		}
		return true
	}
	drive(allPreferred)
	if !allPreferred() {
		t.Fatalf("DAD: %+v / %+v", p.NetifA.Addrs(), p.NetifB.Addrs())
	}
	// No goroutines: requests go out and replies come back through the raw ping PCBs of the
	// core API, so every run takes the same steps.
	var replies []time.Time
	for i, dst := range []netip.Addr{addrB4.Addr(), addrB6.Addr()} {
		sent := clk.Now()
		var err error
		p.A.Callback(func() {
			var c *raw.PCB
			if c, err = p.A.Raw().NewPing(dst.Is6()); err != nil {
				return
			}
			c.OnRecv(func(c *raw.PCB, q *pbuf.Pbuf, _ *raw.RecvInfo) {
				if q.TotLen() == wire.ICMPv4HeaderLen+3000 {
					replies = append(replies, clk.Now())
				}
				q.Free()
			})
			q, e := p.A.Allocator().Alloc(pbuf.LayerIP, wire.ICMPv4HeaderLen+3000, pbuf.RAM)
			if err = e; err == nil {
				_ = q.CopyIn(ping.Request(dst, uint16(i), 3000), 0)
				err = c.SendTo(q, dst)
			}
		})
		if err != nil {
			t.Fatalf("send to %v: %v", dst, err)
		}
		drive(func() bool {
			n := 0
			p.A.Callback(func() { n = len(replies) })
			return n > i
		})
		if len(replies) <= i {
			t.Fatalf("no reply from %v", dst)
		}
		// Neighbour resolution and the exchange complete within one flush: no retry timer.
		if rtt := replies[i].Sub(sent); rtt != 0 {
			_, da := p.PipeA.Stats()
			_, db := p.PipeB.Stats()
			t.Errorf("ping %v: rtt %v on a fake clock, want 0 (pipe drops %d/%d)", dst, rtt, da, db)
		}
	}
	if s := p.B.Stats(); s.IPFrag.Recv != 3 || s.IP6Frag.Recv != 3 {
		t.Errorf("fragments received: v4 %+v v6 %+v", s.IPFrag, s.IP6Frag)
	}
}

// Closing the stack wakes a ping socket waiting for a reply, and everything is freed.
func TestCloseUnblocksPingAndFreesAll(t *testing.T) {
	p := newPair(t, link.MediumIP, opt.Tunnel(), nil)
	errc := make(chan error, 1)
	// B drops what is not its own: nothing will ever answer.
	go func() { errc <- pingOnce(context.Background(), p.A, netip.MustParseAddr("198.18.0.3"), 10) }()
	time.Sleep(50 * time.Millisecond)
	p.A.Close()
	if err := stacktest.WaitErr(t, errc, 5*time.Second, "ping after Close"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ping after Close: %v", err)
	}
	if err := pingOnce(context.Background(), p.A, addrB4.Addr(), 10); err == nil {
		t.Fatalf("ping on a closed stack: %v", err)
	}
}

func TestPingNoRoute(t *testing.T) {
	p := newPair(t, link.MediumIP, opt.Embedded(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := pingOnce(ctx, p.A, netip.MustParseAddr("198.19.9.9"), 10)
	if !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("ping without a route: %v", err)
	}
}

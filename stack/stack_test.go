package stack_test

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/stats"
)

var (
	addrA4 = netip.MustParsePrefix("198.18.0.1/24")
	addrB4 = netip.MustParsePrefix("198.18.0.2/24")
	addrA6 = netip.MustParsePrefix("fd42:5eed::1/64")
	addrB6 = netip.MustParsePrefix("fd42:5eed::2/64")
)

type pair struct {
	a, b   *stack.Stack
	na, nb *stack.Netif
	pa, pb *pipe.End
}

// newPair connects two stacks by a pipe of the given medium. clk nil: the real clock and an
// asynchronous pipe; a fake clock: a synchronous pipe the test drives.
func newPair(t *testing.T, medium link.Medium, o opt.Options, clk clock.Clock) *pair {
	t.Helper()
	stacktest.NoGoroutineLeak(t)
	pa, pb := pipe.New(pipe.Config{MTU: 1500, Medium: medium, Sync: clk != nil})
	p := &pair{pa: pa, pb: pb}
	var err error
	if p.a, err = stack.New(stack.Config{Options: o, Clock: clk, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, p.a)
	if p.b, err = stack.New(stack.Config{Options: o, Clock: clk, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, p.b)
	if p.na, err = p.a.AddNetif(pa, stack.NetifConfig{Name: "a0", Addrs: []netip.Prefix{addrA4, addrA6}}); err != nil {
		t.Fatal(err)
	}
	if p.nb, err = p.b.AddNetif(pb, stack.NetifConfig{Name: "b0", Addrs: []netip.Prefix{addrB4, addrB6}}); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitReady waits (real clock) until no address is tentative.
func waitReady(t *testing.T, ns ...*stack.Netif) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range ns {
		for {
			tentative := false
			for _, a := range n.Addrs() {
				if a.State == ip.Tentative {
					tentative = true
				}
			}
			if !tentative {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: DAD did not finish: %+v", n.Name(), n.Addrs())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestPingOverPipe(t *testing.T) {
	for _, medium := range []link.Medium{link.MediumEthernet, link.MediumIP} {
		for _, preset := range []string{"embedded", "tunnel"} {
			t.Run(medium.String()+"/"+preset, func(t *testing.T) {
				o, _ := opt.Preset(preset)
				p := newPair(t, medium, o, nil)
				waitReady(t, p.na, p.nb)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				for _, dst := range []netip.Addr{addrB4.Addr(), addrB6.Addr()} {
					for _, size := range []int{0, 56, 1400, 4000} {
						_, err := p.a.Ping(ctx, dst, size)
						if preset == "embedded" && size == 4000 {
							// lwIP's default heap is 1600 bytes: a 4000-byte datagram
							// cannot be built, and the stack says so.
							if !errors.Is(err, errs.Mem) {
								t.Fatalf("ping %v size %d with a 1600-byte heap: %v, want ERR_MEM", dst, size, err)
							}
							continue
						}
						if err != nil {
							t.Fatalf("ping %v size %d: %v", dst, size, err)
						}
					}
				}
				if preset == "embedded" { // it still receives and answers big fragmented pings
					if _, err := p.b.Ping(ctx, addrA4.Addr(), 100); err != nil {
						t.Fatal(err)
					}
				}
				// And the other way round.
				if _, err := p.b.Ping(ctx, addrA6.Addr(), 100); err != nil {
					t.Fatal(err)
				}
				sa := p.a.Stats()
				if sa.ICMP.Recv == 0 || sa.ICMP6.Recv == 0 {
					t.Errorf("ICMP counters did not move: %+v %+v", sa.ICMP, sa.ICMP6)
				}
				sb := p.b.Stats()
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
			p.pa.Flush()
			clk.Advance(10 * time.Millisecond)
		}
	}
	allPreferred := func() bool {
		for _, n := range []*stack.Netif{p.na, p.nb} {
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
		t.Fatalf("DAD: %+v / %+v", p.na.Addrs(), p.nb.Addrs())
	}
	// No goroutines: requests go out and replies come back through the core API, so every
	// run takes the same steps.
	var replies []time.Time
	p.a.Callback(func() {
		p.a.IP().SetEchoHandler(func(h *ip.Header, id, seq uint16, data []byte) {
			if len(data) == 3000 {
				replies = append(replies, clk.Now())
			}
		})
	})
	for i, dst := range []netip.Addr{addrB4.Addr(), addrB6.Addr()} {
		sent := clk.Now()
		var err error
		p.a.Callback(func() {
			err = p.a.IP().SendEcho(netip.Addr{}, dst, 9, uint16(i), make([]byte, 3000), ip.OutputOptions{})
		})
		if err != nil {
			t.Fatalf("send to %v: %v", dst, err)
		}
		drive(func() bool {
			n := 0
			p.a.Callback(func() { n = len(replies) })
			return n > i
		})
		if len(replies) <= i {
			t.Fatalf("no reply from %v", dst)
		}
		// Neighbour resolution and the exchange complete within one flush: no retry timer.
		if rtt := replies[i].Sub(sent); rtt != 0 {
			_, da := p.pa.Stats()
			_, db := p.pb.Stats()
			t.Errorf("ping %v: rtt %v on a fake clock, want 0 (pipe drops %d/%d)", dst, rtt, da, db)
		}
	}
	if s := p.b.Stats(); s.IPFrag.Recv != 3 || s.IP6Frag.Recv != 3 {
		t.Errorf("fragments received: v4 %+v v6 %+v", s.IPFrag, s.IP6Frag)
	}
}

// An idle stack arms no timer: after DAD and router solicitation end, an hour passes
// without a single wakeup.
func TestIdleStackNeverWakes(t *testing.T) {
	clk := clock.NewFake(time.Unix(1e9, 0))
	p := newPair(t, link.MediumEthernet, opt.Embedded(), clk)
	for i := 0; i < 6000; i++ { // one minute of start-up traffic
		p.pa.Flush()
		clk.Advance(10 * time.Millisecond)
	}
	p.pa.Flush()
	before := p.a.Stats().TimerWakeups + p.b.Stats().TimerWakeups
	if n := clk.Pending(); n != 0 {
		t.Fatalf("idle stacks keep %d clock timers armed", n)
	}
	clk.Advance(time.Hour)
	if after := p.a.Stats().TimerWakeups + p.b.Stats().TimerWakeups; after != before {
		t.Fatalf("idle stacks woke up %d times in an hour", after-before)
	}
}

func TestBudgetMatchesPools(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	for _, name := range opt.PresetNames() {
		o, _ := opt.Preset(name)
		s, err := stack.New(stack.Config{Options: o})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := pipe.New(pipe.Config{MTU: 1500, Medium: link.MediumEthernet})
		if _, err := s.AddNetif(a, stack.NetifConfig{}); err != nil {
			t.Fatal(err)
		}
		want, got := stack.BudgetFor(o), s.Budget()
		if want.Total != got.Total || len(want.Lines) != len(got.Lines) {
			t.Errorf("%s: budget %d bytes in %d lines, stack reserved %d in %d", name, want.Total, len(want.Lines), got.Total, len(got.Lines))
		}
		for i := range min(len(want.Lines), len(got.Lines)) {
			if want.Lines[i] != got.Lines[i] {
				t.Errorf("%s: budget line %+v, stack has %+v", name, want.Lines[i], got.Lines[i])
			}
		}
		var b strings.Builder
		want.WriteTable(&b)
		for _, pool := range []string{"PBUF_POOL", "MEM_HEAP", "REASSDATA", "TOTAL"} {
			if !strings.Contains(b.String(), pool) {
				t.Errorf("%s: budget table lacks %s:\n%s", name, pool, b.String())
			}
		}
		s.Close()
		a.Peer().Close()
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	o := opt.Embedded()
	o.PbufPoolBufSize = 10
	if _, err := stack.New(stack.Config{Options: o}); err == nil || !strings.Contains(err.Error(), "PbufPoolBufSize") {
		t.Fatalf("got %v", err)
	}
}

func TestCallbackAndAssertCore(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	s, err := stack.New(stack.Config{Options: opt.Embedded()})
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, s)
	ran := false
	s.Callback(func() {
		s.AssertCore()
		ran = true
	})
	if !ran {
		t.Fatal("Callback did not run")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("AssertCore outside the core did not panic")
		}
	}()
	s.AssertCore()
}

func TestCloseUnblocksPingAndFreesAll(t *testing.T) {
	p := newPair(t, link.MediumIP, opt.Tunnel(), nil)
	p.pb.Close() // nothing will ever answer
	errc := make(chan error, 1)
	go func() {
		_, err := p.a.Ping(context.Background(), netip.MustParseAddr("198.18.0.2"), 10)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	p.a.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, errs.Clsd) {
			t.Fatalf("Ping after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Ping")
	}
	if _, err := p.a.Ping(context.Background(), addrB4.Addr(), 10); !errors.Is(err, errs.Clsd) {
		t.Fatalf("Ping on a closed stack: %v", err)
	}
}

func TestPingNoRoute(t *testing.T) {
	p := newPair(t, link.MediumIP, opt.Embedded(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := p.a.Ping(ctx, netip.MustParseAddr("198.19.9.9"), 10)
	if !errors.Is(err, errs.Rte) {
		t.Fatalf("ping without a route: %v", err)
	}
	if p.a.Stats().IP.Rterr == 0 {
		t.Error("rterr not counted")
	}
}

func TestPublishExpvar(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	s, _ := stack.New(stack.Config{Options: opt.Embedded()})
	stacktest.Closed(t, s)
	// expvar names cannot be unpublished: a fresh name per run keeps -count=N working.
	name := fmt.Sprintf("wisp-test-stats-%d", time.Now().UnixNano())
	if err := s.Publish(name); err != nil {
		t.Fatal(err)
	}
	v, ok := expvar.Get(name).(expvar.Func)
	if !ok {
		t.Fatalf("%s is not published as a func", name)
	}
	if snap, ok := v.Value().(stats.Snapshot); !ok || len(snap.Pools) == 0 {
		t.Fatalf("expvar value %T has no pools", v.Value())
	}
	if err := s.Publish(name); err == nil {
		t.Fatal("publishing a name twice succeeded")
	}
}

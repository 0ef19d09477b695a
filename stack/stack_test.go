package stack_test

import (
	"expvar"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/stats"
)

// The netif prefixes of a stacktest.Pair.
var (
	addrA4, addrA6 = netip.PrefixFrom(stacktest.AddrA[0], 24), netip.PrefixFrom(stacktest.AddrA[1], 64)
	addrB4, addrB6 = netip.PrefixFrom(stacktest.AddrB[0], 24), netip.PrefixFrom(stacktest.AddrB[1], 64)
)

// newPair connects two stacks by a pipe of the given medium. clk nil: the real clock and an
// asynchronous pipe; a fake clock: a synchronous pipe the test drives.
func newPair(t *testing.T, medium link.Medium, o opt.Options, clk clock.Clock) *stacktest.Pair {
	t.Helper()
	return stacktest.NewPair(t, stacktest.PairConfig{Options: o, Medium: medium, Clock: clk})
}

// An idle stack arms no timer: after DAD and router solicitation end, an hour passes
// without a single wakeup.
func TestIdleStackNeverWakes(t *testing.T) {
	clk := clock.NewFake(time.Unix(1e9, 0))
	p := newPair(t, link.MediumEthernet, opt.Embedded(), clk)
	for i := 0; i < 6000; i++ { // one minute of start-up traffic
		p.PipeA.Flush()
		clk.Advance(10 * time.Millisecond)
	}
	p.PipeA.Flush()
	before := p.A.Stats().TimerWakeups + p.B.Stats().TimerWakeups
	if n := clk.Pending(); n != 0 {
		t.Fatalf("idle stacks keep %d clock timers armed", n)
	}
	clk.Advance(time.Hour)
	if after := p.A.Stats().TimerWakeups + p.B.Stats().TimerWakeups; after != before {
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

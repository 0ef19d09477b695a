package ping_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/internal/ping"
	"github.com/wispstack/wisp/stack/stacktest"
)

// TestRun pings both families between two stacks: every sequence number is reported once,
// in order, with a positive round-trip time.
func TestRun(t *testing.T) {
	p := stacktest.NewPair(t, stacktest.PairConfig{})
	stacktest.WaitReady(t, p.NetifA, p.NetifB)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, dst := range stacktest.AddrB {
		var seqs []int
		err := ping.Run(ctx, endpoint.New(p.A), dst, 1000, 3, func(seq int, rtt time.Duration) {
			if rtt <= 0 {
				t.Errorf("%v seq %d: rtt %v", dst, seq, rtt)
			}
			seqs = append(seqs, seq)
		})
		if err != nil {
			t.Fatalf("ping %v: %v", dst, err)
		}
		if len(seqs) != 3 || seqs[0] != 1 || seqs[2] != 3 {
			t.Fatalf("ping %v reported %v, want [1 2 3]", dst, seqs)
		}
	}
}

// TestOnceContext: a ping nobody answers ends with ctx's error when ctx ends.
func TestOnceContext(t *testing.T) {
	p := stacktest.NewPair(t, stacktest.PairConfig{})
	stacktest.WaitReady(t, p.NetifA, p.NetifB)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// On A's subnet, but no one has it: the echo goes out and nothing answers.
	_, err := ping.Once(ctx, endpoint.New(p.A), netip.MustParseAddr("198.18.0.3"), 10)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ping of a silent address: %v, want context.DeadlineExceeded", err)
	}
}

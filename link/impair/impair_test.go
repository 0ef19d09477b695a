package impair

import (
	"bytes"
	"math/bits"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/pbuf"
)

// rig is a sync pipe a↔b with the impairment wrapping a: TX effects show at b's dispatcher,
// RX effects at the impairment's dispatcher (frames written on b).
type rig struct {
	t     *testing.T
	alloc *pbuf.Allocator
	clk   *clock.Fake
	l     *Link
	b     *pipe.End
	atB   *linktest.Dispatcher
	atL   *linktest.Dispatcher
}

func newRig(t *testing.T, cfg Config) *rig {
	r := &rig{t: t, alloc: linktest.NewAllocator(), clk: clock.NewFake(time.Unix(0, 0))}
	a, b := pipe.New(pipe.Config{Sync: true, QueueLen: 4096, Medium: link.MediumIP, MTU: 2000})
	r.b = b
	r.l = New(a, r.clk, cfg)
	r.atB, r.atL = linktest.NewDispatcher(r.alloc), linktest.NewDispatcher(r.alloc)
	b.Attach(r.atB)
	r.l.Attach(r.atL)
	return r
}

func (r *rig) frame(i int) []byte {
	b := linktest.Pattern(100, byte(i))
	b[0], b[1] = byte(i>>8), byte(i)
	return b
}

// send writes n numbered frames one at a time through the impairment (TX) or from b (RX).
func (r *rig) send(n int, rx bool) {
	for i := range n {
		p := linktest.Frame(r.t, r.alloc, r.frame(i))
		if rx {
			r.b.WritePackets([]*pbuf.Pbuf{p})
		} else {
			r.l.WritePackets([]*pbuf.Pbuf{p})
		}
		r.b.Flush()
	}
}

func (r *rig) done() {
	r.t.Helper()
	r.l.Close()
	r.l.Close()
	linktest.CheckZero(r.t, r.alloc)
	if r.clk.Pending() != 0 {
		r.t.Error("timers left")
	}
}

func seqs(fs [][]byte) []int {
	var s []int
	for _, f := range fs {
		s = append(s, int(f[0])<<8|int(f[1]))
	}
	return s
}

func TestPassThrough(t *testing.T) {
	r := newRig(t, Config{})
	r.send(50, false)
	r.send(50, true)
	if r.atB.Count() != 50 || r.atL.Count() != 50 {
		t.Fatal(r.atB.Count(), r.atL.Count())
	}
	for i, f := range r.atL.Frames() {
		if !bytes.Equal(f, r.frame(i)) {
			t.Fatal("frame differs")
		}
	}
	r.done()
}

func TestLossDeterministic(t *testing.T) {
	run := func() ([]int, Counters) {
		r := newRig(t, Config{TX: Dir{Seed: 7, Loss: 0.3}})
		r.send(1000, false)
		tx, _ := r.l.Stats()
		got := seqs(r.atB.Frames())
		r.done()
		return got, tx
	}
	a, ca := run()
	b, cb := run()
	if ca != cb || len(a) != len(b) {
		t.Fatal("same seed, different decisions")
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("same seed, different frames")
		}
	}
	if ca.Lost < 240 || ca.Lost > 360 || ca.Passed+ca.Lost != 1000 {
		t.Fatalf("%+v", ca)
	}
}

func TestBurstLoss(t *testing.T) {
	r := newRig(t, Config{RX: Dir{Seed: 3, PGoodToBad: 0.05, PBadToGood: 0.3, LossInBad: 1}})
	r.send(2000, true)
	_, rx := r.l.Stats()
	if rx.BurstLost == 0 || rx.Lost != 0 || int(rx.Passed) != r.atL.Count() || rx.Passed+rx.BurstLost != 2000 {
		t.Fatalf("%+v", rx)
	}
	// Losses come in runs: find one of at least three.
	s := seqs(r.atL.Frames())
	longest := 0
	for i := 1; i < len(s); i++ {
		longest = max(longest, s[i]-s[i-1]-1)
	}
	if longest < 3 {
		t.Fatalf("longest run of losses %d", longest)
	}
	r.done()
}

func TestDuplicate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		rx    bool
		alloc bool
	}{
		{"tx-ref", Config{TX: Dir{Duplicate: 1}}, false, false},
		{"tx-copy", Config{TX: Dir{Duplicate: 1}}, false, true},
		{"rx", Config{RX: Dir{Duplicate: 1}}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.cfg)
			if tc.alloc {
				r.l.alloc = r.alloc
			}
			r.send(10, tc.rx)
			d := r.atB
			if tc.rx {
				d = r.atL
			}
			fs := d.Frames()
			if len(fs) != 20 {
				t.Fatal(len(fs))
			}
			for i := range 10 {
				if !bytes.Equal(fs[2*i], r.frame(i)) || !bytes.Equal(fs[2*i+1], r.frame(i)) {
					t.Fatal("duplicate differs")
				}
			}
			r.done()
		})
	}
}

func TestCorruptOneBit(t *testing.T) {
	for _, rx := range []bool{false, true} {
		r := newRig(t, Config{TX: Dir{Seed: 1, Corrupt: 1}, RX: Dir{Seed: 2, Corrupt: 1}})
		r.send(20, rx)
		d := r.atB
		if rx {
			d = r.atL
		}
		for i, f := range d.Frames() {
			want := r.frame(i)
			diff := 0
			for j := range f {
				diff += bits.OnesCount8(f[j] ^ want[j])
			}
			if diff != 1 {
				t.Fatalf("rx=%v frame %d: %d bits differ", rx, i, diff)
			}
		}
		r.done()
	}
	// A TX frame of shared memory is not corrupted in place without an allocator.
	r := newRig(t, Config{TX: Dir{Corrupt: 1}})
	keep := []byte("shared user memory")
	p, _ := r.alloc.AllocRef(keep, pbuf.REF, nil)
	r.l.WritePackets([]*pbuf.Pbuf{p})
	r.b.Flush()
	if tx, _ := r.l.Stats(); tx.CorruptSkipped != 1 || string(keep) != "shared user memory" {
		t.Fatal("corrupted shared memory")
	}
	r.done()
}

func TestDelayJitterReorder(t *testing.T) {
	r := newRig(t, Config{TX: Dir{Delay: 10 * time.Millisecond}})
	r.send(5, false)
	if r.atB.Count() != 0 {
		t.Fatal("delayed frames arrived early")
	}
	r.clk.Advance(9 * time.Millisecond)
	r.b.Flush()
	if r.atB.Count() != 0 {
		t.Fatal("early")
	}
	r.clk.Advance(time.Millisecond)
	r.b.Flush()
	if r.atB.Count() != 5 || r.clk.Pending() != 0 {
		t.Fatal(r.atB.Count())
	}
	r.done()

	r = newRig(t, Config{RX: Dir{Seed: 9, Reorder: 0.2, ReorderDelay: 5 * time.Millisecond, Jitter: time.Millisecond}})
	for i := range 100 {
		r.b.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, r.alloc, r.frame(i))})
		r.b.Flush()
		r.clk.Advance(time.Millisecond)
	}
	r.clk.Advance(time.Second)
	s := seqs(r.atL.Frames())
	inversions := 0
	for i := 1; i < len(s); i++ {
		if s[i] < s[i-1] {
			inversions++
		}
	}
	if len(s) != 100 || inversions == 0 {
		t.Fatalf("%d frames, %d inversions", len(s), inversions)
	}
	r.done()
}

func TestRateAndQueueBound(t *testing.T) {
	// 8000 bit/s = 1000 bytes/s; 100-byte frames; a bucket of one frame.
	r := newRig(t, Config{TX: Dir{RateBps: 8000, Burst: 100, QueueLen: 5}})
	r.send(10, false)
	tx, _ := r.l.Stats()
	if r.atB.Count() != 1 || tx.RateQueued != 5 || tx.QueueDropped != 4 {
		t.Fatalf("%d %+v", r.atB.Count(), tx)
	}
	for i := 1; i <= 5; i++ {
		r.clk.Advance(100 * time.Millisecond)
		r.b.Flush()
		if r.atB.Count() != 1+i {
			t.Fatalf("after %d×100ms: %d", i, r.atB.Count())
		}
	}
	if s := seqs(r.atB.Frames()); s[5] != 5 {
		t.Fatal(s)
	}
	r.done()
}

func TestMTUClampAndCloseFreesHeld(t *testing.T) {
	base := linktest.Goroutines()
	r := newRig(t, Config{TX: Dir{MTU: 50, Delay: time.Hour}})
	if r.l.MTU() != 50 {
		t.Fatal(r.l.MTU())
	}
	r.l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, r.alloc, make([]byte, 51)), linktest.Frame(t, r.alloc, make([]byte, 50))})
	if tx, _ := r.l.Stats(); tx.MTUDropped != 1 {
		t.Fatal(tx)
	}
	if h, _ := r.l.Held(); h != 1 {
		t.Fatal(h)
	}
	r.done()
	if n, err := r.l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, r.alloc, make([]byte, 5))}); n != 0 || err == nil {
		t.Fatal("write after close")
	}
	linktest.CheckZero(t, r.alloc)
	linktest.CheckGoroutines(t, base)
}

func TestRealClockAsyncPipe(t *testing.T) {
	base := linktest.Goroutines()
	alloc := linktest.NewAllocator()
	a, b := pipe.New(pipe.Config{})
	l := New(a, clock.Real, Config{TX: Dir{Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond, Seed: 4},
		RX: Dir{Delay: time.Millisecond}})
	atB, atL := linktest.NewDispatcher(alloc), linktest.NewDispatcher(alloc)
	b.Attach(atB)
	l.Attach(atL)
	for i := range 20 {
		l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, alloc, linktest.Pattern(60, byte(i)))})
		b.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, alloc, linktest.Pattern(60, byte(i)))})
	}
	if !atB.Wait(20, 5*time.Second) || !atL.Wait(20, 5*time.Second) {
		t.Fatal(atB.Count(), atL.Count())
	}
	// Leave some frames held at Close.
	l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, alloc, make([]byte, 60))})
	l.Close()
	linktest.CheckZero(t, alloc)
	linktest.CheckGoroutines(t, base)
}

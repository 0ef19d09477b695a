package cc

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// ops reads an event sequence from bytes, so that the fuzzer and a seeded random test
// drive the same interpreter.
type ops struct{ b []byte }

func (o *ops) more() bool { return len(o.b) > 0 }

func (o *ops) u8() uint8 {
	if len(o.b) == 0 {
		return 0
	}
	v := o.b[0]
	o.b = o.b[1:]
	return v
}

func (o *ops) u64() uint64 {
	var x [8]byte
	n := copy(x[:], o.b)
	o.b = o.b[n:]
	return binary.LittleEndian.Uint64(x[:])
}

// size picks a byte count, favouring the edges: zero, negative, tiny, segment-sized and
// absurdly large.
func (o *ops) size(mss int) int {
	v := o.u64()
	switch o.u8() % 10 {
	case 0:
		return 0
	case 1:
		return -int(v % (1 << 40))
	case 2:
		return int(v % 16)
	case 3:
		return mss
	case 4:
		return 2 * mss
	case 5:
		return int(v % (1 << 20))
	case 6:
		return int(v % (1 << 31))
	case 7:
		return int(v >> 1) // up to MaxInt64
	case 8:
		return math.MaxInt
	default:
		return int(v%64) * mss
	}
}

// dur picks a duration: tiny steps, RTT-sized steps, years either way, the extremes.
func (o *ops) dur() time.Duration {
	v := o.u64()
	switch o.u8() % 8 {
	case 0:
		return 0
	case 1:
		return time.Duration(v % uint64(time.Millisecond))
	case 2:
		return time.Duration(v % uint64(time.Second))
	case 3:
		return time.Duration(v % uint64(100*time.Second))
	case 4:
		return time.Duration(v%100) * 365 * 24 * time.Hour
	case 5:
		return -time.Duration(v%100) * 365 * 24 * time.Hour
	case 6:
		return math.MaxInt64
	default:
		return math.MinInt64
	}
}

func (o *ops) mss() int {
	v := o.u64()
	switch o.u8() % 6 {
	case 0:
		return 0
	case 1:
		return -int(v % 1000)
	case 2:
		return int(v % 70000)
	case 3:
		return 1 << 40
	case 4:
		return []int{536, 1220, 1440, 1460, 8960, 65495}[v%6]
	default:
		return 1
	}
}

// run interprets data against c and checks the invariants after every event.
func run(t testing.TB, c Controller, data []byte) {
	o := ops{data}
	now := t0
	c.Init(1460, 10, now)
	checkInvariants(t, c, "init")
	for i := 0; o.more(); i++ {
		op := o.u8() % 10
		mss := 1460
		switch c := c.(type) {
		case *NewReno:
			mss = c.mss
		case *CUBIC:
			mss = c.mss
		}
		switch op {
		case 0, 1, 2, 3: // ACKs dominate, as they do on the wire
			now = now.Add(o.dur() % (10 * time.Second))
			c.OnAck(o.size(mss), o.dur(), o.dur(), o.size(mss), o.u8()%4 != 0, now)
		case 4:
			c.OnCongestion(o.size(mss), now)
		case 5:
			c.OnRecoveryExit(now)
		case 6:
			c.OnRTO(o.size(mss), now)
		case 7:
			c.Undo()
		case 8:
			if o.u8()%2 == 0 {
				c.OnIdle(o.dur(), now)
			} else {
				c.SetMSS(o.mss())
			}
		case 9:
			if o.u8()%8 == 0 {
				c.Init(o.mss(), o.size(1), now)
			} else {
				now = now.Add(o.dur())
			}
		}
		checkInvariants(t, c, c.Name()+" op")
		if t.Failed() {
			t.Fatalf("after op %d (%d)", i, op)
		}
	}
}

// FuzzController: no event sequence, however absurd, takes cwnd out of [SMSS, MaxWindow]
// or ssthresh below 2*SMSS, or puts a NaN or Inf into CUBIC's state.
func FuzzController(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 4, 5, 6})
	f.Add([]byte{4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 7, 5, 0, 1, 2})
	r := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		b := make([]byte, 512)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		run(t, new(NewReno), data)
		run(t, new(CUBIC), data)
	})
}

// TestRandomEvents runs seeded random sequences through the fuzz interpreter.
func TestRandomEvents(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 30
	}
	r := rand.New(rand.NewPCG(42, 7))
	b := make([]byte, 20000)
	for range n {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		run(t, new(NewReno), b)
		run(t, new(CUBIC), b)
	}
}

// A long healthy run of ACKs never exceeds MaxWindow, in either algorithm, even with
// absurd ACK sizes and without losses.
func TestGrowthSaturates(t *testing.T) {
	for _, c := range controllers() {
		now := t0
		for i := range 200000 {
			now = now.Add(time.Millisecond)
			c.OnAck(1<<40, time.Millisecond, time.Millisecond, c.Cwnd(), true, now)
			if i == 1000 {
				c.OnCongestion(c.Cwnd(), now) // into congestion avoidance
				c.OnRecoveryExit(now)
			}
		}
		checkInvariants(t, c, "saturation")
		if c.Name() == "cubic" && c.Cwnd() != MaxWindow {
			t.Fatalf("cubic: cwnd %d after 200 s of convex growth", c.Cwnd())
		}
	}
}

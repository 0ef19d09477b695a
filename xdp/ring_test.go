package xdp

import (
	"testing"
	"unsafe"
)

// shared is a ring's memory as the kernel shares it: indices, flags, entries.
type shared struct {
	prod, cons, flags uint32
	entries           [8]desc
}

func newTestRing(s *shared, prodSide bool) ring {
	return newRing(&s.prod, &s.cons, &s.flags, unsafe.Pointer(&s.entries[0]), uint32(len(s.entries)), prodSide)
}

func TestRingProducer(t *testing.T) {
	for _, start := range []uint32{0, 1 << 31, ^uint32(0) - 3} { // wrap-around of the free-running indices
		var s shared
		s.prod, s.cons = start, start
		r := newTestRing(&s, true)
		if f := r.free(); f != 8 {
			t.Fatalf("start %#x: free %d, want 8", start, f)
		}
		i, n := r.reserve(5)
		if n != 5 || i != start {
			t.Fatalf("reserve 5: %d at %#x", n, i)
		}
		for k := range n {
			r.desc(i + k).Addr = uint64(k)
		}
		if s.prod != start {
			t.Fatal("published before submit")
		}
		r.submit()
		if s.prod != start+5 {
			t.Fatalf("producer %#x after submit", s.prod)
		}
		if _, n := r.reserve(5); n != 3 {
			t.Fatalf("reserve with 3 free got %d", n)
		}
		r.submit()
		if _, n := r.reserve(1); n != 0 {
			t.Fatal("reserved in a full ring")
		}
		// The kernel consumes 6: they become free only when the cached consumer is reloaded.
		s.cons += 6
		if _, n := r.reserve(6); n != 6 {
			t.Fatalf("after consumption reserve got %d", n)
		}
		r.submit()
		if s.prod-s.cons != 8 {
			t.Fatalf("fill level %d", s.prod-s.cons)
		}
		if r.desc(start+8).Addr != r.desc(start).Addr || &s.entries[(start+8)&7] != r.desc(start+8) {
			t.Fatal("entry index not masked")
		}
	}
}

func TestRingConsumer(t *testing.T) {
	for _, start := range []uint32{0, ^uint32(0) - 2} {
		var s shared
		s.prod, s.cons = start, start
		r := newTestRing(&s, false)
		if _, n := r.peek(4); n != 0 {
			t.Fatal("peeked an empty ring")
		}
		for k := range uint32(6) {
			s.entries[(start+k)&7].Addr = uint64(100 + k)
		}
		s.prod += 6
		i, n := r.peek(4)
		if n != 4 || r.desc(i).Addr != 100 || r.desc(i+3).Addr != 103 {
			t.Fatalf("peek 4: %d at %#x", n, i)
		}
		if s.cons != start {
			t.Fatal("released before release")
		}
		r.release()
		if s.cons != start+4 {
			t.Fatalf("consumer %#x", s.cons)
		}
		i, n = r.peek(4)
		if n != 2 || r.desc(i).Addr != 104 {
			t.Fatalf("peek rest: %d", n)
		}
		r.release()
		if s.cons != s.prod {
			t.Fatal("not all consumed")
		}
	}
}

func TestRingAddrEntries(t *testing.T) {
	var mem [4]uint64
	var prod, cons, flags uint32
	r := newRing(&prod, &cons, &flags, unsafe.Pointer(&mem[0]), 4, true)
	i, n := r.reserve(4)
	for k := range n {
		*r.addr(i + k) = uint64(k) * 2048
	}
	r.submit()
	if mem != [4]uint64{0, 2048, 4096, 6144} || prod != 4 {
		t.Fatalf("%v %d", mem, prod)
	}
	flags = xdpRingNeedWakeup
	if !r.needWakeup() {
		t.Fatal("need_wakeup not seen")
	}
}

func TestFramePool(t *testing.T) {
	p := newFramePool(4096, 4, 2048)
	seen := map[uint64]bool{}
	for range 4 {
		a, ok := p.get()
		if !ok || a < 4096 || a >= 4096+4*2048 || a%2048 != 0 || seen[a] {
			t.Fatalf("get %d %v", a, ok)
		}
		seen[a] = true
	}
	if _, ok := p.get(); ok {
		t.Fatal("get from an empty pool")
	}
	for a := range seen {
		p.put(a)
	}
	if p.len() != 4 {
		t.Fatal(p.len())
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a fifth frame was accepted")
		}
	}()
	p.put(4096)
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{Interface: "x"}.withDefaults()
	if err != nil || c.Queues != 1 || c.FrameSize != 2048 || c.RingSize != 2048 || c.Batch != 64 {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []Config{
		{},
		{Interface: "x", FrameSize: 3000},
		{Interface: "x", RingSize: 1000},
		{Interface: "x", Queues: 65},
		{Interface: "x", MTU: 2000},
		{Interface: "x", Batch: 4096, RingSize: 1024},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if c, err := (Config{Interface: "x", FrameSize: 4096, MTU: 3826}).withDefaults(); err != nil || c.maxMTU() != 3826 {
		t.Fatal(err)
	}
}

package memp

import (
	"sync"
	"testing"
	"unsafe"
)

type pbufSized struct {
	a    [11]uintptr
	b, c int32
}

func BenchmarkGetPut(b *testing.B) {
	p := New[pbufSized](Pbuf, 1024, 0)
	for b.Loop() {
		x := p.Get()
		p.Put(x)
	}
}

// BenchmarkGetPut8 holds eight elements at a time, as a chain of pbufs does.
func BenchmarkGetPut8(b *testing.B) {
	p := New[pbufSized](Pbuf, 1024, 0)
	var xs [8]*pbufSized
	for b.Loop() {
		for i := range xs {
			xs[i] = p.Get()
		}
		for _, x := range xs {
			p.Put(x)
		}
	}
}

func TestGetPutNoAllocs(t *testing.T) {
	p := New[pbufSized](Pbuf, 4, 0)
	if n := testing.AllocsPerRun(100, func() { p.Put(p.Get()) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
	// A lazy pool allocates when it makes a chunk, then never again for the same mark.
	l := NewLazy[pbufSized](TCPPCB, 1000, 0)
	if n := testing.AllocsPerRun(100, func() { l.Put(l.Get()) }); n != 0 {
		t.Errorf("lazy pool: %v allocations", n)
	}
}

type odd struct{ b [3]byte } // size 3: Index's inverse of an odd part

type mixed struct{ b [24]byte } // size 24 = 8*3

// TestIndexSizes checks Index (multiplication by an inverse, no division) against every
// element and against pointers into the middle of elements, for several element sizes.
func TestIndexSizes(t *testing.T) {
	checkIndex(t, New[odd](UDPPCB, 50, 0))
	checkIndex(t, New[mixed](UDPPCB, 50, 0))
	checkIndex(t, New[pbufSized](UDPPCB, 50, 0))
	for _, l := range []*Pool[odd]{NewLazy[odd](UDPPCB, 50, 0), NewLazy[odd](UDPPCB, 1000, 0)} {
		for l.Get() != nil { // make every chunk
		}
		checkIndex(t, l)
	}
	lm := NewLazy[mixed](TCPPCB, 700, 0)
	for lm.Get() != nil {
	}
	checkIndex(t, lm)
}

func checkIndex[T any](t *testing.T, p *Pool[T]) {
	t.Helper()
	for i := range p.Cap() {
		if got := p.Index(p.At(i)); got != i {
			t.Fatalf("Index(At(%d)) = %d", i, got)
		}
	}
	mid := (*T)(unsafe.Add(unsafe.Pointer(p.At(3)), 1))
	mustPanic(t, "inside an element", func() { p.Index(mid) })
	var other T
	mustPanic(t, "foreign", func() { p.Index(&other) })
}

// TestShared checks pools sharing one lock: batches under Lock, stats exact.
func TestShared(t *testing.T) {
	var mu sync.Mutex
	a := NewShared[elem](Pbuf, 4, 0, &mu)
	b := NewShared[elem](PbufRAM, 4, 0, &mu)
	a.Lock()
	x, i := a.GetLocked()
	y, _ := b.GetLocked()
	a.Unlock()
	if x == nil || y == nil || i != 0 {
		t.Fatal("GetLocked failed")
	}
	if !mu.TryLock() {
		t.Fatal("lock still held")
	}
	mu.Unlock()
	if s := a.Stats(); s.Used != 1 || s.Max != 1 {
		t.Fatalf("stats %+v", s)
	}
	b.Lock()
	b.PutLocked(y)
	b.Unlock()
	a.Put(x)
	mustPanic(t, "double free", func() { a.Put(x) })
	if s, r := a.Stats(), b.Stats(); s.Used != 0 || r.Used != 0 {
		t.Fatalf("stats %+v %+v", s, r)
	}
}

// BenchmarkLazyGetPutIndex is the path of pbuf's header pools: a lazy pool, grown, freed
// by index.
func BenchmarkLazyGetPutIndex(b *testing.B) {
	p := NewLazy[pbufSized](Pbuf, 16384, 0)
	var xs [8]*pbufSized
	var is [8]int
	for i := range xs { // grow past a few chunks
		xs[i], is[i] = p.GetIndex()
	}
	for i := range xs {
		p.PutIndex(xs[i], is[i])
	}
	for b.Loop() {
		for i := range xs {
			xs[i], is[i] = p.GetIndex()
		}
		for i := range xs {
			p.PutIndex(xs[i], is[i])
		}
	}
}

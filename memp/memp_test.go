package memp

import (
	"sync"
	"testing"
)

type elem struct {
	a, b int
	p    *int
}

func TestPoolExhaustionAndReuse(t *testing.T) {
	p := New[elem](TCPPCB, 3, 0)
	var got []*elem
	for i := 0; i < 3; i++ {
		e := p.Get()
		if e == nil {
			t.Fatalf("Get %d failed", i)
		}
		e.a = i + 1
		got = append(got, e)
	}
	if p.Get() != nil {
		t.Fatal("Get beyond capacity succeeded")
	}
	st := p.Stats()
	if st.Name != "TCP_PCB" || st.Used != 3 || st.Max != 3 || st.Err != 1 || st.Avail != 3 {
		t.Fatalf("stats %+v", st)
	}
	p.Put(got[1])
	e := p.Get()
	if e != got[1] || e.a != 0 {
		t.Fatalf("reuse: got %p (a=%d), want zeroed %p", e, e.a, got[1])
	}
	for _, e := range got {
		p.Put(e)
	}
	if st := p.Stats(); st.Used != 0 || st.Max != 3 {
		t.Fatalf("after Put: %+v", st)
	}
}

func TestPoolRejectsForeignAndDoubleFree(t *testing.T) {
	p := New[elem](UDPPCB, 2, 0)
	e := p.Get()
	p.Put(e)
	mustPanic(t, "double free", func() { p.Put(e) })
	mustPanic(t, "foreign", func() { p.Put(&elem{}) })
	empty := New[elem](UDPPCB, 0, 0)
	if empty.Get() != nil {
		t.Fatal("empty pool handed out an element")
	}
}

func TestPoolConcurrent(t *testing.T) {
	p := New[elem](Pbuf, 64, 0)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				if e := p.Get(); e != nil {
					p.Put(e)
				}
			}
		}()
	}
	wg.Wait()
	if st := p.Stats(); st.Used != 0 {
		t.Fatalf("used %d after balanced Get/Put", st.Used)
	}
}

func TestPoolAllocs(t *testing.T) {
	p := New[elem](Pbuf, 4, 0)
	if n := testing.AllocsPerRun(1000, func() { p.Put(p.Get()) }); n != 0 {
		t.Fatalf("Get/Put allocates %v times", n)
	}
}

func TestTable(t *testing.T) {
	var tb Table
	tb.Register(PbufPool, New[elem](PbufPool, 2, 100))
	tb.Register(RawPCB, New[elem](RawPCB, 1, 0))
	s := tb.Snapshot(nil)
	if len(s) != 2 || s[0].Name != "RAW_PCB" || s[1].Name != "PBUF_POOL" {
		t.Fatalf("snapshot order %+v", s)
	}
	if s[1].Size != ElemSize[elem](100) || s[1].Bytes() != 2*s[1].Size {
		t.Fatalf("size %+v", s[1])
	}
	mustPanic(t, "register twice", func() { tb.Register(RawPCB, New[elem](RawPCB, 1, 0)) })
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}

// A lazy pool makes its elements in chunks as the high-water mark rises, hands them out
// lowest index first like an eager pool, never exceeds its size, and rejects foreign
// elements and double frees.
func TestLazyPool(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 100, 4096, 5000} {
		p := NewLazy[elem](TCPPCB, n, 0)
		if st := p.Stats(); st.Avail != n || st.Size != ElemSize[elem](0) {
			t.Fatalf("n=%d: stats %+v", n, st)
		}
		made := func() (c int) {
			for _, ch := range p.chunks {
				c += len(ch)
			}
			return c
		}
		if made() != 0 {
			t.Fatalf("n=%d: %d elements made before any Get", n, made())
		}
		got := make([]*elem, 0, n)
		for i := 0; i < n; i++ {
			e, idx := p.GetIndex()
			if e == nil || idx != i {
				t.Fatalf("n=%d: Get %d gave %p index %d", n, i, e, idx)
			}
			if e.a != 0 {
				t.Fatalf("n=%d: element %d not zeroed", n, i)
			}
			e.a = i + 1
			if p.At(i) != e || p.Index(e) != i {
				t.Fatalf("n=%d: At/Index of %d disagree", n, i)
			}
			got = append(got, e)
			if i == 0 && n > 64 && made() >= n {
				t.Fatalf("n=%d: first Get made every element", n)
			}
		}
		if made() != n {
			t.Fatalf("n=%d: %d elements made for %d in use", n, made(), n)
		}
		if p.Get() != nil {
			t.Fatalf("n=%d: Get beyond capacity succeeded", n)
		}
		if p.Stats().Err != 1 {
			t.Fatalf("n=%d: exhaustion not counted: %+v", n, p.Stats())
		}
		last := got[len(got)-1]
		p.Put(last)
		if e := p.Get(); e != last || e.a != 0 {
			t.Fatalf("n=%d: reuse gave %p a=%d, want zeroed %p", n, e, e.a, last)
		}
		for _, e := range got {
			p.Put(e)
		}
		mustPanic(t, "double free", func() { p.Put(got[0]) })
		mustPanic(t, "foreign", func() { p.Put(&elem{}) })
		if st := p.Stats(); st.Used != 0 || st.Max != n {
			t.Fatalf("n=%d: after Put %+v", n, st)
		}
	}
	p := NewLazy[elem](UDPPCB, 100, 0)
	if p.At(99) != nil {
		t.Fatal("At of a never-made element is not nil")
	}
	if NewLazy[elem](UDPPCB, 0, 0).Get() != nil {
		t.Fatal("empty lazy pool handed out an element")
	}
	mustPanic(t, "zero-size", func() { NewLazy[struct{}](UDPPCB, 4, 0) })
}

// Concurrent Get/Put on a lazy pool while it grows (run with -race).
func TestLazyPoolConcurrent(t *testing.T) {
	p := NewLazy[elem](TCPPCB, 512, 0)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*elem
			for i := 0; i < 2000; i++ {
				if e := p.Get(); e != nil {
					mine = append(mine, e)
				}
				if len(mine) > 40 || i%3 == 0 && len(mine) > 0 {
					p.Put(mine[0])
					mine = mine[1:]
				}
			}
			for _, e := range mine {
				p.Put(e)
			}
		}()
	}
	wg.Wait()
	if st := p.Stats(); st.Used != 0 {
		t.Fatalf("used %d after balanced Get/Put", st.Used)
	}
}

// A lazy pool sharing its owner's lock (pbuf's headers): no element made before the first
// Get, PutIndex frees in constant time and rejects a wrong index, the free list grows with
// the chunks, and the in-use bits stay exact past one 64-bit word.
func TestLazySharedPutIndex(t *testing.T) {
	var mu sync.Mutex
	const n = 1000
	p := NewLazyShared[elem](Pbuf, n, 0, &mu)
	if p.chunks[0] != nil || cap(p.free) != 0 {
		t.Fatalf("made %d elements, free list cap %d before any Get", len(p.chunks[0]), cap(p.free))
	}
	xs := make([]*elem, 0, n)
	is := make([]int, 0, n)
	p.Lock()
	for {
		x, i := p.GetLocked()
		if x == nil {
			break
		}
		xs, is = append(xs, x), append(is, i)
	}
	p.Unlock()
	if len(xs) != n || cap(p.free) < n {
		t.Fatalf("got %d of %d, free list cap %d", len(xs), n, cap(p.free))
	}
	mustPanic(t, "wrong index", func() { p.PutIndex(xs[1], is[2]) })
	mustPanic(t, "index out of range", func() { p.PutIndex(xs[1], n) })
	for k, x := range xs {
		if !p.InUse(is[k]) {
			t.Fatalf("element %d not in use", is[k])
		}
		p.PutIndex(x, is[k])
		if p.InUse(is[k]) {
			t.Fatalf("element %d in use after PutIndex", is[k])
		}
	}
	mustPanic(t, "double free", func() { p.PutIndex(xs[5], is[5]) })
	if !mu.TryLock() {
		t.Fatal("lock still held after PutIndex panicked")
	}
	mu.Unlock()
	if st := p.Stats(); st.Used != 0 || st.Max != n {
		t.Fatalf("stats %+v", st)
	}
	// Made once, the pool allocates nothing per Get/PutIndex.
	if a := testing.AllocsPerRun(100, func() {
		x, i := p.GetIndex()
		p.PutIndex(x, i)
	}); a != 0 {
		t.Errorf("%v allocations", a)
	}
}

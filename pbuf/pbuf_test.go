package pbuf

import (
	"bytes"
	"errors"
	"math/rand"
	"slices"
	"testing"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/memp"
)

func newTestAlloc() *Allocator {
	return NewAllocator(Config{PoolCount: 8, PoolBufSize: 256, HeapSize: 16 << 10, RefCount: 8, RAMCount: 8})
}

// checkZero fails the test if any pool or heap byte is still in use: linktest.CheckZero,
// which this internal test cannot import (linktest imports pbuf).
func checkZero(t *testing.T, a *Allocator) {
	t.Helper()
	var tb memp.Table
	a.Register(&tb)
	for _, s := range tb.Snapshot(nil) {
		if s.Used != 0 {
			t.Errorf("pool %s: %d in use", s.Name, s.Used)
		}
	}
	if h := a.HeapStats(); h.Used != 0 {
		t.Errorf("heap: %d bytes in use", h.Used)
	}
}

func mustCheck(t *testing.T, p *Pbuf) {
	t.Helper()
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func TestPoolChainLayoutAndCopy(t *testing.T) {
	a := newTestAlloc()
	p, err := a.Alloc(LayerTransport, 600, POOL)
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, p)
	// 124 bytes of header room, then 132 + 256 + 212.
	if p.Len() != 256-int(LayerTransport) || p.Next().Len() != 256 || p.Next().Next().Len() != 600-132-256 || p.TotLen() != 600 {
		t.Fatalf("layout %d %d %d", p.Len(), p.Next().Len(), p.Next().Next().Len())
	}
	data := pattern(600)
	if err := p.CopyIn(data, 0); err != nil {
		t.Fatal(err)
	}
	if got := p.Bytes(nil); !bytes.Equal(got, data) {
		t.Fatal("CopyIn/Bytes round trip")
	}
	out := make([]byte, 300)
	if n := p.CopyOut(out, 100); n != 300 || !bytes.Equal(out, data[100:400]) {
		t.Fatalf("CopyOut at 100: %d", n)
	}
	if b, ok := p.ByteAt(599); !ok || b != data[599] {
		t.Fatal("ByteAt")
	}
	if _, ok := p.ByteAt(600); ok {
		t.Fatal("ByteAt past the end")
	}
	if err := p.CopyIn(data, 1); !errors.Is(err, errs.Buf) {
		t.Fatalf("CopyIn overflow: %v", err)
	}
	// Prepend headers down to the bottom of the room and no further.
	if err := p.AddHeader(int(LayerTransport)); err != nil {
		t.Fatal(err)
	}
	if err := p.AddHeader(1); !errors.Is(err, errs.Buf) {
		t.Fatal("AddHeader beyond the room")
	}
	mustCheck(t, p)
	if err := p.RemoveHeader(int(LayerTransport)); err != nil {
		t.Fatal(err)
	}
	if got := p.Bytes(nil); !bytes.Equal(got, data) {
		t.Fatal("header add/remove changed the payload")
	}
	if n := p.Free(); n != 3 {
		t.Fatalf("Free released %d, want 3", n)
	}
	checkZero(t, a)
}

func TestExhaustionReleasesPartialChain(t *testing.T) {
	a := newTestAlloc()
	if _, err := a.Alloc(LayerRaw, 9*256, POOL); !errors.Is(err, errs.Mem) {
		t.Fatalf("over-size POOL alloc: %v", err)
	}
	checkZero(t, a) // the 8 chunks taken before failing went back
	var held []*Pbuf
	for {
		p, err := a.Alloc(LayerIP, 1000, RAM)
		if err != nil {
			if !errors.Is(err, errs.Mem) {
				t.Fatal(err)
			}
			break
		}
		held = append(held, p)
	}
	if len(held) != 8 { // 8 RAM headers, 16 KiB heap of 1 KiB... blocks: headers run out first
		t.Fatalf("held %d RAM pbufs", len(held))
	}
	for _, p := range held {
		p.Free()
	}
	checkZero(t, a)
}

func TestRefCountsAndChains(t *testing.T) {
	a := newTestAlloc()
	h, _ := a.Alloc(LayerLink, 20, RAM)
	t1, _ := a.Alloc(LayerRaw, 300, POOL)
	Chain(h, t1) // caller keeps its t1 reference
	mustCheck(t, h)
	if h.TotLen() != 320 || t1.Refs() != 2 {
		t.Fatalf("Chain: tot %d refs %d", h.TotLen(), t1.Refs())
	}
	if n := h.Free(); n != 1 {
		t.Fatalf("freeing head released %d, want only the head", n)
	}
	mustCheck(t, t1)
	t1.Free()
	checkZero(t, a)

	h, _ = a.Alloc(LayerLink, 20, RAM)
	t2, _ := a.Alloc(LayerRaw, 10, RAM)
	Cat(h, t2)
	h.Ref()
	h.Free()
	mustCheck(t, h)
	rest := h.Dechain()
	if rest != t2 || h.TotLen() != 20 || h.Next() != nil {
		t.Fatal("Dechain")
	}
	h.Free()
	rest.Free()
	checkZero(t, a)
}

type releaser struct{ n int }

func (r *releaser) Release() { r.n++ }

func TestRefPbufZeroCopy(t *testing.T) {
	a := newTestAlloc()
	data := pattern(5000)
	var r releaser
	p, err := a.AllocRef(data, REF, &r)
	if err != nil {
		t.Fatal(err)
	}
	if &p.Payload()[0] != &data[0] {
		t.Fatal("REF pbuf copied the data")
	}
	if p.HeaderRoom() != 0 {
		t.Fatal("REF pbuf claims header room")
	}
	hdr, _ := a.Alloc(LayerIP, 20, RAM)
	Cat(hdr, p)
	mustCheck(t, hdr)
	hdr.Free()
	if r.n != 1 {
		t.Fatalf("releaser called %d times", r.n)
	}
	rom, _ := a.AllocRef([]byte("constant"), ROM, nil)
	rom.Free()
	if _, err := a.AllocRef(data, RAM, nil); !errors.Is(err, errs.Val) {
		t.Fatal("AllocRef of RAM accepted")
	}
	checkZero(t, a)
}

func TestSplitAndShrink(t *testing.T) {
	a := newTestAlloc()
	for _, at := range []int{1, 100, 132, 133, 388, 599} {
		p, _ := a.Alloc(LayerTransport, 600, POOL)
		data := pattern(600)
		p.CopyIn(data, 0)
		tail, err := p.Split(at)
		if err != nil {
			t.Fatal(at, err)
		}
		mustCheck(t, p)
		mustCheck(t, tail)
		if !bytes.Equal(p.Bytes(nil), data[:at]) || !bytes.Equal(tail.Bytes(nil), data[at:]) {
			t.Fatalf("split at %d lost bytes", at)
		}
		// Free in both orders.
		if at%2 == 0 {
			p.Free()
			tail.Free()
		} else {
			tail.Free()
			p.Free()
		}
		checkZero(t, a)
	}
	for _, n := range []int{0, 1, 131, 132, 133, 500, 600} {
		p, _ := a.Alloc(LayerTransport, 600, POOL)
		data := pattern(600)
		p.CopyIn(data, 0)
		p.Shrink(n)
		mustCheck(t, p)
		if !bytes.Equal(p.Bytes(nil), data[:n]) {
			t.Fatalf("shrink to %d", n)
		}
		p.Free()
		checkZero(t, a)
	}
}

func TestClone(t *testing.T) {
	a := newTestAlloc()
	p, _ := a.Alloc(LayerRaw, 700, POOL)
	data := pattern(700)
	p.CopyIn(data, 0)
	p.SetFlags(FlagLinkBroadcast)
	c, err := a.Clone(LayerIP, RAM, p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Next() != nil || !bytes.Equal(c.Bytes(nil), data) || c.Flags() != FlagLinkBroadcast || c.HeaderRoom() != int(LayerIP) {
		t.Fatal("clone")
	}
	p.Free()
	c.Free()
	checkZero(t, a)
}

func TestDoubleFreePanics(t *testing.T) {
	a := newTestAlloc()
	p, _ := a.Alloc(LayerRaw, 10, POOL)
	p.Free()
	defer func() {
		if recover() == nil {
			t.Fatal("double Free did not panic")
		}
	}()
	p.Free()
}

// The heap returns every block to its roots once everything is freed, whatever the order.
func TestHeapRandomized(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, size := range []int{1600, 4096, 100 << 10, 1 << 20} {
		h := newHeap(size)
		initial := h.freeCounts()
		type blk struct {
			u int32
			k int
		}
		var live []blk
		for i := 0; i < 5000; i++ {
			if len(live) > 0 && rng.Intn(3) == 0 {
				j := rng.Intn(len(live))
				h.release(live[j].u)
				live = append(live[:j], live[j+1:]...)
				continue
			}
			n := 1 + rng.Intn(MaxRAMBlock>>uint(rng.Intn(11)))
			u, k := h.alloc(n)
			if u < 0 {
				continue
			}
			if heapUnit<<k < n {
				t.Fatalf("block of order %d for %d bytes", k, n)
			}
			// No overlap with any live block.
			for _, b := range live {
				lo, hi := int(b.u), int(b.u)+1<<b.k
				if int(u) < hi && lo < int(u)+1<<k {
					t.Fatalf("overlap: [%d,+%d) and [%d,+%d)", u, 1<<k, lo, 1<<b.k)
				}
			}
			live = append(live, blk{u, k})
		}
		for _, b := range live {
			h.release(b.u)
		}
		if h.freeCounts() != initial || h.st.Used != 0 {
			t.Fatalf("size %d: heap did not merge back (used %d)", size, h.st.Used)
		}
		if h.st.Max > h.st.Avail {
			t.Fatalf("heap handed out %d of %d bytes", h.st.Max, h.st.Avail)
		}
	}
}

func TestAllocFreeAllocs(t *testing.T) {
	a := newTestAlloc()
	for _, typ := range []Type{POOL, RAM} {
		n := testing.AllocsPerRun(1000, func() {
			p, err := a.Alloc(LayerTransport, 500, typ)
			if err != nil {
				panic(err)
			}
			p.AddHeader(20)
			p.Free()
		})
		if n != 0 {
			t.Errorf("%v alloc/free: %v allocations", typ, n)
		}
	}
	checkZero(t, a)
}

func BenchmarkPoolAllocFree(b *testing.B) { benchAllocFree(b, LayerRaw, 1500, POOL) }

func BenchmarkRAMAllocFree(b *testing.B) { benchAllocFree(b, LayerTransport, 1460, RAM) }

// benchAllocFree allocates a size-byte pbuf of typ at layer and frees it, b.N times.
func benchAllocFree(b *testing.B, layer Layer, size int, typ Type) {
	a := NewAllocator(Config{PoolCount: 64, PoolBufSize: 2048, HeapSize: 1 << 20, RefCount: 8, RAMCount: 64})
	b.ReportAllocs()
	for b.Loop() {
		p, _ := a.Alloc(layer, size, typ)
		p.Free()
	}
}

// freeCounts returns the number of free blocks of each order.
// freeCounts counts the free blocks of each order, roots not yet carved included.
func (h *heap) freeCounts() (c [heapMaxOrder + 1]int) {
	c[heapMaxOrder] = int(h.roots-h.top) >> heapMaxOrder
	for k := range h.free {
		for u := h.free[k]; u != heapNone; u = h.next(u) {
			c[k]++
		}
	}
	return c
}

func TestRefRange(t *testing.T) {
	a := newTestAlloc()
	fragPool := memp.New[Pbuf](memp.FragPbuf, 5, 0) // the three views below need 2+2+1 headers
	p, _ := a.Alloc(LayerTransport, 600, POOL)
	data := pattern(600)
	p.CopyIn(data, 0)
	var views []*Pbuf
	for off := 0; off < 600; off += 200 {
		v, err := a.RefRange(fragPool, p, off, 200)
		if err != nil {
			t.Fatal(off, err)
		}
		mustCheck(t, v)
		if !bytes.Equal(v.Bytes(nil), data[off:off+200]) {
			t.Fatalf("view at %d", off)
		}
		views = append(views, v)
	}
	if _, err := a.RefRange(fragPool, p, 0, 600); !errors.Is(err, errs.Mem) {
		t.Fatalf("RefRange beyond the FRAG_PBUF pool: %v", err)
	}
	p.Free() // the views keep the memory alive
	for i, v := range views {
		if !bytes.Equal(v.Bytes(nil), data[i*200:i*200+200]) {
			t.Fatal("view changed after the source was freed")
		}
		v.Free()
	}
	if s := fragPool.Stats(); s.Used != 0 {
		t.Fatalf("FRAG_PBUF used %d", s.Used)
	}
	checkZero(t, a)
}

// A heap with no single block large enough still serves a request as a chain.
func TestRAMChainFallback(t *testing.T) {
	a := NewAllocator(Config{PoolCount: 2, PoolBufSize: 256, HeapSize: 1600, RefCount: 2, RAMCount: 8})
	// 1600 bytes are roots of 1024, 512 and 64: the largest single block is 1024.
	p, err := a.Alloc(LayerIP, 1500, RAM)
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, p)
	if p.Next() == nil || p.TotLen() != 1500 || p.HeaderRoom() != int(LayerIP) {
		t.Fatalf("fallback chain: next %v tot %d room %d", p.Next() != nil, p.TotLen(), p.HeaderRoom())
	}
	data := pattern(1500)
	if err := p.CopyIn(data, 0); err != nil || !bytes.Equal(p.Bytes(nil), data) {
		t.Fatal("fallback chain does not hold the data")
	}
	if _, err := a.Alloc(LayerRaw, 100, RAM); !errors.Is(err, errs.Mem) {
		t.Fatalf("heap should be full: %v", err)
	}
	p.Free()
	if _, err := a.Alloc(LayerIP, 1600, RAM); !errors.Is(err, errs.Mem) {
		t.Fatalf("more than the heap: %v", err)
	}
	checkZero(t, a)
}

func TestQueue(t *testing.T) {
	a := newTestAlloc()
	pool := memp.New[QueueNode](memp.ARPQueue, 2, 0)
	var q1, q2 Queue
	pkt := func(b byte) *Pbuf {
		p, err := a.Alloc(LayerRaw, 1, RAM)
		if err != nil {
			t.Fatal(err)
		}
		p.Payload()[0] = b
		return p
	}
	for _, b := range []byte{1, 2} {
		if d, err := q1.Push(pool, pkt(b)); d != 0 || err != nil {
			t.Fatalf("push %d: %d %v", b, d, err)
		}
	}
	// The pool is empty: q1 gives up its own oldest packet, q2 has nothing to give.
	if d, err := q1.Push(pool, pkt(3)); d != 1 || err != nil {
		t.Fatalf("push into a full pool: %d %v", d, err)
	}
	if d, err := q2.Push(pool, pkt(9)); d != 1 || !errors.Is(err, errs.Mem) || !q2.Empty() {
		t.Fatalf("push with nothing to evict: %d %v", d, err)
	}
	var got []byte
	for p := range q1.All() {
		got = append(got, p.Payload()[0])
	}
	if !bytes.Equal(got, []byte{2, 3}) {
		t.Fatalf("queue holds %v, want [2 3]", got)
	}
	p := q1.Pop(pool)
	if p.Payload()[0] != 2 {
		t.Fatal("Pop is not oldest first")
	}
	p.Free()
	if n := q1.Clear(pool); n != 1 || !q1.Empty() || q1.Pop(pool) != nil {
		t.Fatalf("Clear freed %d", n)
	}
	if s := pool.Stats(); s.Used != 0 {
		t.Fatalf("%d queue nodes in use", s.Used)
	}
	checkZero(t, a)
}

// A new allocator writes nothing per element: no header made, no heap root carved, no
// heap bookkeeping written; all of it comes with use, and Free returns it.
func TestAllocatorIdleHoldsNothing(t *testing.T) {
	a := NewAllocator(Config{PoolCount: 4096, PoolBufSize: 2048, HeapSize: 4 << 20, RefCount: 512, RAMCount: 1024})
	for _, p := range []*memp.Pool[Pbuf]{a.pool, a.refPool, a.ramPool} {
		if p.At(0) != nil {
			t.Fatalf("%v: headers made before any allocation", p.ID())
		}
	}
	if a.heap.top != 0 || slices.ContainsFunc(a.heap.meta, func(m uint8) bool { return m != heapNoBlock }) {
		t.Fatal("heap carved before any allocation")
	}
	var chains []*Pbuf
	for _, typ := range []Type{POOL, RAM} {
		p, err := a.Alloc(LayerTransport, 3000, typ)
		if err != nil {
			t.Fatal(err)
		}
		chains = append(chains, p)
	}
	r, err := a.AllocRef(make([]byte, 10), REF, nil)
	if err != nil {
		t.Fatal(err)
	}
	chains = append(chains, r)
	if a.heap.top != 1<<heapMaxOrder {
		t.Fatalf("heap carved to unit %d, want one root", a.heap.top)
	}
	for _, p := range chains {
		p.Free()
	}
	checkZero(t, a)
}

// BenchmarkPoolAllocFreeMany allocates and frees with a tunnel-sized pool that has grown
// (every header made, the lazy pool's chunks many), holding 8 chains at a time.
func BenchmarkPoolAllocFreeMany(b *testing.B) {
	a := NewAllocator(Config{PoolCount: 8192, PoolBufSize: 2560, HeapSize: 1 << 20, RefCount: 8, RAMCount: 64})
	var ps []*Pbuf
	for p, _ := a.Alloc(LayerRaw, 1500, POOL); p != nil; p, _ = a.Alloc(LayerRaw, 1500, POOL) {
		ps = append(ps, p)
	}
	for _, p := range ps {
		p.Free()
	}
	var held [8]*Pbuf
	b.ReportAllocs()
	for b.Loop() {
		for i := range held {
			held[i], _ = a.Alloc(LayerRaw, 1500, POOL)
		}
		for _, p := range held {
			p.Free()
		}
	}
}

// TestFreeAll: every chain is freed (nil skipped), a pbuf still referenced elsewhere
// stays, and nothing is allocated.
func TestFreeAll(t *testing.T) {
	a := newTestAlloc()
	p1, _ := a.Alloc(LayerRaw, 300, POOL)
	p2, _ := a.Alloc(LayerIP, 100, RAM)
	r := &releaser{}
	p3, _ := a.AllocRef(make([]byte, 10), REF, r)
	v, err := a.RefRange(nil, p1, 10, 20) // holds a reference on p1's first pbuf
	if err != nil {
		t.Fatal(err)
	}
	// p1 stays whole: its first pbuf is still referenced by the view (Free stops there).
	if n := FreeAll([]*Pbuf{p1, nil, p2, p3}); n != 2 {
		t.Errorf("FreeAll released %d pbufs, want 2 (p2, p3)", n)
	}
	if r.n != 1 {
		t.Errorf("REF owner told %d times", r.n)
	}
	if n := FreeAll([]*Pbuf{v}); n != 1 { // the view (its parent p1 goes too, uncounted)
		t.Errorf("FreeAll of the view released %d, want 1", n)
	}
	checkZero(t, a)
	ps := make([]*Pbuf, 4)
	allocs := testing.AllocsPerRun(1000, func() {
		for i := range ps {
			ps[i], _ = a.Alloc(LayerRaw, 200, POOL)
		}
		FreeAll(ps)
	})
	if allocs != 0 {
		t.Errorf("FreeAll: %v allocations", allocs)
	}
	checkZero(t, a)
}

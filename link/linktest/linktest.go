package linktest

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/pbuf"
)

// NewAllocator returns an allocator sized for link tests: 256 POOL pbufs of 512 bytes, a
// 256 KiB heap and 256 REF and RAM headers.
func NewAllocator() *pbuf.Allocator {
	return pbuf.NewAllocator(pbuf.Config{
		PoolCount: 256, PoolBufSize: 512, HeapSize: 256 << 10, RefCount: 256, RAMCount: 256,
	})
}

// Dispatcher is a link.Dispatcher for tests. AllocRx takes POOL chains from Alloc (nil when
// exhausted, counted in AllocFails). DeliverPackets either hands each frame to OnDeliver
// (which then owns it) or, when OnDeliver is nil, records a copy of the bytes (unless
// Discard is set) and frees the frame.
type Dispatcher struct {
	Alloc *pbuf.Allocator
	// OnDeliver, when set, takes ownership of each delivered frame. It is called with no
	// lock of the Dispatcher held.
	OnDeliver func(p *pbuf.Pbuf)
	// Discard makes DeliverPackets count and free frames without copying them (for
	// allocation-free benchmarks).
	Discard bool

	mu         sync.Mutex
	frames     [][]byte
	count      int
	batches    int
	allocFails int
	changed    chan struct{} // made by Wait, closed by the next delivery
}

var _ link.Dispatcher = (*Dispatcher)(nil)

// NewDispatcher returns a Dispatcher allocating from a.
func NewDispatcher(a *pbuf.Allocator) *Dispatcher {
	return &Dispatcher{Alloc: a}
}

// AllocRx implements link.Dispatcher: a POOL chain of n bytes (caller owns it), or nil.
func (d *Dispatcher) AllocRx(n int) *pbuf.Pbuf {
	p, err := d.Alloc.Alloc(pbuf.LayerRaw, n, pbuf.POOL)
	if err != nil {
		d.mu.Lock()
		d.allocFails++
		d.mu.Unlock()
		return nil
	}
	return p
}

// DeliverPackets implements link.Dispatcher; it takes ownership of every frame.
func (d *Dispatcher) DeliverPackets(pkts []*pbuf.Pbuf) {
	if d.OnDeliver != nil {
		for _, p := range pkts {
			d.OnDeliver(p)
		}
	}
	d.mu.Lock()
	for _, p := range pkts {
		if d.OnDeliver == nil {
			if !d.Discard {
				d.frames = append(d.frames, p.Bytes(nil))
			}
			p.Free()
		}
		d.count++
	}
	d.batches++
	if d.changed != nil { // someone waits in Wait
		close(d.changed)
		d.changed = nil
	}
	d.mu.Unlock()
}

// Frames returns copies of the recorded frames, in delivery order.
func (d *Dispatcher) Frames() [][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([][]byte(nil), d.frames...)
}

// Count returns how many frames were delivered.
func (d *Dispatcher) Count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count
}

// Batches returns how many DeliverPackets calls there were.
func (d *Dispatcher) Batches() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.batches
}

// AllocFails returns how many AllocRx calls found the pool empty.
func (d *Dispatcher) AllocFails() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.allocFails
}

// Reset forgets recorded frames and counts.
func (d *Dispatcher) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.frames, d.count, d.batches, d.allocFails = nil, 0, 0, 0
}

// Wait blocks until at least n frames were delivered or timeout passes; it reports whether
// n were reached.
func (d *Dispatcher) Wait(n int, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		if d.changed == nil {
			d.changed = make(chan struct{})
		}
		c, ch := d.count, d.changed
		d.mu.Unlock()
		if c >= n {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// CheckZero fails t if any of a's pools or heap bytes are still in use.
func CheckZero(t testing.TB, a *pbuf.Allocator) {
	t.Helper()
	var tb memp.Table
	a.Register(&tb)
	CheckEmpty(t, &tb, a)
}

// CheckEmpty fails t if any pool registered in tb, or any heap byte of a, is still in use:
// a whole layer's memory, its own pools and its allocator's.
func CheckEmpty(t testing.TB, tb *memp.Table, a *pbuf.Allocator) {
	t.Helper()
	CheckTable(t, tb)
	if h := a.HeapStats(); h.Used != 0 {
		t.Errorf("heap: %d bytes in use", h.Used)
	}
}

// CheckTable fails t if any pool registered in tb is still in use.
func CheckTable(t testing.TB, tb *memp.Table) {
	t.Helper()
	for _, s := range tb.Snapshot(nil) {
		if s.Used != 0 {
			t.Errorf("pool %s: %d in use", s.Name, s.Used)
		}
	}
}

// Goroutines returns the current goroutine count, the baseline for CheckGoroutines.
func Goroutines() int { return runtime.NumGoroutine() }

// CheckGoroutines waits up to a second for the goroutine count to fall back to base and
// fails t, listing the stacks, if it does not.
func CheckGoroutines(t testing.TB, base int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines left (baseline %d):\n%s", runtime.NumGoroutine(), base, strings.TrimSpace(string(buf)))
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Frame returns a new RAM chain from a holding b with LayerLink header room; it fails t on
// exhaustion. The caller owns the result.
func Frame(t testing.TB, a *pbuf.Allocator, b []byte) *pbuf.Pbuf {
	t.Helper()
	p, err := a.Alloc(pbuf.LayerLink, len(b), pbuf.RAM)
	if err != nil {
		t.Fatalf("linktest: alloc %d bytes: %v", len(b), err)
	}
	if err := p.CopyIn(b, 0); err != nil {
		t.Fatal(err)
	}
	return p
}

// Pattern returns n bytes of a recognisable pattern seeded by seed.
func Pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

// CheckWriteAllocs fails t unless one round of a link's hot path allocates nothing: n fresh
// RAM frames of size bytes (header room for layer) from a written to w, then flush. It
// attaches to rx a Dispatcher allocating from a that discards what it receives. The caller
// closes the links and checks the pools afterwards.
func CheckWriteAllocs(t testing.TB, a *pbuf.Allocator, w, rx link.Endpoint, flush func() int, layer pbuf.Layer, n, size int) {
	t.Helper()
	d := NewDispatcher(a)
	d.Discard = true
	rx.Attach(d)
	ps := make([]*pbuf.Pbuf, n)
	allocs := testing.AllocsPerRun(100, func() {
		for i := range ps {
			ps[i], _ = a.Alloc(layer, size, pbuf.RAM)
		}
		w.WritePackets(ps)
		flush()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per write and flush", allocs)
	}
}

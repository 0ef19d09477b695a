package memp

import (
	"fmt"
	"math/bits"
	"sync"
	"unsafe"

	"github.com/wispstack/wisp/stats"
)

// ID names a pool.
type ID uint8

// The pools, lwIP's set plus the pbuf header pools Go needs.
const (
	RawPCB       ID = iota // RAW_PCB: raw IP PCBs
	UDPPCB                 // UDP_PCB
	TCPPCB                 // TCP_PCB: connections (active and TIME-WAIT)
	TCPPCBListen           // TCP_PCB_LISTEN
	TCPSeg                 // TCP_SEG: queued segments
	ReassData              // REASSDATA: datagrams under reassembly
	FragPbuf               // FRAG_PBUF: fragments referencing a datagram being fragmented
	ARPQueue               // ARP_QUEUE: packets waiting for ARP resolution
	IGMPGroup              // IGMP_GROUP
	ND6Queue               // ND6_QUEUE: packets waiting for neighbour resolution
	MLD6Group              // MLD6_GROUP
	Pbuf                   // PBUF: headers of REF/ROM pbufs
	PbufRAM                // PBUF_RAM: headers of RAM pbufs (their bytes come from the heap)
	PbufPool               // PBUF_POOL: headers and fixed chunks for received frames
	ReassFrag              // REASS_FRAG: descriptors of fragments held by reassembly (wisp's own)
	NumIDs
)

var names = [NumIDs]string{
	"RAW_PCB", "UDP_PCB", "TCP_PCB", "TCP_PCB_LISTEN", "TCP_SEG", "REASSDATA", "FRAG_PBUF",
	"ARP_QUEUE", "IGMP_GROUP", "ND6_QUEUE", "MLD6_GROUP", "PBUF", "PBUF_RAM", "PBUF_POOL",
	"REASS_FRAG",
}

func (id ID) String() string {
	if id < NumIDs {
		return names[id]
	}
	return fmt.Sprintf("memp.ID(%d)", id)
}

// Stater is anything that reports pool statistics.
type Stater interface {
	Stats() stats.Pool
}

// Pool is a fixed pool of n elements of type T.
type Pool[T any] struct {
	mu *sync.Mutex // guards free, used and st: own, or shared with an owner (NewShared)
	// Every field below mu is guarded by it.
	free []int32  // stack of freed indices; indices from next on were never handed out
	used []uint64 // in-use bits: an eighth of a []bool, which a big idle pool would pay for
	st   stats.Pool

	own   sync.Mutex
	items []T // eager pools: every element, made at New
	// Lazy pools (NewLazy) make their elements in chunks of 1<<chunkShift as the high-water
	// mark rises. next is the first index never handed out (both kinds: a pool's free list
	// starts empty, so making a pool writes nothing per element). Guarded by mu.
	chunks     [][]T
	chunkShift uint
	next       int
	n          int
	id         ID
	extra      int // bytes per element reserved outside T (a POOL pbuf's chunk)
	// Index divides by the element size without a DIV: off>>shift times inv (the inverse
	// of the odd part of the size modulo 2^64) is off/size when off is a multiple of it.
	size  uintptr
	shift uint
	inv   uintptr
}

// New returns a pool of n zeroed elements. extra is memory each element owns outside T
// (counted in the element size that stats and the budget report).
func New[T any](id ID, n, extra int) *Pool[T] {
	return NewShared[T](id, n, extra, nil)
}

// NewShared is New for a pool guarded by mu instead of a lock of its own, so that an owner
// that keeps several pools (pbuf's allocator: three header pools and its heap) takes one
// lock for a whole batch of operations: Lock, GetLocked/PutLocked..., Unlock. Get, Put and
// Stats take mu themselves. mu nil: the pool's own lock (New).
func NewShared[T any](id ID, n, extra int, mu *sync.Mutex) *Pool[T] {
	if n < 0 {
		panic("memp: negative pool size")
	}
	p := newPool[T](id, n, extra, mu)
	p.items = make([]T, n)
	p.free = make([]int32, 0, n)
	return p
}

// NewLazy is New for a pool whose elements are made as they are first needed, in chunks
// (lwIP's MEMP_MEM_MALLOC, bounded): the pool still never holds more than n, and the budget
// still reserves n, but an idle stack does not keep n elements in the Go heap. Made chunks
// are kept (the high-water mark), so Get and Put cost what they cost in an eager pool once
// the pool has grown, and allocate nothing. Put finds an element's chunk by a scan, which
// suits pools taken per connection (PCBs); an owner that remembers the index GetIndex gave
// (pbuf's headers) frees with PutIndex in constant time.
func NewLazy[T any](id ID, n, extra int) *Pool[T] {
	return NewLazyShared[T](id, n, extra, nil)
}

// NewLazyShared is NewLazy for a pool guarded by mu, as NewShared (mu nil: its own lock).
func NewLazyShared[T any](id ID, n, extra int, mu *sync.Mutex) *Pool[T] {
	if n < 0 {
		panic("memp: negative pool size")
	}
	p := newPool[T](id, n, extra, mu)
	if p.size == 0 {
		panic("memp: lazy pool of zero-size elements")
	}
	// At most about 64 chunks, of at least 8 elements each.
	p.chunkShift = uint(max(3, bits.Len(uint(max(n-1, 0)/64))))
	p.chunks = make([][]T, (n+1<<p.chunkShift-1)>>p.chunkShift)
	return p
}

func newPool[T any](id ID, n, extra int, mu *sync.Mutex) *Pool[T] {
	p := &Pool[T]{used: make([]uint64, (n+63)/64), id: id, extra: extra, n: n}
	p.mu = mu
	if mu == nil {
		p.mu = &p.own
	}
	p.st = stats.Pool{Name: id.String(), Size: ElemSize[T](extra), Avail: n}
	var zero T
	p.size = unsafe.Sizeof(zero)
	if p.size != 0 {
		p.shift = uint(bits.TrailingZeros64(uint64(p.size)))
		p.inv = inverse(p.size >> p.shift)
	}
	return p
}

// inverse returns the inverse of odd d modulo 2^64 (Newton's iteration: each step doubles
// the number of correct low bits, and d*d ≡ 1 mod 8 gives three to start with).
func inverse(d uintptr) uintptr {
	x := d
	for range 5 {
		x *= 2 - d*x
	}
	return x
}

// ElemSize is the bytes one element of a pool of T with extra reserves: the element itself
// plus its free-list and in-use bookkeeping.
func ElemSize[T any](extra int) int {
	var zero T
	return int(unsafe.Sizeof(zero)) + extra + 4 + 1
}

// ID returns the pool's ID.
func (p *Pool[T]) ID() ID { return p.id }

// Cap returns the number of elements.
func (p *Pool[T]) Cap() int { return p.n }

// Get returns a zeroed element, or nil (counting an error) if the pool is empty.
func (p *Pool[T]) Get() *T {
	x, _ := p.GetIndex()
	return x
}

// GetIndex is Get that also returns the element's index in the pool.
func (p *Pool[T]) GetIndex() (*T, int) {
	p.mu.Lock()
	x, i := p.GetLocked()
	p.mu.Unlock()
	return x, i
}

// Lock takes the pool's lock (shared with its owner's other pools for a NewShared pool),
// for a batch of GetLocked and PutLocked.
func (p *Pool[T]) Lock() { p.mu.Lock() }

// Unlock releases the lock Lock took.
func (p *Pool[T]) Unlock() { p.mu.Unlock() }

// GetLocked is GetIndex for a caller that holds the pool's lock.
func (p *Pool[T]) GetLocked() (*T, int) {
	n := len(p.free)
	if n == 0 {
		if p.next < p.n {
			return p.grow()
		}
		p.st.Err++
		return nil, -1
	}
	i := p.free[n-1]
	p.free = p.free[:n-1]
	p.used[i>>6] |= 1 << (i & 63)
	p.st.Used++
	if p.st.Used > p.st.Max {
		p.st.Max = p.st.Used
	}
	return p.at(int(i)), int(i)
}

// grow hands out the first never-used element, making a lazy pool's chunk if needed.
func (p *Pool[T]) grow() (*T, int) {
	i := p.next
	p.next++
	if p.chunks != nil {
		if c := i >> p.chunkShift; p.chunks[c] == nil {
			end := min(p.n, (c+1)<<p.chunkShift)
			p.chunks[c] = make([]T, end-c<<p.chunkShift)
			// The free list holds only indices below next: room for every made element
			// keeps Put from allocating. Doubling bounds the copies.
			if cap(p.free) < end {
				f := make([]int32, len(p.free), min(p.n, max(end, 2*cap(p.free))))
				copy(f, p.free)
				p.free = f
			}
		}
	}
	p.used[i>>6] |= 1 << (i & 63)
	p.st.Used++
	if p.st.Used > p.st.Max {
		p.st.Max = p.st.Used
	}
	return p.at(i), i
}

// at returns element i; for a lazy pool its chunk must exist.
func (p *Pool[T]) at(i int) *T {
	if p.chunks == nil {
		return &p.items[i]
	}
	return &p.chunks[i>>p.chunkShift][i&(1<<p.chunkShift-1)]
}

// Index returns x's index in the pool; it panics if x is not an element of p. For a lazy
// pool (NewLazy) the caller holds the pool's lock.
func (p *Pool[T]) Index(x *T) int {
	if p.chunks != nil {
		return p.lazyIndex(x)
	}
	if len(p.items) == 0 || p.size == 0 {
		if len(p.items) != 0 && x == &p.items[0] {
			return 0 // zero-size elements share one address: indices cannot be told apart
		}
		panic(fmt.Sprintf("memp: %v: element not from this pool", p.id))
	}
	off := uintptr(unsafe.Pointer(x)) - uintptr(unsafe.Pointer(&p.items[0]))
	// A pointer below the base wraps off to a huge value and fails the bound like one
	// past the end; an offset that is not a multiple of the size gives an i whose product
	// with the size is not off.
	i := (off >> p.shift) * p.inv
	if i >= uintptr(len(p.items)) || i*p.size != off {
		panic(fmt.Sprintf("memp: %v: element not from this pool", p.id))
	}
	return int(i)
}

// lazyIndex is Index for a lazy pool: the chunk holding x, then its place there. p.mu must
// be held (grow sets chunk slots).
func (p *Pool[T]) lazyIndex(x *T) int {
	for c, ch := range p.chunks {
		if len(ch) == 0 {
			continue
		}
		off := uintptr(unsafe.Pointer(x)) - uintptr(unsafe.Pointer(&ch[0]))
		if i := (off >> p.shift) * p.inv; i < uintptr(len(ch)) && i*p.size == off {
			return c<<p.chunkShift + int(i)
		}
	}
	panic(fmt.Sprintf("memp: %v: element not from this pool", p.id))
}

// PutIndex is Put for an element whose index the caller kept (from GetIndex or
// GetLocked): constant time in a lazy pool too. A wrong index panics as a foreign element.
func (p *Pool[T]) PutIndex(x *T, i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.PutIndexLocked(x, i)
}

// PutIndexLocked is PutIndex for a caller that holds the pool's lock.
func (p *Pool[T]) PutIndexLocked(x *T, i int) {
	if uint(i) >= uint(p.next) || p.at(i) != x {
		panic(fmt.Sprintf("memp: %v: element not from this pool (index %d)", p.id, i))
	}
	var zero T
	*x = zero
	if !p.putIndex(i) {
		panic(fmt.Sprintf("memp: %v: double free of element %d", p.id, i))
	}
}

// Put zeroes x and returns it to the pool. Putting an element twice, or one that is not
// from this pool, is a bug in wisp and panics (lwIP asserts the same).
func (p *Pool[T]) Put(x *T) {
	if p.chunks != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.PutLocked(x)
		return
	}
	i := p.Index(x)
	var zero T
	*x = zero
	p.mu.Lock()
	ok := p.putIndex(i)
	p.mu.Unlock()
	if !ok {
		panic(fmt.Sprintf("memp: %v: double free of element %d", p.id, i))
	}
}

// PutLocked is Put for a caller that holds the pool's lock. It panics (with the lock still
// held) on a double free or a foreign element.
func (p *Pool[T]) PutLocked(x *T) {
	i := p.Index(x)
	var zero T
	*x = zero
	if !p.putIndex(i) {
		panic(fmt.Sprintf("memp: %v: double free of element %d", p.id, i))
	}
}

// putIndex frees element i; false if it was not in use (a double free).
func (p *Pool[T]) putIndex(i int) bool {
	w, b := i>>6, uint64(1)<<(i&63)
	if p.used[w]&b == 0 {
		return false
	}
	p.used[w] &^= b
	p.free = append(p.free, int32(i))
	p.st.Used--
	return true
}

// At returns element i, used or not (for owners that iterate their pool); in a lazy pool,
// nil for an element never made (it has never been in use).
func (p *Pool[T]) At(i int) *T {
	if p.chunks != nil && p.chunks[i>>p.chunkShift] == nil {
		return nil
	}
	return p.at(i)
}

// InUse reports whether element i is allocated.
func (p *Pool[T]) InUse(i int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used[i>>6]&(1<<(i&63)) != 0
}

// Stats implements Stater.
func (p *Pool[T]) Stats() stats.Pool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// Table is the set of pools of one stack, in ID order, for stats and budget checks.
type Table struct {
	pools [NumIDs]Stater
}

// Register adds a pool to the table; registering an ID twice panics.
func (t *Table) Register(id ID, p Stater) {
	if t.pools[id] != nil {
		panic(fmt.Sprintf("memp: pool %v registered twice", id))
	}
	t.pools[id] = p
}

// Lookup returns the registered pool, or nil.
func (t *Table) Lookup(id ID) Stater { return t.pools[id] }

// Snapshot appends the stats of every registered pool to dst.
func (t *Table) Snapshot(dst []stats.Pool) []stats.Pool {
	for _, p := range t.pools {
		if p != nil {
			dst = append(dst, p.Stats())
		}
	}
	return dst
}

// Decl declares a pool for the budget report: what New would reserve for it.
type Decl struct {
	ID    ID
	Count int
	Size  int // bytes per element, as ElemSize reports
}

// Bytes is the memory the declared pool reserves.
func (d Decl) Bytes() int { return d.Count * d.Size }

// DeclFor declares a pool of n elements of T with extra bytes each, as New[T](id, n, extra)
// would create it.
func DeclFor[T any](id ID, n, extra int) Decl {
	return Decl{ID: id, Count: n, Size: ElemSize[T](extra)}
}

// TableDecl declares a fixed table that is not a pool (an ARP table, a neighbour cache):
// Count entries of Size bytes, allocated once.
type TableDecl struct {
	Name  string
	Count int
	Size  int
}

// TableDeclFor declares a table of n entries of T.
func TableDeclFor[T any](name string, n int) TableDecl {
	var zero T
	return TableDecl{Name: name, Count: n, Size: int(unsafe.Sizeof(zero))}
}

package ring

// Ring is a FIFO of at most Cap elements. The zero Ring has capacity 0 (always full).
type Ring[T any] struct {
	buf  []T // len(buf) slots exist; buf[head] is the oldest element
	head int
	n    int // elements queued
	max  int // capacity: buf grows up to it
}

// New returns a ring of capacity n (at least 0) with all its slots allocated.
func New[T any](n int) Ring[T] {
	n = max(n, 0)
	return Ring[T]{buf: make([]T, n), max: n}
}

// NewLazy returns a ring of capacity n (at least 0) that allocates its slots as it fills.
func NewLazy[T any](n int) Ring[T] {
	return Ring[T]{max: max(n, 0)}
}

// Len returns how many elements are queued.
func (r *Ring[T]) Len() int { return r.n }

// Cap returns how many elements the ring may hold.
func (r *Ring[T]) Cap() int { return r.max }

// Full reports whether Push would refuse.
func (r *Ring[T]) Full() bool { return r.n >= r.max }

// Push appends v as the newest element and reports whether it did: a full ring refuses.
// A lazy ring may allocate here (when its slots run out, below its capacity).
func (r *Ring[T]) Push(v T) bool {
	if r.n >= r.max {
		return false
	}
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[r.index(r.n)] = v
	r.n++
	return true
}

// grow makes room for one more element: twice the slots (at least 4), up to max.
func (r *Ring[T]) grow() {
	buf := make([]T, min(max(4, 2*len(r.buf)), r.max))
	for i := range r.n {
		buf[i] = r.buf[r.index(i)]
	}
	r.buf, r.head = buf, 0
}

// index is the slot of the i-th oldest element (0 <= i < len(r.buf)).
func (r *Ring[T]) index(i int) int {
	j := r.head + i
	if j >= len(r.buf) {
		j -= len(r.buf)
	}
	return j
}

// Pop removes and returns the oldest element; ok is false (and v the zero value) when the
// ring is empty. The slot is cleared, so the ring keeps no reference to v.
func (r *Ring[T]) Pop() (v T, ok bool) {
	if r.n == 0 {
		return v, false
	}
	v = r.buf[r.head]
	var zero T
	r.buf[r.head] = zero
	r.head = r.index(1)
	r.n--
	return v, true
}

// Front returns the oldest element in place (nil when the ring is empty): the owner may
// read it or replace it. The pointer is good until the next Push or Pop.
func (r *Ring[T]) Front() *T {
	if r.n == 0 {
		return nil
	}
	return &r.buf[r.head]
}

// Back returns the newest element in place (nil when the ring is empty), as Front.
func (r *Ring[T]) Back() *T {
	if r.n == 0 {
		return nil
	}
	return &r.buf[r.index(r.n-1)]
}

// Reset empties the ring, clearing every slot; it keeps the slots and the capacity. The
// owner releases what the elements hold first (Pop each) if they need releasing.
func (r *Ring[T]) Reset() {
	clear(r.buf)
	r.head, r.n = 0, 0
}

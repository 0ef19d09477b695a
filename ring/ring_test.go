package ring

import (
	"slices"
	"testing"
)

// drain pops everything and returns it, oldest first.
func drain[T any](r *Ring[T]) []T {
	var out []T
	for {
		v, ok := r.Pop()
		if !ok {
			return out
		}
		out = append(out, v)
	}
}

func TestEmptyAndFull(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		r := New[int](3)
		if lazy {
			r = NewLazy[int](3)
		}
		if v, ok := r.Pop(); ok || v != 0 || r.Front() != nil || r.Back() != nil || r.Len() != 0 {
			t.Fatal("empty ring gave", v, ok)
		}
		for i := range 3 {
			if r.Full() || !r.Push(i) {
				t.Fatal("refused", i)
			}
		}
		if !r.Full() || r.Push(9) || r.Len() != 3 || r.Cap() != 3 {
			t.Fatal("full ring", r.Len(), r.Cap())
		}
		if *r.Front() != 0 || *r.Back() != 2 {
			t.Fatal("front/back", *r.Front(), *r.Back())
		}
		if got := drain(&r); !slices.Equal(got, []int{0, 1, 2}) {
			t.Fatal(got)
		}
	}
	var zero Ring[int]
	if !zero.Full() || zero.Push(1) || zero.Cap() != 0 {
		t.Fatal("the zero ring took an element")
	}
	if neg := New[int](-1); neg.Cap() != 0 || neg.Push(1) {
		t.Fatal("negative capacity")
	}
}

func TestWraparound(t *testing.T) {
	r := New[int](4)
	next, want := 0, 0
	for range 10 {
		// Three in, two out: head and tail chase each other round the slots.
		for range 3 {
			if r.Push(next) {
				next++
			}
		}
		for range 2 {
			v, ok := r.Pop()
			if !ok || v != want {
				t.Fatalf("popped %d %v, want %d", v, ok, want)
			}
			want++
		}
	}
	*r.Front() = -1 // replace in place
	got := drain(&r)
	if len(got) == 0 || got[0] != -1 || got[len(got)-1] != next-1 {
		t.Fatal(got, next)
	}
}

func TestLazyGrowsKeepingOrder(t *testing.T) {
	r := NewLazy[int](10)
	if len(r.buf) != 0 {
		t.Fatal("lazy ring allocated", len(r.buf))
	}
	// Wrap the first 4 slots before growing, so grow must unwrap.
	for i := range 4 {
		r.Push(i)
	}
	r.Pop()
	r.Pop()
	for i := 4; i < 12; i++ {
		r.Push(i)
	}
	if len(r.buf) != 10 || r.Len() != 10 {
		t.Fatal("slots", len(r.buf), r.Len())
	}
	if got := drain(&r); !slices.Equal(got, []int{2, 3, 4, 5, 6, 7, 8, 9, 10, 11}) {
		t.Fatal(got)
	}
}

func TestResetClears(t *testing.T) {
	x := new(int)
	r := New[*int](2)
	r.Push(x)
	r.Push(x)
	r.Pop()
	r.Reset()
	if r.Len() != 0 || r.Cap() != 2 || r.buf[0] != nil || r.buf[1] != nil {
		t.Fatal("Reset kept", r.Len(), r.buf)
	}
}

func TestPushPopAllocs(t *testing.T) {
	r := NewLazy[*int](8)
	x := new(int)
	for range 8 {
		r.Push(x) // the lazy ring makes its slots here, once
	}
	r.Reset()
	n := testing.AllocsPerRun(100, func() {
		for range 5 {
			r.Push(x)
		}
		*r.Front() = x
		_ = r.Back()
		for range 5 {
			r.Pop()
		}
	})
	if n != 0 {
		t.Fatal("allocs per run", n)
	}
}

// FuzzModel checks a Ring against a slice: each byte of ops pushes (even) or pops (odd).
func FuzzModel(f *testing.F) {
	f.Add(uint8(3), false, []byte{0, 0, 0, 0, 1, 0, 1, 1, 1, 1})
	f.Add(uint8(5), true, []byte{0, 2, 4, 1, 6, 8, 10, 12, 14, 3, 5, 16})
	f.Add(uint8(0), true, []byte{0, 1})
	f.Fuzz(func(t *testing.T, c uint8, lazy bool, ops []byte) {
		capacity := int(c % 17)
		r := New[int](capacity)
		if lazy {
			r = NewLazy[int](capacity)
		}
		var model []int
		for i, op := range ops {
			if op%2 == 0 {
				ok := r.Push(i)
				if ok != (len(model) < capacity) {
					t.Fatalf("op %d: push %v with %d of %d", i, ok, len(model), capacity)
				}
				if ok {
					model = append(model, i)
				}
			} else {
				v, ok := r.Pop()
				if ok != (len(model) > 0) || ok && v != model[0] {
					t.Fatalf("op %d: pop %d %v, model %v", i, v, ok, model)
				}
				if ok {
					model = model[1:]
				}
			}
			if r.Len() != len(model) || r.Full() != (len(model) == capacity) {
				t.Fatalf("op %d: len %d full %v, model %v", i, r.Len(), r.Full(), model)
			}
			if len(model) > 0 && (*r.Front() != model[0] || *r.Back() != model[len(model)-1]) {
				t.Fatalf("op %d: front %d back %d, model %v", i, *r.Front(), *r.Back(), model)
			}
		}
		if got := drain(&r); !slices.Equal(got, model) {
			t.Fatalf("left %v, model %v", got, model)
		}
	})
}

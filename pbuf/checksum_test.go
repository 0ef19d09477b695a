package pbuf

import (
	"math/rand/v2"
	"testing"

	"github.com/wispstack/wisp/wire"
)

// Checksum over a chain of odd-sized pieces equals the checksum of the same bytes in one
// slice, for any range and running sum.
func TestChecksum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	a := NewAllocator(Config{PoolCount: 8, PoolBufSize: 256, HeapSize: 256 << 10, RefCount: 8, RAMCount: 128})
	defer checkZero(t, a)
	for range 200 {
		n := 1 + r.IntN(3000)
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		var head *Pbuf
		for off := 0; off < n; {
			k := min(1+r.IntN(97), n-off)
			q, err := a.Alloc(LayerRaw, k, RAM)
			if err != nil {
				t.Fatal(err)
			}
			_ = q.CopyIn(b[off:off+k], 0)
			if head == nil {
				head = q
			} else {
				Cat(head, q)
			}
			off += k
		}
		off := r.IntN(n)
		k := r.IntN(n - off + 1)
		init := r.Uint32()
		got := wire.Fold(head.Checksum(off, k, init))
		want := wire.Fold(wire.Checksum(b[off:off+k], init))
		if got != want {
			t.Fatalf("n %d off %d k %d: %#x != %#x", n, off, k, got, want)
		}
		head.Free()
	}
}

func BenchmarkChecksum(b *testing.B) {
	a := NewAllocator(Config{PoolCount: 8, PoolBufSize: 592, HeapSize: 16 << 10, RefCount: 8, RAMCount: 8})
	p, _ := a.Alloc(LayerRaw, 1460, POOL) // three 592-byte chunks
	defer p.Free()
	b.SetBytes(1460)
	for b.Loop() {
		_ = p.Checksum(0, 1460, 0)
	}
}

package tcpapp

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"
)

func TestPatternAtAnyOffset(t *testing.T) {
	const seed = 7
	full := make([]byte, 4096)
	FillPattern(full, seed, 0)
	if bytes.Count(full, []byte{0}) > 64 {
		t.Fatal("pattern is not random-looking")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		off := rng.IntN(len(full))
		n := rng.IntN(len(full) - off + 1)
		b := make([]byte, n)
		FillPattern(b, seed, int64(off))
		if !bytes.Equal(b, full[off:off+n]) {
			t.Fatalf("FillPattern at %d len %d differs from the stream", off, n)
		}
	}
	// The reader gives the same stream whatever its read sizes.
	r := NewPattern(seed)
	var got []byte
	for len(got) < len(full) {
		b := make([]byte, min(rng.IntN(100), len(full)-len(got)))
		r.Read(b)
		got = append(got, b...)
	}
	if !bytes.Equal(got, full) {
		t.Fatal("Pattern reader differs from FillPattern")
	}
	// Another seed gives another stream.
	other := make([]byte, 64)
	FillPattern(other, seed+1, 0)
	if bytes.Equal(other, full[:64]) {
		t.Fatal("seeds give the same stream")
	}
}

func TestPatternSum(t *testing.T) {
	for _, n := range []int64{0, 1, 7, 8, 9, 65536, 65537, 200001} {
		h := sha256.New()
		io.CopyN(h, NewPattern(3), n)
		var want [32]byte
		h.Sum(want[:0])
		if got := PatternSum(n, 3); got != want {
			t.Errorf("PatternSum(%d) = %x, want %x", n, got[:4], want[:4])
		}
	}
}

func BenchmarkFillPattern(b *testing.B) {
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	for i := range b.N {
		FillPattern(buf, 1, int64(i)*int64(len(buf)))
	}
}

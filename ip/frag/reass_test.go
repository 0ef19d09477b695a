package frag

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
)

var v4opts = []byte{0x94, 0x04, 0x00, 0x00} // Router Alert (RFC 2113), not copied into later fragments

func keyFor(v6 bool, id uint32) Key {
	if v6 {
		return key6(id)
	}
	return key4(id)
}

// order returns the delivery order of n fragments, with duplicates spliced in where asked.
func order(kind string, n int, rng *rand.Rand) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	switch kind {
	case "reversed":
		for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
			idx[i], idx[j] = idx[j], idx[i]
		}
	case "shuffled", "duplicates":
		rng.Shuffle(n, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	}
	if kind != "duplicates" {
		return idx
	}
	// Re-send earlier fragments before the last one arrives, so the datagram completes last.
	var out []int
	for i, x := range idx {
		out = append(out, x)
		if i < n-1 && rng.IntN(2) == 0 {
			out = append(out, idx[rng.IntN(i+1)])
		}
	}
	return out
}

func TestReassemble(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, v6 := range []bool{false, true} {
		for _, size := range []int{4000, 65000} {
			for _, kind := range []string{"in-order", "reversed", "shuffled", "duplicates"} {
				t.Run(fmt.Sprintf("v6=%v/%d/%s", v6, size, kind), func(t *testing.T) {
					e := newEnv(t)
					e.quiet()
					k := keyFor(v6, 0x1234)
					data := payload(size, 0x5a)
					ps := plan(t, k, size, 1500, v4opts)
					seq := order(kind, len(ps), rng)
					dups := 0
					seen := map[int]bool{}
					for i, x := range seq {
						if seen[x] {
							dups++
						}
						seen[x] = true
						d, h, err := e.deliver(k, ps[x], data)
						if err != nil {
							t.Fatalf("fragment %d: %v", x, err)
						}
						if i < len(seq)-1 {
							if d != nil {
								t.Fatalf("datagram complete after %d of %d", i+1, len(seq))
							}
							if e.r.Pending() != 1 || !e.r.tmo.Pending() {
								t.Fatalf("pending %d, timer %v", e.r.Pending(), e.r.tmo.Pending())
							}
							continue
						}
						if d == nil {
							t.Fatal("datagram not complete after the last fragment")
						}
						if err := d.Check(); err != nil {
							t.Fatal(err)
						}
						want := append(append([]byte(nil), ps[0].hdr...), data...)
						if h != len(ps[0].hdr) || !bytes.Equal(d.Bytes(nil), want) {
							t.Fatalf("datagram differs: hdrLen0 %d (want %d), %d bytes (want %d)", h, len(ps[0].hdr), d.TotLen(), len(want))
						}
						d.Free()
					}
					e.quiet()
					s := e.r.Stats()
					if s.Recv != uint64(len(seq)) || s.Drop != uint64(dups) || s.Err != uint64(dups) {
						t.Fatalf("stats %+v, %d duplicates", *s, dups)
					}
					fam := e.r.Stats4()
					if v6 {
						fam = e.r.Stats6()
					}
					if *fam != *s {
						t.Fatalf("family stats %+v != all %+v", *fam, *s)
					}
				})
			}
		}
	}
}

func TestAtomicFragment(t *testing.T) {
	e := newEnv(t)
	k := key6(9)
	data := payload(100, 1)
	ps := plan(t, k, 100, 1500, nil)
	d, h, err := e.deliver(k, ps[0], data)
	if err != nil || d == nil || h != len(ps[0].hdr) || d.TotLen() != h+100 {
		t.Fatalf("atomic fragment: %v %v %d", d, err, h)
	}
	d.Free()
	e.quiet()
}

func TestOverlapDiscardsDatagram(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			e := newEnv(t)
			k := keyFor(v6, 7)
			data := payload(4000, 3)
			ps := plan(t, k, 4000, 1500, nil)
			if d, _, err := e.deliver(k, ps[0], data); d != nil || err != nil {
				t.Fatal(d, err)
			}
			if d, _, err := e.deliver(k, ps[2], data); d != nil || err != nil {
				t.Fatal(d, err)
			}
			// A fragment straddling the end of the first one.
			bad := ps[1]
			bad.off -= 8
			if _, _, err := e.deliver(k, bad, data); !errors.Is(err, ErrOverlap) || !errors.Is(err, errs.Val) {
				t.Fatalf("overlap: %v", err)
			}
			s := e.r.Stats()
			if s.Proterr != 3 || s.Drop != 3 || e.r.HeldPbufs() != 0 || e.r.Pending() != 1 {
				t.Fatalf("after overlap: %+v held %d pending %d", *s, e.r.HeldPbufs(), e.r.Pending())
			}
			// RFC 5722: fragments not yet received are discarded too.
			if d, _, err := e.deliver(k, ps[1], data); d != nil || !errors.Is(err, ErrOverlap) {
				t.Fatalf("late fragment: %v %v", d, err)
			}
			e.clk.Advance(testAge)
			if len(e.expired) != 0 {
				t.Fatal("Expired called for a discarded datagram")
			}
			e.quiet()
			// The same key reassembles afresh afterwards.
			for i, p := range ps {
				d, _, err := e.deliver(k, p, data)
				if err != nil || (d != nil) != (i == len(ps)-1) {
					t.Fatal(i, d, err)
				}
				if d != nil {
					d.Free()
				}
			}
			e.quiet()
		})
	}
}

func TestDuplicateWithOtherBytesIsOverlap(t *testing.T) {
	e := newEnv(t)
	k := key4(1)
	data := payload(4000, 0)
	ps := plan(t, k, 4000, 1500, nil)
	e.deliver(k, ps[1], data)
	if d, _, err := e.deliver(k, ps[1], data); d != nil || err != nil {
		t.Fatalf("exact duplicate: %v %v", d, err)
	}
	other := payload(4000, 0xff)
	if _, _, err := e.deliver(k, ps[1], other); !errors.Is(err, ErrOverlap) {
		t.Fatalf("duplicate with other bytes: %v", err)
	}
	if s := e.r.Stats(); s.Err != 1 || s.Proterr != 2 || s.Drop != 3 {
		t.Fatalf("stats %+v", *s)
	}
}

func TestTimeout(t *testing.T) {
	e := newEnv(t)
	e.quiet()
	kA, kB := key4(1), key6(2)
	data := payload(4000, 9)
	pa, pb := plan(t, kA, 4000, 1500, v4opts), plan(t, kB, 4000, 1500, nil)
	e.deliver(kA, pa[0], data) // A has its first fragment: Time Exceeded expected
	e.deliver(kA, pa[2], data)
	if !e.r.tmo.Pending() || e.clk.Pending() != 1 {
		t.Fatal("timer not armed for a pending datagram")
	}
	e.clk.Advance(testAge / 3)
	e.deliver(kB, pb[1], data) // B lacks it: silent
	e.clk.Advance(testAge - testAge/3 - 1)
	if len(e.expired) != 0 || e.r.Pending() != 2 {
		t.Fatal("expired early")
	}
	e.clk.Advance(1)
	if len(e.expired) != 1 || e.expired[0] != kA || e.r.Pending() != 1 {
		t.Fatalf("expired %v, pending %d", e.expired, e.r.Pending())
	}
	if got := e.expHdr[0]; !bytes.Equal(got[:len(pa[0].hdr)], pa[0].hdr) || len(got) != len(pa[0].hdr)+pa[0].n {
		t.Fatal("Expired got the wrong packet")
	}
	if !e.r.tmo.Pending() {
		t.Fatal("timer not re-armed for the second datagram")
	}
	e.clk.Advance(testAge / 3)
	if len(e.expired) != 1 {
		t.Fatal("Expired called for a datagram without its first fragment")
	}
	e.quiet()
	s := e.r.Stats()
	if s.Err != 3 || s.Drop != 3 || e.r.Stats4().Err != 2 || e.r.Stats6().Err != 1 {
		t.Fatalf("stats %+v", *s)
	}
}

func TestMaxDatagramsEvictsOldest(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *pbuf.Config) { c.MaxDatagrams = 2 })
	data := payload(4000, 4)
	var ps [4][]piece
	for i := range ps {
		ps[i] = plan(t, key4(uint32(i)), 4000, 1500, nil)
	}
	e.deliver(key4(0), ps[0][0], data)
	e.deliver(key4(0), ps[0][1], data)
	e.deliver(key4(1), ps[1][0], data)
	e.deliver(key4(2), ps[2][0], data) // evicts datagram 0 (two fragments)
	if e.r.Pending() != 2 || e.r.Stats().Memerr != 2 || e.r.Stats().Drop != 2 {
		t.Fatalf("pending %d stats %+v", e.r.Pending(), *e.r.Stats())
	}
	if e.r.lookup(key4(0)) != nil {
		t.Fatal("the oldest datagram survived")
	}
	// Datagrams 1 and 2 still complete.
	for _, id := range []uint32{1, 2} {
		for _, p := range ps[id][1:] {
			d, _, err := e.deliver(key4(id), p, data)
			if err != nil {
				t.Fatal(err)
			}
			if d != nil {
				if d.TotLen() != 20+4000 {
					t.Fatal(d.TotLen())
				}
				d.Free()
			}
		}
	}
	e.quiet()
}

func TestMaxPbufsEvictsOldest(t *testing.T) {
	// 512-byte POOL pbufs: a 1500-byte fragment is a chain of 3.
	e := newEnv(t, func(c *Config, _ *pbuf.Config) { c.MaxPbufs = 8 })
	data := payload(4000, 5)
	pa, pb := plan(t, key4(1), 4000, 1500, nil), plan(t, key4(2), 4000, 1500, nil)
	e.deliver(key4(1), pa[0], data)
	e.deliver(key4(1), pa[1], data)
	if e.r.HeldPbufs() != 6 {
		t.Fatalf("held %d", e.r.HeldPbufs())
	}
	if _, _, err := e.deliver(key4(2), pb[0], data); err != nil { // 6+3 > 8: datagram 1 goes
		t.Fatal(err)
	}
	if e.r.Pending() != 1 || e.r.HeldPbufs() != 3 || e.r.Stats().Memerr != 2 {
		t.Fatalf("pending %d held %d stats %+v", e.r.Pending(), e.r.HeldPbufs(), *e.r.Stats())
	}
	e.deliver(key4(2), pb[1], data)
	// The last fragment (1040 bytes + header: 3 pbufs) does not fit and nothing else can go.
	if _, _, err := e.deliver(key4(2), pb[2], data); !errors.Is(err, errs.Mem) {
		t.Fatalf("over MaxPbufs with nothing to evict: %v", err)
	}
	if e.r.Pending() != 1 || e.r.HeldPbufs() != 6 || e.r.Stats().Memerr != 3 {
		t.Fatalf("pending %d held %d stats %+v", e.r.Pending(), e.r.HeldPbufs(), *e.r.Stats())
	}
	// A new datagram whose fragment alone exceeds the budget leaves nothing behind.
	e2 := newEnv(t, func(c *Config, _ *pbuf.Config) { c.MaxPbufs = 2 })
	if _, _, err := e2.deliver(key4(3), pa[0], data); !errors.Is(err, errs.Mem) {
		t.Fatal(err)
	}
	e2.quiet()
}

func TestRefusedFragments(t *testing.T) {
	e := newEnv(t)
	k := key4(3)
	data := payload(70000, 6)
	hdr := plan(t, k, 16, 1500, nil)[0].hdr
	in := func(off, n int, more bool) error {
		d, _, err := e.r.Input(k, e.packet(piece{hdr: hdr, off: off, n: n, more: more}, data), len(hdr), off, more)
		if d != nil {
			d.Free()
		}
		return err
	}
	for _, c := range []struct {
		name      string
		off, n    int
		more      bool
		want      error
		lenerrInc uint64
	}{
		{"misaligned", 0, 12, true, ErrMisaligned, 1},
		{"empty non-last", 8, 0, true, ErrMisaligned, 1},
		{"too big", 65528, 16, false, ErrTooBig, 1},
		{"bad offset", 4, 8, true, errs.Arg, 1},
	} {
		before := e.r.Stats().Lenerr
		if err := in(c.off, c.n, c.more); !errors.Is(err, c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
		if e.r.Stats().Lenerr-before != c.lenerrInc {
			t.Errorf("%s: Lenerr not counted", c.name)
		}
	}
	if _, _, err := e.r.Input(k, e.packet(piece{hdr: hdr, n: 8, more: true}, data), 600, 0, true); !errors.Is(err, errs.Arg) {
		t.Errorf("hdrLen past the first pbuf: %v", err)
	}
	e.quiet()

	// Inconsistent last fragments.
	if err := in(16, 16, false); err != nil { // total = 32
		t.Fatal(err)
	}
	if err := in(32, 8, true); !errors.Is(err, ErrInconsistent) {
		t.Errorf("beyond the total: %v", err)
	}
	if err := in(8, 8, false); !errors.Is(err, ErrInconsistent) {
		t.Errorf("second last fragment: %v", err)
	}
	k = key4(4)
	if err := in(16, 16, true); err != nil {
		t.Fatal(err)
	}
	k = key4(3)
	if err := in(0, 16, true); err != nil { // completes datagram 3 (32 bytes)
		t.Fatal(err)
	}
	k = key4(4)
	if err := in(8, 8, false); !errors.Is(err, ErrInconsistent) {
		t.Errorf("last fragment before held data: %v", err)
	}
	e.r.Close()
	if err := in(0, 8, true); !errors.Is(err, errs.Clsd) {
		t.Errorf("after Close: %v", err)
	}
}

func TestTooBigOnceHeadersKnown(t *testing.T) {
	// 60-byte first header + 65496 data bytes > 65535 although each fragment fits alone.
	e := newEnv(t)
	k := key4(5)
	data := payload(65496, 7)
	opts := make([]byte, 40)
	ps := plan(t, k, 65496, 1500, opts)
	last := ps[len(ps)-1]
	if _, _, err := e.deliver(k, last, data); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.deliver(k, ps[0], data); !errors.Is(err, ErrTooBig) {
		t.Fatalf("first fragment: %v", err)
	}
	if _, _, err := e.deliver(k, ps[1], data); !errors.Is(err, ErrTooBig) {
		t.Fatalf("later fragment: %v", err)
	}
	if s := e.r.Stats(); s.Lenerr != 3 || s.Drop != 3 {
		t.Fatalf("stats %+v", *s)
	}
}

func TestDisabled(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *pbuf.Config) { c.MaxDatagrams = 0; c.MaxPbufs = 0 })
	k := key4(1)
	data := payload(4000, 0)
	ps := plan(t, k, 4000, 1500, nil)
	if _, _, err := e.deliver(k, ps[0], data); !errors.Is(err, errs.Mem) {
		t.Fatal(err)
	}
	if e.r.Stats().Memerr != 1 {
		t.Fatal("not counted")
	}
	e.quiet()
}

func TestNewReassemblerValidates(t *testing.T) {
	if _, err := NewReassembler(Config{}); !errors.Is(err, errs.Val) {
		t.Fatal("nil allocator accepted")
	}
	a := pbuf.NewAllocator(pbuf.Config{PoolCount: 1, PoolBufSize: 64})
	if _, err := NewReassembler(Config{Alloc: a, MaxDatagrams: 1, MaxPbufs: 2}); !errors.Is(err, errs.Val) {
		t.Fatal("no timers accepted")
	}
}

func TestInputAllocs(t *testing.T) {
	e := newEnv(t)
	k := key4(77)
	data := payload(4000, 1)
	ps := plan(t, k, 4000, 1500, nil)
	var pkts [3]*pbuf.Pbuf
	run := func() {
		for i := range ps {
			pkts[i] = e.packet(ps[i], data) // pool allocations only
		}
		for i, p := range ps {
			d, _, err := e.r.Input(k, pkts[i], 20, p.off, p.more)
			if err != nil {
				t.Fatal(err)
			}
			if d != nil {
				d.Free()
			}
		}
	}
	run()
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Fatalf("Input of a 3-fragment datagram: %v allocations", n)
	}
	e.quiet()
}

func BenchmarkInput3(b *testing.B) {
	e := newEnv(b)
	k := key4(77)
	data := payload(4000, 1)
	ps := plan(b, k, 4000, 1500, nil)
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range ps {
			d, _, _ := e.r.Input(k, e.packet(p, data), 20, p.off, p.more)
			if d != nil {
				d.Free()
			}
		}
	}
}

func TestV6KeyIgnoresProto(t *testing.T) {
	e := newEnv(t)
	data := payload(4000, 8)
	ps := plan(t, key6(5), 4000, 1500, nil)
	var d *pbuf.Pbuf
	for i, p := range ps {
		k := key6(5)
		k.Proto = uint8(i) // RFC 8200 §4.5: Next Header may differ between fragments
		var err error
		if d, _, err = e.deliver(k, p, data); err != nil {
			t.Fatal(err)
		}
	}
	if d == nil {
		t.Fatal("not reassembled")
	}
	d.Free()
	if ErrOverlap.Error() == "" {
		t.Fatal("empty error text")
	}
}

// TestExpiredReentry feeds a fragment from inside Expired: the timer must still fall due
// at the remaining oldest deadline.
func TestExpiredReentry(t *testing.T) {
	e := newEnv(t)
	data := payload(4000, 2)
	ps := plan(t, key4(1), 4000, 1500, nil)
	e.deliver(key4(1), ps[0], data)
	e.clk.Advance(time.Second)
	e.deliver(key4(2), ps[1], data)
	inner := e.r.cfg.Expired
	e.r.cfg.Expired = func(k Key, first *pbuf.Pbuf) {
		inner(k, first)
		e.deliver(key4(3), ps[1], data)
	}
	e.clk.Advance(testAge - time.Second)
	if len(e.expired) != 1 || e.r.Pending() != 2 {
		t.Fatalf("expired %v pending %d", e.expired, e.r.Pending())
	}
	if d, ok := e.clk.Next(); !ok || d != time.Second {
		t.Fatalf("timer in %v, want 1s", d)
	}
	e.clk.Advance(testAge)
	e.quiet()
}

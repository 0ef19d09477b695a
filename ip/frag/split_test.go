package frag

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
)

// chain builds a payload chain from segments of the given lengths and kinds (POOL chains
// from the allocator, RAM blocks), concatenated with pbuf.Cat.
func (e *env) chain(data []byte, segs []int, typ pbuf.Type) *pbuf.Pbuf {
	e.t.Helper()
	var head *pbuf.Pbuf
	off := 0
	for _, n := range segs {
		q, err := e.a.Alloc(pbuf.LayerTransport, n, typ)
		if err != nil {
			e.t.Fatal(err)
		}
		q.CopyIn(data[off:off+n], 0)
		off += n
		if head == nil {
			head = q
		} else {
			pbuf.Cat(head, q)
		}
	}
	return head
}

func TestSplit(t *testing.T) {
	layouts := []struct {
		segs []int
		typ  pbuf.Type
	}{
		{[]int{1}, pbuf.POOL},
		{[]int{7}, pbuf.POOL},
		{[]int{8}, pbuf.POOL},
		{[]int{100}, pbuf.POOL},
		{[]int{1480}, pbuf.POOL},
		{[]int{4000}, pbuf.POOL},
		{[]int{65000}, pbuf.POOL},
		{[]int{3, 500, 1, 2000, 17}, pbuf.POOL},
		{[]int{2960, 1}, pbuf.RAM},
		{[]int{1000, 3000}, pbuf.RAM},
	}
	for _, l := range layouts {
		for _, maxData := range []int{8, 13, 1448, 1480, 1500} {
			t.Run(fmt.Sprintf("%v/%v/%d", l.segs, l.typ, maxData), func(t *testing.T) {
				e := newEnv(t, func(c *Config, _ *pbuf.Config) { c.MaxFragPbufs = 9000 })
				f := e.r.Fragmenter()
				total := 0
				for _, n := range l.segs {
					total += n
				}
				data := payload(total, 0x33)
				p := e.chain(data, l.segs, l.typ)
				sentinel, _ := e.a.Alloc(pbuf.LayerRaw, 1, pbuf.POOL)
				out := []*pbuf.Pbuf{sentinel}
				out, err := f.Split(p, maxData, out)
				if err != nil {
					t.Fatal(err)
				}
				p.Free() // the views keep the memory alive
				step := maxData &^ 7
				if want := (total + step - 1) / step; len(out)-1 != want {
					t.Fatalf("%d fragments, want %d", len(out)-1, want)
				}
				var got []byte
				for i, v := range out[1:] {
					if err := v.Check(); err != nil {
						t.Fatal(err)
					}
					last := i == len(out)-2
					if v.TotLen() > step || (!last && v.TotLen() != step) {
						t.Fatalf("fragment %d: %d bytes", i, v.TotLen())
					}
					got = v.Bytes(got)
					v.Free()
				}
				if !bytes.Equal(got, data) {
					t.Fatal("views do not concatenate to the payload")
				}
				out[0].Free()
			})
		}
	}
}

func TestSplitErrors(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *pbuf.Config) { c.MaxFragPbufs = 5 })
	f := e.r.Fragmenter()
	data := payload(4000, 1)
	p := e.chain(data, []int{4000}, pbuf.POOL) // a chain of 9 POOL pbufs
	if out, err := f.Split(p, 7, nil); !errors.Is(err, errs.Val) || len(out) != 0 {
		t.Fatalf("maxData 7: %v", err)
	}
	prev := []*pbuf.Pbuf{nil, nil}
	out, err := f.Split(p, 1480, prev[:1])
	if !errors.Is(err, errs.Mem) || len(out) != 1 || out[0] != nil {
		t.Fatalf("out of FRAG_PBUF: %v, %d", err, len(out))
	}
	if prev[1] != nil {
		t.Fatal("a freed view is left in the slice")
	}
	if s := f.Pool().Stats(); s.Used != 0 || s.Err == 0 {
		t.Fatalf("FRAG_PBUF after failure: %+v", s)
	}
	if p.Refs() != 1 || p.Check() != nil {
		t.Fatal("payload references leaked")
	}
	p.Free()
	if MaxData(1500, 20) != 1480 || MaxData(1500, 48) != 1448 || MaxData(1500, 24) != 1472 || MaxData(10, 20) != 0 {
		t.Fatal("MaxData")
	}
}

func TestSplitAllocs(t *testing.T) {
	e := newEnv(t)
	f := e.r.Fragmenter()
	p := e.chain(payload(4000, 2), []int{1000, 3000}, pbuf.POOL)
	out := make([]*pbuf.Pbuf, 0, 8)
	n := testing.AllocsPerRun(100, func() {
		var err error
		out, err = f.Split(p, 1480, out[:0])
		if err != nil || len(out) != 3 {
			t.Fatal(err)
		}
		for _, v := range out {
			v.Free()
		}
	})
	if n != 0 {
		t.Fatalf("Split: %v allocations", n)
	}
	p.Free()
}

// TestSplitReassemble round-trips a datagram through Split and Input, prepending headers to
// the views as the IP layer will.
func TestSplitReassemble(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		e := newEnv(t)
		k := keyFor(v6, 99)
		data := payload(9000, 0x77)
		p := e.chain(data, []int{2000, 7000}, pbuf.POOL)
		ps := plan(t, k, 9000, 1500, nil)
		views, err := e.r.Fragmenter().Split(p, MaxData(1500, len(ps[1].hdr)), nil)
		p.Free()
		if err != nil {
			t.Fatal(err)
		}
		off := 0
		var d *pbuf.Pbuf
		for i, v := range views {
			// plan used the same MTU so piece i matches view i (no v4 options here).
			h, err := e.a.Alloc(pbuf.LayerLink, len(ps[i].hdr), pbuf.RAM)
			if err != nil {
				t.Fatal(err)
			}
			h.CopyIn(ps[i].hdr, 0)
			pbuf.Cat(h, v)
			if ps[i].off != off || ps[i].n != v.TotLen() {
				t.Fatalf("view %d at %d+%d, plan %d+%d", i, off, v.TotLen(), ps[i].off, ps[i].n)
			}
			e.r.AddXmit(v6, 1)
			d, _, err = e.r.Input(k, h, len(ps[i].hdr), off, i < len(views)-1)
			if err != nil {
				t.Fatal(err)
			}
			off += v.TotLen()
		}
		if d == nil || !bytes.Equal(d.Bytes(nil)[len(ps[0].hdr):], data) {
			t.Fatal("round trip failed")
		}
		d.Free()
		if e.r.Stats().Xmit != uint64(len(views)) {
			t.Fatal("Xmit")
		}
	}
}

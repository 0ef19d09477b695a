package fifo

import (
	"bytes"
	"errors"
	"testing"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
)

func frames(t *testing.T, a *pbuf.Allocator, lens ...int) []*pbuf.Pbuf {
	t.Helper()
	ps := make([]*pbuf.Pbuf, len(lens))
	for i, n := range lens {
		ps[i] = linktest.Frame(t, a, linktest.Pattern(n, byte(i)))
	}
	return ps
}

func TestPutShutClose(t *testing.T) {
	alloc := linktest.NewAllocator()
	q := New(3, 10)
	// Accepted in order until the 11-byte frame; it and the one after it are dropped.
	if n, err := q.Put(frames(t, alloc, 5, 10, 11, 1)); n != 2 || !errors.Is(err, errs.Val) {
		t.Fatalf("put: %d %v", n, err)
	}
	if n, err := q.Put(frames(t, alloc, 1, 2)); n != 1 || !errors.Is(err, errs.WouldBlock) {
		t.Fatalf("put into a full queue: %d %v", n, err)
	}
	q.Shut()
	if n, err := q.Put(frames(t, alloc, 1)); n != 0 || !errors.Is(err, errs.Clsd) {
		t.Fatalf("put after Shut: %d %v", n, err)
	}
	if q.Len() != 3 {
		t.Fatal("Shut dropped queued frames", q.Len())
	}
	q.Close()
	q.Close()
	if del, dr := q.Stats(); del != 0 || dr != 2+1+1+3 {
		t.Fatalf("stats %d %d", del, dr)
	}
	linktest.CheckZero(t, alloc)
}

// sizer hands out receive chains delta bytes longer (or shorter) than asked for.
type sizer struct {
	*linktest.Dispatcher
	delta int
}

func (s sizer) AllocRx(n int) *pbuf.Pbuf { return s.Dispatcher.AllocRx(n + s.delta) }

func TestCopyIntoRxChain(t *testing.T) {
	tx, rx := linktest.NewAllocator(), linktest.NewAllocator()
	q := New(8, 2000)
	d := linktest.NewDispatcher(rx)
	q.Attach(sizer{d, 100})
	want := linktest.Pattern(1200, 7) // spans several 512-byte POOL pbufs
	q.Put([]*pbuf.Pbuf{linktest.Frame(t, tx, want)})
	if n := q.Drain(); n != 1 || d.Count() != 1 || !bytes.Equal(d.Frames()[0], want) {
		t.Fatalf("drained %d, delivered %d", n, d.Count())
	}
	// The written frame was freed at once, before the receiver freed its copy.
	linktest.CheckZero(t, tx)
	q.Attach(sizer{d, -1})
	q.Put(frames(t, tx, 60))
	if n := q.Drain(); n != 1 || d.Count() != 1 {
		t.Fatal("a short rx chain was delivered", n, d.Count())
	}
	q.Attach(nil)
	q.Put(frames(t, tx, 60))
	q.Drain()
	if del, dr := q.Stats(); del != 1 || dr != 2 {
		t.Fatalf("stats %d %d", del, dr)
	}
	q.Close()
	linktest.CheckZero(t, tx)
	linktest.CheckZero(t, rx)
}

// bouncer puts every frame back and tries to drain from inside DeliverPackets.
type bouncer struct {
	*linktest.Dispatcher
	q      *Queue
	inside int // frames a nested Drain moved: must stay 0
}

func (b *bouncer) DeliverPackets(pkts []*pbuf.Pbuf) {
	b.q.Put(pkts)
	b.inside += b.q.Drain() + b.q.DrainRounds(3)
}

func TestDrainRoundsBounded(t *testing.T) {
	alloc := linktest.NewAllocator()
	q := New(4, 100)
	b := &bouncer{Dispatcher: linktest.NewDispatcher(alloc), q: q}
	q.Attach(b)
	q.Put(frames(t, alloc, 20, 30))
	if n := q.Drain(); n != 2 {
		t.Fatal("one round moved", n)
	}
	if n := q.DrainRounds(5); n != 10 {
		t.Fatal("five rounds moved", n)
	}
	if b.inside != 0 || q.Len() != 2 {
		t.Fatal("nested drain", b.inside, q.Len())
	}
	q.Close()
	linktest.CheckZero(t, alloc)
}

func TestAsyncCloseStopsGoroutine(t *testing.T) {
	base := linktest.Goroutines()
	alloc := linktest.NewAllocator()
	q := New(64, 100)
	q.Start()
	d := linktest.NewDispatcher(alloc)
	q.Attach(d)
	q.Put(frames(t, alloc, 10, 20, 30))
	for range 20 {
		q.Put(frames(t, alloc, 40))
	}
	q.Close()
	if del, dr := q.Stats(); del+dr != 23 || del != uint64(d.Count()) {
		t.Fatalf("stats %d %d, delivered %d", del, dr, d.Count())
	}
	linktest.CheckZero(t, alloc)
	linktest.CheckGoroutines(t, base)
}

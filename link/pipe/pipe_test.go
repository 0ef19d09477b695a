package pipe

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
)

func write(t *testing.T, e *End, ps ...*pbuf.Pbuf) (int, error) {
	t.Helper()
	return e.WritePackets(ps)
}

func TestAsyncBothDirectionsByteExact(t *testing.T) {
	base := linktest.Goroutines()
	alloc := linktest.NewAllocator()
	a, b := New(Config{})
	da, db := linktest.NewDispatcher(alloc), linktest.NewDispatcher(alloc)
	a.Attach(da)
	b.Attach(db)
	var want [][]byte
	for i := range 100 {
		f := linktest.Pattern(14+i*13, byte(i))
		want = append(want, f)
		if n, err := write(t, a, linktest.Frame(t, alloc, f)); n != 1 || err != nil {
			t.Fatalf("write %d: %d %v", i, n, err)
		}
	}
	if n, err := write(t, b, linktest.Frame(t, alloc, []byte("back to a, fourteen+"))); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	if !db.Wait(100, 5*time.Second) || !da.Wait(1, 5*time.Second) {
		t.Fatalf("delivered %d and %d", db.Count(), da.Count())
	}
	got := db.Frames()
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	if string(da.Frames()[0]) != "back to a, fourteen+" {
		t.Fatal("b→a frame differs")
	}
	if d, dr := a.Stats(); d != 100 || dr != 0 {
		t.Fatalf("stats %d %d", d, dr)
	}
	if a.HardwareAddr() != [6]byte{2, 0, 0, 0, 0, 1} || b.HardwareAddr() != [6]byte{2, 0, 0, 0, 0, 2} {
		t.Fatal("default MACs")
	}
	a.Close()
	b.Close()
	linktest.CheckZero(t, alloc)
	linktest.CheckGoroutines(t, base)
}

func TestSyncFlushAndErrors(t *testing.T) {
	alloc := linktest.NewAllocator()
	a, b := New(Config{Sync: true, QueueLen: 4, MTU: 100, Medium: link.MediumIP})
	db := linktest.NewDispatcher(alloc)
	b.Attach(db)
	if a.HardwareAddr() != ([6]byte{}) || a.MTU() != 100 || a.Medium() != link.MediumIP {
		t.Fatal("endpoint facts")
	}
	// Too long: 101 bytes on an IP medium with MTU 100.
	n, err := write(t, a, linktest.Frame(t, alloc, make([]byte, 50)), linktest.Frame(t, alloc, make([]byte, 101)),
		linktest.Frame(t, alloc, make([]byte, 10)))
	if n != 1 || !errors.Is(err, errs.Val) {
		t.Fatalf("got %d %v", n, err)
	}
	// Queue of 4: one queued, three more fit, the fifth is refused.
	var ps []*pbuf.Pbuf
	for range 5 {
		ps = append(ps, linktest.Frame(t, alloc, []byte{1, 2, 3}))
	}
	if n, err := a.WritePackets(ps); n != 3 || !errors.Is(err, errs.WouldBlock) {
		t.Fatalf("got %d %v", n, err)
	}
	if out, in := a.Queued(); out != 4 || in != 0 {
		t.Fatal("queued", out, in)
	}
	if db.Count() != 0 {
		t.Fatal("sync pipe delivered without Flush")
	}
	if n := b.Flush(); n != 4 || db.Count() != 4 {
		t.Fatalf("flush %d, delivered %d", n, db.Count())
	}
	if d, dr := a.Stats(); d != 4 || dr != 4 {
		t.Fatalf("stats %d %d", d, dr)
	}
	// No dispatcher on a: b's frames are dropped and counted.
	write(t, b, linktest.Frame(t, alloc, []byte{9}))
	a.Flush()
	if _, dr := b.Stats(); dr != 1 {
		t.Fatal("frame without dispatcher not counted")
	}
	write(t, a, linktest.Frame(t, alloc, []byte{7}))
	a.Close()
	a.Close()
	if n, err := write(t, b, linktest.Frame(t, alloc, []byte{1})); n != 0 || !errors.Is(err, errs.Clsd) {
		t.Fatal("write after close", n, err)
	}
	linktest.CheckZero(t, alloc)
}

func TestRxExhaustionDrops(t *testing.T) {
	tx := linktest.NewAllocator()
	rx := pbuf.NewAllocator(pbuf.Config{PoolCount: 2, PoolBufSize: 128, HeapSize: 4096, RefCount: 2, RAMCount: 2})
	a, b := New(Config{Sync: true})
	d := linktest.NewDispatcher(rx)
	b.Attach(d)
	// Each frame needs one POOL pbuf, and the dispatcher frees it on delivery.
	for range 5 {
		write(t, a, linktest.Frame(t, tx, make([]byte, 100)))
		a.Flush()
	}
	if d.Count() != 5 {
		t.Fatal(d.Count())
	}
	// A frame needing three 128-byte chunks cannot be received from a pool of two.
	write(t, a, linktest.Frame(t, tx, make([]byte, 300)))
	a.Flush()
	if _, dr := a.Stats(); dr != 1 || d.AllocFails() != 1 {
		t.Fatal("exhaustion not counted", dr, d.AllocFails())
	}
	a.Close()
	linktest.CheckZero(t, tx)
	linktest.CheckZero(t, rx)
}

// echo is a dispatcher that writes every frame it receives back out of its End.
type echo struct {
	*linktest.Dispatcher
	e *End
}

func (x echo) DeliverPackets(pkts []*pbuf.Pbuf) {
	x.e.WritePackets(pkts)
}

func TestSyncPingPongBounded(t *testing.T) {
	alloc := linktest.NewAllocator()
	a, b := New(Config{Sync: true})
	a.Attach(echo{linktest.NewDispatcher(alloc), a})
	b.Attach(echo{linktest.NewDispatcher(alloc), b})
	write(t, a, linktest.Frame(t, alloc, make([]byte, 60)))
	// Each round carries the frame there and back.
	if n := a.FlushRounds(10); n != 20 {
		t.Fatalf("ten rounds moved %d frames", n)
	}
	if n := a.Flush(); n != 2*maxFlushRounds {
		t.Fatalf("flush moved %d", n)
	}
	a.Close()
	linktest.CheckZero(t, alloc)
}

func TestCloseFreesQueuedAsync(t *testing.T) {
	base := linktest.Goroutines()
	alloc := linktest.NewAllocator()
	a, b := New(Config{})
	// Nobody attached: frames are dropped by the goroutine or freed by Close.
	for range 50 {
		write(t, a, linktest.Frame(t, alloc, make([]byte, 64)))
	}
	b.Close()
	linktest.CheckZero(t, alloc)
	linktest.CheckGoroutines(t, base)
}

func TestConcurrentWritersRace(t *testing.T) {
	base := linktest.Goroutines()
	alloc := linktest.NewAllocator()
	a, b := New(Config{QueueLen: 64})
	db := linktest.NewDispatcher(alloc)
	db.Discard = true
	b.Attach(db)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				p, err := alloc.Alloc(pbuf.LayerLink, 60+w+i%7, pbuf.RAM)
				if err != nil {
					continue
				}
				a.WritePackets([]*pbuf.Pbuf{p})
			}
		}()
	}
	wg.Wait()
	a.Close()
	d, dr := a.Stats()
	if d+dr > 800 || uint64(db.Count()) != d {
		t.Fatal("counts", d, dr, db.Count())
	}
	linktest.CheckZero(t, alloc)
	linktest.CheckGoroutines(t, base)
}

func TestSyncAllocsPerRun(t *testing.T) {
	alloc := linktest.NewAllocator()
	a, b := New(Config{Sync: true})
	linktest.CheckWriteAllocs(t, alloc, a, b, a.Flush, pbuf.LayerLink, 8, 200)
	a.Close()
	linktest.CheckZero(t, alloc)
}

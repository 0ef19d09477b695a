package loopback

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
)

func TestAsyncLoop(t *testing.T) {
	base := linktest.Goroutines()
	alloc := linktest.NewAllocator()
	l := New(Config{})
	d := linktest.NewDispatcher(alloc)
	l.Attach(d)
	if l.Medium() != link.MediumIP || l.HardwareAddr() != ([6]byte{}) || l.MTU() != 65535 {
		t.Fatal("endpoint facts")
	}
	var want [][]byte
	for i := range 200 {
		b := linktest.Pattern(20+i, byte(i))
		want = append(want, b)
		if n, err := l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, alloc, b)}); n != 1 || err != nil {
			t.Fatal(n, err)
		}
	}
	if !d.Wait(200, 5*time.Second) {
		t.Fatal("delivered", d.Count())
	}
	for i, f := range d.Frames() {
		if !bytes.Equal(f, want[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	l.Close()
	l.Close()
	if n, err := l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, alloc, []byte{1})}); n != 0 || !errors.Is(err, errs.Clsd) {
		t.Fatal(n, err)
	}
	linktest.CheckZero(t, alloc)
	linktest.CheckGoroutines(t, base)
}

// replier answers every packet with one more, forever.
type replier struct {
	*linktest.Dispatcher
	l *Link
}

func (r replier) DeliverPackets(pkts []*pbuf.Pbuf) { r.l.WritePackets(pkts) }

func TestSyncFlushBoundsAndErrors(t *testing.T) {
	alloc := linktest.NewAllocator()
	l := New(Config{Sync: true, MTU: 100, QueueLen: 2})
	d := linktest.NewDispatcher(alloc)
	l.Attach(d)
	ps := []*pbuf.Pbuf{linktest.Frame(t, alloc, []byte{1}), linktest.Frame(t, alloc, make([]byte, 101)), linktest.Frame(t, alloc, []byte{2})}
	if n, err := l.WritePackets(ps); n != 1 || !errors.Is(err, errs.Val) {
		t.Fatal(n, err)
	}
	ps = []*pbuf.Pbuf{linktest.Frame(t, alloc, []byte{3}), linktest.Frame(t, alloc, []byte{4})}
	if n, err := l.WritePackets(ps); n != 1 || !errors.Is(err, errs.WouldBlock) {
		t.Fatal(n, err)
	}
	if d.Count() != 0 {
		t.Fatal("sync loopback delivered without Flush")
	}
	if n := l.Flush(); n != 2 || d.Count() != 2 {
		t.Fatal(n, d.Count())
	}
	if del, dr := l.Stats(); del != 2 || dr != 3 {
		t.Fatal(del, dr)
	}
	l.Attach(replier{d, l})
	l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, alloc, []byte{5})})
	if n := l.Flush(); n != maxFlushRounds {
		t.Fatal("flush rounds", n)
	}
	l.Close()
	linktest.CheckZero(t, alloc)
}

func TestSyncAllocsPerRun(t *testing.T) {
	alloc := linktest.NewAllocator()
	l := New(Config{Sync: true})
	linktest.CheckWriteAllocs(t, alloc, l, l, l.Flush, pbuf.LayerIP, 4, 300)
	l.Close()
	linktest.CheckZero(t, alloc)
}

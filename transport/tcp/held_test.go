package tcp

import (
	"testing"
	"time"

	"github.com/wispstack/wisp/pbuf"
)

// The byte totals of Info follow the data acknowledged and received, not the SYN or FIN.
func TestInfoByteTotals(t *testing.T) {
	w := newWorld(t, worldCfg{})
	srv, cli := w.connect()
	if cli.c == nil || len(srv.accepted) != 1 {
		t.Fatal("no connection")
	}
	const n = 100000
	data := make([]byte, n)
	w.a.Do(func() {
		if err := cli.c.Write(data[:40000], WriteCopy); err != nil {
			t.Fatal(err)
		}
		cli.c.Output()
	})
	w.Run(time.Second)
	w.a.Do(func() {
		if err := cli.c.Write(data[40000:], WriteCopy); err != nil {
			t.Fatal(err)
		}
		cli.c.Output()
	})
	w.Run(time.Second)
	var ci, si Info
	w.a.Do(func() { ci = cli.c.Info() })
	w.b.Do(func() { si = srv.accepted[0].Info() })
	if ci.BytesAcked != n || ci.BytesReceived != 0 || si.BytesReceived != n || si.BytesAcked != 0 {
		t.Fatalf("after %d bytes: client acked %d received %d, server acked %d received %d",
			n, ci.BytesAcked, ci.BytesReceived, si.BytesAcked, si.BytesReceived)
	}
	// Both FINs are exchanged and acknowledged: the totals do not count them.
	w.a.Do(func() { _ = cli.c.Shutdown(false, true) })
	w.b.Do(func() { _ = srv.accepted[0].Shutdown(false, true) })
	w.Run(time.Second)
	w.a.Do(func() {
		w.a.tcp.Conns(func(i Info) { ci = i })
	})
	if ci.State != StateTimeWait || ci.BytesAcked != n || ci.BytesReceived != 0 {
		t.Fatalf("after both FINs: %v acked %d received %d", ci.State, ci.BytesAcked, ci.BytesReceived)
	}
	w.a.Do(func() { _ = cli.c.Close() })
	w.b.Do(func() { _ = srv.accepted[0].Close() })
}

// A total goes on past 4 GiB: RCV.NXT and SND.UNA wrap, the count of wraps does not.
func TestInfoByteTotalsWrap(t *testing.T) {
	c := &PCB{irs: 0xfffffff0, rcvNxt: 0xfffffff1, iss: 7, sndUna: 8}
	c.rcvAdvance(1 << 31)
	c.rcvAdvance(1 << 31)
	c.rcvAdvance(5)
	if got, want := c.bytesReceived(), uint64(1<<32+5); got != want {
		t.Fatalf("received %d, want %d", got, want)
	}
	if got := c.bytesAcked(); got != 0 {
		t.Fatalf("acked %d with only the SYN acknowledged", got)
	}
	c.ackWraps, c.sndUna = 1, 7+100
	if got, want := c.bytesAcked(), uint64(1<<32+99); got != want {
		t.Fatalf("acked %d, want %d", got, want)
	}
}

// memHeld counts the POOL pbufs and heap blocks of the send and out-of-order queues.
func TestMemHeld(t *testing.T) {
	a := pbuf.NewAllocator(pbuf.Config{PoolCount: 4, PoolBufSize: 256, HeapSize: 1 << 14, RefCount: 4, RAMCount: 4})
	oo, err := a.Alloc(pbuf.LayerRaw, 300, pbuf.POOL) // two chunks
	if err != nil {
		t.Fatal(err)
	}
	snd, err := a.Alloc(pbuf.LayerRaw, 1024, pbuf.RAM) // one 1 KiB block
	if err != nil {
		t.Fatal(err)
	}
	ref, err := a.AllocRef(make([]byte, 100), pbuf.REF, nil) // the application's memory
	if err != nil {
		t.Fatal(err)
	}
	c := &PCB{pcbCold: &pcbCold{}}
	c.ooseq.push(&seg{p: oo, len: 301, flags: sFIN})
	c.sndq.push(&seg{p: snd, len: 1024})
	c.sndq.push(&seg{p: ref, len: 100})
	if p, h, o := c.memHeld(); p != 2 || h != 1024 || o != 300 {
		t.Fatalf("held %d pbufs, %d heap bytes, %d out of order; want 2, 1024, 300", p, h, o)
	}
	oo.Free()
	snd.Free()
	ref.Free()
	if p, h, o := (&PCB{}).memHeld(); p != 0 || h != 0 || o != 0 {
		t.Fatal("a parked connection holds memory")
	}
}

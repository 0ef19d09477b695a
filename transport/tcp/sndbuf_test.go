package tcp

import (
	"testing"
	"time"

	"github.com/wispstack/wisp/opt"
)

// The send buffer starts at TCPSndBuf, follows twice the congestion window up to
// TCPMaxSndBuf and never shrinks; SetSndBuf fixes it (capped) and 0 restores autotuning;
// TCPMaxSndBuf 0 (the embedded preset) never grows it.
func TestSndBufAutotune(t *testing.T) {
	o := opt.Tunnel()
	w := newWorld(t, worldCfg{opts: o})
	w.a.Do(func() {
		c, err := w.a.tcp.NewPCB()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		now := w.Clock.Now()
		c.initCC(now)
		mss := 1000
		if got := c.SndBufSize(); got != o.TCPSndBuf || c.SndBuf() != o.TCPSndBuf {
			t.Fatalf("initial send buffer %d (room %d), want TCPSndBuf %d", got, c.SndBuf(), o.TCPSndBuf)
		}
		c.cc.Init(mss, 2000, now) // cwnd 2 MB
		c.growSndBuf()
		if got := c.SndBufSize(); got != 4_000_000 {
			t.Fatalf("send buffer %d with cwnd 2 MB, want 4000000", got)
		}
		c.cc.Init(mss, 100_000, now) // cwnd 100 MB
		c.growSndBuf()
		if got := c.SndBufSize(); got != o.TCPMaxSndBuf {
			t.Fatalf("send buffer %d with cwnd 100 MB, want TCPMaxSndBuf %d", got, o.TCPMaxSndBuf)
		}
		c.cc.Init(mss, 10, now)
		c.growSndBuf()
		if got := c.SndBufSize(); got != o.TCPMaxSndBuf {
			t.Fatalf("send buffer shrank to %d", got)
		}
		c.SetSndBuf(64 << 10)
		c.cc.Init(mss, 100_000, now)
		c.growSndBuf()
		if got := c.SndBufSize(); got != 64<<10 {
			t.Fatalf("SetSndBuf(64 KiB): %d, autotuning not off", got)
		}
		c.SetSndBuf(1 << 40)
		if got := c.SndBufSize(); got != o.TCPMaxSndBuf {
			t.Fatalf("SetSndBuf(1 TiB): %d, want the cap %d", got, o.TCPMaxSndBuf)
		}
		c.SetSndBuf(0)
		if got := c.SndBufSize(); got != o.TCPMaxSndBuf {
			t.Fatalf("SetSndBuf(0) with cwnd 100 MB: %d, want autotuned %d", got, o.TCPMaxSndBuf)
		}
	})

	e := opt.Embedded()
	w2 := newWorld(t, worldCfg{opts: e})
	w2.a.Do(func() {
		c, _ := w2.a.tcp.NewPCB()
		defer c.Close()
		c.initCC(time.Unix(1, 0))
		c.cc.Init(536, 1000, time.Unix(1, 0))
		c.growSndBuf()
		if got := c.SndBufSize(); got != e.TCPSndBuf {
			t.Fatalf("embedded preset: send buffer %d, want the fixed TCPSndBuf %d", got, e.TCPSndBuf)
		}
	})
}

// What autotuning adds beyond TCPSndBuf is offered only while the heap has room for it:
// SndBuf never promises what Write would refuse for memory.
func TestSndBufBoundedByHeap(t *testing.T) {
	o := opt.Tunnel()
	o.MemSize = 4 << 20
	o.TCPSndBuf = 1 << 20
	o.TCPMaxSndBuf = 64 << 20
	w := newWorld(t, worldCfg{opts: o})
	w.a.Do(func() {
		c, _ := w.a.tcp.NewPCB()
		defer c.Close()
		c.initCC(w.Clock.Now())
		c.cc.Init(1000, 100_000, w.Clock.Now())
		c.growSndBuf()
		if c.SndBufSize() != o.TCPMaxSndBuf {
			t.Fatalf("send buffer %d, want %d", c.SndBufSize(), o.TCPMaxSndBuf)
		}
		if room := c.SndBuf(); room < o.TCPSndBuf || room >= o.MemSize {
			t.Fatalf("room %d with a %d-byte heap: want at least TCPSndBuf %d, below the heap", room, o.MemSize, o.TCPSndBuf)
		}
	})
}

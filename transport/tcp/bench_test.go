package tcp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/opt"
)

// bulk is a steady-state transfer A → B over a sync pipe: A refills its send buffer from a
// static block whenever data is acknowledged, B frees what it receives and opens its
// window at once.
type bulk struct {
	w     *world
	c, s  *PCB
	block []byte
	rcvd  int
	flags WriteFlags
	stop  bool
}

func newBulk(tb testing.TB, mtu int, flags WriteFlags, mod func(*opt.Options)) *bulk {
	return newBulkOff(tb, mtu, flags, mod, link.Offloads{})
}

// Offloads of the bulk benchmarks' GSO variants: the pipe takes whole GSO packets (TSO),
// or the stack cuts them before it (software GSO).
var (
	offTSO  = link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: 65535}
	offSoft = link.Offloads{GSOMax: 65535}
)

// newBulkOff is newBulk over a pipe offering off.
func newBulkOff(tb testing.TB, mtu int, flags WriteFlags, mod func(*opt.Options), off link.Offloads) *bulk {
	o := testOpts()
	o.TCPMSS = 65495
	if mod != nil {
		mod(&o)
	}
	bk := &bulk{block: make([]byte, 64<<10), flags: flags}
	for i := range bk.block {
		bk.block[i] = byte(i * 7)
	}
	w := newWorld(tb, worldCfg{opts: o, mtu: mtu, offloads: off})
	bk.w = w
	tb.Cleanup(func() { bk.stop = true })
	listenFunc(tb, w.b, 80, 0, func(l *Listener, c *PCB) {
		bk.s = c
		c.OnRecv(sinkRecv(&bk.rcvd))
	})
	w.a.Do(func() {
		c, _ := w.a.tcp.NewPCB()
		bk.c = c
		c.OnSent(func(c *PCB, n int) { bk.fill() })
		if err := c.Connect(netip.AddrPortFrom(addrB, 80), nil); err != nil {
			tb.Fatal(err)
		}
	})
	w.Run(time.Millisecond)
	if bk.s == nil {
		tb.Fatal("not connected")
	}
	return bk
}

// fill queues as much as the send buffer takes (core context).
func (bk *bulk) fill() {
	c := bk.c
	if bk.stop {
		return
	}
	for {
		n := min(c.SndBuf(), len(bk.block))
		if n < len(bk.block)/4 {
			break
		}
		if c.Write(bk.block[:n], bk.flags) != nil {
			break
		}
	}
	c.Output()
}

// transfer moves at least n more bytes to B.
func (bk *bulk) transfer(n int) {
	target := bk.rcvd + n
	bk.w.a.Do(bk.fill)
	for bk.rcvd < target {
		if bk.w.PipeA.FlushRounds(1) == 0 {
			// Only timers can move things on (should not happen on a clean link).
			bk.w.Clock.Advance(time.Millisecond)
		}
	}
}

func benchBulk(b *testing.B, mtu int, flags WriteFlags) {
	benchBulkOff(b, mtu, flags, link.Offloads{})
}

func benchBulkOff(b *testing.B, mtu int, flags WriteFlags, off link.Offloads) {
	bk := newBulkOff(b, mtu, flags, nil, off)
	bk.transfer(8 << 20) // warm up: slow start, window growth
	const chunk = 1 << 20
	st0 := bk.w.a.stats()
	r0 := bk.rcvd
	b.SetBytes(chunk)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		bk.transfer(chunk)
	}
	b.StopTimer()
	st1 := bk.w.a.stats()
	segs := float64(st1.TCP.Xmit - st0.TCP.Xmit)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/segs, "ns/segment")
	b.ReportMetric(float64(bk.rcvd-r0)*8/b.Elapsed().Seconds()/1e9, "Gbit/s")
}

// BenchmarkBulk is the whole data path of both stacks (sender output and ACK input,
// receiver input and ACK output, the pipe's copy), per segment.
func BenchmarkBulk1500(b *testing.B)    { benchBulk(b, 1500, WriteCopy) }
func BenchmarkBulk1500Ref(b *testing.B) { benchBulk(b, 1500, 0) }
func BenchmarkBulk9000(b *testing.B)    { benchBulk(b, 9000, WriteCopy) }
func BenchmarkBulk65535(b *testing.B)   { benchBulk(b, 65535, WriteCopy) }

// The GSO variants at MTU 1500: ns/segment counts the GSO packets TCP handed to IP.
func BenchmarkBulk1500TSO(b *testing.B)     { benchBulkOff(b, 1500, WriteCopy, offTSO) }
func BenchmarkBulk1500SoftGSO(b *testing.B) { benchBulkOff(b, 1500, WriteCopy, offSoft) }
func BenchmarkBulk1500NoTS(b *testing.B) {
	benchBulkMod(b, 1500, func(o *opt.Options) { o.TCPTimestamps = false })
}

func benchBulkMod(b *testing.B, mtu int, mod func(*opt.Options)) {
	bk := newBulk(b, mtu, WriteCopy, mod)
	bk.transfer(8 << 20)
	const chunk = 1 << 20
	b.SetBytes(chunk)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		bk.transfer(chunk)
	}
}

// TestBulkNoAllocs pins the steady-state data path (segment output and input on both
// sides) at zero allocations.
func TestBulkNoAllocs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mtu   int
		flags WriteFlags
		off   link.Offloads
	}{
		{"1500-copy", 1500, WriteCopy, link.Offloads{}}, {"1500-ref", 1500, 0, link.Offloads{}},
		{"9000-copy", 9000, WriteCopy, link.Offloads{}},
		{"1500-tso", 1500, WriteCopy, offTSO}, {"1500-soft-gso", 1500, 0, offSoft},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bk := newBulkOff(t, tc.mtu, tc.flags, nil, tc.off)
			bk.transfer(4 << 20)
			if n := testing.AllocsPerRun(20, func() { bk.transfer(256 << 10) }); n != 0 {
				t.Errorf("%v allocations per 256 KiB transferred, want 0", n)
			}
		})
	}
}

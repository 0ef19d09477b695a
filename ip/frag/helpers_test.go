package frag

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

const testAge = 15 * time.Second

var (
	src4 = netip.MustParseAddr("192.0.2.1")
	dst4 = netip.MustParseAddr("198.51.100.7")
	src6 = netip.MustParseAddr("2001:db8::1")
	dst6 = netip.MustParseAddr("2001:db8:1::77")
)

// env is one test's stack slice: an allocator, a pool table, a fake clock and a Reassembler.
type env struct {
	t       testing.TB
	a       *pbuf.Allocator
	tab     *memp.Table
	clk     *clock.Fake
	core    sync.Mutex
	q       *clock.Timeouts
	r       *Reassembler
	expired []Key
	expHdr  [][]byte // bytes of each Expired first fragment, copied during the call
	// noGoroutineCheck is set by the fuzz target, whose engine starts and stops goroutines
	// of its own between iterations.
	noGoroutineCheck bool
}

type envOpt func(*Config, *pbuf.Config)

// newEnv builds an env; its cleanup closes everything and checks that every pool, the heap
// and the goroutine count are back where they started.
func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	g := linktest.Goroutines()
	pc := pbuf.Config{PoolCount: 1024, PoolBufSize: 512, HeapSize: 1 << 20, RefCount: 64, RAMCount: 64}
	cfg := Config{MaxDatagrams: 8, MaxPbufs: 400, MaxAge: testAge, MaxFragPbufs: 256}
	for _, o := range opts {
		o(&cfg, &pc)
	}
	e := &env{t: t, a: pbuf.NewAllocator(pc), tab: &memp.Table{}, clk: clock.NewFake(time.Unix(1000, 0))}
	e.a.Register(e.tab)
	e.q = clock.NewTimeouts(e.clk, &e.core)
	cfg.Alloc, cfg.Timers, cfg.Pools = e.a, e.q, e.tab
	cfg.Expired = func(k Key, first *pbuf.Pbuf) {
		if err := first.Check(); err != nil {
			t.Errorf("Expired: %v", err)
		}
		e.expired = append(e.expired, k)
		e.expHdr = append(e.expHdr, first.Bytes(nil))
	}
	r, err := NewReassembler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	t.Cleanup(func() {
		r.Close()
		e.q.Close()
		e.checkZero()
		if !e.noGoroutineCheck {
			linktest.CheckGoroutines(t, g)
		}
	})
	return e
}

// checkZero fails the test if any pool element, heap byte or held pbuf is still in use.
func (e *env) checkZero() {
	e.t.Helper()
	linktest.CheckEmpty(e.t, e.tab, e.a)
	if s := e.r.frags.Stats(); s.Used != 0 {
		e.t.Errorf("fragment descriptors: %d in use", s.Used)
	}
	if e.r.Pending() != 0 || e.r.HeldPbufs() != 0 {
		e.t.Errorf("pending %d, held %d", e.r.Pending(), e.r.HeldPbufs())
	}
}

// quiet checks that nothing is pending and no timer is armed.
func (e *env) quiet() {
	e.t.Helper()
	if e.r.Pending() != 0 || e.r.HeldPbufs() != 0 {
		e.t.Fatalf("pending %d, held %d", e.r.Pending(), e.r.HeldPbufs())
	}
	if e.r.tmo.Pending() || e.clk.Pending() != 0 || e.q.Len() != 0 {
		e.t.Fatalf("timer armed with nothing pending (clock %d, queue %d)", e.clk.Pending(), e.q.Len())
	}
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i>>8) ^ seed
	}
	return b
}

// piece is one fragment to deliver: the packet's headers and data, and its Input arguments.
type piece struct {
	hdr    []byte
	off, n int
	more   bool
}

// plan fragments a datagram of len(data) bytes for an MTU, with wire's emitters, as the
// IP layer's output would: v4 copies only the first fragment's options (hdrOpts), v6 puts an
// 8-byte Hop-by-Hop header in every fragment's unfragmentable part.
func plan(t testing.TB, k Key, dataLen, mtu int, opts []byte) []piece {
	t.Helper()
	var ps []piece
	for off := 0; off < dataLen; {
		var hdr []byte
		if k.V6 {
			hdr = make([]byte, wire.IPv6HeaderLen+8+wire.IPv6FragmentHeaderLen)
		} else {
			hl := wire.IPv4MinHeaderLen
			if off == 0 {
				hl += len(opts)
			}
			hdr = make([]byte, hl)
		}
		n := min(MaxData(mtu, len(hdr)), dataLen-off)
		more := off+n < dataLen
		if k.V6 {
			ip := wire.IPv6Repr{NextHeader: wire.ProtoHopByHop, HopLimit: 64, Src: k.Src, Dst: k.Dst,
				PayloadLen: len(hdr) - wire.IPv6HeaderLen + n}
			if err := ip.Emit(hdr); err != nil {
				t.Fatal(err)
			}
			hbh := hdr[wire.IPv6HeaderLen:]
			hbh[0], hbh[1], hbh[2], hbh[3] = wire.ProtoIPv6Frag, 0, 1, 4 // PadN of 4 bytes
			if err := wire.EmitIPv6Fragment(hdr[wire.IPv6HeaderLen+8:], wire.ProtoUDP, off, more, k.ID); err != nil {
				t.Fatal(err)
			}
		} else {
			ip := wire.IPv4Repr{ID: uint16(k.ID), MoreFragments: more, FragmentOffset: off, TTL: 64,
				Protocol: k.Proto, Src: k.Src, Dst: k.Dst, PayloadLen: n}
			if off == 0 {
				ip.Options = opts
			}
			if err := ip.Emit(hdr); err != nil {
				t.Fatal(err)
			}
		}
		ps = append(ps, piece{hdr: hdr, off: off, n: n, more: more})
		off += n
	}
	return ps
}

// packet builds the received POOL chain of piece p carrying data[p.off:p.off+p.n].
func (e *env) packet(p piece, data []byte) *pbuf.Pbuf {
	e.t.Helper()
	q, err := e.a.Alloc(pbuf.LayerRaw, len(p.hdr)+p.n, pbuf.POOL)
	if err != nil {
		e.t.Fatal(err)
	}
	q.CopyIn(p.hdr, 0)
	q.CopyIn(data[p.off:p.off+p.n], len(p.hdr))
	return q
}

// hdrLen finds the headers preceding the fragment data as the IP layer does, with wire.
func hdrLen(t testing.TB, k Key, hdr []byte) int {
	if !k.V6 {
		return wire.IPv4(hdr).HeaderLen()
	}
	b := append([]byte(nil), hdr...)
	wire.IPv6(b).SetPayloadLength(uint16(len(b) - wire.IPv6HeaderLen))
	c, err := wire.WalkIPv6(b)
	if err != nil || c.FragmentOffset == 0 {
		t.Fatalf("WalkIPv6: %v %+v", err, c)
	}
	return c.Offset
}

// deliver feeds piece p to the Reassembler.
func (e *env) deliver(k Key, p piece, data []byte) (*pbuf.Pbuf, int, error) {
	return e.r.Input(k, e.packet(p, data), hdrLen(e.t, k, p.hdr), p.off, p.more)
}

func key4(id uint32) Key { return Key{Src: src4, Dst: dst4, ID: id, Proto: wire.ProtoUDP} }
func key6(id uint32) Key { return Key{V6: true, Src: src6, Dst: dst6, ID: id} }

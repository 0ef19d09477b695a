package stack_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/impair"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/wire"
)

// Pings, small and fragmented, still get through a link that loses, duplicates, reorders,
// delays and corrupts frames in both directions; corrupted frames are dropped, never
// delivered, and nothing leaks.
func TestPingUnderImpairment(t *testing.T) {
	dir := func(seed uint64) impair.Dir {
		return impair.Dir{Seed: seed, Loss: 0.03, Duplicate: 0.05, Reorder: 0.1, ReorderDelay: 3 * time.Millisecond,
			Delay: time.Millisecond, Jitter: time.Millisecond, Corrupt: 0.03}
	}
	var il *impair.Link
	wrap := func(a *stack.Stack, ep link.Endpoint) link.Endpoint {
		il = impair.New(ep, clock.Real, impair.Config{TX: dir(1), RX: dir(2), Alloc: a.Allocator()})
		return il
	}
	p := stacktest.NewPair(t, stacktest.PairConfig{Medium: link.MediumEthernet, WrapA: wrap})
	stacktest.WaitReady(t, p.NetifA, p.NetifB)
	const tries = 40
	for _, dst := range []netip.Addr{addrB4.Addr(), addrB6.Addr()} {
		for _, c := range []struct{ size, min int }{{56, tries * 3 / 4}, {4000, tries / 3}} {
			ok := 0
			for i := 0; i < tries; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
				if err := pingOnce(ctx, p.A, dst, c.size); err == nil {
					ok++
				}
				cancel()
			}
			if ok < c.min {
				t.Errorf("ping %v size %d: %d of %d answered, want at least %d", dst, c.size, ok, tries, c.min)
			}
		}
	}
	tx, rx := il.Stats()
	if tx.Lost+rx.Lost == 0 || tx.Duplicated+rx.Duplicated == 0 || tx.Corrupted+rx.Corrupted == 0 || tx.Reordered+rx.Reordered == 0 {
		t.Errorf("the impairment did not bite: tx %+v rx %+v", tx, rx)
	}
}

// Flooding a small stack with more than its pools hold drops and counts, keeps memory
// within the budget, and leaves the stack working.
func TestPoolExhaustionFlood(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	pa, pb := pipe.New(pipe.Config{MTU: 1500, Medium: link.MediumIP, QueueLen: 4096})
	defer pa.Close()
	b, err := stack.New(stack.Config{Options: opt.Embedded(), Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, b)
	if _, err := b.AddNetif(pb, stack.NetifConfig{Name: "b0", Addrs: []netip.Prefix{addrB4}}); err != nil {
		t.Fatal(err)
	}
	// The flooder is a bare link end with its own memory.
	fa := pbuf.NewAllocator(pbuf.Config{PoolCount: 256, PoolBufSize: 2048, HeapSize: 4 << 20, RefCount: 16, RAMCount: 1024})
	fd := linktest.NewDispatcher(fa)
	fd.Discard = true
	pa.Attach(fd)
	src, dst := netip.MustParseAddr("198.18.0.9"), addrB4.Addr()
	send := func(build func(i int) []byte, n int) {
		batch := make([]*pbuf.Pbuf, 0, 64)
		for i := 0; i < n; i++ {
			batch = append(batch, linktest.Frame(t, fa, build(i)))
			if len(batch) == cap(batch) || i == n-1 {
				pa.WritePackets(batch)
				batch = batch[:0]
				for q, _ := pa.Queued(); q > 128; q, _ = pa.Queued() { // the flooder's own memory is small too
					time.Sleep(time.Millisecond)
				}
			}
		}
	}
	// 1. First fragments of 2,000 different datagrams: reassembly is bounded.
	send(func(i int) []byte { return ipv4Packet(t, src, dst, uint16(i), true, wire.ProtoICMP, make([]byte, 512)) }, 2000)
	// 2. 2,000 echo requests of 1,400 bytes: three POOL pbufs each in, a 2 KiB heap block
	// each out, against 16 POOL pbufs and a 1,600-byte heap.
	send(func(i int) []byte { return echoPacket(t, src, dst, uint16(i), 1400) }, 2000)
	time.Sleep(100 * time.Millisecond)
	snap := b.Stats()
	if snap.IPFrag.Memerr+snap.IPFrag.Drop == 0 {
		t.Errorf("reassembly was never short of memory: %+v", snap.IPFrag)
	}
	if snap.ICMP.Memerr+snap.IP.Memerr+snap.Link.Memerr == 0 {
		t.Errorf("large echo replies never ran out of heap: icmp %+v ip %+v link %+v", snap.ICMP, snap.IP, snap.Link)
	}
	if snap.Heap.Max > snap.Heap.Avail {
		t.Errorf("heap used %d of %d", snap.Heap.Max, snap.Heap.Avail)
	}
	for _, p := range snap.Pools {
		if p.Max > p.Avail {
			t.Errorf("pool %s used %d of %d", p.Name, p.Max, p.Avail)
		}
	}
	// Still alive: a small echo request is answered.
	before := fd.Count()
	send(func(i int) []byte { return echoPacket(t, src, dst, 0xbeef, 32) }, 1)
	if !fd.Wait(before+1, 5*time.Second) {
		t.Fatal("no echo reply after the flood")
	}
	pa.Close()
	linktest.CheckZero(t, fa)
}

func ipv4Packet(t *testing.T, src, dst netip.Addr, id uint16, more bool, proto uint8, payload []byte) []byte {
	t.Helper()
	r := wire.IPv4Repr{ID: id, MoreFragments: more, TTL: 64, Protocol: proto, Src: src, Dst: dst, PayloadLen: len(payload)}
	b := make([]byte, r.HeaderLen()+len(payload))
	copy(b[r.HeaderLen():], payload)
	if err := r.Emit(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// echoPacket is an IPv4 packet from src to dst carrying an echo request.
func echoPacket(t *testing.T, src, dst netip.Addr, seq uint16, size int) []byte {
	t.Helper()
	m := make([]byte, wire.ICMPv4HeaderLen+size)
	r := wire.ICMPv4Repr{Type: wire.ICMPv4EchoRequest, Ident: 7, Seq: seq, PayloadLen: size}
	if err := r.Emit(m); err != nil {
		t.Fatal(err)
	}
	return ipv4Packet(t, src, dst, seq, false, wire.ProtoICMP, m)
}

package stack_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/wire"
)

// coreConns counts each core's TCP connections.
func coreConns(s *stack.Stack) []int {
	var n []int
	for _, c := range s.Cores() {
		c.Callback(func() {
			conns, _ := c.TCP().NumPCBs()
			n = append(n, conns)
		})
	}
	return n
}

// TestCoresTransfer: on two stacks of four cores, 16 connections of both families move
// data both ways at once, byte-exact; they spread over the cores, each connection on the
// core its 4-tuple hashes to on both stacks, and the pools are back to zero at the end
// (NewPair checks). Over Ethernet no neighbour is known at the start: every core learns
// them from the ARP and ND messages all cores are given, and core 0 alone answers.
func TestCoresTransfer(t *testing.T) {
	for _, m := range []link.Medium{link.MediumIP, link.MediumEthernet} {
		t.Run(m.String(), func(t *testing.T) { testCoresTransfer(t, m) })
	}
}

func testCoresTransfer(t *testing.T, m link.Medium) {
	p := stacktest.NewPair(t, stacktest.PairConfig{Cores: 4, Medium: m})
	if m == link.MediumEthernet {
		stacktest.WaitReady(t, p.NetifA, p.NetifB)
	}
	ls := [2]*netconn.TCPListener{}
	for fam := range ls {
		l, err := netconn.ListenTCP(p.B, netip.AddrPortFrom(stacktest.AddrB[fam], 0), nil)
		if err != nil {
			t.Fatal(err)
		}
		p.Ev.Close(l)
		ls[fam] = l
	}
	const conns, size = 16, 1 << 20
	type pair struct{ c, s *netconn.TCPConn }
	var ps []pair
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i := range conns {
		l := ls[i%2]
		c, s := stacktest.Connect(t, p.Ev, time.Minute, func() (*netconn.TCPConn, error) {
			return netconn.DialTCP(ctx, p.A, netip.AddrPort{}, l.Addr(), nil)
		}, l.Accept)
		p.Ev.Close(c)
		p.Ev.Close(s)
		ps = append(ps, pair{c, s})
	}
	// Each end is on the core its stack's hash gives the 4-tuple: count them per core.
	want := func(st *stack.Stack, local func(pair) netip.AddrPort, remote func(pair) netip.AddrPort) []int {
		n := make([]int, len(st.Cores()))
		for _, pr := range ps {
			n[st.CoreFor(local(pr), remote(pr)).ID()]++
		}
		return n
	}
	a, b := coreConns(p.A), coreConns(p.B)
	wa := want(p.A, func(pr pair) netip.AddrPort { return pr.c.LocalAddr() }, func(pr pair) netip.AddrPort { return pr.c.RemoteAddr() })
	wb := want(p.B, func(pr pair) netip.AddrPort { return pr.s.LocalAddr() }, func(pr pair) netip.AddrPort { return pr.s.RemoteAddr() })
	if !slices.Equal(a, wa) || !slices.Equal(b, wb) {
		t.Errorf("connections per core: A %v (hash says %v), B %v (hash says %v)", a, wa, b, wb)
	}
	busy := 0
	for _, n := range a {
		if n > 0 {
			busy++
		}
	}
	if busy < 2 {
		t.Errorf("connections per core %v: not spread", a)
	}
	var wg sync.WaitGroup
	for i, pr := range ps {
		wg.Go(func() { stacktest.Transfer(t, pr.c, pr.s, size, byte(i), time.Minute) })
		wg.Go(func() { stacktest.Transfer(t, pr.s, pr.c, size, byte(i+100), time.Minute) })
	}
	wg.Wait()
	t.Logf("connections per core: A %v, B %v", a, b)
}

// TestCoresLimit: a stack has at most MaxCores cores.
func TestCoresLimit(t *testing.T) {
	if _, err := stack.New(stack.Config{Cores: stack.MaxCores + 1}); err == nil {
		t.Fatal("Cores beyond MaxCores accepted")
	}
}

// TestCoresEthernetSpeakOnce: on an Ethernet link, stacks of four cores send exactly the
// ARP and neighbour discovery messages stacks of one core send for the same connections:
// core 0 alone answers and announces, and the other cores learn each neighbour from the
// messages all cores are given instead of asking for it again.
func TestCoresEthernetSpeakOnce(t *testing.T) {
	speak := func(cores int) [2]uint64 {
		var out [2]uint64
		t.Run(fmt.Sprintf("cores=%d", cores), func(t *testing.T) {
			// No router solicitations: their retries every 4 s would count differently in a
			// run that takes longer (the race detector).
			o := opt.Tunnel()
			o.IPv6AutoConfig = false
			p := stacktest.NewPair(t, stacktest.PairConfig{Options: o, Cores: cores, Medium: link.MediumEthernet})
			stacktest.WaitReady(t, p.NetifA, p.NetifB)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			for fam := range 2 {
				l, err := netconn.ListenTCP(p.B, netip.AddrPortFrom(stacktest.AddrB[fam], 0), nil)
				if err != nil {
					t.Fatal(err)
				}
				p.Ev.Close(l)
				// One at a time, so that every core of A dials with what the others learned.
				for range 8 {
					c, s := stacktest.Connect(t, p.Ev, time.Minute, func() (*netconn.TCPConn, error) {
						return netconn.DialTCP(ctx, p.A, netip.AddrPort{}, l.Addr(), nil)
					}, l.Accept)
					stacktest.Transfer(t, c, s, 1000, 1, time.Minute)
					p.Ev.Close(c)
					p.Ev.Close(s)
				}
			}
			sa, sb := p.A.Stats(), p.B.Stats()
			t.Logf("A: etharp xmit %d recv %d, nd6 xmit %d recv %d; B: etharp xmit %d recv %d, nd6 xmit %d recv %d",
				sa.Etharp.Xmit, sa.Etharp.Recv, sa.ND6.Xmit, sa.ND6.Recv, sb.Etharp.Xmit, sb.Etharp.Recv, sb.ND6.Xmit, sb.ND6.Recv)
			out = [2]uint64{sa.Etharp.Xmit + sb.Etharp.Xmit, sa.ND6.Xmit + sb.ND6.Xmit}
		})
		return out
	}
	one, four := speak(1), speak(4)
	if one != four {
		t.Errorf("ARP and ND messages sent (both stacks): %v with one core, %v with four", one, four)
	}
}

// queued is a link with several transmit queues over one pipe end: it checks that every
// TCP segment written to queue q belongs to a connection of a core k with k mod queues = q.
type queued struct {
	link.Endpoint
	s      *stack.Stack
	queues int
	mu     sync.Mutex
	writes []int // per queue
	wrong  []string
}

func (q *queued) TxQueues() int     { return q.queues }
func (q *queued) QueueRoom(int) int { return 1 << 20 }
func (q *queued) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	q.mu.Lock()
	q.wrong = append(q.wrong, "WritePackets called on a stack with several cores")
	q.mu.Unlock()
	return q.Endpoint.WritePackets(pkts)
}

func (q *queued) WriteQueue(n int, pkts []*pbuf.Pbuf) (int, error) {
	q.mu.Lock()
	q.writes[n] += len(pkts)
	for _, p := range pkts {
		b := make([]byte, min(p.TotLen(), 60))
		p.CopyOut(b, 0)
		var src, dst netip.Addr
		var off int
		switch {
		case len(b) >= 40 && b[0]>>4 == 4 && b[9] == wire.ProtoTCP:
			src, _ = netip.AddrFromSlice(b[12:16])
			dst, _ = netip.AddrFromSlice(b[16:20])
			off = int(b[0]&0xf) * 4
		case len(b) >= 60 && b[0]>>4 == 6 && b[6] == wire.ProtoTCP:
			src, _ = netip.AddrFromSlice(b[8:24])
			dst, _ = netip.AddrFromSlice(b[24:40])
			off = 40
		default:
			continue
		}
		local := netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[off:]))
		remote := netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[off+2:]))
		if k := q.s.CoreFor(local, remote).ID(); k%q.queues != n {
			q.wrong = append(q.wrong, fmt.Sprintf("%v → %v (core %d) on queue %d", local, remote, k, n))
		}
	}
	q.mu.Unlock()
	return q.Endpoint.WritePackets(pkts)
}

// TestCoresWriteOwnQueue: on a link with several transmit queues, each core of a stack
// writes its connections' segments to its own queue (core k to queue k mod 3), never
// through WritePackets.
func TestCoresWriteOwnQueue(t *testing.T) {
	var q *queued
	p := stacktest.NewPair(t, stacktest.PairConfig{Cores: 4, WrapA: func(a *stack.Stack, ep link.Endpoint) link.Endpoint {
		q = &queued{Endpoint: ep, s: a, queues: 3, writes: make([]int, 3)}
		return q
	}})
	l, err := netconn.ListenTCP(p.B, netip.AddrPortFrom(stacktest.AddrB[0], 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Ev.Close(l)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i := range 12 {
		c, s := stacktest.Connect(t, p.Ev, time.Minute, func() (*netconn.TCPConn, error) {
			return netconn.DialTCP(ctx, p.A, netip.AddrPort{}, l.Addr(), nil)
		}, l.Accept)
		stacktest.Transfer(t, c, s, 64<<10, byte(i), time.Minute)
		p.Ev.Close(c)
		p.Ev.Close(s)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, w := range q.wrong {
		t.Error(w)
	}
	for n, w := range q.writes {
		if w == 0 {
			t.Errorf("queue %d written to by no core: %v", n, q.writes)
		}
	}
	t.Logf("frames per queue: %v", q.writes)
}

// filtered is a link that records the addresses the stack gives it (link.AddrFilter).
type filtered struct {
	link.Endpoint
	mu    sync.Mutex
	addrs []netip.Addr
	calls int
}

func (f *filtered) SetAddrs(a []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs = slices.Clone(a)
	slices.SortFunc(f.addrs, netip.Addr.Compare)
	f.calls++
	return nil
}

func (f *filtered) get() []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addrs
}

// TestAddrFilter: a link that receives only its addresses' traffic hears every address of
// its netif, the IPv6 link-local one formed from its MAC included, as they come and go —
// from core 0 only on a stack with several cores.
func TestAddrFilter(t *testing.T) {
	for _, cores := range []int{1, 3} {
		t.Run(fmt.Sprintf("cores=%d", cores), func(t *testing.T) {
			var f *filtered
			p := stacktest.NewPair(t, stacktest.PairConfig{Cores: cores, Medium: link.MediumEthernet,
				WrapA: func(_ *stack.Stack, ep link.Endpoint) link.Endpoint {
					f = &filtered{Endpoint: ep}
					return f
				}})
			stacktest.WaitReady(t, p.NetifA)
			var ll netip.Addr
			for _, a := range p.NetifA.Addrs() {
				if a.Prefix.Addr().IsLinkLocalUnicast() {
					ll = a.Prefix.Addr()
				}
			}
			want := []netip.Addr{stacktest.AddrA[0], stacktest.AddrA[1], ll}
			slices.SortFunc(want, netip.Addr.Compare)
			if got := f.get(); !ll.IsValid() || !slices.Equal(got, want) {
				t.Fatalf("filter has %v, want %v", got, want)
			}
			if err := p.NetifA.RemoveAddr(stacktest.AddrA[0]); err != nil {
				t.Fatal(err)
			}
			want = slices.DeleteFunc(want, func(a netip.Addr) bool { return a == stacktest.AddrA[0] })
			if got := f.get(); !slices.Equal(got, want) {
				t.Fatalf("after removing %v the filter has %v, want %v", stacktest.AddrA[0], got, want)
			}
		})
	}
}

// TestGROMedia: software GRO merges the in-order segments of a bulk transfer delivered in
// batches, over bare IP and over Ethernet (whose unicast IP frames lose their header
// first), on one core and on several, and every byte arrives; with GSO (a link with a
// GSOMax and no TSO, as AF_XDP's) the sender's 64 KiB packets are cut before the link.
func TestGROMedia(t *testing.T) {
	for _, m := range []link.Medium{link.MediumIP, link.MediumEthernet} {
		for _, cores := range []int{1, 2} {
			t.Run(fmt.Sprintf("%v/cores=%d", m, cores), func(t *testing.T) {
				p := stacktest.NewPair(t, stacktest.PairConfig{Cores: cores, Medium: m,
					Offloads: link.Offloads{GSOMax: 65535}})
				if m == link.MediumEthernet {
					stacktest.WaitReady(t, p.NetifA, p.NetifB)
				}
				l, err := netconn.ListenTCP(p.B, netip.AddrPortFrom(stacktest.AddrB[0], 0), nil)
				if err != nil {
					t.Fatal(err)
				}
				p.Ev.Close(l)
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				c, s := stacktest.Connect(t, p.Ev, time.Minute, func() (*netconn.TCPConn, error) {
					return netconn.DialTCP(ctx, p.A, netip.AddrPort{}, l.Addr(), nil)
				}, l.Accept)
				p.Ev.Close(c)
				p.Ev.Close(s)
				stacktest.Transfer(t, c, s, 8<<20, 7, time.Minute)
				if o := p.B.Stats().Offload; o.GROMerged == 0 {
					t.Errorf("no segment merged: %+v", o)
				}
				if o := p.A.Stats().Offload; o.GSOSoft == 0 {
					t.Errorf("no GSO packet cut: %+v", o)
				}
			})
		}
	}
}

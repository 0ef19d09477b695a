package stack_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
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
// (NewPair checks).
func TestCoresTransfer(t *testing.T) {
	p := stacktest.NewPair(t, stacktest.PairConfig{Cores: 4})
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

// TestCoresRefuseEthernet: a stack with several cores takes IP-medium links only.
func TestCoresRefuseEthernet(t *testing.T) {
	s, err := stack.New(stack.Config{Cores: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b := pipe.New(pipe.Config{MTU: 1500, Medium: link.MediumEthernet})
	defer b.Close()
	if _, err := s.AddNetif(a, stack.NetifConfig{}); !errors.Is(err, errs.Val) {
		t.Fatalf("AddNetif(Ethernet) on 2 cores: %v, want errs.Val", err)
	}
	a.Close()
	if _, err := stack.New(stack.Config{Cores: stack.MaxCores + 1}); err == nil {
		t.Fatal("Cores beyond MaxCores accepted")
	}
}

package integration

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The PCB exhaustion test's sizes.
const (
	pcbPool      = 64              // Options.MempNumTCPPCB
	pcbExtra     = 16              // kernel clients past the pool
	pcbRecovered = 16              // clients that must get in once the pool is free again
	pcbStepTime  = 3 * time.Second // a refusal or reset must come within this
)

// pcbOutcome is how one client past the pool fared.
type pcbOutcome struct {
	refused, reset bool
	took           time.Duration
	err            error // anything else: a hang (timeout) or a wrong error
}

// tryExtra connects to addr from the namespace and, if connect succeeds, writes and reads:
// it expects ECONNREFUSED from connect or ECONNRESET from the first write/read, within
// pcbStepTime each.
func tryExtra(ns *netns, network string, addr netip.AddrPort) pcbOutcome {
	start := time.Now()
	conn, err := dialFrom(ns, network, addr, pcbStepTime)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return pcbOutcome{refused: true, took: time.Since(start)}
		}
		return pcbOutcome{took: time.Since(start), err: fmt.Errorf("connect: %w", err)}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(pcbStepTime))
	_, err = conn.Write([]byte("past the pool"))
	if err == nil {
		_, err = conn.Read(make([]byte, 64))
	}
	if errors.Is(err, syscall.ECONNRESET) {
		return pcbOutcome{reset: true, took: time.Since(start)}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("connect succeeded, then no answer for %v (a black hole): %w", pcbStepTime, err)
	}
	return pcbOutcome{took: time.Since(start), err: fmt.Errorf("after connect: %w", err)}
}

// A wisp stack with a TCP_PCB pool of 64 and SYN cookies on: kernel clients fill the pool
// with established connections, then every client past it must be refused at connect
// (ECONNREFUSED: wisp answered its SYN with a RST) or reset at its first exchange
// (ECONNRESET: its cookie ACK found no PCB) within seconds — never a connect that succeeds
// into a black hole. The connections in the pool keep working, and once they are closed
// new clients get in again.
func TestAttackPCBExhaustion(t *testing.T) {
	o := attackOptions()
	o.MempNumTCPPCB = pcbPool
	o.TCPSynCookies = true
	e := newAttackEnv(t, 64, o)
	echoServers(t, e.s, netip.AddrPortFrom(e.wisp[0], 7), netip.AddrPortFrom(e.wisp[1], 7))
	addr := func(i int) (string, netip.AddrPort) {
		f := families[i%2]
		return f.net, netip.AddrPortFrom(e.wisp[f.idx], 7)
	}

	// Fill the pool: every connection proves with an echo that wisp holds it.
	var conns []*net.TCPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range pcbPool {
		network, a := addr(i)
		c, err := dialFrom(e.ns, network, a, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d of %d: %v", i+1, pcbPool, err)
		}
		conns = append(conns, c)
		if err := echoRoundTrip(c, 1000, uint64(i), 0, 5*time.Second); err != nil {
			t.Fatalf("connection %d of %d: %v", i+1, pcbPool, err)
		}
	}
	if n := tcpConns(e.s); n != pcbPool {
		t.Fatalf("wisp holds %d connections, want %d", n, pcbPool)
	}
	before := e.s.Stats().TCPExt

	// Past the pool, all at once.
	out := make([]pcbOutcome, pcbExtra)
	var wg sync.WaitGroup
	for i := range pcbExtra {
		wg.Add(1)
		go func() {
			defer wg.Done()
			network, a := addr(i)
			out[i] = tryExtra(e.ns, network, a)
		}()
	}
	wg.Wait()
	refused, reset := 0, 0
	for i, r := range out {
		switch {
		case r.refused:
			refused++
		case r.reset:
			reset++
		default:
			t.Errorf("client %d past the pool (%s): %v after %v", i+1, families[i%2].name, r.err, r.took.Round(time.Millisecond))
		}
	}
	after := e.s.Stats().TCPExt
	t.Logf("%d clients past a pool of %d: %d refused at connect, %d reset at first exchange; wisp: PCB exhausted %d, SYN refused %d, cookie refused %d, cookies sent %d",
		pcbExtra, pcbPool, refused, reset, after.PCBExhausted-before.PCBExhausted, after.SynRefused-before.SynRefused,
		after.CookieRefused-before.CookieRefused, after.CookiesSent-before.CookiesSent)
	if after.PCBExhausted == before.PCBExhausted {
		t.Errorf("PCBExhausted did not move")
	}
	if after.SynRefused+after.CookieRefused == before.SynRefused+before.CookieRefused {
		t.Errorf("neither SynRefused nor CookieRefused moved")
	}

	// The connections in the pool were not harmed.
	for i, c := range conns {
		if err := echoRoundTrip(c, 1000, uint64(i), 1000, 5*time.Second); err != nil {
			t.Fatalf("connection %d of the full pool after the refusals: %v", i+1, err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	if _, ok := pollUntil(5*time.Second, func() bool { return tcpConns(e.s) == 0 }); !ok {
		t.Fatalf("wisp still holds %d connections 5 s after the kernel closed them all", tcpConns(e.s))
	}

	// Recovery: the pool takes new connections again.
	for i := range pcbRecovered {
		network, a := addr(i)
		if err := echoOnce(e.ns, network, a, fmt.Appendf(nil, "back in %d", i), 5*time.Second); err != nil {
			t.Fatalf("client %d after the pool was freed: %v", i+1, err)
		}
	}
	if _, ok := pollUntil(5*time.Second, func() bool { return tcpConns(e.s) == 0 }); !ok {
		t.Fatalf("wisp still holds %d connections after the recovery clients closed", tcpConns(e.s))
	}
}

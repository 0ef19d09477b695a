package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/forwarder"
	"github.com/wispstack/wisp/internal/ping"
	"github.com/wispstack/wisp/internal/socks5"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
)

// The flows of `wisp proxy` without a TUN device: a client stack sends to addresses nobody
// has through an in-memory IP pipe into the proxy's stack (startProxy, as cmdProxy runs
// it), whose TCP goes through internal/socks5's server on loopback. Accepted connections
// carry data both ways, a refused upstream is ECONNREFUSED (a RST) for the client, pings
// to any address are answered, and closing leaves nothing behind; deferred and early.
func TestProxyFlows(t *testing.T) {
	for _, deferred := range []bool{true, false} {
		t.Run(map[bool]string{true: "deferred", false: "early"}[deferred], func(t *testing.T) { proxyFlows(t, deferred) })
	}
}

func proxyFlows(t *testing.T, deferred bool) {
	stacktest.NoGoroutineLeak(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	var dials atomic.Int32
	srv := &socks5.Server{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		if _, port, _ := net.SplitHostPort(addr); port == "81" {
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		}
		a, b := net.Pipe()
		go func() { // the destination: answers in upper case
			defer b.Close()
			buf := make([]byte, 1024)
			for {
				n, err := b.Read(buf)
				if err != nil {
					return
				}
				if _, err := b.Write(bytes.ToUpper(buf[:n])); err != nil {
					return
				}
			}
		}()
		return a, nil
	}}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		l.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	pa, pb := pipe.New(pipe.Config{MTU: 1500, Medium: link.MediumIP})
	sa, err := stack.New(stack.Config{Options: opt.Tunnel(), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, sa)
	nifA, err := sa.AddNetif(pa, stack.NetifConfig{Name: "proxy"})
	if err != nil {
		t.Fatal(err)
	}
	socksAddr := l.Addr().(*net.TCPAddr).AddrPort()
	c := &proxyConfig{socks: socksAddr.String(), socksAddr: socksAddr, deferred: deferred, icmp: forwarder.EchoLocal}
	f, p, err := startProxy(sa, nifA, c, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-registered first: the proxy ends before its stack closes.
	t.Cleanup(func() {
		f.Close()
		p.close()
	})

	sb, err := stack.New(stack.Config{Options: opt.Tunnel(), Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, sb)
	nifB, err := sb.AddNetif(pb, stack.NetifConfig{Name: "client",
		Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.171.1/24"), netip.MustParsePrefix("fd42:5eed:0:171::1/64")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, pfx := range []string{"198.19.0.0/16", "fd42:5eed:0:99::/64"} {
		if err := sb.AddRoute(stack.Route{Dst: netip.MustParsePrefix(pfx), Netif: nifB}); err != nil {
			t.Fatal(err)
		}
	}
	stacktest.WaitReady(t, nifA, nifB)
	client := endpoint.New(sb)

	for _, host := range []string{"198.19.1.1", "[fd42:5eed:0:99::1]"} {
		conn, err := client.Dial("tcp", host+":80")
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte("hello " + host)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len("hello "+host))
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != string(bytes.ToUpper([]byte("hello "+host))) {
			t.Fatalf("%s: read %q, %v", host, got, err)
		}
		conn.Close()

		start := time.Now()
		conn, err = client.Dial("tcp", host+":81")
		if !deferred && err == nil {
			// Early: the handshake has run; the refusal comes as a RST right after.
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
			if errors.Is(err, syscall.ECONNRESET) {
				err = syscall.ECONNREFUSED
			}
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > 2*time.Second {
			t.Errorf("%s:81: %v after %v, want connection refused (deferred) or reset (early) at once", host, err, time.Since(start))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, dst := range []string{"198.19.200.7", "fd42:5eed:0:99::1234"} {
		if _, err := ping.Once(ctx, client, netip.MustParseAddr(dst), 56); err != nil {
			t.Errorf("ping %s: %v", dst, err)
		}
	}
	st := f.Stats()
	if st.TCPRequests != 4 || st.TCPRejected != 2 || st.EchoLocal != 2 || p.tcpFailed.Load() != 2 {
		t.Errorf("stats: %+v, upstream failures %d", st, p.tcpFailed.Load())
	}
	if n := dials.Load(); n != 4 {
		t.Errorf("the SOCKS server dialed %d times, want 4", n)
	}
}

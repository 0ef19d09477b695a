package gvisor_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/wispstack/wisp/adapter/gvisor"
	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/forwarder"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
)

// fwdPattern is n bytes that differ from one stream to the next (seed).
func fwdPattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// TestForwarderTCPEndpoint drives a TCPEndpoint over a wisp connection with gonet, as a
// gVisor forwarder host does, against a gVisor client: byte-exact both ways with
// half-close, the read deadline, keep-alive options reaching wisp, and Close stopping the
// reader goroutine (newNet checks that no goroutine is left).
func TestForwarderTCPEndpoint(t *testing.T) {
	for _, dst := range []netip.Addr{wispV4.Addr(), wispV6.Addr()} {
		t.Run(dst.String(), func(t *testing.T) {
			nt := newNet(t, netConfig{medium: link.MediumIP})
			nt.evidence(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			l, err := endpoint.New(nt.ws).ListenTCPAddrPort(netip.AddrPortFrom(dst, 8080))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			client, _, err := gvDial(ctx, nt.gs, netip.AddrPortFrom(dst, 8080))
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			wc, err := l.AcceptTCP()
			if err != nil {
				t.Fatal(err)
			}
			var wq waiter.Queue
			ep := gvisor.NewTCPEndpoint(wc, &wq)
			conn := gonet.NewTCPConn(&wq, ep)
			defer conn.Close()

			if got := conn.LocalAddr().String(); got != netip.AddrPortFrom(dst, 8080).String() {
				t.Errorf("LocalAddr %s", got)
			}
			checkKeepalive(t, ep, wc)

			// The read deadline: nothing has been sent yet.
			conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := conn.Read(make([]byte, 10)); err == nil || !isTimeout(err) {
				t.Fatalf("read before any data: %v, want a timeout", err)
			}
			conn.SetReadDeadline(time.Time{})

			up, down := fwdPattern(3<<20+17, 1), fwdPattern(2<<20+5, 2)
			deadline, _ := ctx.Deadline()
			client.SetDeadline(deadline)
			conn.SetDeadline(deadline)
			upErr := make(chan error, 1)
			go func() {
				_, err := io.Copy(client, bytes.NewReader(up))
				if err == nil {
					err = client.CloseWrite()
				}
				upErr <- err
			}()
			got, err := io.ReadAll(conn) // until the client's FIN
			if err != nil || !bytes.Equal(got, up) {
				t.Fatalf("wisp side read %d of %d bytes, equal %v: %v", len(got), len(up), bytes.Equal(got, up), err)
			}
			if err := <-upErr; err != nil {
				t.Fatalf("client upload: %v", err)
			}
			// Half-closed by the client: the wisp side still sends.
			downErr := make(chan error, 1)
			go func() {
				_, err := conn.Write(down)
				if err == nil {
					err = conn.CloseWrite()
				}
				downErr <- err
			}()
			got, err = io.ReadAll(client)
			if err != nil || !bytes.Equal(got, down) {
				t.Fatalf("client read %d of %d bytes, equal %v: %v (wisp: %v)", len(got), len(down), bytes.Equal(got, down), err, wc.Info())
			}
			if err := <-downErr; err != nil {
				t.Fatalf("wisp side write: %v", err)
			}
			if r := ep.Readiness(waiter.EventIn | waiter.EventHUp); r != waiter.EventIn|waiter.EventHUp {
				t.Errorf("readiness after both FINs: %v", r)
			}
		})
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// checkKeepalive sets keep-alive the way tun2socks does and reads it back from wisp.
func checkKeepalive(t *testing.T, ep tcpip.Endpoint, wc *endpoint.TCPConn) {
	t.Helper()
	ep.SocketOptions().SetKeepAlive(true)
	idle := tcpip.KeepaliveIdleOption(60 * time.Second)
	interval := tcpip.KeepaliveIntervalOption(30 * time.Second)
	if err := ep.SetSockOpt(&idle); err != nil {
		t.Fatal(err)
	}
	if err := ep.SetSockOpt(&interval); err != nil {
		t.Fatal(err)
	}
	if err := ep.SetSockOptInt(tcpip.KeepaliveCountOption, 9); err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct{ level, name, want int }{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 60},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 30},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 9},
	} {
		if v, err := wc.GetsockoptInt(o.level, o.name); err != nil || v != o.want {
			t.Errorf("option %d/%d: %d, %v; want %d", o.level, o.name, v, err, o.want)
		}
	}
	var got tcpip.KeepaliveIdleOption
	if err := ep.GetSockOpt(&got); err != nil || time.Duration(got) != 60*time.Second {
		t.Errorf("KeepaliveIdleOption: %v, %v", time.Duration(got), err)
	}
	ep.SocketOptions().SetDelayOption(true)
	if v, _ := wc.GetsockoptInt(unix.IPPROTO_TCP, unix.TCP_NODELAY); v != 0 {
		t.Errorf("TCP_NODELAY %d after SetDelayOption(true)", v)
	}
	ep.SocketOptions().SetDelayOption(false)
	if err := ep.SetSockOptInt(tcpip.IPv6Checksum, 1); err == nil {
		t.Errorf("an unknown option was accepted")
	}
}

// tcpEndpointPair connects a gVisor client to a wisp listener and wraps the accepted wisp
// connection in a TCPEndpoint driven by gonet.
func tcpEndpointPair(ctx context.Context, t *testing.T, nt *testNet, dst netip.AddrPort) (client *gonet.TCPConn, clientEP tcpip.Endpoint, conn *gonet.TCPConn, ep *gvisor.TCPEndpoint) {
	t.Helper()
	l, err := endpoint.New(nt.ws).ListenTCPAddrPort(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, clientEP, err = gvDial(ctx, nt.gs, dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	wc, err := l.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	var wq waiter.Queue
	ep = gvisor.NewTCPEndpoint(wc, &wq)
	conn = gonet.NewTCPConn(&wq, ep)
	t.Cleanup(func() { conn.Close() })
	deadline, _ := ctx.Deadline()
	client.SetDeadline(deadline)
	conn.SetDeadline(deadline)
	return client, clientEP, conn, ep
}

// TestForwarderTCPEndpointReset: a reset reaches each side as gVisor reports it: the
// client's abort fails the wisp side's gonet Read with "connection reset by peer", and
// the wisp side's Close with linger 0 (SocketOptions().SetLinger) resets the client.
func TestForwarderTCPEndpointReset(t *testing.T) {
	nt := newNet(t, netConfig{medium: link.MediumIP})
	nt.evidence(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reset := (&tcpip.ErrConnectionReset{}).String()

	_, cep, conn, _ := tcpEndpointPair(ctx, t, nt, netip.AddrPortFrom(wispV4.Addr(), 8081))
	cep.Abort()
	if _, err := conn.Read(make([]byte, 10)); err == nil || !strings.Contains(err.Error(), reset) {
		t.Errorf("wisp side read after the client's abort: %v, want %q", err, reset)
	}

	client, _, conn, ep := tcpEndpointPair(ctx, t, nt, netip.AddrPortFrom(wispV6.Addr(), 8082))
	ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true})
	if _, err := conn.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	b := make([]byte, 10)
	n, err := io.ReadFull(client, b)
	if err == nil || !strings.Contains(err.Error(), reset) {
		t.Errorf("client read after the wisp side's linger-0 close: %d bytes, %v, want %q", n, err, reset)
	}
	if _, err := conn.Read(b); err == nil {
		t.Errorf("read after Close succeeded")
	}
}

// TestForwarderUDPEndpoint drives a UDPEndpoint with gonet: the request's datagram is the
// first read, from the client; replies reach the client from the address it sent to;
// writing to anyone else fails; the session's idle timeout ends reading with io.EOF; a
// datagram after that makes a new request.
func TestForwarderUDPEndpoint(t *testing.T) {
	nt := newNet(t, netConfig{medium: link.MediumIP})
	nt.evidence(t)
	if err := nt.wnif.SetIntercept(&ip.Intercept{}); err != nil {
		t.Fatal(err)
	}
	s := gvisor.NewStack(nt.ws, forwarder.Config{UDP: forwarder.UDPConfig{IdleTimeout: 300 * time.Millisecond}})
	t.Cleanup(func() { closeForwarder(t, nt, s) })
	conns := make(chan *gonet.UDPConn, 4)
	f := gvisor.NewUDPForwarder(s, func(r *gvisor.UDPForwarderRequest) bool {
		var wq waiter.Queue
		ep, err := r.CreateEndpoint(&wq)
		if err != nil {
			t.Errorf("CreateEndpoint: %v", err)
			return false
		}
		if _, err := r.CreateEndpoint(&wq); err == nil {
			t.Errorf("a second CreateEndpoint succeeded")
		}
		conns <- gonet.NewUDPConn(&wq, ep)
		return true
	})
	if err := s.SetTransportProtocolHandler(udp.ProtocolNumber, f.HandlePacket); err != nil {
		t.Fatal(err)
	}
	dst := netip.MustParseAddrPort("[fd42:5eed:0:5::5]:4242")
	raddr := gvAddr(dst)
	client, err := gonet.DialUDP(nt.gs, nil, &raddr, gvProto(dst.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := client.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	var conn *gonet.UDPConn
	select {
	case conn = <-conns:
	case <-time.After(10 * time.Second):
		t.Fatal("no request")
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if got := conn.LocalAddr().String(); got != dst.String() {
		t.Errorf("LocalAddr %s, want %s", got, dst)
	}
	b := make([]byte, 100)
	n, from, err := conn.ReadFrom(b)
	if err != nil || string(b[:n]) != "first" || from.String() != client.LocalAddr().String() {
		t.Fatalf("first read: %q from %v (client %v): %v", b[:n], from, client.LocalAddr(), err)
	}
	if _, err := conn.WriteTo([]byte("reply"), from); err != nil {
		t.Fatal(err)
	}
	n, err = client.Read(b)
	if err != nil || string(b[:n]) != "reply" {
		t.Fatalf("client read %q: %v", b[:n], err)
	}
	other := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("[fd42:5eed:0:5::6]:1"))
	if _, err := conn.WriteTo([]byte("x"), other); err == nil {
		t.Errorf("WriteTo another address succeeded")
	}
	// Idle: the session expires and the reader sees the end.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := conn.ReadFrom(b); err != io.EOF {
		t.Errorf("read of an expired session: %v, want EOF", err)
	}
	if _, err := client.Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	select {
	case c2 := <-conns:
		c2.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("no second request after the session expired")
	}
	if st := s.Stats(); st.UDPSessions != 2 || st.UDPExpired != 1 {
		t.Errorf("stats: %+v", st)
	}
}

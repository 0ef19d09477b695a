package gvisor_test

// A port of tun2socks's core/ (github.com/xjasonlyu/tun2socks/v2, core/tcp.go and
// core/udp.go: the forwarder handlers, kept line for line; the lines that had to change
// are marked "wisp:") and of the shape of its tunnel/ (dial the proxy, relay both ways
// with half-close), driven by a gVisor client stack across a pipe: the client reaches
// arbitrary addresses, wisp intercepts them, and the "proxy" dials real servers on the
// loopback.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	glog "gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/wispstack/wisp/adapter/gvisor"
	"github.com/wispstack/wisp/forwarder"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/stack/stacktest"
	wtcp "github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

// ---- core/adapter (the interfaces tun2socks's core hands its tunnel) ----

type adapterTCPConn interface {
	net.Conn
	ID() stack.TransportEndpointID
}

type adapterUDPConn interface {
	net.Conn
	net.PacketConn
	ID() stack.TransportEndpointID
}

type transportHandler interface {
	HandleTCP(adapterTCPConn)
	HandleUDP(adapterUDPConn)
}

// option is core/option.Option.
type option func(*gvisor.Stack) error // wisp: *stack.Stack

// ---- core/tcp.go ----

const (
	// defaultWndSize if set to zero, the default
	// receive window buffer size is used instead.
	defaultWndSize = 0

	// maxConnAttempts specifies the maximum number
	// of in-flight tcp connection attempts.
	maxConnAttempts = 2 << 10

	// tcpKeepaliveCount is the maximum number of
	// TCP keep-alive probes to send before giving up
	// and killing the connection if no response is
	// obtained from the other end.
	tcpKeepaliveCount = 9

	// tcpKeepaliveIdle specifies the time a connection
	// must remain idle before the first TCP keepalive
	// packet is sent. Once this time is reached,
	// tcpKeepaliveInterval option is used instead.
	tcpKeepaliveIdle = 60 * time.Second

	// tcpKeepaliveInterval specifies the interval
	// time between sending TCP keepalive packets.
	tcpKeepaliveInterval = 30 * time.Second
)

func withTCPHandler(h transportHandler) option {
	return func(s *gvisor.Stack) error { // wisp: *stack.Stack
		f := gvisor.NewTCPForwarder(s, defaultWndSize, maxConnAttempts, func(r *gvisor.TCPForwarderRequest) { // wisp: tcp.NewForwarder, *tcp.ForwarderRequest
			var (
				wq  waiter.Queue
				ep  tcpip.Endpoint
				err tcpip.Error
				id  = r.ID()
			)

			defer func() {
				if err != nil {
					glog.Debugf("forward tcp request: %s:%d->%s:%d: %s",
						id.RemoteAddress, id.RemotePort, id.LocalAddress, id.LocalPort, err)
				}
			}()

			// Perform a TCP three-way handshake.
			ep, err = r.CreateEndpoint(&wq)
			if err != nil {
				// RST: prevent potential half-open TCP connection leak.
				r.Complete(true)
				return
			}
			defer r.Complete(false)

			err = setSocketOptions(s, ep)

			conn := &tcpConn{
				TCPConn: gonet.NewTCPConn(&wq, ep),
				id:      id,
			}
			h.HandleTCP(conn)
		})
		s.SetTransportProtocolHandler(tcp.ProtocolNumber, f.HandlePacket)
		return nil
	}
}

func setSocketOptions(s *gvisor.Stack, ep tcpip.Endpoint) tcpip.Error { // wisp: *stack.Stack
	{ /* TCP keepalive options */
		ep.SocketOptions().SetKeepAlive(true)

		idle := tcpip.KeepaliveIdleOption(tcpKeepaliveIdle)
		if err := ep.SetSockOpt(&idle); err != nil {
			return err
		}

		interval := tcpip.KeepaliveIntervalOption(tcpKeepaliveInterval)
		if err := ep.SetSockOpt(&interval); err != nil {
			return err
		}

		if err := ep.SetSockOptInt(tcpip.KeepaliveCountOption, tcpKeepaliveCount); err != nil {
			return err
		}
	}
	{ /* TCP recv/send buffer size */
		var ss tcpip.TCPSendBufferSizeRangeOption
		if err := s.TransportProtocolOption(header.TCPProtocolNumber, &ss); err == nil {
			ep.SocketOptions().SetSendBufferSize(int64(ss.Default), false)
		}

		var rs tcpip.TCPReceiveBufferSizeRangeOption
		if err := s.TransportProtocolOption(header.TCPProtocolNumber, &rs); err == nil {
			ep.SocketOptions().SetReceiveBufferSize(int64(rs.Default), false)
		}
	}
	return nil
}

type tcpConn struct {
	*gonet.TCPConn
	id stack.TransportEndpointID
}

func (c *tcpConn) ID() stack.TransportEndpointID {
	return c.id
}

// ---- core/udp.go ----

func withUDPHandler(h transportHandler) option {
	return func(s *gvisor.Stack) error { // wisp: *stack.Stack
		f := gvisor.NewUDPForwarder(s, func(r *gvisor.UDPForwarderRequest) bool { // wisp: udp.NewForwarder, *udp.ForwarderRequest
			var (
				wq waiter.Queue
				id = r.ID()
			)
			ep, err := r.CreateEndpoint(&wq)
			if err != nil {
				glog.Debugf("forward udp request: %s:%d->%s:%d: %s",
					id.RemoteAddress, id.RemotePort, id.LocalAddress, id.LocalPort, err)
				return false
			}

			conn := &udpConn{
				UDPConn: gonet.NewUDPConn(&wq, ep),
				id:      id,
			}
			h.HandleUDP(conn)
			return true
		})
		s.SetTransportProtocolHandler(udp.ProtocolNumber, f.HandlePacket)
		return nil
	}
}

type udpConn struct {
	*gonet.UDPConn
	id stack.TransportEndpointID
}

func (c *udpConn) ID() stack.TransportEndpointID {
	return c.id
}

// ---- the tunnel: tunnel/tcp.go and tunnel/udp.go's shape, with a test proxy ----

// testTunnel relays each connection to what its proxy dials.
type testTunnel struct {
	t     *testing.T
	proxy *testProxy
	wg    sync.WaitGroup
}

func (tt *testTunnel) HandleTCP(c adapterTCPConn) {
	tt.wg.Add(1)
	go func() {
		defer tt.wg.Done()
		tt.handleTCPConn(c)
	}()
}

func (tt *testTunnel) HandleUDP(c adapterUDPConn) {
	tt.wg.Add(1)
	go func() {
		defer tt.wg.Done()
		tt.handleUDPConn(c)
	}()
}

func idDst(id stack.TransportEndpointID) netip.AddrPort {
	a, _ := netip.AddrFromSlice(id.LocalAddress.AsSlice())
	return netip.AddrPortFrom(a, id.LocalPort)
}

func (tt *testTunnel) handleTCPConn(origin adapterTCPConn) {
	defer origin.Close()
	id := origin.ID()
	if src, _ := netip.AddrFromSlice(id.RemoteAddress.AsSlice()); src != gvV4.Addr() && src != gvV6.Addr() {
		tt.t.Errorf("ID %+v: the remote is not the client", id)
	}
	if got, want := origin.LocalAddr().String(), idDst(id).String(); got != want {
		tt.t.Errorf("LocalAddr %s, want %s", got, want)
	}
	if got, want := netAddrPortOf(origin.RemoteAddr()).Port(), id.RemotePort; got != want {
		tt.t.Errorf("RemoteAddr port %d, want %d", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	remote, err := tt.proxy.DialContext(ctx, idDst(origin.ID()))
	if err != nil {
		tt.t.Logf("[TCP] dial %v: %v", idDst(origin.ID()), err)
		return
	}
	defer remote.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go unidirectionalStream(remote, origin, &wg)
	go unidirectionalStream(origin, remote, &wg)
	wg.Wait()
}

// unidirectionalStream is tun2socks's: copy, then half-close both ends.
func unidirectionalStream(dst, src net.Conn, wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 20<<10)
	_, _ = io.CopyBuffer(dst, src, buf)
	if cr, ok := src.(interface{ CloseRead() error }); ok {
		cr.CloseRead()
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	dst.SetReadDeadline(time.Now().Add(5 * time.Second))
}

func (tt *testTunnel) handleUDPConn(uc adapterUDPConn) {
	defer uc.Close()
	dst := idDst(uc.ID())
	pc, err := tt.proxy.DialUDP(dst)
	if err != nil {
		tt.t.Logf("[UDP] dial %v: %v", dst, err)
		return
	}
	defer pc.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	to := net.UDPAddrFromAddrPort(dst)
	go copyPackets(pc, uc, to, &wg)
	go copyPackets(uc, pc, nil, &wg)
	wg.Wait()
}

// copyPackets is tun2socks's copyPacketData: until an idle read deadline or an error.
func copyPackets(dst, src net.PacketConn, to net.Addr, wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 65535)
	for {
		src.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := src.ReadFrom(buf)
		if err != nil {
			return
		}
		if _, err = dst.WriteTo(buf[:n], to); err != nil {
			return
		}
		dst.SetReadDeadline(time.Now().Add(time.Second))
	}
}

// testProxy stands for a SOCKS5 server: it "connects" an intercepted destination to a
// real server on the loopback (upstream), or refuses.
type testProxy struct {
	mu       sync.Mutex
	upstream map[netip.AddrPort]netip.AddrPort // intercepted destination → loopback server
}

func (p *testProxy) route(dst netip.AddrPort) (netip.AddrPort, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if up, ok := p.upstream[dst]; ok {
		return up, nil
	}
	return netip.AddrPort{}, fmt.Errorf("proxy: %v refused", dst)
}

func (p *testProxy) DialContext(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
	up, err := p.route(dst)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", up.String())
}

// DialUDP returns a packet conn whose datagrams to dst go to its upstream, and whose
// replies seem to come from dst (as a SOCKS5 UDP ASSOCIATE relay's do).
func (p *testProxy) DialUDP(dst netip.AddrPort) (net.PacketConn, error) {
	up, err := p.route(dst)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return nil, err
	}
	return &proxyPacketConn{UDPConn: c, dst: dst, up: up}, nil
}

type proxyPacketConn struct {
	*net.UDPConn
	dst, up netip.AddrPort
}

func (c *proxyPacketConn) WriteTo(b []byte, to net.Addr) (int, error) {
	return c.UDPConn.WriteToUDPAddrPort(b, c.up)
}

func (c *proxyPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, _, err := c.UDPConn.ReadFromUDPAddrPort(b)
	return n, net.UDPAddrFromAddrPort(c.dst), err
}

// ---- the servers behind the proxy ----

// serveHalfClose accepts one connection at a time: it reads until the client's FIN,
// checks the bytes against want, answers with reply and closes. Results go to done.
func serveHalfClose(t *testing.T, l net.Listener, want, reply []byte, done chan<- error) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(60 * time.Second))
			got, err := io.ReadAll(c)
			if err == nil && !bytes.Equal(got, want) {
				err = fmt.Errorf("upstream got %d bytes, want %d (equal %v)", len(got), len(want), bytes.Equal(got, want))
			}
			if err == nil {
				_, err = c.Write(reply)
			}
			done <- err
		}()
	}
}

// ---- the test ----

// tun2socksNet is a gVisor client stack (the device) wired to a wisp stack that
// intercepts (198.18.99.0/24 and fd42:5eed:0:99::/64 are the wire; anything else the client
// reaches is intercepted), with the ported core/ on it.
type tun2socksNet struct {
	*testNet
	gs     *gvisor.Stack
	proxy  *testProxy
	tunnel *testTunnel
}

func newTun2socksNet(t *testing.T) *tun2socksNet {
	nt := newNet(t, netConfig{medium: link.MediumIP})
	nt.evidence(t)
	if err := nt.wnif.SetIntercept(&ip.Intercept{}); err != nil {
		t.Fatal(err)
	}
	n := &tun2socksNet{testNet: nt, proxy: &testProxy{upstream: map[netip.AddrPort]netip.AddrPort{}}}
	n.tunnel = &testTunnel{t: t, proxy: n.proxy}
	n.gs = gvisor.NewStack(nt.ws, forwarder.Config{})
	t.Cleanup(func() {
		n.tunnel.wg.Wait() // every relay done
		t.Logf("%v", n.gs.Stats())
		closeForwarder(t, nt, n.gs)
	})
	// core.CreateStack applies these before the NIC comes up.
	for _, opt := range []option{withTCPHandler(n.tunnel), withUDPHandler(n.tunnel)} {
		if err := opt(n.gs); err != nil {
			t.Fatal(err)
		}
	}
	if n.gs.Forwarder() == nil {
		t.Fatal("no wisp forwarder after SetTransportProtocolHandler")
	}
	return n
}

// closeForwarder closes s and checks that the wisp stack, still open, holds nothing any
// more (every connection and session of the test closed, their PCBs and pbufs freed) but
// the PCBs of connections in TIME-WAIT (those wisp closed first wait 2 MSL).
func closeForwarder(t *testing.T, nt *testNet, s *gvisor.Stack) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Errorf("forwarder close: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		timeWait := 0
		for _, c := range nt.ws.TCPConns(nil) {
			if c.State == wtcp.StateTimeWait {
				timeWait++
			}
		}
		st := nt.ws.Stats()
		in := st.PoolsInUse()
		if len(in) == 1 && in[0].Name == "TCP_PCB" && in[0].Used == timeWait {
			in = nil
		}
		if len(in) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("wisp pools in use after the forwarder closed: %+v", in)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestForwarderTun2socksTCP: connections to arbitrary addresses (IPv4 and IPv6) are
// relayed byte-exact both ways, each direction closed on its own (half-close).
func TestForwarderTun2socksTCP(t *testing.T) {
	n := newTun2socksNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	up, down := fwdPattern(1<<20+333, 3), fwdPattern(3<<19+1, 4)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 4)
	go serveHalfClose(t, l, up, down, done)
	lap := netAddrPortOf(l.Addr())
	dsts := []netip.AddrPort{
		netip.MustParseAddrPort("198.18.200.7:80"),
		netip.MustParseAddrPort("[fd42:5eed:0:1::7]:443"),
	}
	for _, d := range dsts {
		n.proxy.upstream[d] = lap
	}
	var wg sync.WaitGroup
	for _, dst := range dsts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := clientHalfClose(ctx, n, dst, up, down); err != nil {
				t.Errorf("%v: %v", dst, err)
			}
		}()
	}
	wg.Wait()
	for range dsts {
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-ctx.Done():
			t.Fatal("upstream never finished")
		}
	}
	if st := n.gs.Stats(); st.TCPAccepted != uint64(len(dsts)) {
		t.Errorf("forwarder accepted %d, want %d: %+v", st.TCPAccepted, len(dsts), st)
	}
}

// clientHalfClose connects from the gVisor client to dst, sends up, half-closes, and
// reads down until the relay's FIN.
func clientHalfClose(ctx context.Context, n *tun2socksNet, dst netip.AddrPort, up, down []byte) error {
	c, _, err := gvDial(ctx, n.testNet.gs, dst)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	if got := c.RemoteAddr().String(); got != dst.String() {
		return fmt.Errorf("connected to %s", got)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(up)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, down) {
		return fmt.Errorf("client read %d of %d bytes (equal %v): %v", len(got), len(down), bytes.Equal(got, down), err)
	}
	return <-werr
}

func netAddrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// TestForwarderTun2socksUDP: datagrams to arbitrary addresses are relayed to an echo
// server and the replies come back from the address the client sent to, fragmented ones
// included.
func TestForwarderTun2socksUDP(t *testing.T) {
	n := newTun2socksNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	echo, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		b := make([]byte, 65535)
		for {
			k, from, err := echo.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			echo.WriteToUDPAddrPort(b[:k], from)
		}
	}()
	dsts := []netip.AddrPort{
		netip.MustParseAddrPort("198.18.201.9:53"),
		netip.MustParseAddrPort("[fd42:5eed:0:1::9]:5353"),
	}
	for _, d := range dsts {
		n.proxy.upstream[d] = netAddrPortOf(echo.LocalAddr())
	}
	for _, dst := range dsts {
		t.Run(dst.String(), func(t *testing.T) {
			raddr := gvAddr(dst)
			c, err := gonet.DialUDP(n.testNet.gs, nil, &raddr, gvProto(dst.Addr()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i, size := range []int{1, 512, 1400, 4000} {
				msg := fwdPattern(size, byte(10+i))
				if err := udpEcho(ctx, c, msg); err != nil {
					t.Fatalf("%d bytes: %v", size, err)
				}
			}
		})
	}
}

// udpEcho sends msg until its echo comes back (the first datagram may race the
// session's set-up on a slow machine; a datagram is never expected to be lost otherwise).
func udpEcho(ctx context.Context, c *gonet.UDPConn, msg []byte) error {
	b := make([]byte, 65535)
	for ctx.Err() == nil {
		if _, err := c.Write(msg); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		k, err := c.Read(b)
		if err != nil {
			if isTimeout(err) {
				continue
			}
			return err
		}
		if !bytes.Equal(b[:k], msg) {
			return fmt.Errorf("echo of %d bytes: got %d bytes", len(msg), k)
		}
		return nil
	}
	return ctx.Err()
}

// TestForwarderTun2socksPing: tun2socks's core/icmp.go answers echo requests to any
// address itself; on wisp the forwarder does (EchoLocal, the default), for IPv6 too.
func TestForwarderTun2socksPing(t *testing.T) {
	n := newTun2socksNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, dst := range []string{"198.18.204.4", "fd42:5eed:0:4::4"} {
		if err := gvPing(ctx, n.testNet.gs, netip.MustParseAddr(dst), 56); err != nil {
			t.Errorf("ping %s: %v", dst, err)
		}
	}
	if st := n.gs.Stats(); st.EchoLocal < 2 {
		t.Errorf("stats: %+v", st)
	}
}

// TestForwarderCompleteReset: a handler that dials upstream first (sing-tun's order) and
// calls Complete(true) when it fails: the client's connect fails with "connection
// refused", and no SYN-ACK was ever sent (deferred handshake). A handler that succeeds
// creates the endpoint afterwards.
func TestForwarderCompleteReset(t *testing.T) {
	nt := newNet(t, netConfig{medium: link.MediumIP})
	if err := nt.wnif.SetIntercept(&ip.Intercept{}); err != nil {
		t.Fatal(err)
	}
	s := gvisor.NewStack(nt.ws, forwarder.Config{})
	var wg sync.WaitGroup
	t.Cleanup(func() { wg.Wait(); closeForwarder(t, nt, s) })
	open := netip.MustParseAddrPort("198.18.202.1:7")
	f := gvisor.NewTCPForwarder(s, 0, 16, func(r *gvisor.TCPForwarderRequest) {
		if idDst(r.ID()) != open {
			r.Complete(true) // the upstream refused
			return
		}
		var wq waiter.Queue
		ep, err := r.CreateEndpoint(&wq)
		if err != nil {
			t.Errorf("CreateEndpoint: %v", err)
			r.Complete(true)
			return
		}
		r.Complete(false)
		c := gonet.NewTCPConn(&wq, ep)
		wg.Add(1)
		go func() { // an echo
			defer wg.Done()
			defer c.Close()
			io.Copy(c, c)
		}()
	})
	if err := s.SetTransportProtocolHandler(tcp.ProtocolNumber, f.HandlePacket); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, dst := range []string{"198.18.202.2:80", "[fd42:5eed:0:2::2]:80"} {
		_, _, err := gvDial(ctx, nt.gs, netip.MustParseAddrPort(dst))
		if refused := (&tcpip.ErrConnectionRefused{}).String(); err == nil || !strings.Contains(err.Error(), refused) {
			t.Errorf("connect %s: %v, want %q", dst, err, refused)
		}
	}
	c, _, err := gvDial(ctx, nt.gs, open)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := []byte("hello through wisp")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %q, %v", got, err)
	}
	if st := s.Stats(); st.TCPRejected != 2 || st.TCPAccepted != 1 {
		t.Errorf("stats: %+v", st)
	}
}

// TestForwarderUDPHandlerShapes: both of gVisor's UDP handler shapes compile, and a
// handler that reports false makes the client get a port unreachable (a connected gVisor
// UDP socket then fails with "connection refused").
func TestForwarderUDPHandlerShapes(t *testing.T) {
	nt := newNet(t, netConfig{medium: link.MediumIP})
	if err := nt.wnif.SetIntercept(&ip.Intercept{}); err != nil {
		t.Fatal(err)
	}
	s := gvisor.NewStack(nt.ws, forwarder.Config{})
	t.Cleanup(func() { closeForwarder(t, nt, s) })
	_ = gvisor.NewUDPForwarder(s, func(r *gvisor.UDPForwarderRequest) {}) // gVisor's older shape
	f := gvisor.NewUDPForwarder(s, func(r *gvisor.UDPForwarderRequest) bool { return false })
	if err := s.SetTransportProtocolHandler(udp.ProtocolNumber, f.HandlePacket); err != nil {
		t.Fatal(err)
	}
	dst := netip.MustParseAddrPort("198.18.203.3:9")
	raddr := gvAddr(dst)
	c, err := gonet.DialUDP(nt.gs, nil, &raddr, gvProto(dst.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// The error is reported once, by the next Read or Write (gVisor's LastError).
		if _, err = c.Write([]byte("ping")); err != nil {
			break
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err = c.Read(make([]byte, 16)); err != nil && !isTimeout(err) {
			break
		}
	}
	if refused := (&tcpip.ErrConnectionRefused{}).String(); err == nil || !strings.Contains(err.Error(), refused) {
		t.Errorf("read after a rejected datagram: %v, want %q", err, refused)
	}
	if st := s.Stats(); st.UDPRejected == 0 {
		t.Errorf("stats: %+v", st)
	}
}

// TestForwarderCreateEndpointFails: a SYN whose sender answers the SYN-ACK with a RST
// (the gVisor client, which never sent it: it is injected) makes CreateEndpoint fail with
// *tcpip.ErrConnectionReset, and tun2socks's Complete(true) after it does no harm.
func TestForwarderCreateEndpointFails(t *testing.T) {
	nt := newNet(t, netConfig{medium: link.MediumIP})
	if err := nt.wnif.SetIntercept(&ip.Intercept{}); err != nil {
		t.Fatal(err)
	}
	s := gvisor.NewStack(nt.ws, forwarder.Config{})
	t.Cleanup(func() { closeForwarder(t, nt, s) })
	errc := make(chan tcpip.Error, 1)
	f := gvisor.NewTCPForwarder(s, 0, 16, func(r *gvisor.TCPForwarderRequest) {
		var wq waiter.Queue
		ep, err := r.CreateEndpoint(&wq)
		if err != nil {
			r.Complete(true)
			errc <- err
			return
		}
		ep.Close()
		errc <- nil
	})
	if err := s.SetTransportProtocolHandler(tcp.ProtocolNumber, f.HandlePacket); err != nil {
		t.Fatal(err)
	}
	src, dst := netip.AddrPortFrom(gvV4.Addr(), 5555), netip.MustParseAddrPort("198.18.205.5:80")
	seg := make([]byte, wire.TCPMinHeaderLen)
	r := wire.TCPRepr{SrcPort: src.Port(), DstPort: dst.Port(), SeqNum: 1000, Flags: wire.TCPFlagSYN, Window: 65535}
	if err := r.Emit(seg, src.Addr(), dst.Addr()); err != nil {
		t.Fatal(err)
	}
	stacktest.Inject(t, nt.wnif, iptest.Packet(wire.ProtoTCP, src.Addr(), dst.Addr(), seg))
	select {
	case err := <-errc:
		if _, ok := err.(*tcpip.ErrConnectionReset); !ok {
			t.Errorf("CreateEndpoint: %v, want %v", err, &tcpip.ErrConnectionReset{})
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no request")
	}
}

// TestForwarderMaxInFlight: beyond maxInFlight undecided requests, a SYN gets a RST
// (the client sees "connection refused" at once) and is counted, where gVisor's forwarder
// drops it silently and the client retries.
func TestForwarderMaxInFlight(t *testing.T) {
	nt := newNet(t, netConfig{medium: link.MediumIP})
	if err := nt.wnif.SetIntercept(&ip.Intercept{}); err != nil {
		t.Fatal(err)
	}
	s := gvisor.NewStack(nt.ws, forwarder.Config{})
	release := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { wg.Wait(); closeForwarder(t, nt, s) })
	held := make(chan struct{}, 1)
	f := gvisor.NewTCPForwarder(s, 0, 1, func(r *gvisor.TCPForwarderRequest) {
		held <- struct{}{}
		<-release // undecided until released
		var wq waiter.Queue
		ep, err := r.CreateEndpoint(&wq)
		if err != nil {
			r.Complete(true)
			return
		}
		r.Complete(false)
		ep.Close()
	})
	if err := s.SetTransportProtocolHandler(tcp.ProtocolNumber, f.HandlePacket); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, _, err := gvDial(ctx, nt.gs, netip.MustParseAddrPort("198.18.206.1:80"))
		if err == nil {
			c.Close()
		}
		first <- err
	}()
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("no first request")
	}
	start := time.Now()
	_, _, err := gvDial(ctx, nt.gs, netip.MustParseAddrPort("198.18.206.2:80"))
	if refused := (&tcpip.ErrConnectionRefused{}).String(); err == nil || !strings.Contains(err.Error(), refused) {
		t.Errorf("second connect while the first is undecided: %v, want %q", err, refused)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("the refusal took %v", el)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first connect: %v", err)
	}
	if st := s.Stats(); st.TCPRefusedFull != 1 || st.TCPAccepted != 1 {
		t.Errorf("stats: %+v", st)
	}
}

package gvisor_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/wispstack/wisp/adapter/gvisor"
	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/forwarder"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/stack/stacktest"
)

// TestForwarderTun2socksThroughput compares, in one process, tun2socks's core/ on gVisor
// (tcp.NewForwarder, as tun2socks ships it) with its port on wisp (this package's shim),
// and with the same relay on wisp's forwarder API itself (wisp-native, no shim):
// the same gVisor client stack reaches 198.18.200.7:80 over a pipe (MTU 1500), the same
// relay copies each connection to a kernel TCP socket on the loopback, which sinks an
// upload or sources a download. It only runs with WISP_FORWARDER_THROUGHPUT=1 (it moves
// 256 MiB each way per engine):
//
//	WISP_FORWARDER_THROUGHPUT=1 go test -run ForwarderTun2socksThroughput -v ./adapter/gvisor
func TestForwarderTun2socksThroughput(t *testing.T) {
	if os.Getenv("WISP_FORWARDER_THROUGHPUT") == "" {
		t.Skip("a measurement: set WISP_FORWARDER_THROUGHPUT=1")
	}
	const size = 256 << 20
	dst := netip.MustParseAddrPort("198.18.200.7:80")
	for _, engine := range []string{"gvisor", "wisp", "wisp-native"} {
		for _, dir := range []string{"upload", "download"} {
			t.Run(engine+"/"+dir, func(t *testing.T) {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				upstream := netAddrPortOf(l.Addr())
				go serveBulk(l, dir == "download", size)
				var client *gstack.Stack
				switch engine {
				case "wisp":
					n := newTun2socksNet(t)
					n.proxy.upstream[dst] = upstream
					client = n.testNet.gs
				case "wisp-native":
					client = nativeTun2socks(t, dst, upstream)
				default:
					client = gvisorTun2socks(t, upstream)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				c, _, err := gvDial(ctx, client, dst)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				deadline, _ := ctx.Deadline()
				c.SetDeadline(deadline)
				start := time.Now()
				var moved int64
				if dir == "upload" {
					moved, err = io.Copy(c, io.LimitReader(zeroReader{}, size))
					if err == nil {
						c.CloseWrite()
						_, err = io.Copy(io.Discard, c) // the sink's close: everything arrived
					}
				} else {
					moved, err = io.Copy(io.Discard, c)
				}
				el := time.Since(start)
				if err != nil || moved != size {
					t.Fatalf("moved %d of %d bytes: %v", moved, size, err)
				}
				t.Logf("%s %s: %d MiB in %v: %.2f Gbit/s", engine, dir, size>>20, el.Round(time.Millisecond),
					float64(size)*8/el.Seconds()/1e9)
			})
		}
	}
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// serveBulk serves one connection: it sources size bytes (download) or sinks until the
// client's FIN, then closes.
func serveBulk(l net.Listener, source bool, size int64) {
	c, err := l.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	if source {
		io.Copy(c, io.LimitReader(zeroReader{}, size))
		return
	}
	io.Copy(io.Discard, c)
}

// gvisorTun2socks is the gVisor baseline: a gVisor stack set up as tun2socks's
// core.CreateStack does (promiscuous, spoofing, default routes, tcp.NewForwarder with
// core/tcp.go's handler) on one end of a pipe, relaying every connection to upstream with
// the same tunnel code as the wisp port, and a gVisor client stack on the other end.
func gvisorTun2socks(t *testing.T, upstream netip.AddrPort) *gstack.Stack {
	stacktest.NoGoroutineLeak(t)
	a, b := pipe.New(pipe.Config{MTU: 1500, Medium: link.MediumIP, QueueLen: 4096})
	allocA, poolsA := gvAllocator()
	allocB, poolsB := gvAllocator()
	t.Cleanup(func() { allocZero(t, "server", allocA, poolsA); allocZero(t, "client", allocB, poolsB) })

	srv := gstack.New(gstack.Options{
		NetworkProtocols:   []gstack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []gstack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	t.Cleanup(func() { srv.Close(); srv.Wait() })
	sack := tcpip.TCPSACKEnabled(true)
	srv.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	tunnel := &testTunnel{t: t, proxy: &testProxy{upstream: map[netip.AddrPort]netip.AddrPort{}}}
	t.Cleanup(tunnel.wg.Wait)
	tunnel.proxy.upstream[netip.MustParseAddrPort("198.18.200.7:80")] = upstream
	f := tcp.NewForwarder(srv, defaultWndSize, maxConnAttempts, func(r *tcp.ForwarderRequest) {
		var wq waiter.Queue
		ep, err := r.CreateEndpoint(&wq)
		if err != nil {
			r.Complete(true)
			return
		}
		defer r.Complete(false)
		ep.SocketOptions().SetKeepAlive(true)
		tunnel.HandleTCP(&tcpConn{TCPConn: gonet.NewTCPConn(&wq, ep), id: r.ID()})
	})
	srv.SetTransportProtocolHandler(tcp.ProtocolNumber, f.HandlePacket)
	if err := srv.CreateNIC(1, gvisor.NewEndpoint(a, allocA)); err != nil {
		t.Fatal(fmt.Sprint(err))
	}
	srv.SetPromiscuousMode(1, true)
	srv.SetSpoofing(1, true)
	srv.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: 1}, {Destination: header.IPv6EmptySubnet, NIC: 1}})

	client, _ := newGVisorStack(t, true)
	if err := client.CreateNIC(gvNIC, gvisor.NewEndpoint(b, allocB)); err != nil {
		t.Fatal(fmt.Sprint(err))
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{
		Address: tcpip.AddrFromSlice(gvV4.Addr().AsSlice()), PrefixLen: gvV4.Bits()}}
	if err := client.AddProtocolAddress(gvNIC, pa, gstack.AddressProperties{}); err != nil {
		t.Fatal(fmt.Sprint(err))
	}
	client.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: gvNIC}})
	return client
}

// nativeTun2socks is the relay of the other engines on wisp's own forwarder API: the
// accepted *endpoint.TCPConn goes to the tunnel as it is.
func nativeTun2socks(t *testing.T, dst, upstream netip.AddrPort) *gstack.Stack {
	nt := newNet(t, netConfig{medium: link.MediumIP})
	if err := nt.wnif.SetIntercept(&ip.Intercept{}); err != nil {
		t.Fatal(err)
	}
	tunnel := &testTunnel{t: t, proxy: &testProxy{upstream: map[netip.AddrPort]netip.AddrPort{dst: upstream}}}
	f, err := forwarder.New(nt.ws, forwarder.Config{TCP: forwarder.TCPConfig{Handler: func(r *forwarder.TCPRequest) {
		c, err := r.Accept(context.Background())
		if err != nil {
			return
		}
		tunnel.HandleTCP(&nativeConn{TCPConn: c})
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tunnel.wg.Wait(); f.Close() })
	return nt.gs
}

type nativeConn struct{ *endpoint.TCPConn }

func (c *nativeConn) ID() stack.TransportEndpointID {
	l, r := c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
	return stack.TransportEndpointID{LocalAddress: tcpip.AddrFromSlice(l.Addr().Unmap().AsSlice()), LocalPort: l.Port(),
		RemoteAddress: tcpip.AddrFromSlice(r.Addr().Unmap().AsSlice()), RemotePort: r.Port()}
}

package forwarder_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/forwarder"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
)

// A tiny direct TUN proxy: every TCP connection the device opens, to any address, is
// dialed from the host and relayed. The device here is a second wisp stack on the other end
// of a pipe (in real use: tun.Open("wisp0", 1500) as the proxy's link, and the system's
// routes pointing at it); the host's "internet" is one echo server on loopback.
func Example() {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	// dial is how the proxy reaches a destination; a direct proxy would net.Dial dst itself,
	// tun2socks a SOCKS5 server.
	dial := func(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", echo.Addr().String())
	}

	proxy, err := stack.New(stack.Config{Options: opt.Tunnel()})
	if err != nil {
		log.Fatal(err)
	}
	defer proxy.Close()
	tunEnd, devEnd := pipe.New(pipe.Config{Medium: link.MediumIP})
	nif, err := proxy.AddNetif(tunEnd, stack.NetifConfig{Name: "tun0",
		Addrs:     []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24")},
		Intercept: &ip.Intercept{}}) // every address the device sends to is the proxy's
	if err != nil {
		log.Fatal(err)
	}
	proxy.AddRoute(stack.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Netif: nif})

	fw, err := forwarder.New(proxy, forwarder.Config{TCP: forwarder.TCPConfig{
		Deferred: true, // dial first: the device sees a handshake only if the upstream answered
		Handler: func(r *forwarder.TCPRequest) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			up, err := dial(ctx, r.ID().Dst)
			if err != nil {
				r.Reject(true) // the device gets a RST: ECONNREFUSED at once
				return
			}
			c, err := r.Accept(ctx)
			if err != nil {
				up.Close()
				return
			}
			forwarder.Relay(c, up) // both ways, half-close and resets passed on; closes both
		},
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer fw.Close()

	// The device: any address, any port.
	dev, err := stack.New(stack.Config{Options: opt.Tunnel()})
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	dnif, err := dev.AddNetif(devEnd, stack.NetifConfig{Name: "eth0",
		Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/24")}})
	if err != nil {
		log.Fatal(err)
	}
	dev.AddRoute(stack.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Netif: dnif})
	c, err := endpoint.New(dev).Dial("tcp", "198.19.7.7:80")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprint(c, "hello")
	c.(*endpoint.TCPConn).CloseWrite()
	reply, _ := io.ReadAll(c)
	c.Close()
	fmt.Printf("%q from %v\n", reply, c.RemoteAddr())
	fmt.Printf("requests %d, accepted %d\n", fw.Stats().TCPRequests, fw.Stats().TCPAccepted)
	// Output:
	// "hello" from 198.19.7.7:80
	// requests 1, accepted 1
}

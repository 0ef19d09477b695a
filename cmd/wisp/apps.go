package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"

	"github.com/wispstack/wisp/internal/httpapp"
)

// sockets is what the socket-layer apps of `wisp serve` need from endpoint.Net.
type sockets interface {
	Listen(network, address string) (net.Listener, error)
	ListenPacket(network, address string) (net.PacketConn, error)
}

// apps are the socket-layer services of `wisp serve`: HTTP (--http) and UDP echo
// (--udp-echo), one listener or socket per --addr address and port.
type apps struct {
	out  io.Writer
	http *http.Server
	pcs  []net.PacketConn
	wg   sync.WaitGroup
}

// httpRoot checks --http-root: "" (the built-in site) or an existing directory.
func httpRoot(dir string) error {
	if dir == "" {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%w: --http-root: %v", errUsage, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: --http-root %s is not a directory", errUsage, dir)
	}
	return nil
}

// startApps starts every service; on an error it stops what it started. out receives one
// line per service started and the errors of services that stop on their own.
func startApps(n sockets, addrs []netip.Prefix, title string, httpPorts portList, root string, udpEcho portList, out io.Writer) (*apps, error) {
	a := &apps{out: out}
	if len(httpPorts) > 0 {
		h := httpapp.Handler(title)
		what := "built-in site (/ and /bytes/N)"
		if root != "" {
			h = http.FileServer(http.Dir(root))
			what = "files of " + root
		}
		a.http = httpapp.NewServer(h)
		for _, port := range httpPorts {
			for _, p := range addrs {
				l, err := n.Listen("tcp", netip.AddrPortFrom(p.Addr(), port).String())
				if err != nil {
					a.close()
					return nil, fmt.Errorf("http: %w", err)
				}
				a.wg.Add(1)
				go func() {
					defer a.wg.Done()
					if err := a.http.Serve(l); !errors.Is(err, http.ErrServerClosed) {
						fmt.Fprintf(out, "wisp: http on %v stopped: %v\n", l.Addr(), err)
					}
				}()
			}
			fmt.Fprintf(out, "wisp: http on port %d: %s\n", port, what)
		}
	}
	for _, port := range udpEcho {
		for _, p := range addrs {
			pc, err := n.ListenPacket("udp", netip.AddrPortFrom(p.Addr(), port).String())
			if err != nil {
				a.close()
				return nil, fmt.Errorf("udp echo: %w", err)
			}
			a.pcs = append(a.pcs, pc)
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				udpEchoLoop(pc)
			}()
		}
		fmt.Fprintf(out, "wisp: udp echo on port %d\n", port)
	}
	return a, nil
}

// udpEchoLoop sends every datagram back to its sender (RFC 862's UDP service) until pc is
// closed. A failed send is dropped, as UDP may: ENOMEM when the link's queue is full.
func udpEchoLoop(pc net.PacketConn) {
	buf := make([]byte, 65535)
	for failed := 0; failed < 100; {
		k, from, err := pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			failed++ // a pending ICMP error reported on read: the socket goes on, unless it repeats
			continue
		}
		failed = 0
		_, _ = pc.WriteTo(buf[:k], from)
	}
}

// close stops every service and waits for their goroutines. Open HTTP connections are
// closed too (http.Server.Close), so a download in progress ends.
func (a *apps) close() {
	if a.http != nil {
		a.http.Close()
	}
	for _, pc := range a.pcs {
		pc.Close()
	}
	a.wg.Wait()
}

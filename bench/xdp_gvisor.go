package main

// gVisor netstack on its own AF_XDP link (gvisor.dev/gvisor/pkg/tcpip/link/xdp), as runsc
// sets it up: the bench opens the AF_XDP socket in the engine's namespace, gVisor's
// xdp.New builds the UMEM (2 MiB, 1024 frames of 2048 bytes, 512 descriptors per ring) and
// binds the socket to queue 0 (Options.Bind), and a fifo queueing discipline feeds its
// WritePackets (the endpoint expects one: runsc's fifo.New(ep, GOMAXPROCS, 1000)). gVisor
// ships no XDP program loader with the link; the bench attaches wisp's own redirect program
// (xdp.RedirectProgram, xdp_prog.go) with the engine's address, so both engines meet the
// same program. Checksums are verified in software (no RX checksum offload declared).
// gVisor's stack is newGVisorStack's with ARP added (an Ethernet link needs it).
//
// At the pinned version the link cannot be detached: Attach(nil) takes its lock and calls
// IsAttached, which takes it again (a self-deadlock in stack.Wait), and its dispatcher
// treats the stop signal as "go on" (it spins). gvXDPEndpoint stops the dispatcher the
// one way it ends: its poll reporting POLLHUP (the socket's fd number made a pipe's read
// end whose writer is closed) while woken by the stop signal (its eventfd, read by
// reflection). gVisor's link never unmaps its UMEM or rings (~2.5 MiB per run).

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"runtime"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/qdisc/fifo"
	gvxdp "gvisor.dev/gvisor/pkg/tcpip/link/xdp"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// gvXDP is gVisor's side of an xdp network.
type gvXDP struct {
	gvTUN // the stack, its listen and dial (NIC 1, the engine's address); fd and own unused
	fd    int
	prog  *xdpRedirect
}

// openGVisorXDP builds gVisor on wxbe's queue 0 in ns.
func openGVisorXDP(ns *namespace, tuned bool, mac [6]byte) (xdpSide, []string, error) {
	g := &gvXDP{gvTUN: gvTUN{fd: -1}, fd: -1}
	var ep stack.LinkEndpoint
	err := ns.in(func() error {
		ifi, err := net.InterfaceByName(xdpEngineDev)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("AF_XDP socket: %w", err)
		}
		g.fd = fd
		inner, err := gvxdp.New(&gvxdp.Options{FD: fd, Address: tcpip.LinkAddress(mac[:]), InterfaceIndex: ifi.Index, Bind: true})
		if err != nil {
			return fmt.Errorf("gVisor xdp.New: %w", err)
		}
		ep = &gvXDPEndpoint{LinkEndpoint: inner, fd: fd}
		g.prog, err = attachRedirect(ifi.Index, []int{fd}, []netip.Addr{xdpEngineAddr})
		return err
	})
	if err != nil {
		g.close()
		return nil, nil, err
	}
	s, err := newGVisorStack(tuned, arp.NewProtocol)
	if err != nil {
		g.close()
		return nil, nil, err
	}
	g.s = s
	qd := fifo.New(ep.(*gvXDPEndpoint).LinkEndpoint, runtime.GOMAXPROCS(0), 1000)
	if err := s.CreateNICWithOptions(1, ep, stack.NICOptions{QDisc: qd}); err != nil {
		g.close()
		return nil, nil, fmt.Errorf("gvisor CreateNIC: %v", err)
	}
	addr := tcpip.AddrFrom4(xdpEngineAddr.As4()).WithPrefix()
	addr.PrefixLen = 24
	if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: addr}, stack.AddressProperties{}); err != nil {
		g.close()
		return nil, nil, fmt.Errorf("gvisor address: %v", err)
	}
	s.AddRoute(tcpip.Route{Destination: addr.Subnet(), NIC: 1})
	return g, []string{"gVisor pkg/tcpip/link/xdp on queue 0 (its UMEM: 1024 × 2048 B; fifo qdisc) behind xdp.RedirectProgram"}, nil
}

// gvXDPEndpoint is gVisor's xdp endpoint with a detach that works (see above).
type gvXDPEndpoint struct {
	stack.LinkEndpoint
	fd int // the AF_XDP socket's fd number
}

func (e *gvXDPEndpoint) Attach(d stack.NetworkDispatcher) {
	if d != nil {
		e.LinkEndpoint.Attach(d)
		return
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return
	}
	unix.Close(p[1])
	// The socket's fd number becomes the pipe's read end (POLLHUP), then the stop signal
	// wakes the poll, which sees both: an error, and the dispatcher returns.
	err := unix.Dup3(p[0], e.fd, unix.O_CLOEXEC)
	unix.Close(p[0])
	if err != nil {
		return
	}
	efd := reflect.ValueOf(e.LinkEndpoint).Elem().FieldByName("stopFD").FieldByName("EFD")
	if !efd.IsValid() {
		return // another gVisor: leave the dispatcher
	}
	if _, err := unix.Write(int(efd.Int()), []byte{1, 0, 0, 0, 0, 0, 0, 0}); err == nil {
		e.LinkEndpoint.Wait()
	}
}

func (g *gvXDP) listenUDP(port uint16) (net.PacketConn, error) {
	return gvListenUDP(g.s, netip.AddrPortFrom(xdpEngineAddr, port))
}

func gvListenUDP(s *stack.Stack, a netip.AddrPort) (net.PacketConn, error) {
	return gonet.DialUDP(s, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(a.Addr().As4()), Port: a.Port()}, nil, ipv4.ProtocolNumber)
}

func (g *gvXDP) dropped() uint64 { return 0 }
func (g *gvXDP) summary() string {
	var st unix.XDPStatistics
	if g.fd >= 0 {
		if err := getXDPStats(g.fd, &st); err == nil {
			return fmt.Sprintf("gVisor xdp socket: %d rx dropped, %d rx ring full, %d fill ring empty", st.Rx_dropped, st.Rx_ring_full, st.Rx_fill_ring_empty_descs)
		}
	}
	return ""
}

// close detaches the program, stops the stack (its NIC's removal stops the link's
// dispatcher) and closes the socket. gVisor's link has no Close of its own: its 2 MiB UMEM
// mapping stays until the process exits.
func (g *gvXDP) close() {
	if g.prog != nil {
		g.prog.close()
		g.prog = nil
	}
	if g.s != nil {
		g.s.Close()
		g.s.Wait()
		g.s = nil
	}
	if g.fd >= 0 {
		unix.Close(g.fd)
		g.fd = -1
	}
}

// gvTUN's UDP socket for the TUN reference rows.
func (g *gvTUN) listenUDP(a netip.AddrPort) (net.PacketConn, error) { return gvListenUDP(g.s, a) }

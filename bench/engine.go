package main

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"time"
)

// The test network every engine builds: a client (A) and a server (B) side, joined by the
// shared link (userspace engines) or a veth pair between two namespaces (the kernel).
var (
	addrA = netip.MustParseAddr("198.18.0.1")
	addrB = netip.MustParseAddr("198.18.0.2")
)

// engine is one TCP/IP implementation under test.
type engine interface {
	// name is the column title.
	name() string
	// missing says why the engine cannot run here ("" when it can).
	missing() string
	// open builds a fresh network of two stacks for one scenario.
	open(cfg netConfig) (network, error)
}

// netConfig is what a scenario asks of a network.
type netConfig struct {
	MTU    int
	Impair impairment
	// Conns is the number of simultaneous TCP connections the scenario holds: an engine with
	// fixed pools adjusts them (and says so in network.notes) only when its preset has fewer.
	Conns int
	// LargeSegments selects the labelled variant where each engine may put segments larger
	// than the MTU on the link (gVisor GSO; wisp a larger-MTU link).
	LargeSegments bool
	// WireGuard selects a WireGuard network (wireguard.go): two wireguard-go devices, each
	// over a stack of the engine's kind, joined by the bind; MTU is the tunnel's.
	WireGuard wgBind
	// TUN selects a TUN network (tun.go): one stack of the engine's kind behind a kernel TUN
	// in a namespace, the kernel's TCP its peer; Offload asks for the TUN with a virtio-net
	// header (GSO both ways) instead of one packet per system call.
	TUN     tunDir
	Offload bool
}

// network is two stacks joined by a link.
type network interface {
	// listen opens a TCP listener on B.
	listen(port uint16) (listener, error)
	// dial connects from A to B's port.
	dial(port uint16) (conn, error)
	// listenUDP and dialUDP open UDP sockets on B and A; errUnsupported when the engine has
	// no UDP.
	listenUDP(port uint16) (packetConn, error)
	dialUDP(port uint16) (packetConn, error)
	// packets reports the packets the link carried in both directions (0 if unknown).
	packets() uint64
	// linkSummary describes what the link did (for the progress log); "" if unknown.
	linkSummary() string
	// memory reports what the engine's stacks hold beyond the Go heap the harness measures:
	// for wisp the pool and heap bytes in use and reserved; zero for the others.
	memory() engineMemory
	// notes lists adjustments made for this scenario (printed with the table).
	notes() []string
	// close tears everything down.
	close() error
}

type listener interface {
	accept() (conn, error)
	close() error
}

// netListener is the listener of a net.Listener: the kernel's, endpoint's or gonet's.
type netListener struct{ l net.Listener }

func (l netListener) accept() (conn, error) {
	c, err := l.l.Accept()
	if err != nil {
		return nil, err
	}
	return netConn{c}, nil
}

func (l netListener) close() error { return l.l.Close() }

// conn is a TCP connection as its users see it.
type conn interface {
	io.Reader
	io.Writer
	// setNoDelay disables Nagle.
	setNoDelay(bool)
	close() error
}

type packetConn interface {
	// write sends one datagram to the peer the socket was dialled to (A) or last heard from
	// (B).
	write(b []byte) error
	// rearm renews the write deadline after a write timed out.
	rearm()
	// read receives one datagram; it fails after the deadline.
	read(b []byte, deadline time.Time) (int, error)
	close() error
}

// engineMemory is the packet memory an engine reserves itself (wisp's pools and heap).
type engineMemory struct {
	InUse    int64 // bytes of pool elements and heap blocks in use (both stacks)
	Reserved int64 // bytes reserved up front (stack.Budget, both stacks)
	PCBSize  int64 // bytes of one TCP_PCB pool element
	PCBSlots int64 // TCP_PCB elements reserved (both stacks)
}

// errUnsupported marks what an engine cannot do; the table prints "n/a (why)".
var errUnsupported = errors.New("unsupported")

// naError says why an engine cannot run something; it matches errUnsupported.
type naError struct{ why string }

func (e naError) Error() string        { return e.why }
func (e naError) Is(target error) bool { return target == errUnsupported }

func notAvailable(why string) error { return naError{why} }

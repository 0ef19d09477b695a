package gvisor

import (
	"errors"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/wispstack/wisp/forwarder"
	"github.com/wispstack/wisp/stack"
)

// The gVisor-shaped forwarders (forwarder*.go) let a program written against gVisor's
// tcp.NewForwarder and udp.NewForwarder (tun2socks's core/, Xray's proxy/tun) run on wisp
// with few changed lines:
//
//	gVisor                                               wisp
//	s := stack.New(...) + promiscuous, spoofing, routes  ws := stack.New(...) + a netif with Intercept, routes
//	                                                     s := gvisor.NewStack(ws, forwarder.Config{})
//	f := tcp.NewForwarder(s, 0, 2048, h)                 f := gvisor.NewTCPForwarder(s, 0, 2048, h)
//	func(r *tcp.ForwarderRequest) { ... }                func(r *gvisor.TCPForwarderRequest) { ... }
//	s.SetTransportProtocolHandler(tcp.ProtocolNumber,    (the same line)
//	    f.HandlePacket)
//
// Inside the handlers nothing changes: r.ID() is a stack.TransportEndpointID,
// r.CreateEndpoint(&wq) returns a tcpip.Endpoint that gonet.NewTCPConn and gonet.NewUDPConn
// drive, r.Complete(true) resets, ep.SocketOptions() and ep.SetSockOpt set keep-alive.
// The wisp forwarder (package forwarder) does the work underneath, with its bounds and
// counters (Stack.Stats).

// Stack stands for the gVisor *stack.Stack of a forwarder host: NewTCPForwarder and
// NewUDPForwarder take it, SetTransportProtocolHandler puts a forwarder in charge of its
// protocol, and TransportProtocolOption answers the questions such hosts ask of the stack
// (buffer ranges). Underneath is one wisp forwarder.Forwarder on the wisp stack. Safe for
// concurrent use.
type Stack struct {
	ws  *stack.Stack
	cfg forwarder.Config

	mu     sync.Mutex // guards the fields below
	tcp    *TCPForwarder
	udp    *UDPForwarder
	fwd    *forwarder.Forwarder
	closed bool
}

var _ tcpip.StackHandler = (*Stack)(nil)

// NewStack returns the forwarder stack of ws. c configures the wisp forwarder (bounds,
// keep-alive, timeouts, echo), except what gVisor's forwarders fix: TCP requests are
// deferred (the SYN-ACK leaves at CreateEndpoint, as gVisor's), NewTCPForwarder's
// maxInFlight is TCP.MaxPending when positive, and UDP sessions are per 5-tuple
// (AddressPortDependent: gVisor's forwarder makes a connected endpoint per 5-tuple). The
// handlers in c are ignored; nothing is intercepted until SetTransportProtocolHandler.
// The host turns interception on on its netif (stack.NetifConfig.Intercept) and routes
// 0.0.0.0/0 and ::/0 through it.
func NewStack(ws *stack.Stack, c forwarder.Config) *Stack {
	c.TCP.Handler, c.UDP.Handler = nil, nil
	c.TCP.Deferred = true
	c.UDP.NAT = forwarder.AddressPortDependent
	return &Stack{ws: ws, cfg: c}
}

// Wisp returns the wisp stack.
func (s *Stack) Wisp() *stack.Stack { return s.ws }

// Forwarder returns the wisp forwarder now in charge, nil before the first
// SetTransportProtocolHandler.
func (s *Stack) Forwarder() *forwarder.Forwarder {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fwd
}

// Stats returns the wisp forwarder's counters (zero before the first
// SetTransportProtocolHandler).
func (s *Stack) Stats() forwarder.Stats {
	if f := s.Forwarder(); f != nil {
		return f.Stats()
	}
	return forwarder.Stats{}
}

// TransportForwarder is a TCPForwarder or a UDPForwarder, as its HandlePacket method
// value names it to SetTransportProtocolHandler.
type TransportForwarder interface {
	protocol() tcpip.TransportProtocolNumber
	owner() *Stack
}

// SetTransportProtocolHandler puts the forwarder h names (f.HandlePacket of a TCPForwarder
// or UDPForwarder, as one passes gVisor's) in charge of protocol p, or takes p's forwarder
// away (h nil: intercepted SYNs get a RST, datagrams a port unreachable). It (re)builds
// the wisp forwarder with every forwarder set so far, so call it while setting up, before
// traffic flows (requests undecided at that moment are reset). It panics if h's protocol
// is not p (as gVisor panics on a protocol it does not have) or h belongs to another
// Stack. The error is
// forwarder.New's; gVisor's method has no result, so a host that ignores it compiles
// unchanged.
func (s *Stack) SetTransportProtocolHandler(p tcpip.TransportProtocolNumber, h func() TransportForwarder) error {
	var tf TransportForwarder
	if h != nil {
		tf = h()
		if tf.protocol() != p {
			panic("gvisor: SetTransportProtocolHandler: the forwarder is not for this protocol")
		}
		if tf.owner() != s {
			panic("gvisor: SetTransportProtocolHandler: the forwarder belongs to another Stack")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("gvisor: forwarder stack closed")
	}
	switch p {
	case header.TCPProtocolNumber:
		s.tcp, _ = tf.(*TCPForwarder)
	case header.UDPProtocolNumber:
		s.udp, _ = tf.(*UDPForwarder)
	default:
		panic("gvisor: SetTransportProtocolHandler: only TCP and UDP have forwarders")
	}
	c := s.cfg
	if s.tcp != nil {
		c.TCP.Handler = s.tcp.handle
		if s.tcp.maxInFlight > 0 {
			c.TCP.MaxPending = s.tcp.maxInFlight
		}
	}
	if s.udp != nil {
		c.UDP.Handler = s.udp.handle
	}
	if s.fwd != nil {
		_ = s.fwd.Close()
		s.fwd = nil
	}
	f, err := forwarder.New(s.ws, c)
	if err != nil {
		return err
	}
	s.fwd = f
	return nil
}

// Close closes the wisp forwarder (undecided requests are reset, UDP sessions end;
// connections already handed out stay open); the wisp stack stays the caller's.
func (s *Stack) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.fwd == nil {
		return nil
	}
	err := s.fwd.Close()
	s.fwd = nil
	return err
}

// TransportProtocolOption answers gVisor's stack option questions from wisp's options:
// for TCP, TCPSendBufferSizeRangeOption and TCPReceiveBufferSizeRangeOption (Default:
// TCPSndBuf and TCPWnd, Max: the autotuning limits), TCPSACKEnabled and
// TCPModerateReceiveBufferOption; anything else is *tcpip.ErrUnknownProtocolOption. It
// also makes the Stack the tcpip.StackHandler of its endpoints' socket options.
func (s *Stack) TransportProtocolOption(p tcpip.TransportProtocolNumber, opt tcpip.GettableTransportProtocolOption) tcpip.Error {
	if p != header.TCPProtocolNumber {
		return &tcpip.ErrUnknownProtocolOption{}
	}
	o := s.ws.Options()
	switch v := opt.(type) {
	case *tcpip.TCPSendBufferSizeRangeOption:
		*v = tcpip.TCPSendBufferSizeRangeOption{Min: 1, Default: o.TCPSndBuf, Max: max(o.TCPSndBuf, o.TCPMaxSndBuf)}
	case *tcpip.TCPReceiveBufferSizeRangeOption:
		*v = tcpip.TCPReceiveBufferSizeRangeOption{Min: 1, Default: o.TCPWnd, Max: max(o.TCPWnd, o.TCPMaxWnd)}
	case *tcpip.TCPSACKEnabled:
		*v = tcpip.TCPSACKEnabled(o.TCPSACK)
	case *tcpip.TCPModerateReceiveBufferOption:
		*v = tcpip.TCPModerateReceiveBufferOption(o.TCPMaxWnd > o.TCPWnd)
	default:
		return &tcpip.ErrUnknownProtocolOption{}
	}
	return nil
}

// Option implements tcpip.StackHandler: no stack-wide options.
func (s *Stack) Option(any) tcpip.Error { return &tcpip.ErrUnknownProtocolOption{} }

package gvisor

import (
	"context"
	"errors"
	"net"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/wispstack/wisp/forwarder"
)

// TCPForwarder is gVisor's tcp.Forwarder on wisp: each intercepted SYN becomes a
// TCPForwarderRequest given to the handler on a new goroutine (gVisor starts one too).
// Differences from gVisor's: a SYN beyond maxInFlight undecided requests gets a RST and
// is counted (gVisor drops it silently), and a request the handler neither created an
// endpoint for nor completed is reset when the handler returns (gVisor keeps it in flight
// until the client gives up).
type TCPForwarder struct {
	s           *Stack
	rcvWnd      int
	maxInFlight int
	handler     func(*TCPForwarderRequest)
}

// NewTCPForwarder is gVisor's tcp.NewForwarder: rcvWnd is the receive buffer of the
// created endpoints (0: wisp's default, TCPWnd with autotuning); maxInFlight bounds the
// requests not yet completed (0: the Stack's forwarder.Config, 1024 by default). Nothing
// is intercepted until s.SetTransportProtocolHandler(tcp.ProtocolNumber, f.HandlePacket).
func NewTCPForwarder(s *Stack, rcvWnd, maxInFlight int, handler func(*TCPForwarderRequest)) *TCPForwarder {
	return &TCPForwarder{s: s, rcvWnd: rcvWnd, maxInFlight: maxInFlight, handler: handler}
}

// HandlePacket names the forwarder to Stack.SetTransportProtocolHandler, so the line that
// registers gVisor's forwarder stays as it is. No packet passes through it: the wisp
// forwarder intercepts in the stack and hands over requests itself.
func (f *TCPForwarder) HandlePacket() TransportForwarder { return f }

func (f *TCPForwarder) protocol() tcpip.TransportProtocolNumber { return header.TCPProtocolNumber }
func (f *TCPForwarder) owner() *Stack                           { return f.s }

// handle is the wisp forwarder's TCP handler (on the request's own goroutine).
func (f *TCPForwarder) handle(r *forwarder.TCPRequest) {
	f.handler(&TCPForwarderRequest{f: f, r: r})
}

// TCPForwarderRequest is gVisor's tcp.ForwarderRequest: an intercepted SYN, not answered
// yet. CreateEndpoint completes the handshake; Complete(true) without it resets.
type TCPForwarderRequest struct {
	f *TCPForwarder
	r *forwarder.TCPRequest

	mu                 sync.Mutex
	created, completed bool
}

// ID returns the flow as gVisor names it: LocalAddress and LocalPort are where the client
// was going (the intercepted destination), RemoteAddress and RemotePort the client.
func (r *TCPForwarderRequest) ID() stack.TransportEndpointID {
	id := r.r.ID()
	return transportID(id.Dst, id.Src)
}

// Request returns the wisp request underneath.
func (r *TCPForwarderRequest) Request() *forwarder.TCPRequest { return r.r }

// CreateEndpoint completes the handshake and returns the connection as a tcpip.Endpoint
// (a *TCPEndpoint) notifying wq, for gonet.NewTCPConn(wq, ep). It waits for the handshake,
// as gVisor's does: the error is *tcpip.ErrConnectionReset (the client reset),
// *tcpip.ErrTimeout (the handshake ran out of retries) or *tcpip.ErrConnectionAborted;
// after Complete or a first CreateEndpoint, *tcpip.ErrInvalidEndpointState.
func (r *TCPForwarderRequest) CreateEndpoint(wq *waiter.Queue) (tcpip.Endpoint, tcpip.Error) {
	r.mu.Lock()
	if r.created || r.completed {
		r.mu.Unlock()
		return nil, &tcpip.ErrInvalidEndpointState{}
	}
	r.created = true
	r.mu.Unlock()
	c, err := r.r.Accept(context.Background())
	if err == nil && c == nil {
		err = net.ErrClosed
	}
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return nil, &tcpip.ErrConnectionAborted{}
		}
		return nil, sockError(err, false)
	}
	if r.f.rcvWnd > 0 {
		_ = c.SetReadBuffer(r.f.rcvWnd)
	}
	return newTCPEndpoint(c, wq, r.f.s), nil
}

// Complete ends the request. Before CreateEndpoint, sendReset answers the SYN with a RST
// (the client sees ECONNREFUSED) and false drops it silently (the client retries, which
// makes a new request), as gVisor's. After CreateEndpoint it does nothing: the endpoint is
// the host's (gVisor's RST would answer the old SYN, which an established client ignores).
// Unlike gVisor's, a second Complete does not panic.
func (r *TCPForwarderRequest) Complete(sendReset bool) {
	r.mu.Lock()
	first := !r.completed && !r.created
	r.completed = true
	r.mu.Unlock()
	if first {
		r.r.Reject(sendReset)
	}
}

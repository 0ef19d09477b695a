package gvisor

import (
	"bytes"
	"io"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/wispstack/wisp/forwarder"
)

// UDPHandler is the handler of a UDPForwarder in either of gVisor's shapes: without a
// result (gVisor until 2025), or reporting whether it handled the request (newer gVisor,
// as tun2socks uses it): false makes the client get an ICMP port unreachable.
type UDPHandler interface {
	func(*UDPForwarderRequest) | func(*UDPForwarderRequest) bool
}

// UDPForwarder is gVisor's udp.Forwarder on wisp: the first datagram of each 5-tuple
// becomes a UDPForwarderRequest given to the handler on a new goroutine, and the datagrams
// that follow go to the endpoint the handler creates. A request the handler creates no
// endpoint for is dropped (its session closed: the next datagram makes a new request), or
// answered with an ICMP port unreachable when the handler returned false.
type UDPForwarder struct {
	s       *Stack
	handler func(*UDPForwarderRequest) bool
}

// NewUDPForwarder is gVisor's udp.NewForwarder. Nothing is intercepted until
// s.SetTransportProtocolHandler(udp.ProtocolNumber, f.HandlePacket).
func NewUDPForwarder[H UDPHandler](s *Stack, handler H) *UDPForwarder {
	f := &UDPForwarder{s: s}
	switch h := any(handler).(type) {
	case func(*UDPForwarderRequest) bool:
		f.handler = h
	case func(*UDPForwarderRequest):
		f.handler = func(r *UDPForwarderRequest) bool { h(r); return true }
	}
	return f
}

// HandlePacket names the forwarder to Stack.SetTransportProtocolHandler (see
// TCPForwarder.HandlePacket).
func (f *UDPForwarder) HandlePacket() TransportForwarder { return f }

func (f *UDPForwarder) protocol() tcpip.TransportProtocolNumber { return header.UDPProtocolNumber }
func (f *UDPForwarder) owner() *Stack                           { return f.s }

// handle is the wisp forwarder's UDP handler (on the session's own goroutine).
func (f *UDPForwarder) handle(s *forwarder.UDPSession) {
	r := &UDPForwarderRequest{s: s}
	handled := f.handler(r)
	r.mu.Lock()
	created := r.created
	r.done = true
	r.mu.Unlock()
	switch {
	case created:
	case !handled:
		s.Reject()
	default:
		_ = s.Close()
	}
}

// UDPForwarderRequest is gVisor's udp.ForwarderRequest: the first datagram of a flow.
type UDPForwarderRequest struct {
	s *forwarder.UDPSession

	mu            sync.Mutex
	created, done bool
}

// ID returns the flow as gVisor names it: LocalAddress and LocalPort are the datagram's
// destination, RemoteAddress and RemotePort the client.
func (r *UDPForwarderRequest) ID() stack.TransportEndpointID {
	id := r.s.ID()
	return transportID(id.Dst, id.Src)
}

// Session returns the wisp session underneath.
func (r *UDPForwarderRequest) Session() *forwarder.UDPSession { return r.s }

// CreateEndpoint returns the flow as a connected tcpip.Endpoint (a *UDPEndpoint) notifying
// wq, for gonet.NewUDPConn(wq, ep); the request's datagram is the first it reads. A second
// call, or one after the handler returned, gets *tcpip.ErrInvalidEndpointState.
func (r *UDPForwarderRequest) CreateEndpoint(wq *waiter.Queue) (tcpip.Endpoint, tcpip.Error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.created || r.done {
		return nil, &tcpip.ErrInvalidEndpointState{}
	}
	r.created = true
	return newUDPEndpoint(r.s, wq), nil
}

// UDPEndpoint is a gVisor tcpip.Endpoint over a wisp UDP session, connected to the client
// from the intercepted destination, for gVisor's adapters/gonet (gonet.NewUDPConn).
//
// Reads are non-blocking: Read returns *tcpip.ErrWouldBlock when no datagram waits, and
// waiter.EventIn is notified when one arrives or the session ends (its idle timeout, the
// forwarder's Close: then *tcpip.ErrClosedForReceive, which gonet reports as io.EOF). A
// goroutine per endpoint waits for the next datagram with a 64 KiB buffer (a datagram may
// be a reassembled 64 KiB one) taken from a pool, and parks with it until Read copies it
// out: the payload is copied twice (stack to buffer, buffer to the reader), once more than
// gVisor does, and an idle session holds one buffer. Writes never wait: each is one
// datagram to the client, from the destination it was sent to (straight from a
// *bytes.Reader's memory, which is what gonet passes); WriteOptions.To, if set, must be
// the client.
//
// All methods are safe for concurrent use.
type UDPEndpoint struct {
	epBase
	s           *forwarder.UDPSession
	local, peer netip.AddrPort
	rmu         sync.Mutex // serializes Read
	mu          sync.Mutex // guards the fields below
	buf         *[]byte    // the held datagram, buf[:n]
	n           int
	rdErr       tcpip.Error
	rdShut      bool
	wrShut      bool
	closed      bool
	next        chan struct{}
	stop        chan struct{}
	done        chan struct{}
	closeOnce   sync.Once
}

var (
	_ tcpip.Endpoint             = (*UDPEndpoint)(nil)
	_ tcpip.SocketOptionsHandler = (*UDPEndpoint)(nil)
)

// udpBufs hold one datagram each: the largest UDP payload over IPv4 or IPv6.
var udpBufs = sync.Pool{New: func() any { b := make([]byte, 65535); return &b }}

func newUDPEndpoint(s *forwarder.UDPSession, wq *waiter.Queue) *UDPEndpoint {
	id := s.ID()
	e := &UDPEndpoint{s: s, local: id.Dst, peer: id.Src, next: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	e.init(wq, id.Dst, id.Src, header.UDPProtocolNumber)
	e.ops.InitHandler(e, noStack{}, sendBufferLimits, receiveBufferLimits)
	go e.reader()
	return e
}

// Session returns the wisp session behind the endpoint.
func (e *UDPEndpoint) Session() *forwarder.UDPSession { return e.s }

// reader waits for each datagram and parks with it until Read takes it.
func (e *UDPEndpoint) reader() {
	defer close(e.done)
	for {
		bp := udpBufs.Get().(*[]byte)
		n, _, err := e.s.ReadFromUDPAddrPort(*bp)
		e.mu.Lock()
		if err != nil || e.closed {
			if e.rdErr == nil {
				e.rdErr = &tcpip.ErrClosedForReceive{}
			}
			e.mu.Unlock()
			udpBufs.Put(bp)
			e.wq.Notify(waiter.EventIn)
			return
		}
		if e.rdShut {
			e.mu.Unlock()
			udpBufs.Put(bp) // reading is shut down: dropped
			continue
		}
		e.buf, e.n = bp, n
		e.mu.Unlock()
		e.stats.PacketsReceived.Increment()
		e.wq.Notify(waiter.EventIn)
		select {
		case <-e.next:
		case <-e.stop:
			return
		}
	}
}

// Read implements tcpip.Endpoint: the next datagram (truncated to what w takes; Total is
// its length), from the client (RemoteAddr with NeedRemoteAddr); *tcpip.ErrWouldBlock when
// none waits; *tcpip.ErrClosedForReceive once the session ended. Peek is not supported.
func (e *UDPEndpoint) Read(w io.Writer, opts tcpip.ReadOptions) (tcpip.ReadResult, tcpip.Error) {
	if opts.Peek {
		return tcpip.ReadResult{}, &tcpip.ErrNotSupported{}
	}
	e.rmu.Lock()
	defer e.rmu.Unlock()
	e.mu.Lock()
	bp, n, rdErr := e.buf, e.n, e.rdErr
	e.buf = nil
	e.mu.Unlock()
	if bp == nil {
		if rdErr != nil {
			e.stats.ReadErrors.ReadClosed.Increment()
			return tcpip.ReadResult{}, rdErr
		}
		return tcpip.ReadResult{}, &tcpip.ErrWouldBlock{}
	}
	m, _ := w.Write((*bp)[:n])
	udpBufs.Put(bp)
	e.next <- struct{}{} // the slot is free: only the taker of a datagram fills it
	res := tcpip.ReadResult{Count: m, Total: n}
	if opts.NeedRemoteAddr {
		res.RemoteAddr = tcpip.FullAddress{Addr: e.id.RemoteAddress, Port: e.id.RemotePort}
	}
	return res, nil
}

// Write implements tcpip.Endpoint: p is one datagram to the client, from the destination
// the client sent to.
func (e *UDPEndpoint) Write(p tcpip.Payloader, opts tcpip.WriteOptions) (int64, tcpip.Error) {
	if to := opts.To; to != nil {
		if ap, ok := addrPortOf(to.Addr, to.Port); !ok || ap != e.peer {
			e.stats.WriteErrors.InvalidArgs.Increment()
			return 0, &tcpip.ErrNotSupported{}
		}
	}
	e.mu.Lock()
	shut := e.wrShut || e.closed
	e.mu.Unlock()
	if shut {
		e.stats.WriteErrors.WriteClosed.Increment()
		return 0, &tcpip.ErrClosedForSend{}
	}
	var n int
	var err error
	if r, ok := p.(*bytes.Reader); ok && r.Len() > 0 {
		// WriteTo hands its unread bytes to one Write: one datagram, no copy.
		var m int64
		m, err = r.WriteTo(udpWriter{e})
		n = int(m)
	} else {
		bp := udpBufs.Get().(*[]byte)
		k := min(p.Len(), len(*bp))
		if k, err = io.ReadFull(p, (*bp)[:k]); err == nil {
			n, err = e.s.WriteToUDPAddrPort((*bp)[:k], e.local)
		}
		udpBufs.Put(bp)
	}
	if err != nil {
		e.stats.SendErrors.SendToNetworkFailed.Increment()
		return int64(n), sockError(err, true)
	}
	e.stats.PacketsSent.Increment()
	return int64(n), nil
}

// udpWriter sends each Write as one datagram to the client.
type udpWriter struct{ e *UDPEndpoint }

func (w udpWriter) Write(b []byte) (int, error) { return w.e.s.WriteToUDPAddrPort(b, w.e.local) }

// Shutdown implements tcpip.Endpoint: ShutdownRead ends reading (queued datagrams are
// dropped as they come), ShutdownWrite makes writes fail.
func (e *UDPEndpoint) Shutdown(flags tcpip.ShutdownFlags) tcpip.Error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return &tcpip.ErrNotConnected{}
	}
	if flags&tcpip.ShutdownWrite != 0 {
		e.wrShut = true
	}
	var bp *[]byte
	if flags&tcpip.ShutdownRead != 0 {
		e.rdShut = true
		e.rdErr = &tcpip.ErrClosedForReceive{}
		bp, e.buf = e.buf, nil
	}
	e.mu.Unlock()
	if bp != nil {
		udpBufs.Put(bp)
		e.next <- struct{}{} // the reader goes on (and drops what comes)
	}
	e.wq.Notify(waiter.EventIn | waiter.EventOut)
	return nil
}

// Close implements tcpip.Endpoint: the session ends, the reader goroutine stops.
func (e *UDPEndpoint) Close() {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		_ = e.s.Close()
		close(e.stop)
		<-e.done
		e.mu.Lock()
		bp := e.buf
		e.buf = nil
		if e.rdErr == nil {
			e.rdErr = &tcpip.ErrClosedForReceive{}
		}
		e.mu.Unlock()
		if bp != nil {
			udpBufs.Put(bp)
		}
		e.wq.Notify(waiter.EventIn | waiter.EventOut | waiter.EventHUp)
	})
}

// Abort implements tcpip.Endpoint: Close.
func (e *UDPEndpoint) Abort() { e.Close() }

// Readiness implements tcpip.Endpoint.
func (e *UDPEndpoint) Readiness(mask waiter.EventMask) waiter.EventMask {
	e.mu.Lock()
	defer e.mu.Unlock()
	var r waiter.EventMask
	if e.buf != nil || e.rdErr != nil {
		r |= waiter.EventIn
	}
	if !e.closed && !e.wrShut {
		r |= waiter.EventOut
	}
	if e.closed {
		r |= waiter.EventHUp
	}
	return r & mask
}

// State implements tcpip.Endpoint: gVisor's datagram endpoint states, connected (2) or
// closed (3).
func (e *UDPEndpoint) State() uint32 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 3
	}
	return 2
}

// SetSockOpt implements tcpip.Endpoint: no options.
func (e *UDPEndpoint) SetSockOpt(tcpip.SettableSocketOption) tcpip.Error {
	return &tcpip.ErrUnknownProtocolOption{}
}

// SetSockOptInt implements tcpip.Endpoint: no options.
func (e *UDPEndpoint) SetSockOptInt(tcpip.SockOptInt, int) tcpip.Error {
	return &tcpip.ErrUnknownProtocolOption{}
}

// GetSockOpt implements tcpip.Endpoint: no options.
func (e *UDPEndpoint) GetSockOpt(tcpip.GettableSocketOption) tcpip.Error {
	return &tcpip.ErrUnknownProtocolOption{}
}

// GetSockOptInt implements tcpip.Endpoint: ReceiveQueueSizeOption (the length of the
// datagram waiting) and SendQueueSizeOption (0: writes do not queue).
func (e *UDPEndpoint) GetSockOptInt(opt tcpip.SockOptInt) (int, tcpip.Error) {
	switch opt {
	case tcpip.ReceiveQueueSizeOption:
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.buf == nil {
			return 0, nil
		}
		return e.n, nil
	case tcpip.SendQueueSizeOption:
		return 0, nil
	}
	return 0, &tcpip.ErrUnknownProtocolOption{}
}

// The tcpip.SocketOptionsHandler calls: nothing reaches a UDP session.
func (e *UDPEndpoint) OnKeepAliveSet(bool)                               {}
func (e *UDPEndpoint) OnDelayOptionSet(bool)                             {}
func (e *UDPEndpoint) OnCorkOptionSet(bool)                              {}
func (e *UDPEndpoint) OnSetSendBufferSize(v int64) int64                 { return v }
func (e *UDPEndpoint) OnSetReceiveBufferSize(v, _ int64) (int64, func()) { return v, nil }

package gvisor

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/waiter"
)

// epBase is what the TCP and UDP endpoints over wisp connections share: the wait queue
// gonet waits on, the 4-tuple, gVisor's socket option store, and the methods of
// tcpip.Endpoint that make no sense for a connection the forwarder created (it is
// connected and bound already, and never listens).
type epBase struct {
	wq    *waiter.Queue
	id    stack.TransportEndpointID // LocalAddress: the intercepted destination; RemoteAddress: the client
	proto tcpip.TransportProtocolNumber
	ops   tcpip.SocketOptions
	stats tcpip.TransportEndpointStats

	errMu   sync.Mutex
	lastErr tcpip.Error
}

func (b *epBase) init(wq *waiter.Queue, local, remote netip.AddrPort, proto tcpip.TransportProtocolNumber) {
	if wq == nil {
		wq = new(waiter.Queue)
	}
	b.wq, b.proto = wq, proto
	b.id = transportID(local, remote)
}

// netProto returns the network protocol of the endpoint's addresses.
func (b *epBase) netProto() tcpip.NetworkProtocolNumber {
	if b.id.LocalAddress.Len() == 4 {
		return header.IPv4ProtocolNumber
	}
	return header.IPv6ProtocolNumber
}

// Connect implements tcpip.Endpoint: the endpoint is connected already.
func (b *epBase) Connect(tcpip.FullAddress) tcpip.Error { return &tcpip.ErrAlreadyConnected{} }

// Disconnect implements tcpip.Endpoint: not supported.
func (b *epBase) Disconnect() tcpip.Error { return &tcpip.ErrNotSupported{} }

// Listen implements tcpip.Endpoint: not supported (the endpoint is connected).
func (b *epBase) Listen(int) tcpip.Error { return &tcpip.ErrNotSupported{} }

// Accept implements tcpip.Endpoint: not supported.
func (b *epBase) Accept(*tcpip.FullAddress) (tcpip.Endpoint, *waiter.Queue, tcpip.Error) {
	return nil, nil, &tcpip.ErrNotSupported{}
}

// Bind implements tcpip.Endpoint: the endpoint is bound already.
func (b *epBase) Bind(tcpip.FullAddress) tcpip.Error { return &tcpip.ErrAlreadyBound{} }

// GetLocalAddress implements tcpip.Endpoint: the address the client was reaching.
func (b *epBase) GetLocalAddress() (tcpip.FullAddress, tcpip.Error) {
	return tcpip.FullAddress{Addr: b.id.LocalAddress, Port: b.id.LocalPort}, nil
}

// GetRemoteAddress implements tcpip.Endpoint: the client's address.
func (b *epBase) GetRemoteAddress() (tcpip.FullAddress, tcpip.Error) {
	return tcpip.FullAddress{Addr: b.id.RemoteAddress, Port: b.id.RemotePort}, nil
}

// ModerateRecvBuf implements tcpip.Endpoint: wisp autotunes its receive window itself.
func (b *epBase) ModerateRecvBuf(int) {}

// SetOwner implements tcpip.Endpoint: ignored (no packet owners in wisp).
func (b *epBase) SetOwner(tcpip.PacketOwner) {}

// Info implements tcpip.Endpoint: a *stack.TransportEndpointInfo with the 4-tuple.
func (b *epBase) Info() tcpip.EndpointInfo {
	return &stack.TransportEndpointInfo{NetProto: b.netProto(), TransProto: b.proto, ID: b.id}
}

// Stats implements tcpip.Endpoint: a *tcpip.TransportEndpointStats that counts read and
// write errors (the stack's own counters are in wisp's stack and forwarder Stats).
func (b *epBase) Stats() tcpip.EndpointStats { return &b.stats }

// SocketOptions implements tcpip.Endpoint. Setters that gVisor forwards to its endpoint
// (keep-alive, delay, cork, buffer sizes with notify) reach the wisp connection; the rest
// are only stored.
func (b *epBase) SocketOptions() *tcpip.SocketOptions { return &b.ops }

// LastError implements tcpip.Endpoint and tcpip.SocketOptionsHandler: the pending error,
// cleared.
func (b *epBase) LastError() tcpip.Error {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	err := b.lastErr
	b.lastErr = nil
	return err
}

// UpdateLastError implements tcpip.SocketOptionsHandler.
func (b *epBase) UpdateLastError(err tcpip.Error) {
	b.errMu.Lock()
	b.lastErr = err
	b.errMu.Unlock()
}

// The rest of tcpip.SocketOptionsHandler: nothing to do for a forwarded connection.
func (b *epBase) OnReuseAddressSet(bool) {}
func (b *epBase) OnReusePortSet(bool)    {}
func (b *epBase) HasNIC(int32) bool      { return false }
func (b *epBase) WakeupWriters()         {}
func (b *epBase) GetAcceptConn() bool    { return false }

// noStack is the tcpip.StackHandler of endpoints made outside a Stack: no stack options.
type noStack struct{}

func (noStack) Option(any) tcpip.Error { return &tcpip.ErrUnknownProtocolOption{} }
func (noStack) TransportProtocolOption(tcpip.TransportProtocolNumber, tcpip.GettableTransportProtocolOption) tcpip.Error {
	return &tcpip.ErrUnknownProtocolOption{}
}

// sendBufferLimits and receiveBufferLimits are the SO_SNDBUF / SO_RCVBUF ranges the
// endpoints' option stores report: wisp checks the values itself when they are set.
func sendBufferLimits(tcpip.StackHandler) tcpip.SendBufferSizeOption {
	return tcpip.SendBufferSizeOption{Min: 1, Default: 64 << 10, Max: 1 << 30}
}

func receiveBufferLimits(tcpip.StackHandler) tcpip.ReceiveBufferSizeOption {
	return tcpip.ReceiveBufferSizeOption{Min: 1, Default: 64 << 10, Max: 1 << 30}
}

// transportID is gVisor's 4-tuple of a forwarded flow: local is where the client was going,
// remote the client.
func transportID(local, remote netip.AddrPort) stack.TransportEndpointID {
	return stack.TransportEndpointID{
		LocalPort: local.Port(), LocalAddress: tcpipAddr(local.Addr()),
		RemotePort: remote.Port(), RemoteAddress: tcpipAddr(remote.Addr()),
	}
}

func tcpipAddr(a netip.Addr) tcpip.Address { return tcpip.AddrFromSlice(a.Unmap().AsSlice()) }

// addrPortOf converts a gVisor address and port (4 or 16 bytes) to netip; ok is false for
// any other length.
func addrPortOf(a tcpip.Address, port uint16) (netip.AddrPort, bool) {
	ip, ok := netip.AddrFromSlice(a.AsSlice())
	return netip.AddrPortFrom(ip.Unmap(), port), ok
}

// netAddrPort is the address and port of a *net.TCPAddr or *net.UDPAddr, unmapped.
func netAddrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// sockError maps an error of a wisp connection (an errno inside a *net.OpError, io.EOF,
// net.ErrClosed, a deadline) to the tcpip.Error a gVisor endpoint returns; write says
// which direction failed, for the errors that depend on it.
func sockError(err error, write bool) tcpip.Error {
	var errno syscall.Errno
	switch {
	case err == nil:
		return nil
	case err == io.EOF:
		return &tcpip.ErrClosedForReceive{}
	case errors.Is(err, net.ErrClosed):
		if write {
			return &tcpip.ErrClosedForSend{}
		}
		return &tcpip.ErrClosedForReceive{}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &tcpip.ErrTimeout{}
	case !errors.As(err, &errno):
		return &tcpip.ErrConnectionAborted{}
	}
	switch errno {
	case syscall.ECONNRESET:
		return &tcpip.ErrConnectionReset{}
	case syscall.ECONNREFUSED:
		return &tcpip.ErrConnectionRefused{}
	case syscall.ECONNABORTED:
		return &tcpip.ErrConnectionAborted{}
	case syscall.ETIMEDOUT:
		return &tcpip.ErrTimeout{}
	case syscall.EPIPE, syscall.ESHUTDOWN:
		return &tcpip.ErrClosedForSend{}
	case syscall.ENOTCONN:
		return &tcpip.ErrNotConnected{}
	case syscall.EINVAL:
		return &tcpip.ErrInvalidOptionValue{}
	case syscall.ENOPROTOOPT:
		return &tcpip.ErrUnknownProtocolOption{}
	case syscall.ENOMEM, syscall.ENOBUFS:
		return &tcpip.ErrNoBufferSpace{}
	case syscall.EMSGSIZE:
		return &tcpip.ErrMessageTooLong{}
	case syscall.EHOSTUNREACH:
		return &tcpip.ErrHostUnreachable{}
	case syscall.ENETUNREACH:
		return &tcpip.ErrNetworkUnreachable{}
	}
	return &tcpip.ErrConnectionAborted{}
}

// seconds rounds d up to whole seconds, at least 1 (wisp's keep-alive options are in
// seconds, as Linux's); ok is false for a negative d.
func seconds(d time.Duration) (int, bool) {
	if d < 0 {
		return 0, false
	}
	return max(1, int((d+time.Second-1)/time.Second)), true
}

// copyBufs are the buffers of reads and writes whose io.Writer or Payloader offers no
// direct path (gonet's always do: a *tcpip.SliceWriter, a *bytes.Reader).
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

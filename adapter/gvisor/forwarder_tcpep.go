package gvisor

import (
	"io"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/transport/tcp"
)

// TCPEndpoint is a gVisor tcpip.Endpoint over a wisp TCP connection, made for gVisor's
// adapters/gonet: gonet.NewTCPConn(wq, ep) drives it as it drives one of gVisor's own, so
// code written against gVisor's forwarder keeps its relay unchanged.
//
// Reads are non-blocking, as gVisor's: Read returns *tcpip.ErrWouldBlock when nothing is
// queued, and the endpoint notifies waiter.EventIn on the queue when data (or the end of
// the stream) arrives. One goroutine per endpoint waits for it: it blocks in a one-byte
// Read of the connection and parks with that byte until Read hands it over. Read then
// takes everything else queued straight from the stack's buffers into the caller's
// memory (into a *tcpip.SliceWriter's slice, which is what gonet passes), so the data is
// copied once, as in gVisor, plus the one held byte per wake-up. The goroutine exits at
// the end of the stream, on an error and on Close.
//
// Writes block: Write copies the payload into wisp's send buffer (straight from a
// *bytes.Reader's slice, which is what gonet passes), waiting while the buffer is full,
// instead of returning *tcpip.ErrWouldBlock; Readiness always reports EventOut. A blocked
// Write ends with Close, Shutdown(ShutdownWrite), a reset or a keep-alive or user timeout,
// but not with gonet's write deadline, which gonet keeps to itself.
//
// Socket options: keep-alive (SocketOptions().SetKeepAlive, KeepaliveIdleOption,
// KeepaliveIntervalOption, KeepaliveCountOption), NoDelay (SetDelayOption), cork, linger
// (SocketOptions().SetLinger, applied at Close), send and receive buffers (set with
// notify), MaxSegOption, TTL/hop limit, TOS/traffic class, TCPUserTimeoutOption and
// TCPInfoOption reach the wisp connection; others fail with ErrUnknownProtocolOption.
//
// All methods are safe for concurrent use.
type TCPEndpoint struct {
	epBase
	c *endpoint.TCPConn

	rmu            sync.Mutex // serializes Read
	mu             sync.Mutex // guards the fields below
	held           bool       // hold[0] is the next byte of the stream (the reader is parked)
	rdErr          tcpip.Error
	wrShut, closed bool

	hold      [1]byte
	synced    bool          // the option store holds the connection's values: setters reach it
	next      chan struct{} // the reader may read again: at most one token, from the taker of the held byte
	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when the reader exits
	closeOnce sync.Once
}

var (
	_ tcpip.Endpoint             = (*TCPEndpoint)(nil)
	_ tcpip.SocketOptionsHandler = (*TCPEndpoint)(nil)
)

// NewTCPEndpoint makes c a gVisor endpoint that notifies wq (the queue to give
// gonet.NewTCPConn; nil: a queue of its own, for callers that poll Readiness), and
// starts its reader goroutine; Close (or Abort) stops it and closes c. The endpoint owns c
// from now on. GetLocalAddress is c's local address: for a forwarded connection, the
// destination the client was reaching.
func NewTCPEndpoint(c *endpoint.TCPConn, wq *waiter.Queue) *TCPEndpoint {
	return newTCPEndpoint(c, wq, noStack{})
}

func newTCPEndpoint(c *endpoint.TCPConn, wq *waiter.Queue, sh tcpip.StackHandler) *TCPEndpoint {
	e := &TCPEndpoint{c: c, next: make(chan struct{}, 1), stop: make(chan struct{}),
		done: make(chan struct{})}
	e.init(wq, netAddrPort(c.LocalAddr()), netAddrPort(c.RemoteAddr()), header.TCPProtocolNumber)
	e.ops.InitHandler(e, sh, sendBufferLimits, receiveBufferLimits)
	// gVisor's option store starts from the connection's values (the forwarder's
	// keep-alive and NoDelay defaults), stored without reaching back to the connection.
	if v, err := c.GetsockoptInt(unix.SOL_SOCKET, unix.SO_KEEPALIVE); err == nil {
		e.ops.SetKeepAlive(v != 0)
	}
	if v, err := c.GetsockoptInt(unix.IPPROTO_TCP, unix.TCP_NODELAY); err == nil {
		e.ops.SetDelayOption(v == 0)
	}
	if v, err := c.GetsockoptInt(unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil {
		e.ops.SetSendBufferSize(int64(v), false)
	}
	if v, err := c.GetsockoptInt(unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
		e.ops.SetReceiveBufferSize(int64(v), false)
	}
	e.synced = true
	go e.reader()
	return e
}

// Conn returns the wisp connection behind the endpoint.
func (e *TCPEndpoint) Conn() *endpoint.TCPConn { return e.c }

// reader waits for the stream's next byte, parks with it until Read takes it (with the
// rest that is queued by then), and notifies EventIn each time it has something.
func (e *TCPEndpoint) reader() {
	defer close(e.done)
	for {
		n, err := e.c.Read(e.hold[:])
		e.mu.Lock()
		e.held = n == 1
		if err != nil {
			e.rdErr = sockError(err, false)
		}
		closed := e.closed
		e.mu.Unlock()
		e.wq.Notify(waiter.EventIn)
		if err != nil || closed {
			return
		}
		if n == 0 {
			continue
		}
		select {
		case <-e.next:
		case <-e.stop:
			return
		}
	}
}

// Read implements tcpip.Endpoint: the queued bytes, as many as w takes, or
// *tcpip.ErrWouldBlock when none are queued, *tcpip.ErrClosedForReceive after the peer's
// FIN (once everything before it was read) or after Shutdown(ShutdownRead), the
// connection's error otherwise. Peek is not supported.
func (e *TCPEndpoint) Read(w io.Writer, opts tcpip.ReadOptions) (tcpip.ReadResult, tcpip.Error) {
	if opts.Peek {
		return tcpip.ReadResult{}, &tcpip.ErrNotSupported{}
	}
	e.rmu.Lock()
	defer e.rmu.Unlock()
	e.mu.Lock()
	held, rdErr := e.held, e.rdErr
	e.mu.Unlock()
	if !held {
		if rdErr != nil {
			e.stats.ReadErrors.ReadClosed.Increment()
			return tcpip.ReadResult{}, rdErr
		}
		return tcpip.ReadResult{}, &tcpip.ErrWouldBlock{}
	}
	if n, _ := w.Write(e.hold[:]); n == 0 {
		return tcpip.ReadResult{}, nil // no room in w: the byte stays held
	}
	// The reader is parked, so nothing else reads the connection: data it has queued
	// (Buffered) is read without blocking.
	total := 1
	for e.c.Buffered() > 0 {
		n, err := e.readQueued(w)
		total += n
		if n == 0 || err != nil {
			break
		}
	}
	e.mu.Lock()
	e.held = false
	e.mu.Unlock()
	e.next <- struct{}{} // the slot is free: only a held byte's taker fills it
	return tcpip.ReadResult{Count: total, Total: total}, nil
}

// readQueued reads queued bytes into w: straight into a SliceWriter's memory, through a
// pooled buffer for any other writer (bytes it does not take are lost, as with any short
// write).
func (e *TCPEndpoint) readQueued(w io.Writer) (int, error) {
	if sw, ok := w.(*tcpip.SliceWriter); ok {
		if len(*sw) == 0 {
			return 0, nil
		}
		n, err := e.c.Read(*sw)
		*sw = (*sw)[n:]
		return n, err
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	b := (*bp)[:min(len(*bp), e.c.Buffered())]
	n, err := e.c.Read(b)
	if n > 0 {
		m, werr := w.Write(b[:n])
		if werr != nil {
			return m, werr
		}
	}
	return n, err
}

// Write implements tcpip.Endpoint: it copies p into wisp's send buffer, blocking while it
// is full (see TCPEndpoint), and returns the bytes queued. opts.To must be nil.
func (e *TCPEndpoint) Write(p tcpip.Payloader, opts tcpip.WriteOptions) (int64, tcpip.Error) {
	if opts.To != nil {
		return 0, &tcpip.ErrAlreadyConnected{}
	}
	e.mu.Lock()
	shut := e.wrShut || e.closed
	e.mu.Unlock()
	if shut {
		e.stats.WriteErrors.WriteClosed.Increment()
		return 0, &tcpip.ErrClosedForSend{}
	}
	// io.Copy hands a *bytes.Reader's memory to the connection's Write (its WriteTo);
	// other payloads go through the connection's ReadFrom.
	n, err := io.Copy(e.c, p)
	if err != nil {
		e.stats.WriteErrors.WriteClosed.Increment()
		return n, sockError(err, true)
	}
	return n, nil
}

// Shutdown implements tcpip.Endpoint: ShutdownWrite sends FIN (CloseWrite), ShutdownRead
// drops what is queued and ends reading (CloseRead).
func (e *TCPEndpoint) Shutdown(flags tcpip.ShutdownFlags) tcpip.Error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return &tcpip.ErrNotConnected{}
	}
	if flags&tcpip.ShutdownWrite != 0 {
		e.wrShut = true
	}
	e.mu.Unlock()
	if flags&tcpip.ShutdownWrite != 0 {
		if err := e.c.CloseWrite(); err != nil {
			return sockError(err, true)
		}
	}
	if flags&tcpip.ShutdownRead != 0 {
		if err := e.c.CloseRead(); err != nil {
			return sockError(err, false)
		}
		// The held byte goes with the rest of the queue; the reader then sees the end.
		e.rmu.Lock()
		e.mu.Lock()
		held := e.held
		e.held = false
		e.mu.Unlock()
		e.rmu.Unlock()
		if held {
			e.next <- struct{}{} // the slot is free: only a held byte's taker fills it
		}
	}
	e.wq.Notify(waiter.EventOut | waiter.EventIn)
	return nil
}

// Close implements tcpip.Endpoint: it closes the connection (gracefully, or as
// SocketOptions().SetLinger says), stops the reader goroutine and waits for it.
func (e *TCPEndpoint) Close() {
	e.closeWith(func() {
		if l := e.ops.GetLinger(); l.Enabled {
			s, _ := seconds(l.Timeout)
			if l.Timeout == 0 {
				s = 0
			}
			_ = e.c.SetLinger(s)
		}
		_ = e.c.Close()
	})
}

// Abort implements tcpip.Endpoint: the connection is reset (RST) at once.
func (e *TCPEndpoint) Abort() { e.closeWith(e.c.Abort) }

func (e *TCPEndpoint) closeWith(shut func()) {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		shut()
		close(e.stop)
		<-e.done
		e.mu.Lock()
		e.held = false
		if e.rdErr == nil {
			e.rdErr = &tcpip.ErrClosedForReceive{}
		}
		e.mu.Unlock()
		e.wq.Notify(waiter.EventIn | waiter.EventOut | waiter.EventHUp)
	})
}

// Readiness implements tcpip.Endpoint: EventIn when Read has something to return (data,
// the end of the stream or an error), EventOut while open (Write blocks instead of
// failing), EventHUp once closed or both directions are done.
func (e *TCPEndpoint) Readiness(mask waiter.EventMask) waiter.EventMask {
	e.mu.Lock()
	defer e.mu.Unlock()
	var r waiter.EventMask
	if e.held || e.rdErr != nil {
		r |= waiter.EventIn
	}
	if !e.closed && !e.wrShut {
		r |= waiter.EventOut
	}
	if e.closed || (e.rdErr != nil && e.wrShut) {
		r |= waiter.EventHUp
	}
	return r & mask
}

// State implements tcpip.Endpoint: the connection's state in gVisor's numbering (Linux's
// tcp_states.h).
func (e *TCPEndpoint) State() uint32 { return gvisorState(e.c.Info().State) }

// gvisorState maps a wisp TCP state to gVisor's tcp.EndpointState value (Linux's numbers).
func gvisorState(s tcp.State) uint32 {
	switch s {
	case tcp.StateEstablished:
		return 1
	case tcp.StateSynSent:
		return 2
	case tcp.StateSynReceived:
		return 3
	case tcp.StateFinWait1:
		return 4
	case tcp.StateFinWait2:
		return 5
	case tcp.StateTimeWait:
		return 6
	case tcp.StateCloseWait:
		return 8
	case tcp.StateLastAck:
		return 9
	case tcp.StateListen:
		return 10
	case tcp.StateClosing:
		return 11
	}
	return 7 // CLOSED
}

// SetSockOpt implements tcpip.Endpoint.
func (e *TCPEndpoint) SetSockOpt(opt tcpip.SettableSocketOption) tcpip.Error {
	var err error
	switch v := opt.(type) {
	case *tcpip.KeepaliveIdleOption:
		err = e.setSeconds(unix.TCP_KEEPIDLE, time.Duration(*v))
	case *tcpip.KeepaliveIntervalOption:
		err = e.setSeconds(unix.TCP_KEEPINTVL, time.Duration(*v))
	case *tcpip.TCPUserTimeoutOption:
		err = e.c.SetUserTimeout(time.Duration(*v))
	default:
		return &tcpip.ErrUnknownProtocolOption{}
	}
	return sockError(err, false)
}

func (e *TCPEndpoint) setSeconds(name int, d time.Duration) error {
	s, ok := seconds(d)
	if !ok {
		return unix.EINVAL
	}
	return e.c.SetsockoptInt(unix.IPPROTO_TCP, name, s)
}

// intOpts are the integer options that map to a wisp socket option.
var intOpts = map[tcpip.SockOptInt][2]int{
	tcpip.KeepaliveCountOption:   {unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
	tcpip.MaxSegOption:           {unix.IPPROTO_TCP, unix.TCP_MAXSEG},
	tcpip.IPv4TTLOption:          {unix.IPPROTO_IP, unix.IP_TTL},
	tcpip.IPv6HopLimitOption:     {unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS},
	tcpip.IPv4TOSOption:          {unix.IPPROTO_IP, unix.IP_TOS},
	tcpip.IPv6TrafficClassOption: {unix.IPPROTO_IPV6, unix.IPV6_TCLASS},
}

// SetSockOptInt implements tcpip.Endpoint.
func (e *TCPEndpoint) SetSockOptInt(opt tcpip.SockOptInt, v int) tcpip.Error {
	o, ok := intOpts[opt]
	if !ok {
		return &tcpip.ErrUnknownProtocolOption{}
	}
	return sockError(e.c.SetsockoptInt(o[0], o[1], v), false)
}

// GetSockOpt implements tcpip.Endpoint.
func (e *TCPEndpoint) GetSockOpt(opt tcpip.GettableSocketOption) tcpip.Error {
	switch v := opt.(type) {
	case *tcpip.KeepaliveIdleOption:
		s, err := e.c.GetsockoptInt(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
		*v = tcpip.KeepaliveIdleOption(time.Duration(s) * time.Second)
		return sockError(err, false)
	case *tcpip.KeepaliveIntervalOption:
		s, err := e.c.GetsockoptInt(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
		*v = tcpip.KeepaliveIntervalOption(time.Duration(s) * time.Second)
		return sockError(err, false)
	case *tcpip.TCPUserTimeoutOption:
		*v = tcpip.TCPUserTimeoutOption(e.c.UserTimeout())
	case *tcpip.TCPInfoOption:
		i := e.c.Info()
		*v = tcpip.TCPInfoOption{RTT: i.SRTT, RTTVar: i.RTTVar, RTO: i.RTO,
			State: tcpip.EndpointState(gvisorState(i.State))}
		if i.MSS > 0 {
			v.SndCwnd, v.SndSsthresh = uint32(i.Cwnd/i.MSS), uint32(i.Ssthresh/i.MSS)
		}
		if i.InRecovery {
			v.CcState = tcpip.FastRecovery
		}
	default:
		return &tcpip.ErrUnknownProtocolOption{}
	}
	return nil
}

// GetSockOptInt implements tcpip.Endpoint: the options SetSockOptInt sets, and
// ReceiveQueueSizeOption (bytes readable now) and SendQueueSizeOption (bytes not yet sent).
func (e *TCPEndpoint) GetSockOptInt(opt tcpip.SockOptInt) (int, tcpip.Error) {
	switch opt {
	case tcpip.ReceiveQueueSizeOption:
		e.mu.Lock()
		n := e.c.Buffered()
		if e.held {
			n++
		}
		e.mu.Unlock()
		return n, nil
	case tcpip.SendQueueSizeOption:
		return e.c.Info().Unsent, nil
	}
	o, ok := intOpts[opt]
	if !ok {
		return 0, &tcpip.ErrUnknownProtocolOption{}
	}
	v, err := e.c.GetsockoptInt(o[0], o[1])
	return v, sockError(err, false)
}

// The tcpip.SocketOptionsHandler calls that reach the connection.

// OnKeepAliveSet implements tcpip.SocketOptionsHandler (SO_KEEPALIVE).
func (e *TCPEndpoint) OnKeepAliveSet(v bool) {
	if e.synced {
		e.setErr(e.c.SetKeepAlive(v))
	}
}

// OnDelayOptionSet implements tcpip.SocketOptionsHandler: delay on is NoDelay off.
func (e *TCPEndpoint) OnDelayOptionSet(v bool) {
	if e.synced {
		e.setErr(e.c.SetNoDelay(!v))
	}
}

// OnCorkOptionSet implements tcpip.SocketOptionsHandler (TCP_CORK).
func (e *TCPEndpoint) OnCorkOptionSet(v bool) {
	if e.synced {
		e.setErr(e.c.SetCork(v))
	}
}

// OnSetSendBufferSize implements tcpip.SocketOptionsHandler (SO_SNDBUF): the size wisp
// took.
func (e *TCPEndpoint) OnSetSendBufferSize(v int64) int64 {
	e.setErr(e.c.SetWriteBuffer(int(v)))
	if n, err := e.c.GetsockoptInt(unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil {
		return int64(n)
	}
	return v
}

// OnSetReceiveBufferSize implements tcpip.SocketOptionsHandler (SO_RCVBUF): the size wisp
// took.
func (e *TCPEndpoint) OnSetReceiveBufferSize(v, _ int64) (int64, func()) {
	e.setErr(e.c.SetReadBuffer(int(v)))
	if n, err := e.c.GetsockoptInt(unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
		return int64(n), nil
	}
	return v, nil
}

// LastError implements tcpip.Endpoint: an option's error kept by a setter, else the
// connection's pending error (SO_ERROR: a reset, a timeout), each cleared once returned.
func (e *TCPEndpoint) LastError() tcpip.Error {
	if err := e.epBase.LastError(); err != nil {
		return err
	}
	if v, err := e.c.GetsockoptInt(unix.SOL_SOCKET, unix.SO_ERROR); err == nil && v != 0 {
		return sockError(syscall.Errno(v), false)
	}
	return nil
}

// setErr keeps a failed option's error for LastError (the setters have no error result).
func (e *TCPEndpoint) setErr(err error) {
	if err != nil {
		e.UpdateLastError(sockError(err, false))
	}
}

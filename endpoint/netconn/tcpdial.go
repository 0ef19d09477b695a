package netconn

import (
	"context"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ring"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// TCPOptions configure DialTCP. A nil *TCPOptions means the defaults: NoDelay true (as Go
// sets TCP_NODELAY), the rest false.
type TCPOptions struct {
	ReuseAddr bool // SO_REUSEADDR before binding laddr
	NoDelay   bool // TCP_NODELAY
	V6Only    bool // IPV6_V6ONLY: refuse an IPv4 (or IPv4-mapped) raddr with errs.NetUnreach
	// MSS is TCP_MAXSEG set before connecting: the SYN announces at most MSS and the send
	// MSS is capped at it (0: none; else [88, 65495], errs.Val outside).
	MSS int
}

var defaultTCPOptions = TCPOptions{NoDelay: true}

// needBind reports whether laddr asks for a specific address or port.
func needBind(laddr netip.AddrPort) bool {
	return laddr.Port() != 0 || laddr.Addr().IsValid() && !laddr.Addr().IsUnspecified()
}

// DialTCP opens a TCP connection from laddr (the zero AddrPort, or an unspecified address
// and port 0: chosen by the stack) to raddr and waits until it is established. Errors:
// ctx.Err() when ctx ends first (the connect is aborted), errs.Refused (RST or ICMP
// unreachable answered the SYN), errs.Timeout (SYN retransmissions exhausted), errs.NetUnreach (no
// route), errs.Use, errs.Val (o.MSS out of range), errs.Mem (no PCB, or MempNumNetconn reached), errs.Clsd (the
// stack is closed).
func DialTCP(ctx context.Context, s *stack.Stack, laddr, raddr netip.AddrPort, o *TCPOptions) (*TCPConn, error) {
	if o == nil {
		o = &defaultTCPOptions
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if o.V6Only && raddr.Addr().Unmap().Is4() {
		return nil, errs.NetUnreach
	}
	c, err := dialCore(s, laddr, raddr, o)
	if err != nil {
		return nil, err
	}
	for {
		c.mu.Lock()
		connected, gone, cerr := c.connected, c.gone, c.err
		c.mu.Unlock()
		if connected {
			return c, nil
		}
		if gone {
			c.dialFailed()
			return nil, c.mapErr(cerr)
		}
		select {
		case <-c.wch:
		case <-ctx.Done():
			c.k.Lock()
			c.mu.Lock()
			connected = c.connected
			c.mu.Unlock()
			if !connected && c.pcb != nil {
				pcb := c.pcb
				c.pcb = nil
				pcb.OnErr(nil)
				pcb.Abort()
			}
			c.k.Unlock()
			if connected {
				return c, nil
			}
			c.dialFailed()
			return nil, ctx.Err()
		}
	}
}

// dialCore makes the PCB and starts the connect on the core the connection's 4-tuple
// hashes to (Stack.ConnectOn).
func dialCore(s *stack.Stack, laddr, raddr netip.AddrPort, o *TCPOptions) (*TCPConn, error) {
	var c *TCPConn
	_, err := s.ConnectOn(laddr, raddr, func(k *stack.Core, local netip.AddrPort) error {
		var err error
		c, err = dialLocked(k, local, raddr, o)
		return err
	})
	return c, err
}

// dialLocked makes the PCB on core k and starts the connect (k's context).
func dialLocked(k *stack.Core, laddr, raddr netip.AddrPort, o *TCPOptions) (*TCPConn, error) {
	r, pcb, err := openPCB(k.Stack(), k.TCP().NewPCB, closeTCP, func(pcb *tcp.PCB) error {
		pcb.SetReuseAddr(o.ReuseAddr)
		pcb.SetV6Only(o.V6Only)
		pcb.SetNoDelay(o.NoDelay)
		if o.MSS != 0 {
			if err := pcb.SetMSS(o.MSS); err != nil {
				return err
			}
		}
		if needBind(laddr) {
			return pcb.Bind(laddr)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c := newTCPConn(k, r, pcb)
	if err := pcb.Connect(raddr, tcpConnected); err != nil {
		r.remove(&c.node)
		c.pcb = nil
		pcb.Close()
		r.release()
		return nil, err
	}
	return c, nil
}

// closeTCP is openPCB's closePCB for TCP: the PCB is still CLOSED, which tcp.PCB.Close
// frees at once without an error.
func closeTCP(pcb *tcp.PCB) { _ = pcb.Close() }

// dialFailed releases a connection whose dial failed (not in core context).
func (c *TCPConn) dialFailed() {
	c.reg.remove(&c.node)
	c.mu.Lock()
	c.closed = true
	c.freeQueueLocked()
	c.mu.Unlock()
	c.reg.release()
}

// ListenOptions configure ListenTCP.
type ListenOptions struct {
	Backlog   int  // ≤ 0: Options.TCPListenBacklog
	ReuseAddr bool // SO_REUSEADDR
	V6Only    bool // IPV6_V6ONLY on an unspecified IPv6 address: IPv4 SYNs are refused
	// MSS is TCP_MAXSEG for the connections the listener makes: their SYN-ACK announces
	// at most MSS and their send MSS is capped at it (0: none; else [88, 65495], errs.Val
	// outside).
	MSS int
}

// TCPListener is a listening TCP socket (lwIP's netconn_listen). Connections that complete
// the handshake wait in its accept mailbox (at most AcceptMboxSize, and they count against
// the backlog until accepted); beyond that, new ones are reset. Every method is safe for
// concurrent use.
type TCPListener struct {
	reg  *registry
	node node // registry lock

	ls   []coreListener // one per core; core locks
	addr netip.AddrPort

	amu sync.Mutex // serializes Accept

	mu        sync.Mutex
	q         ring.Ring[*TCPConn] // accept mailbox, at most AcceptMboxSize
	closed    bool
	gone      bool // the stack closed
	dl        deadline
	ach       chan struct{}
	overflows atomic.Uint64
}

// coreListener is a listener's PCB on one core (a stack with several cores listens on
// every core: each SYN reaches the core of its connection).
type coreListener struct {
	l  *TCPListener
	k  *stack.Core
	tl *tcp.Listener // k's lock; nil once closed
}

// ListenTCP listens on laddr (an unspecified address listens on every local address of
// both families unless V6Only; port 0 picks one: see Addr). Errors: errs.Use (address in
// use), errs.Val (not a local address, or o.MSS out of range), errs.Mem (no listener PCB, or MempNumNetconn
// reached), errs.Clsd (the stack is closed).
func ListenTCP(s *stack.Stack, laddr netip.AddrPort, o *ListenOptions) (*TCPListener, error) {
	if o == nil {
		o = &ListenOptions{}
	}
	setup := func(at netip.AddrPort) func(pcb *tcp.PCB) (*tcp.Listener, error) {
		return func(pcb *tcp.PCB) (*tcp.Listener, error) {
			pcb.SetReuseAddr(o.ReuseAddr)
			pcb.SetNoDelay(true)
			pcb.SetV6Only(o.V6Only)
			if o.MSS != 0 {
				if err := pcb.SetMSS(o.MSS); err != nil {
					return nil, err
				}
			}
			if err := pcb.Bind(at); err != nil {
				return nil, err
			}
			return pcb.Listen(o.Backlog)
		}
	}
	cores := s.Cores()
	k0 := cores[0]
	k0.Lock()
	var tl *tcp.Listener
	var bound netip.AddrPort
	r, _, err := openPCB(s, k0.TCP().NewPCB, closeTCP, func(pcb *tcp.PCB) error {
		var err error
		if tl, err = setup(laddr)(pcb); err == nil {
			bound = tl.Addr()
		}
		return err
	})
	k0.Unlock()
	if err != nil {
		return nil, err
	}
	l := &TCPListener{reg: r, addr: bound, q: ring.NewLazy[*TCPConn](max(s.Options().AcceptMboxSize, 1)),
		ach: make(chan struct{}, 1), ls: make([]coreListener, len(cores))}
	l.ls[0] = coreListener{l: l, k: k0, tl: tl}
	// The other cores listen on the address and port core 0 bound (port 0 chose one there).
	at := netip.AddrPortFrom(laddr.Addr(), l.addr.Port())
	for i := 1; i < len(cores); i++ {
		k := cores[i]
		k.Lock()
		var ktl *tcp.Listener
		pcb, err := k.TCP().NewPCB()
		if err == nil {
			if ktl, err = setup(at)(pcb); err != nil {
				_ = pcb.Close()
			}
		}
		k.Unlock()
		if err != nil {
			l.closeCores()
			r.release()
			return nil, err
		}
		l.ls[i] = coreListener{l: l, k: k, tl: ktl}
	}
	l.dl.init(&l.mu, l.ach)
	for i := range l.ls {
		cl := &l.ls[i]
		cl.k.Lock()
		cl.tl.SetArg(cl)
		cl.tl.OnAccept(tcpAccept)
		cl.k.Unlock()
	}
	r.add(&l.node, l)
	return l, nil
}

// closeCores closes the listener's PCB on every core.
func (l *TCPListener) closeCores() {
	for i := range l.ls {
		cl := &l.ls[i]
		if cl.k == nil {
			continue
		}
		cl.k.Lock()
		if cl.tl != nil {
			cl.tl.Close()
			cl.tl = nil
		}
		cl.k.Unlock()
	}
}

// tcpAccept runs in core context when a connection reaches ESTABLISHED.
func tcpAccept(tl *tcp.Listener, pcb *tcp.PCB) {
	cl := tl.Arg().(*coreListener)
	l := cl.l
	l.mu.Lock()
	full := l.closed || l.q.Full()
	l.mu.Unlock()
	if full || !l.reg.reserve() {
		// lwIP: the accept mailbox is full (or no netconn is left): abort the connection.
		l.overflows.Add(1)
		pcb.Abort()
		return
	}
	c := newTCPConn(cl.k, l.reg, pcb)
	c.connected = true
	c.laddr, c.raddr = pcb.LocalAddr(), pcb.RemoteAddr()
	c.setMSSLocked(pcb.Info().MSS)
	pcb.BacklogDelayed()
	l.mu.Lock()
	l.q.Push(c) // cannot fail: the mailbox was not full and only Accept, under l.mu, pops it
	l.mu.Unlock()
	wake(l.ach)
}

// stackClosed implements member (every core's lock held).
func (l *TCPListener) stackClosed() {
	for i := range l.ls {
		l.ls[i].tl = nil
	}
	l.mu.Lock()
	l.gone = true
	l.mu.Unlock()
	wake(l.ach)
}

// Accept waits for the next connection. Errors: os.ErrDeadlineExceeded, net.ErrClosed
// (after Close, or when the stack closed).
func (l *TCPListener) Accept() (*TCPConn, error) {
	l.amu.Lock()
	defer l.amu.Unlock()
	l.mu.Lock()
	for {
		if l.closed || l.gone {
			l.mu.Unlock()
			return nil, net.ErrClosed
		}
		if l.dl.expired {
			l.mu.Unlock()
			return nil, os.ErrDeadlineExceeded
		}
		if l.q.Len() > 0 {
			break
		}
		l.mu.Unlock()
		<-l.ach
		l.mu.Lock()
	}
	c, _ := l.q.Pop()
	l.mu.Unlock()
	c.k.Lock()
	if c.pcb != nil {
		c.pcb.BacklogAccepted()
	}
	c.k.Unlock()
	return c, nil
}

// Close stops listening: connections waiting in the mailbox are reset, a blocked Accept
// returns net.ErrClosed. A second Close returns net.ErrClosed.
func (l *TCPListener) Close() error {
	if err := lockOpen(&l.mu, &l.closed); err != nil {
		return err
	}
	l.closed = true
	var q []*TCPConn
	for c, ok := l.q.Pop(); ok; c, ok = l.q.Pop() {
		q = append(q, c)
	}
	l.dl.stop()
	l.mu.Unlock()
	wake(l.ach)
	for _, c := range q {
		c.Abort()
	}
	l.closeCores()
	l.reg.remove(&l.node)
	l.reg.release()
	wake(l.ach)
	return nil
}

// Addr returns the address and port the listener is bound to.
func (l *TCPListener) Addr() netip.AddrPort { return l.addr }

// SetDeadline sets the deadline of Accept; the zero time clears it.
func (l *TCPListener) SetDeadline(t time.Time) error {
	l.mu.Lock()
	l.dl.set(t)
	l.mu.Unlock()
	return nil
}

// Overflows counts connections reset because the accept mailbox was full or no netconn
// was left (the listener's share of lwIP's failed netconn allocations).
func (l *TCPListener) Overflows() uint64 { return l.overflows.Load() }

// Pending returns how many connections wait in the accept mailbox.
func (l *TCPListener) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.q.Len()
}

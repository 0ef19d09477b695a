package forwarder

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/stack"
)

// FlowID names an intercepted flow: Src is the device's (client's) side, Dst where it was
// going.
type FlowID struct{ Src, Dst netip.AddrPort }

// Config configures a Forwarder; the zero value of each part has the documented defaults.
type Config struct {
	TCP  TCPConfig
	UDP  UDPConfig
	ICMP ICMPConfig
}

// TCPConfig configures intercepted TCP.
type TCPConfig struct {
	// Handler gets each intercepted connection, on a new goroutine. nil: intercepted SYNs
	// get a RST.
	Handler func(*TCPRequest)
	// Deferred: the handshake runs only after Accept (no phantom SYN-ACKs); default early.
	Deferred bool
	// MaxPending bounds undecided requests (default 1024): beyond, RST and TCPRefusedFull.
	MaxPending int
	// MaxFlows bounds live flows, accepted and not yet closed (default 65535, capped by
	// Options.MempNumTCPPCB): beyond, RST and TCPRefusedFull.
	MaxFlows int
	// DeferTimeout is how long a deferred request may stay undecided before it is refused
	// with a RST (TCPDeferTimeouts); 0: Options.TCPDeferTimeout.
	DeferTimeout time.Duration
	// KeepAlive of accepted connections. Zero: on, idle 60 s, interval 15 s, 4 probes
	// (never the 2 h default: dead relays must go); Idle < 0 turns it off.
	KeepAlive net.KeepAliveConfig
	// NoDelay of accepted connections (TCP_NODELAY); nil: true.
	NoDelay *bool
}

// Defaults of TCPConfig and UDPConfig.
const (
	DefaultMaxPending  = 1024
	DefaultMaxFlows    = 65535
	DefaultIdleTimeout = 60 * time.Second
	DefaultMaxSessions = 1024
	DefaultQueueLen    = 64
	// MaxEchoPending bounds EchoHost requests in flight; beyond, they are dropped and
	// counted (EchoDropped).
	MaxEchoPending = 256
)

// Forwarder is the interception of one stack: TCP, UDP and echo handed to the host.
type Forwarder struct {
	s   *stack.Stack
	net *endpoint.Net
	cfg Config

	tcp  tcpState
	udp  udpState
	echo echoState

	mu     sync.Mutex               // guards closed, gone and the sets of live objects below
	closed bool                     // Close was called
	gone   bool                     // the stack closed (stackClosed freed what the forwarder held)
	reqs   map[*TCPRequest]struct{} // undecided TCP requests

	st counters
}

// counters are the Stats fields, updated atomically.
type counters struct {
	tcpRequests, tcpAccepted, tcpRejected, tcpRefusedFull, tcpDeferTimeouts atomic.Uint64
	tcpPending, tcpActive                                                   atomic.Int64
	udpSessions, udpDropsQueue, udpRefusedFull, udpExpired, udpRejected     atomic.Uint64
	udpActive                                                               atomic.Int64
	echoLocal, echoHost, echoDropped                                        atomic.Uint64
	echoPending                                                             atomic.Int64
}

// New makes the forwarder of s and registers it on every core: a TCP intercept listener
// on each core's TCP, the UDP intercept receiver (when UDP.Handler is set) and the echo
// hook. The host turns interception on on its netif(s) (stack.NetifConfig.Intercept) and
// routes 0.0.0.0/0 and ::/0 through them. Errors: errs.Use (another forwarder holds the
// stack's interception), errs.Mem (no listener or UDP PCB), errs.Clsd (the stack is closed),
// errs.Val (a negative bound).
func New(s *stack.Stack, c Config) (*Forwarder, error) {
	if c.TCP.MaxPending < 0 || c.TCP.MaxFlows < 0 || c.TCP.DeferTimeout < 0 || c.UDP.MaxSessions < 0 ||
		c.UDP.QueueLen < 0 || c.UDP.IdleTimeout < 0 || c.UDP.NAT > AddressPortDependent || c.ICMP.Mode > EchoDrop {
		return nil, errs.Val
	}
	o := s.Options()
	if c.TCP.MaxPending == 0 {
		c.TCP.MaxPending = DefaultMaxPending
	}
	if c.TCP.MaxFlows == 0 {
		c.TCP.MaxFlows = DefaultMaxFlows
	}
	c.TCP.MaxFlows = min(c.TCP.MaxFlows, max(o.MempNumTCPPCB, 1))
	if c.TCP.DeferTimeout == 0 {
		c.TCP.DeferTimeout = o.TCPDeferTimeout
	}
	if c.TCP.KeepAlive == (net.KeepAliveConfig{}) {
		c.TCP.KeepAlive = net.KeepAliveConfig{Enable: true, Idle: 60 * time.Second, Interval: 15 * time.Second, Count: 4}
	}
	if c.UDP.IdleTimeout == 0 {
		c.UDP.IdleTimeout = DefaultIdleTimeout
	}
	if c.UDP.MaxSessions == 0 {
		c.UDP.MaxSessions = DefaultMaxSessions
	}
	if c.UDP.QueueLen == 0 {
		c.UDP.QueueLen = DefaultQueueLen
	}
	f := &Forwarder{s: s, net: endpoint.New(s), cfg: c, reqs: make(map[*TCPRequest]struct{})}
	if err := f.startTCP(); err != nil {
		return nil, err
	}
	if err := f.startUDP(); err != nil {
		f.stopTCP()
		return nil, err
	}
	f.startEcho()
	k := f.core0()
	k.Lock()
	ok := f.s.OnClose(f.stackClosed)
	k.Unlock()
	if !ok {
		f.Close()
		return nil, errs.Clsd
	}
	return f, nil
}

// stackClosed runs in core context (every core's lock held) when the stack closes, before
// its protocols free their PCBs: the forwarder lets go of them, ends its sessions (their
// queued pbufs go back to the pools) and wakes every waiting Accept.
func (f *Forwarder) stackClosed() {
	f.mu.Lock()
	f.gone = true
	reqs := make([]*TCPRequest, 0, len(f.reqs))
	for r := range f.reqs {
		reqs = append(reqs, r)
	}
	f.mu.Unlock()
	for _, r := range reqs {
		r.pcb = nil
		r.finish(nil, net.ErrClosed)
	}
	for _, tc := range f.tcp.cores {
		tc.tl = nil
	}
	u := &f.udp
	u.pcb = nil
	ss := make([]*UDPSession, 0, len(u.sessions))
	for _, s := range u.sessions {
		ss = append(ss, s)
	}
	for _, s := range ss {
		s.unlink()
		s.end(net.ErrClosed)
	}
}

// Close stops intercepting: undecided TCP requests are reset, UDP sessions closed (their
// readers get net.ErrClosed), the listeners and hooks unregistered; later intercepted SYNs
// get a RST and datagrams a port unreachable. Accepted connections stay the host's. A second
// Close returns net.ErrClosed.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return net.ErrClosed
	}
	f.closed = true
	if f.gone {
		f.mu.Unlock()
		return nil // stackClosed let go of everything
	}
	reqs := make([]*TCPRequest, 0, len(f.reqs))
	for r := range f.reqs {
		reqs = append(reqs, r)
	}
	f.mu.Unlock()
	for _, r := range reqs {
		r.abort(net.ErrClosed)
	}
	f.stopTCP()
	f.stopUDP()
	f.stopEcho()
	return nil
}

// isClosed reports whether Close was called or the stack closed.
func (f *Forwarder) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed || f.gone
}

// core0 returns the stack's core 0 (UDP, echo).
func (f *Forwarder) core0() *stack.Core { return f.s.Cores()[0] }

// EchoMode says what becomes of an echo request to an intercepted address.
type EchoMode = ip.EchoMode

// The echo modes.
const (
	EchoLocal = ip.EchoLocal // answered by the core, from the intercepted address (default)
	EchoHost  = ip.EchoHost  // handed to ICMPConfig.Handler (dropped without one)
	EchoDrop  = ip.EchoDrop  // dropped, counted
)

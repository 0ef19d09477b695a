package forwarder

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/ring"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/udp"
)

// NATMode says which intercepted datagrams share a UDP session (RFC 4787's mapping
// behaviours, seen from the client).
type NATMode uint8

// The NAT modes.
const (
	// EndpointIndependent (full cone, the default): one session per client address and
	// port, whatever the destination; replies from any remote address reach the client.
	EndpointIndependent NATMode = iota
	// AddressDependent: one session per client address and port and destination address.
	AddressDependent
	// AddressPortDependent (symmetric): one session per 5-tuple.
	AddressPortDependent
)

var natNames = [...]string{"endpoint-independent", "address-dependent", "address-port-dependent"}

func (m NATMode) String() string {
	if int(m) < len(natNames) {
		return natNames[m]
	}
	return "nat(?)"
}

// UDPConfig configures intercepted UDP.
type UDPConfig struct {
	// Handler gets each new session, on a new goroutine. nil: intercepted datagrams get an
	// ICMP port unreachable.
	Handler func(*UDPSession)
	// NAT groups datagrams into sessions (default EndpointIndependent).
	NAT NATMode
	// IdleTimeout ends a session without traffic either way for that long (default 60 s;
	// UDPSession.SetIdleTimeout per session). It runs on the stack's clock.
	IdleTimeout time.Duration
	// MaxSessions bounds live sessions (default 1024): a datagram that would open one more
	// gets an ICMP port unreachable (UDPRefusedFull).
	MaxSessions int
	// QueueLen bounds the datagrams queued per session (default 64); beyond, they are
	// dropped (UDPDropsQueue). All sessions together hold at most half the stack's
	// PBUF_POOL, so a host that does not read cannot starve the links.
	QueueLen int
}

// sessKey identifies a session under the NAT mode: the parts of dst the mode ignores are
// zero.
type sessKey struct{ src, dst netip.AddrPort }

// udpState is the forwarder's UDP: the intercept PCB of core 0 and its sessions.
type udpState struct {
	k        *stack.Core
	pcb      *udp.PCB                // k's lock; nil once stopped
	sessions map[sessKey]*UDPSession // k's lock
	queued   atomic.Int64            // datagrams queued in every session
	maxQ     int64                   // bound of queued
	quote    [64]byte                // scratch for a refused datagram's first bytes (k's lock)
}

func (f *Forwarder) startUDP() error {
	u := &f.udp
	u.k = f.core0()
	u.sessions = make(map[sessKey]*UDPSession)
	u.maxQ = int64(max(f.s.Options().PbufPoolSize/2, f.cfg.UDP.QueueLen))
	if f.cfg.UDP.Handler == nil {
		return nil // UDP answers intercepted datagrams with port unreachable
	}
	var err error
	u.k.Lock()
	defer u.k.Unlock()
	if f.s.UDP().Intercepting() != nil {
		return errs.Use // another forwarder's
	}
	if u.pcb, err = f.s.UDP().NewPCB(); err != nil {
		return err
	}
	u.pcb.SetArg(f)
	u.pcb.OnRecv(udpRecv)
	f.s.UDP().SetIntercept(u.pcb)
	return nil
}

// stopUDP closes every session and the intercept PCB.
func (f *Forwarder) stopUDP() {
	u := &f.udp
	u.k.Lock()
	if u.pcb != nil {
		u.pcb.Close() // SetIntercept's receiver goes with it
		u.pcb = nil
	}
	ss := make([]*UDPSession, 0, len(u.sessions))
	for _, s := range u.sessions {
		ss = append(ss, s)
	}
	for _, s := range ss {
		s.unlink()
	}
	u.k.Unlock()
	for _, s := range ss {
		s.end(net.ErrClosed)
	}
}

// key returns the session key of a datagram src→dst under mode m.
func key(m NATMode, src, dst netip.AddrPort) sessKey {
	switch m {
	case AddressDependent:
		return sessKey{src, netip.AddrPortFrom(dst.Addr(), 0)}
	case AddressPortDependent:
		return sessKey{src, dst}
	}
	return sessKey{src: src}
}

// udpRecv (core context of core 0) takes an intercepted datagram p (owned): into its
// session's queue, or a new session, or refused. Allocation-free for a live session.
func udpRecv(c *udp.PCB, p *pbuf.Pbuf, info *udp.RecvInfo) {
	f := c.Arg().(*Forwarder)
	u := &f.udp
	if !info.Intercepted {
		p.Free()
		return
	}
	src, dst := info.Src, netip.AddrPortFrom(info.Dst, info.DstPort)
	k := key(f.cfg.UDP.NAT, src, dst)
	if s := u.sessions[k]; s != nil {
		s.last = u.k.Timers().Now()
		s.push(p, dst)
		return
	}
	if f.isClosed() || len(u.sessions) >= f.cfg.UDP.MaxSessions {
		f.st.udpRefusedFull.Add(1)
		n := p.CopyOut(u.quote[:], 0)
		p.Free()
		_ = u.k.IP().SendPortUnreachable(src, dst, u.quote[:n])
		return
	}
	s := f.newSession(k, src, dst, p)
	s.push(p, dst)
	go f.cfg.UDP.Handler(s)
}

// UDPSession is an intercepted UDP flow: a net.PacketConn whose ReadFrom returns what the
// client sent (and to which destination) and whose WriteTo answers the client from any
// address. It ends with Close, Reject, its idle timeout or the forwarder's Close; then
// ReadFrom and WriteTo return net.ErrClosed. Every method is safe for concurrent use.
type UDPSession struct {
	f  *Forwarder
	k  sessKey
	id FlowID

	// Core 0's lock.
	tmo   clock.Timeout
	idle  time.Duration
	last  time.Time // the last datagram either way (stack clock)
	live  bool      // in the session map
	quote [64]byte  // the first datagram's first bytes, for Reject's port unreachable
	nq    int

	mu     sync.Mutex // guards the fields below
	q      ring.Ring[dgram]
	closed bool
	err    error // why the session ended
	rch    chan struct{}
	rd, wd netconn.Deadline
	drops  uint64
}

// dgram is one queued datagram: the payload (owned) and where the client sent it.
type dgram struct {
	p   *pbuf.Pbuf
	dst netip.AddrPort
}

// newSession makes and links the session of key k, whose first datagram is p (core
// context of core 0). p is borrowed: its first bytes are kept for a later Reject's ICMP
// quote; the caller queues it.
func (f *Forwarder) newSession(k sessKey, src, dst netip.AddrPort, p *pbuf.Pbuf) *UDPSession {
	u := &f.udp
	s := &UDPSession{f: f, k: k, id: FlowID{Src: src, Dst: dst}, idle: f.cfg.UDP.IdleTimeout,
		live: true, q: ring.NewLazy[dgram](f.cfg.UDP.QueueLen), rch: make(chan struct{}, 1)}
	s.nq = p.CopyOut(s.quote[:], 0)
	s.rd.Init(&s.mu, s.rch)
	s.wd.Init(&s.mu, s.rch)
	tm := u.k.Timers()
	s.last = tm.Now()
	s.tmo.Init(s.expire)
	tm.Schedule(&s.tmo, s.idle)
	u.sessions[k] = s
	f.st.udpSessions.Add(1)
	f.st.udpActive.Add(1)
	return s
}

// push queues p (owned) for the reader, or drops it when the session's queue or the
// forwarder's share of the pool is full (core context, allocation-free once the ring grew).
func (s *UDPSession) push(p *pbuf.Pbuf, dst netip.AddrPort) {
	u := &s.f.udp
	s.mu.Lock()
	if s.closed || u.queued.Load() >= u.maxQ || !s.q.Push(dgram{p: p, dst: dst}) {
		s.drops++
		s.mu.Unlock()
		s.f.st.udpDropsQueue.Add(1)
		p.Free()
		return
	}
	u.queued.Add(1)
	s.mu.Unlock()
	netconn.Wake(s.rch)
}

// expire runs on core 0 when the idle timer falls due: the session ends unless traffic
// came since (then the timer is re-armed for the rest).
func (s *UDPSession) expire() {
	tm := s.f.udp.k.Timers()
	if d := s.last.Add(s.idle).Sub(tm.Now()); d > 0 {
		tm.Schedule(&s.tmo, d)
		return
	}
	s.f.st.udpExpired.Add(1)
	s.unlink()
	// The reader is told without the core lock's help: end only takes s.mu.
	s.end(net.ErrClosed)
}

// unlink takes the session out of the map and stops its timer (core 0's lock).
func (s *UDPSession) unlink() {
	if !s.live {
		return
	}
	s.live = false
	u := &s.f.udp
	u.k.Timers().Cancel(&s.tmo)
	if u.sessions[s.k] == s {
		delete(u.sessions, s.k)
	}
	s.f.st.udpActive.Add(-1)
}

// end closes the session's queue with err and wakes its reader (any context).
func (s *UDPSession) end(err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed, s.err = true, err
	n := s.q.Len()
	for d, ok := s.q.Pop(); ok; d, ok = s.q.Pop() {
		d.p.Free()
	}
	s.rd.Stop()
	s.wd.Stop()
	s.mu.Unlock()
	s.f.udp.queued.Add(int64(-n))
	netconn.Wake(s.rch)
}

// ID returns the flow: Src the client, Dst the destination of its first datagram.
func (s *UDPSession) ID() FlowID { return s.id }

// ReadFromUDPAddrPort waits for the next datagram the client sent and copies it into b
// (a longer datagram is truncated, as a UDP socket's); addr is where it was going.
// Errors: os.ErrDeadlineExceeded, net.ErrClosed (the session ended).
func (s *UDPSession) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	s.mu.Lock()
	for {
		if s.closed {
			s.mu.Unlock()
			return 0, netip.AddrPort{}, s.opErr("read", net.ErrClosed)
		}
		if s.q.Len() > 0 {
			break
		}
		if s.rd.Expired() {
			s.mu.Unlock()
			return 0, netip.AddrPort{}, s.opErr("read", os.ErrDeadlineExceeded)
		}
		s.mu.Unlock()
		<-s.rch
		s.mu.Lock()
	}
	d, _ := s.q.Pop()
	more := s.q.Len() > 0
	s.mu.Unlock()
	s.f.udp.queued.Add(-1)
	if more {
		netconn.Wake(s.rch) // another reader may go on
	}
	n := d.p.CopyOut(b, 0)
	d.p.Free()
	return n, d.dst, nil
}

// ReadFrom is ReadFromUDPAddrPort with addr a *net.UDPAddr (net.PacketConn).
func (s *UDPSession) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := s.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(a), nil
}

// WriteToUDPAddrPort sends b to the client as a datagram from `from` (any address of the
// client's family and any port; the intercepted destination, or another remote under
// endpoint-independent NAT). It is fragmented as any send. Errors: EINVAL (from invalid, port
// 0, or of the other family), EMSGSIZE, ENOBUFS (no memory, or the link's queue is full),
// os.ErrDeadlineExceeded, net.ErrClosed.
func (s *UDPSession) WriteToUDPAddrPort(b []byte, from netip.AddrPort) (int, error) {
	s.mu.Lock()
	closed, expired := s.closed, s.wd.Expired()
	s.mu.Unlock()
	switch {
	case closed:
		return 0, s.opErr("write", net.ErrClosed)
	case expired:
		return 0, s.opErr("write", os.ErrDeadlineExceeded)
	}
	if s.id.Src.Addr().Is4() {
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	}
	u := &s.f.udp
	u.k.Lock()
	err := s.sendLocked(b, from)
	u.k.Unlock()
	if err != nil {
		return 0, s.opErr("write", err)
	}
	return len(b), nil
}

// sendLocked sends b from `from` to the client (core 0's lock).
func (s *UDPSession) sendLocked(b []byte, from netip.AddrPort) error {
	u := &s.f.udp
	if u.pcb == nil || !s.live {
		return net.ErrClosed
	}
	p, err := s.f.s.Allocator().Alloc(pbuf.LayerTransport, len(b), pbuf.RAM)
	if err != nil {
		return errs.Mem
	}
	if err := p.CopyIn(b, 0); err != nil {
		p.Free()
		return err
	}
	s.last = u.k.Timers().Now()
	return u.pcb.SendFrom(p, from, s.id.Src)
}

// WriteTo is WriteToUDPAddrPort with from a *net.UDPAddr (net.PacketConn).
func (s *UDPSession) WriteTo(b []byte, from net.Addr) (int, error) {
	a, ok := from.(*net.UDPAddr)
	if !ok || a == nil {
		return 0, s.opErr("write", errs.Val)
	}
	return s.WriteToUDPAddrPort(b, a.AddrPort())
}

// SetIdleTimeout sets how long the session lives without traffic either way (from the
// last datagram); d ≤ 0 means the forwarder's IdleTimeout.
func (s *UDPSession) SetIdleTimeout(d time.Duration) {
	if d <= 0 {
		d = s.f.cfg.UDP.IdleTimeout
	}
	u := &s.f.udp
	u.k.Lock()
	s.idle = d
	if s.live {
		u.k.Timers().Schedule(&s.tmo, s.last.Add(d).Sub(u.k.Timers().Now()))
	}
	u.k.Unlock()
}

// Reject refuses the flow: the client gets an ICMP port unreachable for its first
// datagram (a connected UDP socket then fails with ECONNREFUSED), and the session closes.
func (s *UDPSession) Reject() {
	u := &s.f.udp
	u.k.Lock()
	if s.live {
		s.f.st.udpRejected.Add(1)
		_ = u.k.IP().SendPortUnreachable(s.id.Src, s.id.Dst, s.quote[:s.nq])
		s.unlink()
	}
	// The queue is freed before the core lock goes (core → s.mu, delivery's order): once
	// the session no longer counts as active, it holds no pbuf either.
	s.end(net.ErrClosed)
	u.k.Unlock()
}

// Close ends the session: queued datagrams are dropped, blocked calls return
// net.ErrClosed; later datagrams of the flow open a new session. A second Close returns
// net.ErrClosed.
func (s *UDPSession) Close() error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	u := &s.f.udp
	u.k.Lock()
	s.unlink()
	s.end(net.ErrClosed) // as in Reject: no pbuf held once not active
	u.k.Unlock()
	if closed {
		return s.opErr("close", net.ErrClosed)
	}
	return nil
}

// LocalAddr returns the destination of the client's first datagram.
func (s *UDPSession) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(s.id.Dst) }

// SetDeadline sets the read and write deadlines (net.PacketConn); zero clears them.
func (s *UDPSession) SetDeadline(t time.Time) error {
	s.mu.Lock()
	s.rd.Set(t)
	s.wd.Set(t)
	s.mu.Unlock()
	return nil
}

// SetReadDeadline sets the deadline of ReadFrom.
func (s *UDPSession) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.rd.Set(t)
	s.mu.Unlock()
	return nil
}

// SetWriteDeadline sets the deadline of WriteTo.
func (s *UDPSession) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	s.wd.Set(t)
	s.mu.Unlock()
	return nil
}

// Drops returns how many of the session's datagrams were dropped because its queue was
// full.
func (s *UDPSession) Drops() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drops
}

func (s *UDPSession) opErr(op string, err error) error {
	return endpoint.OpError(op, "udp", net.UDPAddrFromAddrPort(s.id.Dst), net.UDPAddrFromAddrPort(s.id.Src), err)
}

var _ net.PacketConn = (*UDPSession)(nil)

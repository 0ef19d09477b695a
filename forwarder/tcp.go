package forwarder

import (
	"context"
	"net"
	"sync"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// tcpState is the forwarder's TCP: an intercept listener per core.
type tcpState struct {
	cores []*tcpCore
}

// tcpCore is the intercept listener of one core.
type tcpCore struct {
	f  *Forwarder
	k  *stack.Core
	tl *tcp.Listener // k's lock; nil once closed
}

// TCPRequest is an intercepted TCP connection waiting for the host's decision: Accept or
// Reject. Early, its handshake is done and Accept returns the connection at once; deferred,
// the client's SYN waits unanswered until Accept completes the handshake. A request
// neither accepted nor rejected when the handler returns is rejected with a RST.
type TCPRequest struct {
	f  *Forwarder
	k  *stack.Core
	id FlowID

	pcb *tcp.PCB // deferred, until established or gone (k's lock)

	mu       sync.Mutex
	decided  bool             // Accept or Reject called (or the request timed out, or Close)
	accepted bool             // Accept called: the connection is wanted
	conn     *netconn.TCPConn // the established connection, until Accept takes it
	err      error            // why the request ended without a connection
	done     chan struct{}    // closed when conn or err is set
	ended    bool             // done closed
}

// ID returns the flow: the client's address and port, and where it was going.
func (r *TCPRequest) ID() FlowID { return r.id }

func (f *Forwarder) startTCP() error {
	c := f.cfg.TCP
	if c.Handler == nil {
		return nil // no intercept listener: TCP answers intercepted SYNs with a RST
	}
	// Each core's backlog: the forwarder's own bound (MaxPending, counted across cores) is
	// checked first; the listener's is the backstop (half-open connections of early mode
	// count in it only), so a SYN beyond either is refused with a RST, never dropped.
	backlog := c.MaxPending + 16
	for _, k := range f.s.Cores() {
		tc := &tcpCore{f: f, k: k}
		var err error
		k.Lock()
		tc.tl, err = k.TCP().ListenIntercept(backlog, c.Deferred)
		if err == nil {
			tc.tl.SetArg(tc)
			tc.tl.OnAccept(tcpAccept)
			if c.Deferred {
				tc.tl.SetDeferTimeout(c.DeferTimeout)
				tc.tl.OnSyn(tcpSyn)
			}
		}
		k.Unlock()
		if err != nil {
			f.stopTCP()
			return err
		}
		f.tcp.cores = append(f.tcp.cores, tc)
	}
	return nil
}

// stopTCP closes every core's intercept listener: connections not yet accepted and
// undecided SYNs are reset.
func (f *Forwarder) stopTCP() {
	for _, tc := range f.tcp.cores {
		tc.k.Lock()
		if tc.tl != nil {
			_ = tc.tl.Close()
			tc.tl = nil
		}
		tc.k.Unlock()
	}
}

// admit decides in core context whether a new request may open: the forwarder is open,
// fewer than MaxPending requests are undecided and fewer than MaxFlows flows live. It
// counts the request and, when admitted, its pending slot.
func (f *Forwarder) admit() bool {
	f.st.tcpRequests.Add(1)
	c := &f.cfg.TCP
	// Pending is exact across cores (taken, then given back if over); live flows are
	// counted when adopted, so cores admitting at once may pass MaxFlows by a few.
	if f.isClosed() || f.st.tcpActive.Load() >= int64(c.MaxFlows) {
		f.st.tcpRefusedFull.Add(1)
		return false
	}
	if f.st.tcpPending.Add(1) > int64(c.MaxPending) {
		f.st.tcpPending.Add(-1)
		f.st.tcpRefusedFull.Add(1)
		return false
	}
	return true
}

// newRequest makes and registers a request (core context of k; admitted).
func (f *Forwarder) newRequest(k *stack.Core, pcb *tcp.PCB) *TCPRequest {
	r := &TCPRequest{f: f, k: k, id: FlowID{Src: pcb.RemoteAddr(), Dst: pcb.LocalAddr()}, done: make(chan struct{})}
	f.mu.Lock()
	f.reqs[r] = struct{}{}
	f.mu.Unlock()
	return r
}

// tcpSyn (core context) gets an undecided intercepted SYN of a deferred listener.
func tcpSyn(l *tcp.Listener, pcb *tcp.PCB) {
	tc := l.Arg().(*tcpCore)
	f := tc.f
	if !f.admit() {
		pcb.RefuseSyn(true)
		return
	}
	r := f.newRequest(tc.k, pcb)
	r.pcb = pcb
	pcb.SetArg(r)
	pcb.OnErr(tcpSynErr)
	go f.handle(r)
}

// tcpSynErr (core context): a deferred request's PCB is gone before ESTABLISHED — the
// client reset it, the defer timeout or the handshake ran out, or its listener closed.
func tcpSynErr(pcb *tcp.PCB, err error) {
	r := pcb.Arg().(*TCPRequest)
	r.pcb = nil
	r.mu.Lock()
	undecided := !r.decided
	r.decided = true
	r.mu.Unlock()
	if undecided {
		r.f.st.tcpPending.Add(-1)
		if err == errs.Timeout {
			r.f.st.tcpDeferTimeouts.Add(1)
		}
	}
	r.finish(nil, err)
}

// tcpAccept (core context) gets an ESTABLISHED connection: early, a new request; deferred,
// the end of an accepted request's handshake.
func tcpAccept(l *tcp.Listener, pcb *tcp.PCB) {
	tc := l.Arg().(*tcpCore)
	f := tc.f
	r, _ := pcb.Arg().(*TCPRequest)
	if r == nil {
		// Early: the handshake is done; the host decides now.
		if !f.admit() {
			pcb.Abort()
			return
		}
		r = f.newRequest(tc.k, pcb)
		c, err := f.adopt(tc.k, pcb)
		if err != nil {
			f.st.tcpPending.Add(-1)
			f.st.tcpRefusedFull.Add(1)
			f.forget(r)
			pcb.Abort()
			return
		}
		r.finish(c, nil)
		go f.handle(r)
		return
	}
	// Deferred, accepted: hand the connection to the waiting Accept.
	r.pcb = nil
	if f.st.tcpActive.Load() >= int64(f.cfg.TCP.MaxFlows) {
		f.st.tcpRefusedFull.Add(1)
		pcb.Abort()
		r.finish(nil, errs.Rst)
		return
	}
	c, err := f.adopt(tc.k, pcb)
	if err != nil {
		f.st.tcpRefusedFull.Add(1)
		pcb.Abort()
		r.finish(nil, err)
		return
	}
	r.finish(c, nil)
}

// adopt makes the netconn of an established intercepted connection and counts it live
// until its Close (core context).
func (f *Forwarder) adopt(k *stack.Core, pcb *tcp.PCB) (*netconn.TCPConn, error) {
	c, err := netconn.AdoptTCP(k, pcb, func() { f.st.tcpActive.Add(-1) })
	if err != nil {
		return nil, err
	}
	f.st.tcpActive.Add(1)
	return c, nil
}

// forget unregisters r.
func (f *Forwarder) forget(r *TCPRequest) {
	f.mu.Lock()
	delete(f.reqs, r)
	f.mu.Unlock()
}

// finish records the outcome of r's connection (any context) and wakes Accept. A
// connection that nobody will take (the request was rejected, or ended) is reset.
func (r *TCPRequest) finish(c *netconn.TCPConn, err error) {
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		if c != nil {
			go c.Abort() // not in core context: Abort takes the core lock
		}
		return
	}
	r.ended = true
	r.conn, r.err = c, err
	close(r.done)
	r.mu.Unlock()
}

// handle runs the handler of r on its goroutine; an undecided request is then rejected.
func (f *Forwarder) handle(r *TCPRequest) {
	defer func() {
		r.Reject(true)
		f.forget(r)
	}()
	f.cfg.TCP.Handler(r)
}

// decide marks r decided; it reports false if it already was.
func (r *TCPRequest) decide(accept bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.decided {
		return false
	}
	r.decided, r.accepted = true, accept
	r.f.st.tcpPending.Add(-1)
	return true
}

// Accept takes the connection. Early, it returns it at once. Deferred, it completes the
// handshake (the SYN-ACK leaves now) and waits until the connection is ESTABLISHED, ctx
// ends (the connection is then reset and ctx's error returned) or the client gives up.
// The connection has the forwarder's keepalive and NoDelay; its LocalAddr is where the
// client was going. Errors are *net.OpError with a syscall.Errno (ECONNRESET: the client
// reset it, ETIMEDOUT: the decision or the handshake ran out of time) or net.ErrClosed
// (Close, or a second Accept or Reject).
func (r *TCPRequest) Accept(ctx context.Context) (*endpoint.TCPConn, error) {
	if !r.decide(true) {
		return nil, r.opErr(r.endErr())
	}
	r.f.st.tcpAccepted.Add(1)
	if r.f.cfg.TCP.Deferred {
		r.k.Lock()
		var err error
		if r.pcb == nil {
			err = errs.Rst
		} else {
			err = r.pcb.AcceptSyn()
		}
		r.k.Unlock()
		if err != nil {
			r.finish(nil, err)
		}
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		r.cancel(ctx.Err(), true) // a connection established meanwhile is still returned
		<-r.done
	}
	r.mu.Lock()
	c, err := r.conn, r.err
	r.conn = nil
	r.mu.Unlock()
	if c == nil {
		if err == nil {
			err = net.ErrClosed // the connection was taken back (the forwarder closed)
		}
		return nil, r.opErr(err)
	}
	tc := r.f.net.WrapTCPConn(c)
	ka := r.f.cfg.TCP.KeepAlive
	if ka.Idle < 0 {
		ka = net.KeepAliveConfig{}
	}
	_ = tc.SetKeepAliveConfig(ka)
	nd := r.f.cfg.TCP.NoDelay
	_ = tc.SetNoDelay(nd == nil || *nd)
	return tc, nil
}

// endErr is why a decided request has no connection to give.
func (r *TCPRequest) endErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil && r.conn == nil && r.ended && !r.accepted {
		return r.err
	}
	return net.ErrClosed
}

func (r *TCPRequest) opErr(err error) error {
	return endpoint.OpError("accept", "tcp", net.TCPAddrFromAddrPort(r.id.Dst), net.TCPAddrFromAddrPort(r.id.Src), err)
}

// abort ends r with err whatever its state (Close): a deferred PCB is reset, and an
// established connection Accept has not returned yet too. Not core context.
func (r *TCPRequest) abort(err error) {
	if r.decide(false) {
		r.f.st.tcpRejected.Add(1)
	}
	r.cancel(err, true)
	r.dropConn()
}

// cancel resets r's deferred PCB, if it has one (with a RST, or silently when an
// undecided one is refused without rst), and ends r with err unless it has ended. Not core
// context.
func (r *TCPRequest) cancel(err error, rst bool) {
	r.k.Lock()
	if pcb := r.pcb; pcb != nil {
		r.pcb = nil
		pcb.OnErr(nil)
		if pcb.Undecided() {
			pcb.RefuseSyn(rst)
		} else {
			pcb.Abort()
		}
	}
	r.k.Unlock()
	r.finish(nil, err)
}

// dropConn resets the connection r holds, if Accept has not taken it; an Accept that comes
// after finds net.ErrClosed.
func (r *TCPRequest) dropConn() {
	r.mu.Lock()
	c := r.conn
	r.conn = nil
	if c != nil && r.err == nil {
		r.err = net.ErrClosed
	}
	r.mu.Unlock()
	if c != nil {
		c.Abort()
	}
}

// Reject refuses the connection: with a RST (rst true; the client sees ECONNREFUSED when
// deferred, ECONNRESET when early) or, deferred only, silently (rst false: dropped by
// policy, the client's retries time out; early it is a RST too, the handshake being done).
// Nothing happens after Accept or a first Reject.
func (r *TCPRequest) Reject(rst bool) {
	if !r.decide(false) {
		return
	}
	r.cancel(errs.Rst, rst)
	r.dropConn()
	r.f.st.tcpRejected.Add(1) // after the RST left: a test that waits for it sees it sent
}

package tcp

import (
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
)

// Interception (issue 17): a TUN proxy catches every connection a device opens to any
// address. The IP layer delivers the packets of an intercepting netif to addresses the stack
// does not own with ip.Header.Intercepted set; here they match connections by 4-tuple as any
// segment does, and what matches none goes to the Proto's one intercept listener, never to
// an ordinary listener (and a local segment never to the intercept listener). The
// connections it makes have the intercepted destination as their local address and answer
// from it.
//
// Early mode (tun2socks): the handshake runs at once and OnAccept gets the connection
// ESTABLISHED. Deferred mode (sing-tun): a SYN makes an undecided PCB (fDeferred) that sends
// nothing and is handed to the host (OnSyn), which dials upstream first and then completes
// the handshake (AcceptSyn) or refuses it (RefuseSyn), so a client never sees a phantom
// connection. An undecided PCB:
//   - holds no cold part (cold.go) and is on Proto.deferred, not Proto.halfOpen: a flood of
//     other SYNs does not recycle it; only with TCP_PCB exhausted (after TIME-WAIT, orphans
//     and half-open connections) is the oldest refused with a RST;
//   - counts in the listener's backlog: a full backlog refuses new SYNs with a RST;
//   - drops the client's retransmitted SYNs (SynDeduped), ignores everything else but a RST
//     at RCV.NXT, which frees it;
//   - is refused with a RST after the listener's defer timeout (Options.TCPDeferTimeout),
//     kept in closeAt: the PCB's one Timeout, no timer of its own.
// A host that saw a PCB (OnSyn) hears of its end before ESTABLISHED through its ErrFunc
// (errs.Rst, errs.Timeout, errs.Abrt), unlike an ordinary listener's half-open connection.

// SynFunc is called in core context with an undecided connection a deferred intercept
// listener made for an intercepted SYN (c.LocalAddr() is where the client was going). The
// host decides later (or at once) with c.AcceptSyn or c.RefuseSyn, in core context; it may
// set c's ErrFunc to hear of a RST, a timeout or a reset listener first. After AcceptSyn the
// connection reaches the listener's AcceptFunc like any other.
type SynFunc func(l *Listener, c *PCB)

// ListenIntercept makes this Proto's intercept listener: it receives every segment of an
// intercepted packet (ip.Header.Intercepted) that matches no connection; ordinary
// listeners never see intercepted packets, and it never sees local ones. Without it an
// intercepted SYN is answered with a RST (counted in InterceptRefused).
//
// backlog (≤ 0: Options.TCPListenBacklog) bounds half-open, undecided and not yet accepted
// connections; a SYN beyond it gets a RST (InterceptRefused), never a cookie nor silence.
// deferred selects deferred mode (OnSyn, AcceptSyn, RefuseSyn) over early mode (the
// handshake at once, then OnAccept). errs.Use if the Proto has one already; errs.Mem when
// TCP_PCB_LISTEN is exhausted. Close it as any Listener. Core context.
func (t *Proto) ListenIntercept(backlog int, deferred bool) (*Listener, error) {
	t.timers.AssertCore()
	if t.closed {
		return nil, errs.Conn
	}
	if t.icept != nil {
		return nil, errs.Use
	}
	l := t.listeners.Get()
	if l == nil {
		return nil, errs.Mem
	}
	if backlog <= 0 {
		backlog = t.opts.TCPListenBacklog
	}
	*l = Listener{t: t, backlog: backlog, intercept: true, deferred: deferred}
	l.send.Init(t.ip)
	l.send.SetTTL(t.opts.TCPTTL)
	t.icept = l
	return l, nil
}

// OnSyn sets the callback of a deferred intercept listener. Without one, intercepted SYNs
// are refused with a RST.
func (l *Listener) OnSyn(fn SynFunc) { setField(l, &l.synFn, fn) }

// SetDeferTimeout sets how long an undecided SYN of this (deferred intercept) listener waits
// for AcceptSyn or RefuseSyn before the stack refuses it; ≤ 0: Options.TCPDeferTimeout. It
// applies to SYNs that arrive afterwards.
func (l *Listener) SetDeferTimeout(d time.Duration) { setField(l, &l.deferTimeout, max(d, 0)) }

// Intercepts reports whether l is an intercept listener, and whether it is deferred.
func (l *Listener) Intercepts() (intercept, deferred bool) {
	l.assertCore()
	return l.intercept, l.deferred
}

// Undecided reports whether c is an intercepted SYN its host has not decided on yet.
func (c *PCB) Undecided() bool { return c.option(fDeferred) }

// AcceptSyn completes the handshake of an undecided connection (SynFunc): the SYN-ACK
// leaves now and the connection goes on as any passive open, to the listener's AcceptFunc
// when ESTABLISHED (or its ErrFunc if the client resets or never answers). errs.Conn if c is
// not undecided (already decided, or gone).
func (c *PCB) AcceptSyn() error {
	c.assertCore()
	if c.t == nil || c.flags&(fDeferred|fDying) != fDeferred {
		return errs.Conn
	}
	t := c.t
	held := t.holdClock()
	defer t.releaseClock(held)
	gen := c.enter() // the cold part back: the handshake needs its queues
	defer c.leave(gen)
	c.leaveStateList() // off Proto.deferred
	c.closeAt = 0
	if c.cc == nil {
		// What initSend put in the cold part given back in deferSyn.
		c.recover, c.cwrEnd = c.iss, c.iss
		c.initCC(t.now())
		c.cc.SetMSS(c.mss)
	}
	// A half-open connection from now: its SYN-ACK retries and TCPSynRcvdTimeout count
	// from the decision, not from the client's SYN.
	c.synAt = t.nowNs()
	t.halfOpen.push(c)
	c.queueSYN()
	t.checkPCB(c)
	return nil
}

// RefuseSyn refuses an undecided connection (SynFunc): with a RST when rst (the host could
// not reach the destination), else silently (dropped by policy: the client's retries time
// out). c is freed at once, without callbacks, and must not be used again. Nothing happens
// if c is not undecided.
func (c *PCB) RefuseSyn(rst bool) {
	c.assertCore()
	if c.t == nil || c.flags&(fDeferred|fDying) != fDeferred {
		return
	}
	if rst {
		c.refuse()
	}
	c.flags |= fAppClosed // no ErrFunc: the host decided
	c.abandon(nil)
}

// deferSyn hands the new undecided connection c (SYN-RECEIVED, counted in l's backlog,
// in the connection table) to l's host. Nothing is sent; the cold part goes back to its
// pool until AcceptSyn needs it.
func (c *PCB) deferSyn(l *Listener) {
	t := c.t
	t.deferred.push(c)
	d := l.deferTimeout
	if d <= 0 {
		d = t.opts.TCPDeferTimeout
	}
	c.closeAt = t.nowNs() + int64(d)
	c.schedule()
	c.dropCold()
	c.flags |= fOffered
	gen := c.gen()
	l.synFn(l, c)
	if c.alive(gen) {
		t.checkPCB(c)
	}
}

// deferredInput handles a segment for an undecided connection. Takes ownership of p (the
// whole segment).
func (c *PCB) deferredInput(in *segIn, p *pbuf.Pbuf) {
	t := c.t
	switch {
	case in.hasRST():
		// RFC 5961 §3.2: only a RST exactly at RCV.NXT resets; nothing was sent to the
		// client, so no challenge ACK answers another.
		if in.seq != c.rcvNxt {
			t.dropSeg(p, &t.ext.DropBadRST)
			return
		}
		t.dropSeg(p, nil)
		t.ext.ResetsRecv++
		c.abandon(errs.Rst)
	case in.hasSYN() && !in.hasACK() && in.seq == c.irs:
		// The client retransmitted its SYN while the host dials: dropped (one request
		// per 4-tuple). Its timestamp is the one our SYN-ACK will echo (Linux's
		// request socks keep the latest too).
		if c.flags&fTS != 0 && in.opts.HasTimestamps {
			c.tsRecent, c.tsRecentAge = in.opts.TSVal, t.nowNs()
		}
		t.dropSeg(p, &t.ext.SynDeduped)
	default:
		// Nothing else means anything before our SYN-ACK: ignored, not answered.
		t.dropSeg(p, &t.ext.DropListen)
	}
}

// deferTimeout refuses an undecided connection its host did not decide on in time.
func (c *PCB) deferTimeout() {
	c.t.ext.DeferTimeouts++
	c.refuse()
	c.abandon(errs.Timeout)
}

// refuse sends the RST that refuses the client's SYN: <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>
// as for a SYN to a closed port (RFC 9293 §3.10.7.1), which its SYN-SENT accepts.
func (c *PCB) refuse() {
	c.sendRST(0, c.rcvNxt, true)
}

package tcp

import (
	"net/netip"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// Listener is a listening PCB (lwIP struct tcp_pcb_listen), from the TCP_PCB_LISTEN pool;
// or a Proto's intercept listener (ListenIntercept, intercept.go), which has no address.
type Listener struct {
	t        *Proto
	local    netip.AddrPort
	hnext    *Listener // port bucket chain
	acceptFn AcceptFunc
	synFn    SynFunc // deferred intercept listener: an undecided SYN for the host
	arg      any
	backlog  int
	pending  int            // SYN-RECEIVED connections (undecided ones too) and accepted ones still delayed
	send     ip.SendOptions // IP_TTL and IP_TOS set before Listen, for the connections it makes
	userMSS  int            // TCP_MAXSEG set before Listen, for the connections it makes
	flags    pcbFlags       // fReuseAddr, fNoDelay, fKeepAlive, fV6Only inherited by new connections
	// The intercept listener: deferred (the handshake waits for AcceptSyn) and how long an
	// undecided SYN may wait (0: Options.TCPDeferTimeout).
	intercept, deferred bool
	deferTimeout        time.Duration
}

// OnAccept sets the accept callback (lwIP tcp_accept). Without one, connections are reset.
func (l *Listener) OnAccept(fn AcceptFunc) { setField(l, &l.acceptFn, fn) }

// SetArg sets the value Arg returns (lwIP tcp_arg).
func (l *Listener) SetArg(arg any) { setField(l, &l.arg, arg) }

// Arg returns the value set with SetArg.
func (l *Listener) Arg() any { return getField(l, &l.arg) }

// Addr returns the local address and port.
func (l *Listener) Addr() netip.AddrPort { return getField(l, &l.local) }

// Close stops listening and frees the listener; connections not yet accepted are reset.
func (l *Listener) Close() error {
	l.assertCore()
	if l.t == nil {
		return errs.Conn
	}
	t := l.t
	for c := t.all.head; c != nil; {
		next := c.all.next
		if c.listener == l {
			c.listener = nil
			wasPending := c.flags&fBacklog != 0
			c.flags &^= fBacklog | fBacklogDelayed
			if wasPending && c.state == StateSynReceived {
				// Not accepted yet (or undecided): the connection goes with its
				// listener (reset, as lwIP does). Accepted ones (even delayed) belong to
				// the application. Only a host that saw it (OnSyn) hears errs.Abrt.
				c.sendRST(c.rstSeq(), c.rcvNxt, true)
				c.abandon(errs.Abrt)
			}
		}
		c = next
	}
	l.free()
	return nil
}

// free unlinks the listener and returns it to the pool.
func (l *Listener) free() {
	t := l.t
	if l.intercept {
		t.icept = nil
		t.listeners.Put(l)
		return
	}
	for pp := &t.lbuckets[uint32(l.local.Port())&t.lmask]; *pp != nil; pp = &(*pp).hnext {
		if *pp == l {
			*pp = l.hnext
			break
		}
	}
	t.listeners.Put(l)
}

// Listen turns a bound PCB into a Listener (lwIP tcp_listen_with_backlog): c returns to the
// pool and must not be used again. backlog ≤ 0 means Options.TCPListenBacklog. errs.Mem
// when TCP_PCB_LISTEN is exhausted (c then stays a usable CLOSED PCB).
func (c *PCB) Listen(backlog int) (*Listener, error) {
	c.assertCore()
	if c.t == nil || c.flags&fDying != 0 {
		return nil, errs.Conn
	}
	if c.state != StateClosed {
		return nil, errs.IsConn
	}
	t := c.t
	if c.flags&fBound == 0 {
		if err := c.Bind(netip.AddrPort{}); err != nil {
			return nil, err
		}
	}
	local := netip.AddrPortFrom(c.laddr, c.lport)
	// Two listeners on one address and port are never allowed, SO_REUSEADDR or not.
	for o := t.lbuckets[uint32(c.lport)&t.lmask]; o != nil; o = o.hnext {
		if o.local == local {
			return nil, errs.Use
		}
	}
	l := t.listeners.Get()
	if l == nil {
		return nil, errs.Mem
	}
	if backlog <= 0 {
		backlog = t.opts.TCPListenBacklog
	}
	*l = Listener{t: t, local: local, backlog: backlog, send: c.SendOptions, userMSS: c.userMSS,
		flags: c.flags & (fReuseAddr | fNoDelay | fKeepAlive | fV6Only)}
	b := &t.lbuckets[uint32(c.lport)&t.lmask]
	l.hnext = *b
	*b = l
	c.free()
	return l, nil
}

// listenInput handles a segment that reached listener l (RFC 9293 §3.10.7.2): a SYN makes
// a SYN-RECEIVED connection (or, with the backlog full, a SYN cookie), an ACK may complete
// a cookie handshake, everything else is answered as the RFC says. Takes ownership of p.
func (t *Proto) listenInput(l *Listener, in *segIn, p *pbuf.Pbuf) {
	f := in.flags
	switch {
	case f&wire.TCPFlagRST != 0:
		// "An incoming RST should be ignored."
		t.dropSeg(p, nil)
		return
	case f&wire.TCPFlagACK != 0:
		// The intercept listener never sends cookies: no ACK can complete one.
		if f&wire.TCPFlagSYN == 0 && t.opts.TCPSynCookies && !l.intercept && t.cookieACK(l, in, p) {
			return
		}
		// "Any acknowledgment is bad if it arrives on a connection still in the LISTEN
		// state. An acceptable reset segment should be formed ... <SEQ=SEG.ACK><CTL=RST>".
		t.resetFor(in, in.ack, 0, false)
		t.dropSeg(p, &t.ext.DropListen)
		return
	case f&wire.TCPFlagSYN == 0:
		t.dropSeg(p, &t.ext.DropListen)
		return
	}
	// RFC 1122 §4.2.3.10: a SYN to a broadcast or multicast address is silently dropped.
	if in.hdr.Broadcast || in.hdr.Multicast {
		t.dropSeg(p, &t.ext.DropListen)
		return
	}
	if l.acceptFn == nil && !l.deferred || l.deferred && l.synFn == nil {
		if l.intercept {
			t.ext.InterceptRefused++
		}
		t.resetFor(in, 0, in.seq+uint32(in.dataLen)+1, true)
		t.dropSeg(p, &t.ext.DropListen)
		return
	}
	if l.pending >= l.backlog {
		t.ext.ListenOverflows++
		switch {
		case l.intercept:
			// A TUN proxy's client is told at once (never a cookie, whose state would
			// be a connection the host never heard of, nor a silent drop it would retry
			// against for a minute).
			t.ext.InterceptRefused++
			t.resetFor(in, 0, in.seq+uint32(in.dataLen)+1, true)
			t.dropSeg(p, &t.ext.DropListen)
			return
		case t.opts.TCPSynCookies && t.pcbObtainable():
			// The backlog is full but a PCB can still be had: a cookie keeps the
			// half-open state in the network (RFC 4987 §3.6).
			t.sendCookie(l, in)
			p.Free()
			return
		case t.opts.TCPSynCookies:
			// Not even a cookie could become a connection: refuse.
			t.refuseSYN(in, p)
			return
		case l.reapHalfOpen():
			// No cookies: the oldest half-open connection of this listener makes room.
		default:
			// The backlog is held by connections the application has not accepted yet:
			// drop, as Linux and lwIP do; the client retries and the queue may drain.
			t.dropSeg(p, &t.ext.DropListen)
			return
		}
	}
	c := t.allocPCB()
	if c == nil {
		// Every PCB is held by a connection that cannot be recycled. A cookie here could
		// never become a connection (its ACK would find no PCB either): refuse at once,
		// so the client hears ECONNREFUSED instead of hanging on a dead handshake.
		t.st.Memerr++
		if l.intercept {
			t.ext.InterceptRefused++
		}
		t.refuseSYN(in, p)
		return
	}
	if l.t == nil {
		// Recycling a PCB told a host (ErrFunc), which closed this listener.
		c.free()
		t.dropSeg(p, &t.ext.DropListen)
		return
	}
	c.initPassive(l, in)
	c.initSend(t.now())
	c.irs = in.seq
	c.rcvNxt = in.seq + 1
	c.rcvAdv = c.rcvNxt
	c.applySynOptions(&in.opts)
	c.cc.SetMSS(c.mss)
	c.sndWnd = int(in.wnd) // a SYN's window is never scaled (RFC 7323 §2.2)
	c.maxSndWnd = c.sndWnd
	c.sndWl1, c.sndWl2 = in.seq, 0
	if l.deferred {
		// Not setState: an undecided SYN is not a half-open connection (deferSyn).
		c.state = StateSynReceived
		c.flags |= fDeferred
	} else {
		c.setState(StateSynReceived)
	}
	t.hashInsert(c)
	c.flags |= fBacklog
	l.pending++
	// RFC 9293 §3.10.7.2: "any other control or text should be queued for processing
	// later" — data on a SYN is rare; it is dropped and the peer retransmits it.
	p.Free()
	if l.deferred {
		c.deferSyn(l)
		return
	}
	c.queueSYN()
}

// refuseSYN answers the SYN in with a RST (RFC 9293 §3.10.7.2's answer for a connection
// that cannot be made) and counts it. Takes ownership of p.
func (t *Proto) refuseSYN(in *segIn, p *pbuf.Pbuf) {
	t.ext.SynRefused++
	t.resetFor(in, 0, in.seq+uint32(in.dataLen)+1, true)
	t.dropSeg(p, &t.ext.DropListen)
}

// pcbObtainable reports whether allocPCB would find a PCB: a free one, or one it recycles
// (TIME-WAIT, a closed-by-app connection waiting for its peer, a half-open one).
func (t *Proto) pcbObtainable() bool {
	return t.all.n < t.pcbs.Cap() || t.timeWait.head != nil || t.halfOpen.head != nil || t.deferred.head != nil ||
		t.oldestOrphan() != nil
}

// reapHalfOpen drops l's oldest half-open connection, if it has one, to free a backlog slot.
// No RST is sent (a flood's spoofed sources would get the backscatter); a real peer's
// handshake ACK then reaches the listener and is answered with one.
func (l *Listener) reapHalfOpen() bool {
	t := l.t
	for c := t.halfOpen.head; c != nil; c = c.tw.next {
		if c.listener == l && c.flags&fBacklog != 0 {
			t.ext.HalfOpenReaped++
			c.abandon(nil) // silently, as Linux: a live peer's ACK will find the RST
			return true
		}
	}
	return false
}

// initPassive fills a new PCB from listener l and the SYN in.
func (c *PCB) initPassive(l *Listener, in *segIn) {
	c.laddr, c.raddr, c.dst = in.hdr.Dst, in.hdr.Src, in.hdr.Src
	c.lport, c.rport = in.dstPort, in.srcPort
	c.listener = l
	c.SendOptions, c.userMSS = l.send, l.userMSS
	c.flags |= fBound | fPassive | l.flags
	c.phsum = wire.PseudoHeaderChecksum(wire.ProtoTCP, c.laddr, c.raddr, 0)
}

// assertCore is PCB.assertCore for a listener.
func (l *Listener) assertCore() {
	if l.t != nil {
		l.t.timers.AssertCore()
	}
}

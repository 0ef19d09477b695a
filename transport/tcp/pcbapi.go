package tcp

// This file is the raw API on a PCB: lwIP's tcp_* functions in Go shape. Every function and
// callback runs in the stack's core context (the core lock held, or inside a callback the
// stack made; wispcheck builds assert it); none blocks.
//
// Ownership of pbufs crossing the API: RecvFunc receives a chain it owns (it must Free it,
// or keep it; the window reopens only with Recved). WritePbuf takes ownership of its chain
// whatever it returns. Write without WriteCopy references the caller's memory until SentFunc
// has reported it acknowledged or the connection is gone.

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// NewPCB returns a fresh CLOSED PCB (lwIP tcp_new). errs.Mem when TCP_PCB is exhausted
// after recycling the oldest TIME-WAIT PCB.
func (t *Proto) NewPCB() (*PCB, error) {
	t.timers.AssertCore()
	if t.closed {
		return nil, errs.Clsd
	}
	c := t.allocPCB()
	if c == nil {
		t.st.Memerr++
		return nil, errs.Mem
	}
	return c, nil
}

// usable reports whether the application may still use c.
func (c *PCB) usable() bool { return c != nil && c.t != nil && c.flags&(fDying|fAppClosed) == 0 }

// Bind sets the local address and port (lwIP tcp_bind). An unspecified address binds every
// local address; port 0 picks an ephemeral port (RFC 6056). errs.Use if taken (TIME-WAIT
// PCBs of the same port do not block a bind with SetReuseAddr), errs.Val for an address
// that is not local, errs.IsConn if c is not CLOSED.
func (c *PCB) Bind(addr netip.AddrPort) error {
	c.assertCore()
	if !c.usable() {
		return errs.Conn
	}
	if c.state != StateClosed {
		return errs.IsConn
	}
	if c.flags&fBound != 0 {
		return errs.Val
	}
	t := c.t
	a := addr.Addr().Unmap().WithZone("")
	if a.IsValid() && !a.IsUnspecified() && !t.ip.IsLocal(a) {
		return errs.Val
	}
	port := addr.Port()
	if port == 0 {
		var ok bool
		if port, ok = t.pickPort(a, netip.AddrPort{}); !ok {
			return errs.Use
		}
	} else if t.portTaken(c, a, port) {
		return errs.Use
	}
	c.laddr, c.lport = a, port
	c.flags |= fBound | fBoundIdle
	t.boundIdle++
	return nil
}

// Connect starts an active open to raddr (lwIP tcp_connect); fn is called on success. An
// unbound PCB gets the route's source address and an ephemeral port. errs.NetUnreach with no
// route (ENETUNREACH, as connect(2)),
// errs.IsConn if not CLOSED, errs.Use if the 4-tuple is taken, errs.Mem without memory.
func (c *PCB) Connect(raddr netip.AddrPort, fn ConnectedFunc) error {
	c.assertCore()
	if !c.usable() {
		return errs.Conn
	}
	gen := c.enter()
	defer c.leave(gen)
	if c.state != StateClosed {
		return errs.IsConn
	}
	t := c.t
	dst := raddr.Addr().Unmap()
	if !dst.IsValid() || dst.IsUnspecified() || dst.IsMulticast() || raddr.Port() == 0 {
		return errs.Val
	}
	if c.flags&fBound != 0 && c.laddr.IsValid() && !c.laddr.IsUnspecified() && c.laddr.Is4() != dst.Is4() {
		return errs.Val
	}
	local := c.laddr
	if !local.IsValid() || local.IsUnspecified() {
		n, _, err := t.ip.Lookup(dst)
		if err != nil && !t.ip.IsLocal(dst.WithZone("")) {
			return errs.NetUnreach
		}
		src, err := t.ip.SourceFor(dst.WithZone(""), n)
		if err != nil {
			return errs.NetUnreach
		}
		local = src
	} else if _, _, err := t.ip.Lookup(dst); err != nil && !t.ip.IsLocal(dst.WithZone("")) {
		return errs.NetUnreach
	}
	remote := netip.AddrPortFrom(dst.WithZone(""), raddr.Port())
	port := c.lport
	if c.flags&fBound == 0 || port == 0 {
		var ok bool
		if port, ok = t.pickPort(local, remote); !ok {
			return errs.Use
		}
	} else if t.lookupConn(local, remote.Addr(), port, remote.Port()) != nil {
		return errs.Use
	}
	c.laddr, c.lport = local, port
	c.raddr, c.rport, c.dst = remote.Addr(), remote.Port(), dst
	c.flags |= fBound
	if c.flags&fBoundIdle != 0 {
		c.flags &^= fBoundIdle
		t.boundIdle--
	}
	c.phsum = wire.PseudoHeaderChecksum(wire.ProtoTCP, c.laddr, c.raddr, 0)
	c.connFn = fn
	now := t.now()
	c.initSend(now)
	c.rcvAdv = 0
	c.setState(StateSynSent)
	t.hashInsert(c)
	t.ext.ActiveOpens++
	c.queueSYN()
	return nil
}

// Write queues data for sending (lwIP tcp_write); Output or the end of input processing
// sends it. All or nothing: errs.Mem when len(data) exceeds SndBuf(), the queue length would
// exceed TCPSndQueueLen, or memory is short; errs.Conn if the connection cannot send (not
// yet connected is fine from SYN-SENT on; after Shutdown(tx) or Close it is errs.Conn).
func (c *PCB) Write(data []byte, flags WriteFlags) error {
	c.assertCore()
	if !c.usable() || !c.canSend() {
		return errs.Conn
	}
	gen := c.enter()
	defer c.leave(gen)
	n := len(data)
	if n == 0 {
		return nil
	}
	if n > c.sndRoom() {
		return errs.Mem
	}
	t := c.t
	if flags&WriteCopy == 0 {
		if c.sndq.n+1 > t.opts.TCPSndQueueLen {
			return errs.Mem
		}
		p, err := t.alloc.AllocRef(data, pbuf.REF, nil)
		if err != nil {
			t.st.Memerr++
			return errs.Mem
		}
		s := t.newSeg()
		if s == nil {
			p.Free()
			t.st.Memerr++
			return errs.Mem
		}
		s.p, s.len, s.cap = p, int32(n), int32(n)
		c.appendRecord(s, flags)
		return nil
	}
	// Copy: first into the spare room of the last record, then into new RAM pbufs. Send
	// data may not take the heap's last bytes: segment headers come from it too, and
	// without them nothing queued could leave to be acknowledged.
	if hs := t.alloc.HeapStats(); hs.Avail-hs.Used-n < sendReserve(hs) {
		t.st.Memerr++
		return errs.Mem
	}
	var tailRoom int
	tail := c.sndq.tail
	if tail != nil && tail.flags&sOwned != 0 {
		tailRoom = int(tail.cap - tail.off - tail.len)
	}
	rest := n - min(tailRoom, n)
	var recs segQueue
	for rest > 0 {
		if c.sndq.n+recs.n+1 > t.opts.TCPSndQueueLen {
			t.freeQueue(&recs)
			return errs.Mem
		}
		size := min(rest, pbuf.MaxRAMBlock)
		capacity := size
		if size < 1024 {
			// Small writes leave room for the next ones (Nagle coalesces them anyway).
			capacity = 1024
		}
		p, err := t.alloc.Alloc(pbuf.LayerRaw, capacity, pbuf.RAM)
		if err == nil && p.Next() != nil {
			// The heap had no single block: use the first one only.
			q := p.Dechain()
			q.Free()
		}
		if err != nil {
			t.freeQueue(&recs)
			t.st.Memerr++
			return errs.Mem
		}
		s := t.newSeg()
		if s == nil {
			p.Free()
			t.freeQueue(&recs)
			t.st.Memerr++
			return errs.Mem
		}
		s.p, s.cap, s.flags = p, int32(p.Len()), sOwned
		s.len = int32(min(rest, p.Len()))
		rest -= int(s.len)
		recs.push(s)
	}
	// Everything is allocated: copy and link.
	off := 0
	if tailRoom > 0 {
		k := min(tailRoom, n)
		copy(tail.p.Payload()[tail.off+tail.len:], data[:k])
		tail.len += int32(k)
		c.sndEnd += uint32(k)
		c.addSndUsed(k)
		off = k
		if c.pos == nil && seqLT(c.sndNxt, tail.seq+uint32(tail.len)) {
			c.pos = tail
		}
	}
	for s := recs.pop(); s != nil; s = recs.pop() {
		copy(s.p.Payload(), data[off:off+int(s.len)])
		off += int(s.len)
		c.appendRecord(s, flags)
	}
	c.setWriteFlags(flags)
	return nil
}

// appendRecord links a filled send-queue record at the end.
func (c *PCB) appendRecord(s *seg, flags WriteFlags) {
	s.seq = c.sndEnd
	c.sndq.push(s)
	c.sndEnd += uint32(s.len)
	c.addSndUsed(int(s.len))
	if c.pos == nil && seqLT(c.sndNxt, c.sndEnd) {
		c.pos = s
	}
	c.setWriteFlags(flags)
}

func (c *PCB) setWriteFlags(flags WriteFlags) {
	if flags&WriteMore != 0 {
		c.flags |= fMore
	} else {
		c.flags &^= fMore
		c.pushSeq = c.sndEnd
	}
}

// WritePbuf queues chain p for sending without copying, taking ownership of p whatever the
// result (for the netconn layer). Same limits and errors as Write.
func (c *PCB) WritePbuf(p *pbuf.Pbuf, flags WriteFlags) error {
	c.assertCore()
	if p == nil {
		return nil
	}
	gen := c.enter()
	defer c.leave(gen)
	if !c.usable() || !c.canSend() {
		p.Free()
		return errs.Conn
	}
	n := p.TotLen()
	if n == 0 {
		p.Free()
		return nil
	}
	t := c.t
	if n > c.SndBuf() || c.sndq.n+countPbufs(p) > t.opts.TCPSndQueueLen {
		p.Free()
		return errs.Mem
	}
	var recs segQueue
	for q := p; q != nil; q = q.Next() {
		if q.Len() == 0 {
			continue
		}
		s := t.newSeg()
		if s == nil {
			t.freeQueue(&recs)
			p.Free()
			t.st.Memerr++
			return errs.Mem
		}
		recs.push(s)
	}
	// One record per pbuf: split the chain.
	s := recs.head
	for q := p; q != nil; {
		next := q.Dechain()
		if q.Len() == 0 {
			q.Free()
		} else {
			s.p, s.len, s.cap = q, int32(q.Len()), int32(q.Len())
			s = s.next
		}
		q = next
	}
	for s := recs.pop(); s != nil; s = recs.pop() {
		c.appendRecord(s, flags)
	}
	return nil
}

// Output sends what the windows allow now (lwIP tcp_output).
func (c *PCB) Output() error {
	c.assertCore()
	if c == nil || c.t == nil || c.flags&fDying != 0 {
		return errs.Conn
	}
	gen := c.enter()
	defer c.leave(gen)
	return c.output()
}

// Recved tells TCP the application consumed n bytes delivered by RecvFunc, reopening the
// receive window (lwIP tcp_recved).
func (c *PCB) Recved(n int) {
	c.assertCore()
	if c == nil || c.t == nil || c.flags&fDying != 0 {
		return
	}
	gen := c.enter()
	defer c.leave(gen)
	c.recved(n)
	if c.flags&fWndUpdate != 0 {
		c.flags &^= fWndUpdate
		c.output()
	}
}

// SndBuf returns the bytes Write may queue now (lwIP tcp_sndbuf): the send buffer's size
// (SndBufSize) less what is queued, and, while other connections hold send data too, no
// more than the connection's fair share of the heap (share.go); 0 while TCP_NOTSENT_LOWAT
// (SetNotSentLowat) or more bytes wait unsent.
func (c *PCB) SndBuf() int {
	c.assertCore()
	if c == nil || c.t == nil {
		return 0
	}
	gen := c.enter()
	defer c.leave(gen)
	return c.sndRoom()
}

// sndRoom is SndBuf; it counts SndShareClamped when the heap's fair share cuts it.
func (c *PCB) sndRoom() int {
	if c.lowatBlocks() {
		return 0
	}
	room := c.sndBufLim - c.sndBufUsed
	if room <= 0 {
		return 0
	}
	base := c.t.opts.TCPSndBuf
	autotuned := c.sndBufLim > base && room > base-c.sndBufUsed
	if !autotuned && c.t.sndHolders == 0 {
		return room // a lone sender within TCPSndBuf: promised, as in lwIP
	}
	hs := c.t.alloc.HeapStats()
	free := hs.Avail - hs.Used - sendReserve(hs)
	if autotuned {
		// What autotuning added beyond TCPSndBuf is offered only while the heap has room
		// for it above the reserve Write keeps; half of it, as copies take power-of-two
		// blocks.
		room = min(room, max(base-c.sndBufUsed, 0)+max(free/2, 0))
	}
	if lim := c.sndLimit(max(free, 0)); lim < room {
		c.t.ext.SndShareClamped++
		return lim
	}
	return max(room, 0)
}

// sendReserve is the heap that send data may not take: segment headers come from it too,
// and without them nothing queued could leave to be acknowledged.
func sendReserve(hs stats.Heap) int { return min(max(hs.Avail/16, 1024), hs.Avail/4) }

// SndBufSize returns the send buffer's size: TCPSndBuf at first, grown by autotuning
// towards twice the congestion window up to TCPMaxSndBuf, or what SetSndBuf set.
func (c *PCB) SndBufSize() int {
	c.assertCore()
	if c == nil || c.t == nil {
		return 0
	}
	return c.sndBufLim
}

// SetSndBuf fixes the send buffer at n bytes (SO_SNDBUF), at most the larger of TCPSndBuf
// and TCPMaxSndBuf; 0 restores autotuning from TCPSndBuf. Data already queued stays.
func (c *PCB) SetSndBuf(n int) {
	c.assertCore()
	if c.t == nil {
		return
	}
	gen := c.enter()
	defer c.leave(gen)
	o := c.t.opts
	c.sndUser = min(max(n, 0), max(o.TCPSndBuf, o.TCPMaxSndBuf))
	if c.sndUser > 0 {
		c.sndBufLim = c.sndUser
	} else {
		c.sndBufLim = o.TCPSndBuf
		c.growSndBuf()
	}
}

// growSndBuf grows the send buffer towards twice the congestion window (Linux
// tcp_sndbuf_expand): a connection keeps a window in flight and as much again queued, so
// the application refills it while the ACKs of the last one arrive. It never shrinks.
func (c *PCB) growSndBuf() {
	lim := c.t.opts.TCPMaxSndBuf
	if c.sndUser > 0 || c.sndBufLim >= lim {
		return
	}
	if want := 2 * c.cc.Cwnd(); want > c.sndBufLim {
		c.sndBufLim = min(want, lim)
	}
}

// SndQueueLen returns the pbufs queued for sending (lwIP tcp_sndqueuelen).
func (c *PCB) SndQueueLen() int {
	c.assertCore()
	if c == nil || c.t == nil {
		return 0
	}
	if c.pcbCold == nil {
		return 0 // parked: nothing queued
	}
	return c.sndq.n
}

// Close closes the connection in both directions (lwIP tcp_close): queued data is sent,
// then FIN; data arriving afterwards is answered with RST. After Close the PCB belongs to
// the stack: no callback fires again, and c must not be used again. A PCB in
// CLOSED or SYN-SENT is freed at once. Close never fails for lack of memory.
//
// Closing with received data the application has not consumed (Recved) resets the
// connection instead (RFC 1122 §4.2.2.13), as lwIP does.
func (c *PCB) Close() error {
	c.assertCore()
	if !c.usable() {
		return errs.Conn
	}
	if c.flags&fDeferred != 0 {
		c.RefuseSyn(true) // an undecided intercepted SYN: nothing to close but the client's attempt
		return nil
	}
	gen := c.enter()
	defer c.leave(gen)
	c.flags |= fAppClosed | fRxShut
	c.recvFn, c.sentFn, c.errFn, c.pollFn, c.connFn = nil, nil, nil, nil, nil
	c.pollAt = 0
	switch c.state {
	case StateClosed, StateSynSent:
		c.free()
		return nil
	case StateEstablished, StateCloseWait, StateSynReceived:
		if c.rcvUnread > 0 {
			c.sendRST(c.rstSeq(), c.rcvNxt, true)
			c.abandon(nil)
			return nil
		}
		c.shutdownTx()
	case StateFinWait2:
		// Our FIN is acknowledged already (Shutdown came first): the orphan waits for
		// the peer's FIN no longer than finWasAcked would have let it.
		if c.closeAt == 0 {
			c.closeAt = c.t.nowNs() + int64(2*c.t.opts.TCPMSL)
			c.schedule()
		}
	}
	c.output()
	return nil
}

// shutdownTx queues our FIN and moves the state on (RFC 9293 §3.10.4 CLOSE).
func (c *PCB) shutdownTx() {
	if c.flags&fFinQueued != 0 {
		return
	}
	switch c.state {
	case StateEstablished, StateSynReceived:
		c.flags |= fFinQueued
		if c.state == StateEstablished {
			c.setState(StateFinWait1)
		}
	case StateCloseWait:
		c.flags |= fFinQueued
		c.setState(StateLastAck)
	}
}

// Shutdown closes the receiving side (rx: further data is answered with RST, as lwIP's
// tcp_shutdown) and/or the sending side (tx: FIN after the queued data). Shutting both
// is Close.
func (c *PCB) Shutdown(rx, tx bool) error {
	c.assertCore()
	if !c.usable() {
		return errs.Conn
	}
	gen := c.enter()
	defer c.leave(gen)
	if rx && tx {
		return c.Close()
	}
	if rx {
		c.flags |= fRxShut
	}
	if tx {
		switch c.state {
		case StateEstablished, StateCloseWait, StateSynReceived:
			c.shutdownTx()
			c.output()
		default:
			return errs.Conn
		}
	}
	return nil
}

// Abort sends RST (if synchronized) and frees the PCB at once (lwIP tcp_abort); the ErrFunc
// is called with errs.Abrt. c must not be used after.
func (c *PCB) Abort() {
	c.assertCore()
	if c == nil || c.t == nil || c.flags&fDying != 0 {
		return
	}
	gen := c.enter()
	defer c.leave(gen)
	if c.synchronized() && c.state != StateTimeWait || c.state == StateSynReceived {
		c.sendRST(c.rstSeq(), c.rcvNxt, true)
	}
	c.abandon(errs.Abrt)
}

// SetArg sets the value Arg returns (lwIP tcp_arg).
func (c *PCB) SetArg(arg any) { setField(c, &c.arg, arg) }

// Arg returns the value set with SetArg.
func (c *PCB) Arg() any { return getField(c, &c.arg) }

// OnRecv sets the receive callback (lwIP tcp_recv).
func (c *PCB) OnRecv(fn RecvFunc) { setField(c, &c.recvFn, fn) }

// OnSent sets the sent callback (lwIP tcp_sent).
func (c *PCB) OnSent(fn SentFunc) { setField(c, &c.sentFn, fn) }

// OnErr sets the error callback (lwIP tcp_err).
func (c *PCB) OnErr(fn ErrFunc) { setField(c, &c.errFn, fn) }

// OnPoll sets the poll callback and its interval (lwIP tcp_poll); fn nil or every ≤ 0
// stops polling.
func (c *PCB) OnPoll(fn PollFunc, every time.Duration) {
	c.assertCore()
	if c.t == nil {
		return
	}
	gen := c.enter()
	defer c.leave(gen)
	c.pollFn, c.pollEvery = fn, every
	if fn == nil || every <= 0 {
		c.pollAt = 0
		return
	}
	c.pollAt = c.t.nowNs() + int64(every)
	c.schedule()
}

// SetNoDelay disables Nagle (TCP_NODELAY).
func (c *PCB) SetNoDelay(on bool) { c.setOption(fNoDelay, on) }

// NoDelay reports whether Nagle is off.
func (c *PCB) NoDelay() bool { return c.option(fNoDelay) }

// SetReuseAddr sets SO_REUSEADDR; call it before Bind. An accepted connection has its
// listener's.
func (c *PCB) SetReuseAddr(on bool) { c.setOption(fReuseAddr, on) }

// ReuseAddr reports SO_REUSEADDR.
func (c *PCB) ReuseAddr() bool { return c.option(fReuseAddr) }

// SetV6Only sets IPV6_V6ONLY for a PCB that will listen on "::": off (the default, as on
// Linux), the listener also accepts IPv4 connections (RFC 3493 §3.7); on, IPv6 only. An
// accepted connection has its listener's.
func (c *PCB) SetV6Only(on bool) { c.setOption(fV6Only, on) }

// V6Only reports IPV6_V6ONLY.
func (c *PCB) V6Only() bool { return c.option(fV6Only) }

// SetKeepAlive turns keepalive on or off (SO_KEEPALIVE) and sets its parameters
// (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT), which are kept while it is off; a zero
// duration or count keeps the current value (at first the Options').
func (c *PCB) SetKeepAlive(on bool, idle, intvl time.Duration, cnt int) {
	c.assertCore()
	if c.t == nil {
		return
	}
	gen := c.enter()
	defer c.leave(gen)
	if idle > 0 {
		c.keepIdle = idle
	}
	if intvl > 0 {
		c.keepIntvl = intvl
	}
	if cnt > 0 {
		c.keepCnt = cnt
	}
	if !on {
		c.flags &^= fKeepAlive
		c.keepAt = 0
		return
	}
	c.flags |= fKeepAlive
	if c.lastRecv == 0 {
		c.lastRecv = c.t.nowNs()
	}
	c.armKeepalive()
	c.schedule()
}

// KeepAlive returns what SetKeepAlive set.
func (c *PCB) KeepAlive() (on bool, idle, intvl time.Duration, cnt int) {
	c.assertCore()
	return c.flags&fKeepAlive != 0, c.keepIdle, c.keepIntvl, c.keepCnt
}

// SetRcvBuf caps the receive window (SO_RCVBUF); 0 restores autotuning. Before Connect or
// Listen it also sizes the window scale announced.
func (c *PCB) SetRcvBuf(n int) {
	c.assertCore()
	if c.t == nil {
		return
	}
	gen := c.enter()
	defer c.leave(gen)
	o := c.t.opts
	c.rcvUser = max(n, 0)
	if n > 0 {
		c.rcvBufMax = n
		c.rcvBuf = n
	} else {
		c.rcvBufMax = max(o.TCPMaxWnd, o.TCPWnd)
		c.rcvBuf = max(c.rcvBuf, o.TCPWnd)
	}
	if c.synchronized() || c.state == StateSynSent || c.state == StateSynReceived {
		// The scale is fixed by now: the window cannot grow past what it expresses.
		lim := 0xffff << c.rcvScale
		c.rcvBufMax, c.rcvBuf = min(c.rcvBufMax, lim), min(c.rcvBuf, lim)
	}
}

// BacklogDelayed keeps an accepted connection counted against its listener's backlog until
// BacklogAccepted (lwIP tcp_backlog_delayed / tcp_backlog_accepted): the netconn layer
// calls it while the connection waits in its accept mailbox.
func (c *PCB) BacklogDelayed() {
	c.assertCore()
	if c.t == nil || c.listener == nil {
		return
	}
	gen := c.enter()
	defer c.leave(gen)
	c.flags |= fBacklogDelayed
	if c.flags&fBacklog == 0 {
		c.flags |= fBacklog
		c.listener.pending++
	}
}

// BacklogAccepted ends BacklogDelayed.
func (c *PCB) BacklogAccepted() {
	c.assertCore()
	if c.t == nil {
		return
	}
	gen := c.enter()
	defer c.leave(gen)
	c.flags &^= fBacklogDelayed
	if c.flags&fBacklog != 0 && c.state != StateSynReceived {
		c.flags &^= fBacklog
		if c.listener != nil {
			c.listener.pending--
		}
	}
}

// State returns the connection's state.
func (c *PCB) State() State { return getField(c, &c.state) }

// LocalAddr returns the local address and port (the address may be unspecified before
// Connect).
func (c *PCB) LocalAddr() netip.AddrPort {
	c.assertCore()
	return c.localAP()
}

// RemoteAddr returns the peer's address and port.
func (c *PCB) RemoteAddr() netip.AddrPort {
	c.assertCore()
	return netip.AddrPortFrom(c.dst, c.rport)
}

func (c *PCB) localAP() netip.AddrPort  { return netip.AddrPortFrom(c.laddr, c.lport) }
func (c *PCB) remoteAP() netip.AddrPort { return netip.AddrPortFrom(c.raddr, c.rport) }

// Info returns a snapshot of the connection, like Linux's struct tcp_info.
func (c *PCB) Info() Info {
	c.assertCore()
	i := Info{State: c.state, MSS: c.mss, SndUna: c.sndUna, SndNxt: c.sndNxt, RcvNxt: c.rcvNxt,
		SndWnd: c.sndWnd, RcvWnd: int(int32(c.rcvAdv - c.rcvNxt)), SndWndScale: c.sndScale,
		RcvWndScale: c.rcvScale, SRTT: c.srtt, RTTVar: c.rttvar, RTO: c.rtoDuration(),
		Unacked: int(c.sndNxt - c.sndUna), Unsent: max(int(int32(c.sndEnd-c.sndNxt)), 0),
		Retransmits: c.rtxCount, SACK: c.flags&fSACK != 0, Timestamps: c.flags&fTS != 0,
		InRecovery: c.flags&(fInRecovery|fRTORecovery) != 0, Deferred: c.flags&fDeferred != 0}
	if i.RcvWnd < 0 {
		i.RcvWnd = 0
	}
	i.Local, i.Remote = c.localAP(), c.remoteAP()
	i.RcvUnread, i.SndBufSize = c.rcvUnread, c.sndBufLim
	i.BytesAcked, i.BytesReceived = c.bytesAcked(), c.bytesReceived()
	if c.pcbCold == nil {
		i.Cwnd, i.Ssthresh, i.Congestion = c.parkedWindow() // parked (cold.go)
		return i
	}
	if c.cc != nil {
		i.Cwnd, i.Ssthresh, i.Congestion = c.cc.Cwnd(), c.cc.Ssthresh(), c.cc.Name()
	}
	i.OOSegs, i.SndBuf = c.ooseq.n, c.sndBufUsed
	return i
}

// timersString names the deadlines c has armed, relative to now.
func (c *PCB) timersString(now int64) string {
	var b []byte
	add := func(name string, at int64) {
		if at == 0 {
			return
		}
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "%s=%v", name, time.Duration(at-now).Round(time.Millisecond))
	}
	d := c.deadlines()
	names := [...]string{"rto", "persist", "tlp", "reo", "delack", "keep", "poll", "close", "retry", "park"}
	if c.flags&fDeferred != 0 {
		names[7] = "defer" // closeAt is the host's deadline (intercept.go)
	}
	for i, name := range names {
		add(name, d[i])
	}
	return string(b)
}

// Conns calls fn with the Info of every connection (TIME-WAIT included), oldest first, with
// Timers filled in (Info leaves it empty: naming the timers allocates, and Info is read on
// every connect and accept); core context. fn must not call into TCP.
func (t *Proto) Conns(fn func(Info)) {
	t.EachConn(func(_ *PCB, i Info) { fn(i) })
}

// EachConn is Conns with each connection's PCB, for a caller that also asks the
// application it belongs to (Arg). fn may read the PCB (Arg, Info) but must not change
// it or call into TCP otherwise. Core context.
func (t *Proto) EachConn(fn func(*PCB, Info)) {
	t.timers.AssertCore()
	now := t.nowNs()
	for c := t.all.head; c != nil; c = c.all.next {
		i := c.Info()
		i.Timers = c.timersString(now)
		i.Pbufs, i.HeapBytes, i.OOBytes = c.memHeld()
		fn(c, i)
	}
}

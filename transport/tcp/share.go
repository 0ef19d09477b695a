package tcp

import (
	"time"

	"github.com/wispstack/wisp/pbuf"
)

// Fair shares of the stack's packet memory (lwIP's "pbuf starvation", Linux's tcp_mem
// pressure). All connections take their receive data from one PBUF_POOL and their send
// data from one heap. Left to first come, first served, a few connections whose readers
// stall (locally: the application stops reading; remotely: the peer's window is shut while
// the application keeps writing) would hold all of it, and every other connection would
// starve: no window for new data, no heap for a new request.
//
// So memory is granted by share, never revoked (queued data stays queued, and a window
// advertised to a connection that holds data is counted until it is filled):
//
//   - A connection may grow what it holds only to a fair part of what is left: with F
//     bytes free beyond the reserve and n other connections holding memory, c's holding
//     may reach (F + held)/(n + 1). Connections that stall keep what they hold and get no
//     more; each newcomer gets a part of what is left, so however many stall, their sum
//     never takes the last of the memory (it converges: F·n/(n+1) for n of them).
//   - A reserve (a quarter of the pool, an eighth of the heap) is kept for connections
//     that are moving, so a fresh transfer runs at close to full speed beside any number of
//     stalled ones. Receive: connections whose application consumed data within
//     movingWindow share what is free down to the last thirty-second of the pool (which
//     no window grants), readers that do not read never hold it (rxAdmit), and every
//     connection gets two segments of window. Send: the reserve backs only data that fits
//     the peer's current window, which the peer's TCP acknowledges whether or not its
//     application reads, so the reserve always comes back.
//   - Windows of connections that hold nothing are not counted (thousands of idle windows
//     would leave none for anybody); when many are filled at once and the pool nears its
//     floors, rxAdmit drops data and counts it (RcvPruned) rather than let the link starve. Handshakes, ACKs and control
//     segments never wait for a share: they take a header pbuf or a small heap block from
//     the part the send path already keeps (sendReserve).
//   - With no other connection holding memory, nothing changes: a lone connection gets
//     what the pool and the heap allow, as before.
//
// The counts (Proto.rxHolders, Proto.sndHolders) are kept exactly as bytes come and go;
// free memory is read from the pool and heap statistics.

// movingWindow is the epoch of the moving-reader count: an application that consumed
// received data in this epoch or the last one makes its connection moving (so it may draw
// on the receive reserve, sharing it with the other moving ones).
const movingWindow = int64(500 * time.Millisecond)

// moverCount is the number of connections whose application consumed data in the current
// movingWindow epoch, and in the one before.
type moverCount struct {
	epoch     int64
	cur, prev int
}

// roll moves the count to epoch ep.
func (m *moverCount) roll(ep int64) {
	switch {
	case ep == m.epoch:
		return
	case ep == m.epoch+1:
		m.prev = m.cur
	default:
		m.prev = 0
	}
	m.cur, m.epoch = 0, ep
}

// noteRead records that c's application consumed data now.
func (c *PCB) noteRead() {
	t := c.t
	ep := t.nowNs() / movingWindow
	t.movers.roll(ep)
	if c.readEpoch != ep {
		c.readEpoch = ep
		t.movers.cur++
	}
}

// moving reports whether c's application consumed data in this epoch or the last, and how
// many connections are moving.
func (c *PCB) moving() (bool, int) {
	t := c.t
	ep := t.nowNs() / movingWindow
	t.movers.roll(ep)
	if c.readEpoch == 0 || c.readEpoch < ep-1 {
		return false, 0
	}
	return true, max(t.movers.cur, t.movers.prev, 1)
}

// setUnread sets c.rcvUnread, keeping Proto.rxHolders (connections holding received data
// the application has not consumed) in step.
func (c *PCB) setUnread(v int) {
	setHeld(&c.rcvUnread, v, &c.t.rxHolders)
	c.syncPromise()
}

// addSndUsed adds d (may be negative) to c.sndBufUsed, keeping Proto.sndHolders
// (connections with send data queued) in step.
func (c *PCB) addSndUsed(d int) { setHeld(&c.sndBufUsed, c.sndBufUsed+d, &c.t.sndHolders) }

// setHeld sets *n to v, keeping *holders, the number of connections whose n is above 0,
// in step.
func setHeld(n *int, v int, holders *int) {
	if (*n > 0) != (v > 0) {
		if v > 0 {
			*holders++
		} else {
			*holders--
		}
	}
	*n = v
}

// syncPromise records in Proto.rxPromised the window c has advertised and not yet received
// (RCV.ADV - RCV.NXT): memory promised to the peer that every other connection's share
// must leave alone. Only connections holding unconsumed data count: an idle connection's
// window (or one whose application keeps up) is not money in the bank, and counting every
// window of thousands of connections would leave none for anybody; what such windows may
// still bring at once is what the reserve absorbs. Called wherever an edge or the unread
// count moves.
func (c *PCB) syncPromise() {
	p := int(int32(c.rcvAdv - c.rcvNxt))
	if p < 0 || p > 1<<30 || c.rcvUnread == 0 {
		p = 0
	}
	c.t.rxPromised += p - c.rxProm
	c.rxProm = p
}

// releaseShares forgets what a PCB that is being freed held in the share counts.
func (c *PCB) releaseShares() {
	c.setUnread(0)
	if c.pcbCold != nil {
		c.addSndUsed(-c.sndBufUsed)
	}
	c.t.rxPromised -= c.rxProm
	c.rxProm = 0
}

// fairShare is what a connection holding held bytes may add when free bytes are left,
// reserve of them are the reserve, and others connections hold memory besides it: its
// part of what is left beyond the reserve. movers > 0 says it is moving, one of movers
// that share what is free beyond floor, most of the reserve included (each at most half).
func fairShare(free, reserve, floor, held, others, movers int) int {
	shared := max(free-reserve, 0)
	lim := (shared+held)/(others+1) - held
	if movers > 0 {
		lim = max(lim, (max(free-floor, 0)+held)/(movers+1)-held)
	}
	return max(lim, 0)
}

// rxLimit is the receive window the stack's free POOL memory allows c to advertise now.
func (c *PCB) rxLimit() int {
	t := c.t
	if t.rxPool == nil {
		return 1 << 30
	}
	if t.rxMemCalls&15 == 0 || t.rxHolders > 0 || t.rxMemFree < t.rxMemAvail/4 {
		// The pool's counters sit behind its mutex: without contention they are reread
		// every 16 calls (a window a few segments stale is harmless); with connections
		// holding data, or the last reading low, on every call: each share depends on
		// it, and a stale low reading on a quiet stack (whose only calls are answers to
		// persist probes, backing off) would keep its windows under a segment for good.
		st := t.rxPool.Stats()
		t.rxMemFree, t.rxMemAvail = st.Avail-st.Used, st.Avail
	}
	t.rxMemCalls++
	// Payload bytes per pool chunk for segments of advMSS.
	mss := c.advMSS
	bufs := max((mss+pbuf.LinkHeaderRoom+120+t.alloc.PoolBufSize()-1)/t.alloc.PoolBufSize(), 1)
	toBytes := func(chunks int) int { return chunks / bufs * mss }
	// What other connections' windows promised and has not arrived yet is not free.
	phys := toBytes(max(t.rxMemFree, 0))
	free := max(phys-(t.rxPromised-c.rxProm), 0)
	// The reserve is a quarter of the pool; moving connections may use all of it but the
	// pool's last thirty-second (the floor), which no window grants: what movers hold when
	// they all stall at once (a proxy whose clients stopped reading) must still leave room
	// for the next connection's first segments (rxAdmit takes those down to 1/64).
	reserve, floor := toBytes(t.rxMemAvail/4), toBytes(t.rxMemAvail/32)
	others := t.rxHolders
	if c.rcvUnread > 0 {
		others--
	}
	_, movers := c.moving()
	lim := fairShare(free, reserve, floor, c.rcvUnread, others, movers)
	if c.rcvUnread == 0 && movers == 0 {
		// The window of a connection that holds nothing is not counted as a promise
		// (syncPromise), so it is kept to an equal part of the pool among all connections:
		// a thousand connections that start at once cannot promise the pool many times.
		lim = min(lim, phys/max(t.all.n, 1))
	}
	if c.rcvUnread < 2*mss {
		// A connection may always hold two segments while the pool has them (promises
		// aside: they may be windows never used, and a start must not wait for them).
		// A new connection can start, and one whose application reads never sits on a
		// window too small to reopen: a window under a segment would leave its sender
		// to persist probes, and the receiver's SWS avoidance moves the right edge only
		// by a full segment, so the floor is two segments of window, not of holding.
		// rxAdmit keeps these floors from taking the pool's last chunks when thousands
		// of connections claim them at once.
		lim = max(lim, min(2*mss, phys))
	}
	return lim
}

// rxAdmit reports whether a data segment for c may be kept: always while the reserve (a
// quarter of the pool) is free; within the reserve, down to a thirty-second, for a
// connection that is moving or holds nothing; down to a sixty-fourth for one that holds
// nothing (a new connection's first segments); never below that (the last chunks are for
// handshakes, ACKs and frames the link is receiving). So readers that do not read never
// hold the reserve, whatever their floors and first windows promised. Windows are granted by share, so this only bites when
// many connections were given windows at once (their first windows are not counted as
// promises): what they send then is dropped and counted, never held for good.
func (c *PCB) rxAdmit() bool {
	t := c.t
	if t.rxPool == nil || t.rxMemFree >= t.rxMemAvail/4 {
		// Far from the floors by the last reading (rxLimit rereads the pool on every
		// window while anyone holds data): no need to take the pool's lock per segment.
		return true
	}
	st := t.rxPool.Stats()
	free := st.Avail - st.Used
	switch {
	case free >= st.Avail/4:
		return true
	case free >= st.Avail/32:
		moving, _ := c.moving()
		return moving || c.rcvUnread == 0
	case free >= st.Avail/64:
		return c.rcvUnread == 0
	}
	return false
}

// sndLimit is what c may add to its send queue now under the heap's fair shares; a lone
// sender (no other connection has data queued) is not limited here.
func (c *PCB) sndLimit(free int) int {
	t := c.t
	others := t.sndHolders
	if c.sndBufUsed > 0 {
		others--
	}
	if others <= 0 {
		return 1 << 30
	}
	hs := t.alloc.HeapStats()
	lim := fairShare(free, hs.Avail/8, 0, c.sndBufUsed, others, 0)
	// The reserve backs only data the peer's window takes now: that data leaves and is
	// acknowledged by the peer's TCP even if the peer's application stops reading, so what
	// the reserve lends always comes back. A connection whose peer keeps its window open
	// (a moving one, a new one) runs on it however many others have stalled.
	lim = max(lim, min(c.sndWnd, free)-c.sndBufUsed)
	if c.sndBufUsed == 0 {
		// And one segment always: with something queued, a closed window is probed
		// (persist) until it opens; with nothing, the sender would wait for a window
		// update the receiver may never send.
		lim = max(lim, min(c.mss, free))
	}
	return lim
}

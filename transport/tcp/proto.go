package tcp

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
)

// Proto is one stack's TCP: its PCB tables, pools and counters. It implements ip.Transport;
// the stack registers it for protocol 6.
//
// Demultiplexing never grows: connections hang in a fixed array of bucket heads indexed by a
// keyed hash of the 4-tuple (chain links live in the PCB), listeners in a fixed array indexed
// by local port, and a one-entry cache remembers the last PCB that took a segment.
type Proto struct {
	opts   opt.Options
	ip     *ip.Layer
	alloc  *pbuf.Allocator
	timers *clock.Timeouts
	pools  *memp.Table
	keys   keys
	rxPool memp.Stater // PBUF_POOL, whose free chunks bound every receive window

	pcbs      *memp.Pool[PCB]
	listeners *memp.Pool[Listener]
	segs      *memp.Pool[seg]
	// colds holds the PCBs' cold parts (cold.go): one per TCP_PCB slot, so taking one
	// never fails, and counted in TCP_PCB's element size (coldExtra) rather than as a pool
	// of its own.
	colds *memp.Pool[pcbCold]
	// gens counts how often each TCP_PCB slot was freed, so code that ran a callback can tell
	// whether its PCB is still the same connection (memp.Put zeroes the PCB itself).
	gens []uint32

	conns     []*PCB // connection hash buckets (SYN-SENT and later, TIME-WAIT included)
	connMask  uint32
	lbuckets  []*Listener // listener buckets by local port
	lmask     uint32
	icept     *Listener // the intercept listener (ListenIntercept), or nil
	last      *PCB      // demux cache
	hashKey   [2]uint64
	all       pcbList    // every PCB in use, any state
	timeWait  pcbList    // TIME-WAIT PCBs, oldest first (recycled first when TCP_PCB runs out)
	halfOpen  pcbList    // listeners' SYN-RECEIVED PCBs, oldest first (reaped after TIME-WAIT and orphans)
	deferred  pcbList    // undecided intercepted PCBs (fDeferred), oldest first (refused last, intercept.go)
	nextEphem uint32     // RFC 6056 Algorithm 3's next_ephemeral
	portOK    PortFilter // ephemeral ports this core may pick (SetPortFilter); nil: any
	boundIdle int        // bound PCBs still CLOSED (ephemeral port checks skip the scan when 0)

	// RFC 5961 §7: challenge ACKs are limited stack-wide per second.
	challengeSec   int64
	challengeCount int

	epoch time.Time // origin of the ns timestamps kept per segment

	st  stats.Proto
	ext stats.TCPExt

	in     segIn // storage of the segment being processed (Input passes it on; one at a time)
	closed bool

	// An input batch (BeginBatch..EndBatch): the ACKs the every-second-segment rule owes
	// wait in ackq for its end. Fixed capacity: a full queue ACKs at once.
	batching bool
	ackq     []ackRef

	clockCached bool
	cachedNow   time.Time
	cachedNs    int64
	rxMemCalls  int // rxLimit rereads the pool's counters every few calls
	rxMemFree   int // free PBUF_POOL chunks at the last read
	rxMemAvail  int // PBUF_POOL size

	// Fair shares (share.go): connections holding received data the application has not
	// consumed, and connections with send data queued.
	rxHolders, sndHolders int
	rxPromised            int // bytes of advertised windows not yet received, all connections
	movers                moverCount
}

// New creates the TCP of a stack and registers its pools (TCP_PCB, TCP_PCB_LISTEN and
// TCP_SEG) in c.Pools. c.Seed keys ISNs (RFC 6528), SYN cookies and ephemeral port choice
// (RFC 6056); tests set it for determinism, the stack draws it from crypto/rand otherwise.
func New(c ip.TransportConfig) (*Proto, error) {
	if c.IP == nil || c.Alloc == nil || c.Timers == nil {
		return nil, errs.Val
	}
	o := c.Options
	t := &Proto{
		opts:      o,
		ip:        c.IP,
		alloc:     c.Alloc,
		timers:    c.Timers,
		pools:     c.Pools,
		keys:      newKeys(c.Seed),
		pcbs:      memp.NewLazy[PCB](memp.TCPPCB, o.MempNumTCPPCB, coldExtra), // made as connections need them
		colds:     memp.NewLazy[pcbCold](memp.TCPPCB, o.MempNumTCPPCB, 0),
		listeners: memp.New[Listener](memp.TCPPCBListen, o.MempNumTCPPCBListen, 0),
		segs:      memp.NewLazy[seg](memp.TCPSeg, o.MempNumTCPSeg, 0), // an idle stack holds none
		gens:      make([]uint32, o.MempNumTCPPCB),
		epoch:     c.Timers.Now(),
		ackq:      make([]ackRef, 0, ackBatchMax),
	}
	n := nextPow2(max(o.MempNumTCPPCB, 16))
	t.conns = make([]*PCB, n)
	t.connMask = uint32(n - 1)
	ln := nextPow2(max(2*o.MempNumTCPPCBListen, 16))
	t.lbuckets = make([]*Listener, ln)
	t.lmask = uint32(ln - 1)
	// The demux hash key and the ephemeral port counter derive from the seed too: a
	// predictable hash would let a peer aim its 4-tuples at one bucket.
	s := splitmix(c.Seed ^ 0x7463702d64656d75)
	t.hashKey[0] = s
	s = splitmix(s)
	t.hashKey[1] = s
	t.nextEphem = uint32(splitmix(s))
	if c.Pools != nil {
		t.rxPool = c.Pools.Lookup(memp.PbufPool)
		c.Pools.Register(memp.TCPPCB, t.pcbs)
		c.Pools.Register(memp.TCPPCBListen, t.listeners)
		c.Pools.Register(memp.TCPSeg, t.segs)
	}
	t.challengeSec = -1
	t.timeWait.tw = true
	t.halfOpen.tw = true
	t.deferred.tw = true
	return t, nil
}

// PoolDecls declares the pools New creates for options o, for the budget report.
func PoolDecls(o opt.Options) []memp.Decl {
	return []memp.Decl{
		memp.DeclFor[PCB](memp.TCPPCB, o.MempNumTCPPCB, coldExtra),
		memp.DeclFor[Listener](memp.TCPPCBListen, o.MempNumTCPPCBListen, 0),
		memp.DeclFor[seg](memp.TCPSeg, o.MempNumTCPSeg, 0),
	}
}

// TableDecls declares the fixed tables New allocates beside its pools (demux buckets and
// per-PCB generation counters), for the budget report.
func TableDecls(o opt.Options) []memp.TableDecl {
	return []memp.TableDecl{
		memp.TableDeclFor[*PCB]("TCP_CONN_HASH", nextPow2(max(o.MempNumTCPPCB, 16))),
		memp.TableDeclFor[*Listener]("TCP_LISTEN_HASH", nextPow2(max(2*o.MempNumTCPPCBListen, 16))),
		memp.TableDeclFor[uint32]("TCP_PCB_GEN", o.MempNumTCPPCB),
	}
}

// Close aborts every connection (err callbacks get errs.Abrt), closes every listener and
// frees every pbuf TCP holds. The stack calls it on Close.
func (t *Proto) Close() {
	t.timers.AssertCore()
	if t.closed {
		return
	}
	t.closed = true
	for c := t.all.head; c != nil; {
		next := c.all.next
		if c.state != StateClosed && c.state != StateTimeWait && c.state != StateSynSent && c.state != StateListen {
			c.sendRST(c.rstSeq(), c.rcvNxt, true)
		}
		c.abandon(errs.Abrt)
		c = next
	}
	for _, l := range t.lbuckets {
		for l != nil {
			next := l.hnext
			l.free()
			l = next
		}
	}
	if t.icept != nil {
		t.icept.free()
	}
}

// Stats adds TCP's counters into s (s.TCP and s.TCPExt).
func (t *Proto) Stats(s *stats.Snapshot) {
	t.timers.AssertCore()
	s.TCP.Add(&t.st)
	s.TCPExt.Add(&t.ext)
}

// NumPCBs returns the connections in use (TIME-WAIT included) and the listeners.
func (t *Proto) NumPCBs() (conns, listeners int) {
	t.timers.AssertCore()
	return t.pcbs.Stats().Used, t.listeners.Stats().Used
}

// now is the core's time, TCP's only time source (nowNs is the same instant in
// nanoseconds). While a segment, a batch or a timer is processed (holdClock) the time read
// at its start is reused: reading the clock per segment sent would cost more than the rest
// of the bookkeeping. Elsewhere (an API call) it is read fresh, never taken from the last
// segment received.
func (t *Proto) now() time.Time {
	if t.clockCached {
		return t.cachedNow
	}
	return t.timers.Now()
}

// nowNs is now as nanoseconds since the epoch.
func (t *Proto) nowNs() int64 {
	if t.clockCached {
		return t.cachedNs
	}
	return t.nanos(t.timers.Now())
}

// holdClock caches the time until releaseClock; it reports whether it did (nested holds
// keep the outer time).
func (t *Proto) holdClock() bool {
	if t.clockCached {
		return false
	}
	t.cachedNow = t.timers.Now()
	t.cachedNs = t.nanos(t.cachedNow)
	t.clockCached = true
	return true
}

func (t *Proto) releaseClock(held bool) {
	if held {
		t.clockCached = false
	}
}

// nanos is now as nanoseconds since the Proto's epoch (what segments record).
func (t *Proto) nanos(now time.Time) int64 { return int64(now.Sub(t.epoch)) }

// hash4 is the keyed demux hash of a 4-tuple (addresses without zones).
func (t *Proto) hash4(laddr, raddr netip.Addr, lport, rport uint16) uint32 {
	l, r := laddr.As16(), raddr.As16()
	x := t.hashKey[0] ^ binary.LittleEndian.Uint64(l[0:8])
	x = mix64(x) ^ binary.LittleEndian.Uint64(l[8:16])
	x = mix64(x) ^ binary.LittleEndian.Uint64(r[0:8])
	x = mix64(x) ^ binary.LittleEndian.Uint64(r[8:16])
	x = mix64(x^t.hashKey[1]) ^ uint64(lport)<<16 ^ uint64(rport)
	return uint32(mix64(x))
}

func mix64(x uint64) uint64 {
	x ^= x >> 31
	x *= 0x7fb5d329728ea185
	x ^= x >> 27
	x *= 0x81dadef4bc2dd44d
	x ^= x >> 33
	return x
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	z := x
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func nextPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// lookupConn finds the connection for a segment from raddr:rport to laddr:lport.
func (t *Proto) lookupConn(laddr, raddr netip.Addr, lport, rport uint16) *PCB {
	if c := t.last; c != nil && c.lport == lport && c.rport == rport && c.raddr == raddr && c.laddr == laddr {
		t.st.Cachehit++
		return c
	}
	h := t.hash4(laddr, raddr, lport, rport)
	for c := t.conns[h&t.connMask]; c != nil; c = c.hnext {
		if c.hash == h && c.lport == lport && c.rport == rport && c.raddr == raddr && c.laddr == laddr {
			t.last = c
			return c
		}
	}
	return nil
}

// hashInsert puts c (with its 4-tuple set) into the connection table.
func (t *Proto) hashInsert(c *PCB) {
	c.hash = t.hash4(c.laddr, c.raddr, c.lport, c.rport)
	b := &t.conns[c.hash&t.connMask]
	c.hnext = *b
	*b = c
	c.flags |= fHashed
}

// hashRemove takes c out of the connection table.
func (t *Proto) hashRemove(c *PCB) {
	if c.flags&fHashed == 0 {
		return
	}
	for pp := &t.conns[c.hash&t.connMask]; *pp != nil; pp = &(*pp).hnext {
		if *pp == c {
			*pp = c.hnext
			break
		}
	}
	c.hnext = nil
	c.flags &^= fHashed
	if t.last == c {
		t.last = nil
	}
}

// lookupListener finds the listener for a segment to laddr:lport: an exact address match
// first, then a wildcard of the same family, then a dual-stack wildcard (no address, or
// "::" without V6Only, which hears IPv4 as well, RFC 3493 §3.7).
func (t *Proto) lookupListener(laddr netip.Addr, lport uint16) *Listener {
	var wild, dual *Listener
	for l := t.lbuckets[uint32(lport)&t.lmask]; l != nil; l = l.hnext {
		if l.local.Port() != lport {
			continue
		}
		a := l.local.Addr()
		switch {
		case a == laddr:
			return l
		case a.IsUnspecified() && a.Is4() == laddr.Is4():
			wild = l
		case !a.IsValid() || a.IsUnspecified() && a.Is6() && l.flags&fV6Only == 0:
			dual = l
		}
	}
	if wild != nil {
		return wild
	}
	return dual
}

// listenerFor finds the listener for a segment that matched no connection: the intercept
// listener (or none) for an intercepted packet, an ordinary listener for any other. An
// ordinary listener never hears an intercepted packet, nor the intercept listener a local one.
func (t *Proto) listenerFor(h *ip.Header, lport uint16) *Listener {
	if h.Intercepted {
		return t.icept
	}
	return t.lookupListener(h.Dst, lport)
}

// pcbLink is one PCB's place in a pcbList.
type pcbLink struct{ next, prev *PCB }

// pcbList is an intrusive doubly linked list of PCBs. A PCB is on two lists at once (all,
// and timeWait, halfOpen or deferred), each through its own pcbLink, which link picks.
type pcbList struct {
	head, tail *PCB
	n          int
	tw         bool // the list links through PCB.tw rather than PCB.all
}

func (l *pcbList) link(c *PCB) *pcbLink {
	if l.tw {
		return &c.tw
	}
	return &c.all
}

func (l *pcbList) push(c *PCB) {
	*l.link(c) = pcbLink{prev: l.tail}
	if l.tail != nil {
		l.link(l.tail).next = c
	} else {
		l.head = c
	}
	l.tail = c
	l.n++
}

func (l *pcbList) remove(c *PCB) {
	lk := l.link(c)
	if lk.prev != nil {
		l.link(lk.prev).next = lk.next
	} else {
		l.head = lk.next
	}
	if lk.next != nil {
		l.link(lk.next).prev = lk.prev
	} else {
		l.tail = lk.prev
	}
	*lk = pcbLink{}
	l.n--
}

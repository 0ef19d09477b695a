package frag

import (
	"net/netip"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
)

// MaxDatagramLen is the largest IPv4 total length and IPv6 payload length (16-bit fields).
const MaxDatagramLen = 65535

// Config sizes a Reassembler (the stack fills it from opt.Options).
type Config struct {
	Alloc  *pbuf.Allocator
	Timers *clock.Timeouts
	// Pools receives the REASSDATA and FRAG_PBUF pools (nil allowed in tests).
	Pools *memp.Table
	// MaxDatagrams is opt.MempNumReassData: datagrams under reassembly at once, IPv4 and
	// IPv6 together. 0 disables reassembly (only atomic fragments pass).
	MaxDatagrams int
	// MaxPbufs is opt.IPReassMaxPbufs: pbufs held by all datagrams under reassembly (a
	// fragment chain of k pbufs counts k).
	MaxPbufs int
	// MaxAge is opt.IPReassMaxAge: how long an incomplete datagram is kept, counted from
	// its first fragment's arrival.
	MaxAge time.Duration
	// MaxFragPbufs is opt.MempNumFragPbuf: the FRAG_PBUF header pool of r.Fragmenter().
	MaxFragPbufs int
	// Expired is called (core context) when an incomplete datagram times out and its first
	// fragment (offset 0) had arrived, so the IP layer can send ICMP Time Exceeded code 1
	// (RFC 792, RFC 8200 §4.5). first is borrowed: the first fragment's packet with its IP
	// header, valid only during the call.
	Expired func(key Key, first *pbuf.Pbuf)
}

// Key identifies the datagram a fragment belongs to: for IPv4 source, destination,
// protocol and identification (RFC 791 §3.2); for IPv6 source, destination and
// identification (RFC 8200 §4.5): Input ignores Proto for IPv6.
type Key struct {
	V6       bool
	Src, Dst netip.Addr
	ID       uint32
	Proto    uint8
}

// fragment is one received fragment held by a datagram, from the fragment pool.
type fragment struct {
	p          *pbuf.Pbuf // owned; data only, except the offset-0 fragment keeps its headers
	hdr        int        // header bytes in front of the data in p (offset-0 fragment only)
	start, end int        // data byte range [start, end) of the original payload
	npbuf      int        // pbufs of p, counted against MaxPbufs
	prev, next *fragment  // sorted by start, no two overlapping
}

// datagram is one datagram under reassembly, from the REASSDATA pool.
type datagram struct {
	key         Key
	first, last *fragment // sorted fragments
	prev, next  *datagram // age list, oldest first (deadlines ascend: MaxAge is constant)
	deadline    time.Time
	have        int    // data bytes held; no overlaps, so the datagram is complete when have == total
	total       int    // payload length, -1 until the last fragment (MF clear) arrives
	npbuf       int    // pbufs held
	dead        bool   // discarded after an overlap (RFC 5722): later fragments are dropped too
	deadWhy     reason // why it was discarded: reasonProto (overlap) or reasonLen (too big)
}

// Reassembler holds the datagrams under reassembly. Core context only.
type Reassembler struct {
	cfg         Config
	dgrams      *memp.Pool[datagram]
	frags       *memp.Pool[fragment]
	head, tail  *datagram // age list
	pending     int
	held        int // pbufs held by all datagrams
	tmo         clock.Timeout
	fragmenter  *Fragmenter
	all, v4, v6 stats.Proto
	closed      bool
}

// NewReassembler builds a Reassembler and its Fragmenter, registering the REASSDATA and
// FRAG_PBUF pools in cfg.Pools. The fragment descriptors (one per held fragment, at most
// MaxPbufs) are accounted inside REASSDATA's element size so the memory budget sees them.
func NewReassembler(cfg Config) (*Reassembler, error) {
	if cfg.Alloc == nil || cfg.MaxDatagrams < 0 || cfg.MaxPbufs < 0 || cfg.MaxFragPbufs < 0 {
		return nil, errs.Val
	}
	if cfg.MaxDatagrams > 0 && (cfg.Timers == nil || cfg.MaxPbufs < 1 || cfg.MaxAge <= 0) {
		return nil, errs.Val
	}
	nfrag := 0
	if cfg.MaxDatagrams > 0 {
		nfrag = cfg.MaxPbufs
	}
	r := &Reassembler{
		cfg:    cfg,
		dgrams: memp.New[datagram](memp.ReassData, cfg.MaxDatagrams, 0),
		frags:  memp.New[fragment](memp.ReassFrag, nfrag, 0),
	}
	r.tmo.Init(r.expire)
	r.fragmenter = NewFragmenter(cfg.Alloc, cfg.Pools, cfg.MaxFragPbufs)
	if cfg.Pools != nil {
		cfg.Pools.Register(memp.ReassData, r.dgrams)
		cfg.Pools.Register(memp.ReassFrag, r.frags)
	}
	return r, nil
}

// Fragmenter returns the Fragmenter sharing r's configuration (its FRAG_PBUF pool has
// cfg.MaxFragPbufs headers and is registered in cfg.Pools).
func (r *Reassembler) Fragmenter() *Fragmenter { return r.fragmenter }

// Stats returns the counters of IPv4 and IPv6 together: Recv per fragment, Drop per fragment
// dropped (when a datagram is discarded, each fragment it held), and one reason per drop:
// Lenerr (misaligned, too big, inconsistent, bad header length), Proterr (overlap, RFC
// 5722, and fragments of a datagram discarded for one), Memerr (pool or MaxPbufs exhausted,
// eviction), Err (timeout, exact duplicate). Xmit is counted by Split's callers (AddXmit).
func (r *Reassembler) Stats() *stats.Proto { return &r.all }

// Stats4 returns the IPv4 counters (stats.Snapshot.IPFrag).
func (r *Reassembler) Stats4() *stats.Proto { return &r.v4 }

// Stats6 returns the IPv6 counters (stats.Snapshot.IP6Frag).
func (r *Reassembler) Stats6() *stats.Proto { return &r.v6 }

// AddXmit counts n fragments sent for a datagram split with Split.
func (r *Reassembler) AddXmit(v6 bool, n int) {
	r.all.Xmit += uint64(n)
	r.fam(v6).Xmit += uint64(n)
}

// Pending returns how many datagrams are under reassembly (including datagrams discarded
// after an overlap whose later fragments are still being dropped).
func (r *Reassembler) Pending() int { return r.pending }

// HeldPbufs returns the pbufs held by all datagrams under reassembly.
func (r *Reassembler) HeldPbufs() int { return r.held }

// Close frees every datagram under reassembly and cancels the timer. Later Inputs are
// dropped with errs.Clsd. Core context.
func (r *Reassembler) Close() {
	for e := r.head; e != nil; e = r.head {
		r.unlink(e)
		r.freeFrags(e, reasonNone)
		r.dgrams.Put(e)
	}
	if r.cfg.Timers != nil {
		r.cfg.Timers.Cancel(&r.tmo)
	}
	r.closed = true
}

func (r *Reassembler) fam(v6 bool) *stats.Proto {
	if v6 {
		return &r.v6
	}
	return &r.v4
}

// reason is why fragments are dropped, the counter they go under besides Drop.
type reason uint8

const (
	reasonNone reason = iota // not counted (Close)
	reasonLen
	reasonProto
	reasonMem
	reasonOther
)

func bump(s *stats.Proto, why reason, n uint64) {
	s.Drop += n
	switch why {
	case reasonLen:
		s.Lenerr += n
	case reasonProto:
		s.Proterr += n
	case reasonMem:
		s.Memerr += n
	case reasonOther:
		s.Err += n
	}
}

func (r *Reassembler) count(v6 bool, why reason, n int) {
	if why == reasonNone || n == 0 {
		return
	}
	bump(&r.all, why, uint64(n))
	bump(r.fam(v6), why, uint64(n))
}

// drop frees one refused fragment and counts it.
func (r *Reassembler) drop(p *pbuf.Pbuf, v6 bool, why reason, err error) (*pbuf.Pbuf, int, error) {
	p.Free()
	r.count(v6, why, 1)
	return nil, 0, err
}

// base is what a fragment's headers add to the length limit: IPv4 limits the total length,
// headers included; IPv6 limits the payload length, which after reassembly holds the
// extension headers of the unfragmentable part but not the Fragment header (RFC 8200 §4.5).
func base(v6 bool, hdrLen int) int {
	if v6 {
		return max(0, hdrLen-40-8)
	}
	return hdrLen
}

// Input takes ownership of p: one fragment, a whole IP packet whose first hdrLen bytes are the
// headers that precede the fragment data (v4: the IPv4 header; v6: IPv6 header + extension
// headers up to and including the Fragment header), contiguous in p's first pbuf, and whose
// remaining bytes (link padding already trimmed) are fragment data starting at byte offset
// `offset` of the original payload; more is the MF flag.
//
// It returns (nil, 0, nil) while the datagram is incomplete, and the complete datagram when
// the last hole fills: a chain, owned by the caller, that starts with the offset-0
// fragment's headers exactly as received (hdrLen0 bytes) followed by all data in order. The
// IP layer then rewrites the length fields and clears MF/offset (v4) or removes the Fragment
// header (v6). An atomic fragment (offset 0, MF clear; RFC 6946) is returned at once.
//
// On error the fragment has been freed and counted: ErrMisaligned, ErrTooBig,
// ErrInconsistent, ErrOverlap (the whole datagram discarded, RFC 5722), errs.Mem when no
// datagram slot or pbuf budget is left even after evicting the oldest other datagram,
// errs.Arg for a bad hdrLen/offset, errs.Clsd after Close. Exact duplicates are dropped
// (counted under Err) with no error. Core context.
func (r *Reassembler) Input(key Key, p *pbuf.Pbuf, hdrLen, offset int, more bool) (dgram *pbuf.Pbuf, hdrLen0 int, err error) {
	if p == nil {
		return nil, 0, errs.Arg
	}
	v6 := key.V6
	if v6 {
		// RFC 8200 §4.5: the Next Header values of the fragments may differ; only src, dst
		// and Identification name the packet.
		key.Proto = 0
	}
	r.all.Recv++
	r.fam(v6).Recv++
	if r.closed {
		return r.drop(p, v6, reasonOther, errs.Clsd)
	}
	if hdrLen < 0 || hdrLen > p.Len() || offset < 0 || offset%8 != 0 {
		return r.drop(p, v6, reasonLen, errs.Arg)
	}
	n := p.TotLen() - hdrLen
	if offset == 0 && !more {
		// RFC 6946 §4: an atomic fragment "MUST be processed in isolation from any other
		// packets/fragments".
		return p, hdrLen, nil
	}
	// RFC 8200 §4.5: "If the length of a fragment ... is not a multiple of 8 octets and the
	// M flag of that fragment is 1, then that fragment must be discarded". An empty
	// non-last fragment carries nothing and is refused too.
	if more && (n == 0 || n%8 != 0) {
		return r.drop(p, v6, reasonLen, ErrMisaligned)
	}
	end := offset + n
	// RFC 8200 §4.5: "If the length and offset of a fragment are such that the Payload
	// Length of the packet reassembled from that fragment would exceed 65,535 octets, then
	// that fragment must be discarded". The same bound holds for IPv4's Total Length (RFC
	// 791 §3.1); a later fragment's headers are never longer than the first's (options not
	// copied are left out), so this check never refuses a valid fragment.
	if base(v6, hdrLen)+end > MaxDatagramLen {
		return r.drop(p, v6, reasonLen, ErrTooBig)
	}
	if r.cfg.MaxDatagrams == 0 {
		return r.drop(p, v6, reasonMem, errs.Mem)
	}

	e := r.lookup(key)
	if e == nil {
		if e = r.newDatagram(key); e == nil {
			return r.drop(p, v6, reasonMem, errs.Mem)
		}
	} else if e.dead {
		// RFC 5722 §4: "all the constituent fragments, including those not yet received,
		// MUST be silently discarded".
		if e.deadWhy == reasonLen {
			return r.drop(p, v6, reasonLen, ErrTooBig)
		}
		return r.drop(p, v6, reasonProto, ErrOverlap)
	}

	// Consistency with the last fragment (RFC 791 §3.2: the last fragment fixes the total).
	if e.total >= 0 && (end > e.total || (!more && end != e.total)) ||
		!more && e.total < 0 && e.last != nil && e.last.end > end {
		r.releaseIfEmpty(e)
		return r.drop(p, v6, reasonLen, ErrInconsistent)
	}

	// Find the neighbours: prev is the last fragment starting at or before offset. In-order
	// arrival hits the tail at once.
	var prev *fragment
	if e.last != nil && e.last.start <= offset {
		prev = e.last
	} else {
		for f := e.first; f != nil && f.start <= offset; f = f.next {
			prev = f
		}
	}
	next := e.first
	if prev != nil {
		next = prev.next
	}
	if prev != nil && prev.start == offset && prev.end == end {
		// RFC 8200 §4.5: "an implementation may choose to detect this case and drop exact
		// duplicate fragments while keeping the other fragments". Exact means the same
		// bytes too: differing data is an overlap, the attack RFC 5722 is about.
		if sameData(prev.p, prev.hdr, p, hdrLen, n) {
			return r.drop(p, v6, reasonOther, nil)
		}
		r.kill(e, reasonProto)
		return r.drop(p, v6, reasonProto, ErrOverlap)
	}
	// RFC 5722 §4: "if any of the fragments being reassembled overlap with any other
	// fragments being reassembled for the same packet, reassembly of that packet MUST be
	// abandoned and all the fragments that have been received for that packet MUST be
	// discarded". RFC 8200 §4.5 says the same; wisp does it for IPv4 as well.
	if prev != nil && prev.end > offset || next != nil && next.start < end {
		r.kill(e, reasonProto)
		return r.drop(p, v6, reasonProto, ErrOverlap)
	}

	hdr := hdrLen
	if offset != 0 {
		// Only the offset-0 fragment's headers are kept (RFC 8200 §4.5: "the Unfragmentable
		// Part of the reassembled packet consists of all headers up to, but not including,
		// the Fragment header of the first fragment packet").
		hdr = 0
		if err := p.RemoveHeader(hdrLen); err != nil {
			r.releaseIfEmpty(e)
			return r.drop(p, v6, reasonLen, errs.Arg)
		}
		if p.Len() == 0 && p.Next() != nil {
			rest := p.Dechain()
			p.Free()
			p = rest
		}
	}
	k := countPbufs(p)
	for r.held+k > r.cfg.MaxPbufs {
		if !r.evictOldest(e) {
			r.releaseIfEmpty(e)
			return r.drop(p, v6, reasonMem, errs.Mem)
		}
	}
	f := r.frags.Get()
	if f == nil { // cannot happen while every fragment holds a pbuf; counted anyway
		r.releaseIfEmpty(e)
		return r.drop(p, v6, reasonMem, errs.Mem)
	}
	*f = fragment{p: p, hdr: hdr, start: offset, end: end, npbuf: k, prev: prev, next: next}
	if prev != nil {
		prev.next = f
	} else {
		e.first = f
	}
	if next != nil {
		next.prev = f
	} else {
		e.last = f
	}
	e.have += n
	e.npbuf += k
	r.held += k
	if !more {
		e.total = end
	}
	if e.first.start == 0 && e.total >= 0 && base(v6, e.first.hdr)+e.total > MaxDatagramLen {
		// Only now are both the first fragment's headers and the total known.
		r.kill(e, reasonLen)
		return nil, 0, ErrTooBig
	}
	if e.total < 0 || e.have != e.total {
		return nil, 0, nil
	}
	return r.complete(e)
}

// complete chains a complete datagram's fragments, frees its descriptors and returns it.
func (r *Reassembler) complete(e *datagram) (*pbuf.Pbuf, int, error) {
	first := e.first
	// Build from the back so that each Cat walks one fragment's chain only.
	var acc *pbuf.Pbuf
	for f := e.last; f != nil; f = f.prev {
		switch {
		case acc == nil && f != first && f.p.TotLen() == 0:
			f.p.Free() // an empty last fragment adds nothing
		case acc != nil:
			pbuf.Cat(f.p, acc)
			acc = f.p
		default:
			acc = f.p
		}
	}
	hdr := first.hdr
	for f := e.first; f != nil; {
		next := f.next
		r.frags.Put(f)
		f = next
	}
	r.held -= e.npbuf
	r.unlink(e)
	r.dgrams.Put(e)
	return acc, hdr, nil
}

func (r *Reassembler) lookup(key Key) *datagram {
	for e := r.head; e != nil; e = e.next {
		if e.key == key {
			return e
		}
	}
	return nil
}

// newDatagram takes a REASSDATA element, evicting the oldest datagram if none is free, and
// appends it to the age list (arming the timer if it was idle). nil when impossible.
func (r *Reassembler) newDatagram(key Key) *datagram {
	e := r.dgrams.Get()
	if e == nil {
		if !r.evictOldest(nil) {
			return nil
		}
		if e = r.dgrams.Get(); e == nil {
			return nil
		}
	}
	e.key = key
	e.total = -1
	e.deadline = r.cfg.Timers.Now().Add(r.cfg.MaxAge)
	e.prev = r.tail
	if r.tail != nil {
		r.tail.next = e
	} else {
		r.head = e
	}
	r.tail = e
	r.pending++
	if !r.tmo.Pending() {
		r.cfg.Timers.Schedule(&r.tmo, r.cfg.MaxAge)
	}
	return e
}

// unlink takes e off the age list; the timer is cancelled once nothing is pending (while
// something is, it may fire early and re-arm itself for the new oldest deadline).
func (r *Reassembler) unlink(e *datagram) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		r.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		r.tail = e.prev
	}
	e.prev, e.next = nil, nil
	r.pending--
	if r.head == nil {
		r.cfg.Timers.Cancel(&r.tmo)
	}
}

// freeFrags frees every fragment e holds, counting each as dropped for why.
func (r *Reassembler) freeFrags(e *datagram, why reason) {
	n := 0
	for f := e.first; f != nil; {
		next := f.next
		f.p.Free()
		r.frags.Put(f)
		n++
		f = next
	}
	e.first, e.last = nil, nil
	r.held -= e.npbuf
	e.npbuf, e.have = 0, 0
	r.count(e.key.V6, why, n)
}

// kill discards e's fragments (an overlap, or a datagram too big) and keeps e, dead, until its deadline so
// that later fragments of the datagram are dropped as well (RFC 5722 §4).
func (r *Reassembler) kill(e *datagram, why reason) {
	r.freeFrags(e, why)
	e.dead, e.deadWhy = true, why
}

// releaseIfEmpty returns a datagram created for a fragment that was then refused.
func (r *Reassembler) releaseIfEmpty(e *datagram) {
	if e.first == nil && !e.dead {
		r.unlink(e)
		r.dgrams.Put(e)
	}
}

// evictOldest discards the oldest datagram other than keep, as lwIP's
// ip_reass_remove_oldest_datagram; false if there is none.
func (r *Reassembler) evictOldest(keep *datagram) bool {
	e := r.head
	if e == keep && e != nil {
		e = e.next
	}
	if e == nil {
		return false
	}
	r.unlink(e)
	r.freeFrags(e, reasonMem)
	r.dgrams.Put(e)
	return true
}

// expire runs (core context) when the timer falls due: every datagram past its deadline is
// discarded, after telling the IP layer if its first fragment had arrived.
func (r *Reassembler) expire() {
	now := r.cfg.Timers.Now()
	for e := r.head; e != nil && !e.deadline.After(now); e = r.head {
		r.unlink(e)
		// RFC 792 / RFC 8200 §4.5: Time Exceeded code 1 only "if the first fragment (i.e.,
		// the one with a Fragment Offset of zero) has been received"; never for a datagram
		// discarded after an overlap (RFC 8200: "no ICMP error messages should be sent").
		if !e.dead && e.first != nil && e.first.start == 0 && r.cfg.Expired != nil {
			r.cfg.Expired(e.key, e.first.p)
		}
		r.freeFrags(e, reasonOther)
		r.dgrams.Put(e)
	}
	if r.head != nil {
		// Re-armed even if Expired fed a fragment that armed it for a later deadline.
		r.cfg.Timers.Schedule(&r.tmo, r.head.deadline.Sub(now))
	}
}

func countPbufs(p *pbuf.Pbuf) int {
	n := 0
	for ; p != nil; p = p.Next() {
		n++
	}
	return n
}

// sameData reports whether n bytes of chain a from offset ao equal n bytes of chain b from
// offset bo, without copying.
func sameData(a *pbuf.Pbuf, ao int, b *pbuf.Pbuf, bo int, n int) bool {
	a, ao = a.Skip(ao)
	b, bo = b.Skip(bo)
	for n > 0 {
		if a == nil || b == nil {
			return false
		}
		x, y := a.Payload()[ao:], b.Payload()[bo:]
		m := min(len(x), len(y), n)
		if string(x[:m]) != string(y[:m]) {
			return false
		}
		n -= m
		ao += m
		bo += m
		if ao == a.Len() {
			a, ao = a.Next(), 0
		}
		if bo == b.Len() {
			b, bo = b.Next(), 0
		}
	}
	return true
}

// PoolDecls declares the pools NewReassembler(cfg) creates (REASSDATA, REASS_FRAG,
// FRAG_PBUF), for the budget report.
func PoolDecls(maxDatagrams, maxPbufs, maxFragPbufs int) []memp.Decl {
	nfrag := 0
	if maxDatagrams > 0 {
		nfrag = maxPbufs
	}
	return []memp.Decl{
		memp.DeclFor[datagram](memp.ReassData, maxDatagrams, 0),
		memp.DeclFor[fragment](memp.ReassFrag, nfrag, 0),
		memp.DeclFor[pbuf.Pbuf](memp.FragPbuf, max(0, maxFragPbufs), 0),
	}
}

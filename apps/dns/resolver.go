package dns

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
	"unsafe"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/transport/udp"
	wdns "github.com/wispstack/wisp/wire/dns"
)

// AddrType is the family a lookup asks for (lwIP's dns_addrtype).
type AddrType uint8

const (
	// Any asks for A and AAAA records at once and answers with both, IPv4 first.
	Any AddrType = iota
	// IPv4 asks for A records.
	IPv4
	// IPv6 asks for AAAA records.
	IPv6
)

func (t AddrType) String() string {
	return [...]string{"any", "ipv4", "ipv6"}[t%3]
}

// Limits of an entry and of the TTLs kept.
const (
	// MaxAddrs is the number of addresses an entry keeps (lwIP keeps one).
	MaxAddrs = 16
	// MaxTTL bounds a positive answer's TTL (lwIP DNS_MAX_TTL, one week).
	MaxTTL = 7 * 24 * time.Hour
	// MaxNegativeTTL bounds the time a negative answer is kept (RFC 2308 §5 suggests 1-3
	// hours as the maximum).
	MaxNegativeTTL = time.Hour
	// Port is the DNS servers' port (RFC 1035 §4.2.1).
	Port = 53
	// MDNSPort is the mDNS port (RFC 6762 §3).
	MDNSPort = 5353
	// maxCNAMEs bounds a CNAME chain inside one answer.
	maxCNAMEs = 16
	// rxBufLen holds any UDP answer; without EDNS (not sent) answers are at most 512 octets
	// (RFC 1035 §4.2.1), and larger ones are read whole anyway.
	rxBufLen = 4096
	// maxNameLen is the longest name in presentation form that is asked (RFC 1035 §2.3.4).
	maxNameLen = 253
)

// The mDNS groups (RFC 6762 §3).
var (
	MDNSGroup4 = netip.AddrFrom4([4]byte{224, 0, 0, 251})
	MDNSGroup6 = netip.MustParseAddr("ff02::fb")
)

// Errors given to a callback or returned by GetHostByName (besides errs.InProgress,
// errs.Mem, errs.Arg and errs.Clsd).
var (
	// ErrNotFound: the name does not exist (NXDOMAIN) or has no address of the family.
	ErrNotFound = errors.New("dns: no such host")
	// ErrTimeout: no answer after DNSMaxRetries queries.
	ErrTimeout = errors.New("dns: no answer from the servers")
	// ErrServer: the servers answered with an error (SERVFAIL, REFUSED, ...).
	ErrServer = errors.New("dns: server misbehaving")
	// ErrNoServers: no server is configured and the name is not for mDNS.
	ErrNoServers = errors.New("dns: no DNS servers configured")
)

// TruncatedError is a callback's error when Server's answer had the TC bit: the name may
// be asked again over TCP (RFC 7766 §5). Nothing was cached.
type TruncatedError struct{ Server netip.AddrPort }

func (e *TruncatedError) Error() string { return "dns: truncated answer from " + e.Server.String() }

// Callback receives the result of a lookup that GetHostByName could not answer at once,
// in core context. addrs is the table's: it is never modified, but copy what you keep
// beyond the call anyway (the entry may be reused).
type Callback func(name string, addrs []netip.Addr, err error)

// Config is what the resolver runs on: core 0's parts and the options.
type Config struct {
	UDP     *udp.Proto
	IP      *ip.Layer
	Timers  *clock.Timeouts
	Alloc   *pbuf.Allocator
	Options opt.Options
	// Seed fixes the source ports and IDs (tests); 0 takes them from crypto/rand, as RFC
	// 5452 wants them unpredictable.
	Seed uint64
}

const (
	stFree uint8 = iota
	stAsking
	stDone
)

// query is one question of an entry in flight: A or AAAA.
type query struct {
	t    wdns.Type
	id   uint16
	done bool
}

// entry is one row of the table (lwIP struct dns_table_entry).
type entry struct {
	state   uint8
	fam     AddrType
	mdns    bool
	nq      uint8
	tries   uint8  // queries sent so far (each try sends every open question)
	asked   uint32 // bit i: servers[i] was asked
	name    string // lower case, no final dot
	addrs   []netip.Addr
	err     error // a cached negative answer: ErrNotFound
	expires time.Time
	used    uint64 // LRU stamp
	// In flight.
	pcb     *udp.PCB
	q       [2]query
	next    time.Time // next try
	ttl     time.Duration
	negTTL  time.Duration // -1: no SOA seen (not cached)
	failed  error         // the last server error, when no answer comes
	waiters []Callback
}

// EntrySize is the memory one table entry can hold: the entry, its name and MaxAddrs
// addresses (the budget's DNS_TABLE line).
const EntrySize = int(unsafe.Sizeof(entry{})) + 256 + MaxAddrs*int(unsafe.Sizeof(netip.Addr{}))

// TableDecls declares the resolver's table for the budget.
func TableDecls(o opt.Options) []memp.TableDecl {
	return []memp.TableDecl{{Name: "DNS_TABLE", Count: o.DNSTableSize, Size: EntrySize}}
}

// Resolver is lwIP's resolver on core 0. Its methods are core context.
type Resolver struct {
	udp    *udp.Proto
	ip     *ip.Layer
	timers *clock.Timeouts
	alloc  *pbuf.Allocator
	o      opt.Options
	rnd    *rand.Rand

	table   []entry
	stamp   uint64
	manual  []netip.AddrPort // SetServer's, by slot
	learnt  []source         // DHCP's, DHCPv6's, ... in order of arrival
	servers []netip.AddrPort // effective, by slot (invalid: empty)
	live    []int            // slots of servers that are set, in order
	tmo     clock.Timeout
	st      stats.DNS
	closed  bool

	msg wdns.Message // the answer being read
	rx  [rxBufLen]byte
	tx  []byte
	lit [1]netip.Addr
}

type source struct {
	from  string
	addrs []netip.AddrPort
}

// New creates a resolver with no servers. Core context.
func New(c Config) *Resolver {
	seed := c.Seed
	var key [32]byte
	if seed == 0 {
		_, _ = crand.Read(key[:])
	} else {
		binary.LittleEndian.PutUint64(key[:], seed)
	}
	r := &Resolver{
		udp: c.UDP, ip: c.IP, timers: c.Timers, alloc: c.Alloc, o: c.Options,
		rnd:     rand.New(rand.NewChaCha8(key)),
		table:   make([]entry, c.Options.DNSTableSize),
		manual:  make([]netip.AddrPort, c.Options.DNSMaxServers),
		servers: make([]netip.AddrPort, c.Options.DNSMaxServers),
		tx:      make([]byte, 0, 512),
	}
	r.tmo.Init(r.tick)
	return r
}

// Close ends every lookup in flight (its callbacks get errs.Clsd), frees the PCBs and
// stops the timer. Later lookups fail with errs.Clsd. Core context.
func (r *Resolver) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.timers.Cancel(&r.tmo)
	for i := range r.table {
		if e := &r.table[i]; e.state == stAsking {
			r.fail(e, errs.Clsd)
		}
	}
}

// GetHostByName resolves name (lwIP dns_gethostbyname). An IP literal, or a name the
// table holds and whose TTL has not run out, is answered at once: (addrs, nil), or (nil,
// ErrNotFound) for a cached negative answer; cb is not called. Otherwise the name is asked
// and GetHostByName returns errs.InProgress; cb (may be nil) is then called exactly once,
// later, in core context. Errors at once, with no call: errs.Arg (not a host name),
// errs.Mem (every entry of the table is in flight, or no UDP PCB), ErrNoServers,
// errs.Clsd. The returned slice is the table's: do not modify it, and copy what you keep
// beyond the core lock. Core context; allocates nothing when answered from the table.
func (r *Resolver) GetHostByName(name string, family AddrType, cb Callback) ([]netip.Addr, error) {
	r.timers.AssertCore()
	if r.closed {
		return nil, errs.Clsd
	}
	// (ParseAddr only for what may be a literal: its error would allocate on every name.)
	if looksLiteral(name) {
		if a, err := netip.ParseAddr(name); err == nil {
			if family == IPv4 && !a.Unmap().Is4() || family == IPv6 && a.Is4() {
				return nil, ErrNotFound
			}
			r.lit[0] = a
			return r.lit[:], nil
		}
	}
	if !ValidName(name) {
		return nil, errs.Arg
	}
	now := r.timers.Now()
	for i := range r.table {
		e := &r.table[i]
		if e.state == stFree || e.fam != family || !wdns.EqualName(e.name, name) {
			continue
		}
		if e.state == stAsking {
			if cb != nil {
				e.waiters = append(e.waiters, cb)
			}
			return nil, errs.InProgress
		}
		if now.Before(e.expires) {
			r.stamp++
			e.used = r.stamp
			r.st.CacheHits++
			if e.err != nil {
				return nil, e.err
			}
			return e.addrs, nil
		}
		// RFC 1035 §7.4: an expired entry is asked again.
		return r.start(e, e.name, family, cb, now)
	}
	e := r.victim(now)
	if e == nil {
		r.st.Mem++
		return nil, errs.Mem
	}
	return r.start(e, normalize(name), family, cb, now)
}

// victim picks the entry for a new name: a free one, else the least recently used of
// those done (expired ones first); nil when every entry is in flight.
func (r *Resolver) victim(now time.Time) *entry {
	var best *entry
	for i := range r.table {
		e := &r.table[i]
		switch {
		case e.state == stFree:
			return e
		case e.state == stAsking:
		case best == nil,
			!now.Before(e.expires) && now.Before(best.expires),
			now.Before(e.expires) == now.Before(best.expires) && e.used < best.used:
			best = e
		}
	}
	return best
}

// start asks for name in e (free, or done and to be asked again).
func (r *Resolver) start(e *entry, name string, family AddrType, cb Callback, now time.Time) ([]netip.Addr, error) {
	mdns := r.o.DNSMDNS && isLocal(name)
	if !mdns && len(r.live) == 0 {
		return nil, ErrNoServers
	}
	pcb, err := r.openPCB()
	if err != nil {
		r.st.Mem++
		return nil, err
	}
	*e = entry{state: stAsking, fam: family, mdns: mdns, name: name, pcb: pcb, negTTL: -1, ttl: MaxTTL}
	pcb.SetArg(e)
	pcb.OnRecv(r.recv)
	types := [...][2]wdns.Type{Any: {wdns.TypeA, wdns.TypeAAAA}, IPv4: {wdns.TypeA}, IPv6: {wdns.TypeAAAA}}[family%3]
	for _, t := range types {
		if t != 0 {
			e.q[e.nq] = query{t: t, id: uint16(r.rnd.Uint32())}
			e.nq++
		}
	}
	if cb != nil {
		e.waiters = append(e.waiters, cb)
	}
	r.send(e, now)
	r.arm(now)
	return nil, errs.InProgress
}

// openPCB opens a UDP PCB on a random port (RFC 5452 §9.2: "use a random source port").
func (r *Resolver) openPCB() (*udp.PCB, error) {
	pcb, err := r.udp.NewPCB()
	if err != nil {
		return nil, err
	}
	for range 8 {
		port := uint16(1024 + r.rnd.IntN(65536-1024))
		if port == MDNSPort {
			continue
		}
		if pcb.Bind(netip.AddrPortFrom(netip.Addr{}, port)) == nil {
			return pcb, nil
		}
	}
	if err := pcb.Bind(netip.AddrPort{}); err != nil {
		pcb.Close()
		return nil, err
	}
	return pcb, nil
}

// send sends e's open questions once more: to the next server in turn, or to the mDNS
// groups.
func (r *Resolver) send(e *entry, now time.Time) {
	if e.tries > 0 {
		r.st.Retries++
	}
	e.tries++
	e.next = now.Add(r.o.DNSRetryInterval)
	var dst netip.AddrPort
	if !e.mdns {
		if len(r.live) == 0 {
			return // the servers were removed: the entry times out
		}
		slot := r.live[(int(e.tries)-1)%len(r.live)]
		dst = r.servers[slot]
		e.asked |= 1 << slot
	}
	for i := range e.nq {
		q := &e.q[i]
		if q.done {
			continue
		}
		m := wdns.Message{Header: wdns.Header{ID: q.id, RecursionDesired: !e.mdns},
			Questions: []wdns.Question{{Name: e.name + ".", Type: q.t, Class: wdns.ClassINET}}}
		if e.mdns {
			// RFC 6762 §5.1: a one-shot query goes to the group from a port other than
			// 5353; the responders answer it by unicast (§6.7) with its ID.
			m.ID = q.id
			r.emit(e, &m, netip.AddrPortFrom(MDNSGroup4, MDNSPort), 0)
			for _, n := range r.ip.Netifs() {
				if n.Up() {
					r.emit(e, &m, netip.AddrPortFrom(MDNSGroup6, MDNSPort), n.Index())
				}
			}
			continue
		}
		r.emit(e, &m, dst, 0)
	}
}

func (r *Resolver) emit(e *entry, m *wdns.Message, dst netip.AddrPort, ifIndex int) {
	b, err := m.Pack(r.tx[:0])
	if err != nil {
		return
	}
	r.tx = b[:0]
	p, err := r.alloc.Alloc(pbuf.LayerTransport, len(b), pbuf.RAM)
	if err != nil {
		return
	}
	if p.CopyIn(b, 0) != nil {
		p.Free()
		return
	}
	r.st.Queries++
	if ifIndex != 0 {
		_ = e.pcb.SendToFrom(p, dst, netip.Addr{}, ifIndex)
	} else {
		_ = e.pcb.SendTo(p, dst)
	}
}

// arm schedules the timer for the earliest try due, or cancels it when nothing is in
// flight.
func (r *Resolver) arm(now time.Time) {
	var next time.Time
	for i := range r.table {
		if e := &r.table[i]; e.state == stAsking && (next.IsZero() || e.next.Before(next)) {
			next = e.next
		}
	}
	if next.IsZero() {
		r.timers.Cancel(&r.tmo)
		return
	}
	if r.tmo.Pending() && r.tmo.When().Equal(next) {
		return
	}
	r.timers.Cancel(&r.tmo)
	r.timers.Schedule(&r.tmo, max(next.Sub(now), 0))
}

// tick runs when a try is due: the entries whose answer did not come are asked again, or
// fail after DNSMaxRetries tries (lwIP dns_check_entry).
func (r *Resolver) tick() {
	if r.closed {
		return
	}
	now := r.timers.Now()
	for i := range r.table {
		e := &r.table[i]
		if e.state != stAsking || now.Before(e.next) {
			continue
		}
		if int(e.tries) >= r.o.DNSMaxRetries {
			r.complete(e, now, ErrTimeout)
			continue
		}
		r.send(e, now)
	}
	r.arm(now)
}

// recv reads an answer for the entry of c. Core context; takes p.
func (r *Resolver) recv(c *udp.PCB, p *pbuf.Pbuf, info *udp.RecvInfo) {
	e, _ := c.Arg().(*entry)
	n := p.TotLen()
	if e == nil || e.state != stAsking || e.pcb != c || n > len(r.rx) {
		p.Free()
		return
	}
	p.CopyOut(r.rx[:n], 0)
	p.Free()
	src := netip.AddrPortFrom(info.Src.Addr().Unmap().WithZone(""), info.Src.Port())
	if e.mdns {
		if src.Port() != MDNSPort {
			return
		}
	} else if !r.askedFrom(e, src) {
		return // RFC 5452 §9.1: not from a server asked
	}
	m := &r.msg
	if m.Unpack(r.rx[:n]) != nil || !m.Response || len(m.Questions) != 1 {
		return
	}
	qq := m.Questions[0]
	var q *query
	for i := range e.nq {
		if x := &e.q[i]; !x.done && x.id == m.ID && x.t == qq.Type {
			q = x
		}
	}
	if q == nil || qq.Class != wdns.ClassINET || !wdns.EqualName(e.name, qq.Name) {
		return // RFC 5452 §9.1: ID and question must match
	}
	now := r.timers.Now()
	if m.Truncated && !e.mdns {
		r.complete(e, now, &TruncatedError{Server: src})
		r.arm(now)
		return
	}
	switch m.RCode {
	case wdns.RCodeSuccess, wdns.RCodeNameError:
	default:
		// This server cannot answer: the next one is asked at once.
		e.failed = ErrServer
		if int(e.tries) >= r.o.DNSMaxRetries {
			r.complete(e, now, ErrServer)
		} else {
			r.send(e, now)
		}
		r.arm(now)
		return
	}
	q.done = true
	if m.RCode == wdns.RCodeSuccess {
		r.addAnswers(e, m, q.t)
	}
	if len(e.addrs) == 0 {
		if t := NegativeTTL(m); t >= 0 && (e.negTTL < 0 || t < e.negTTL) {
			e.negTTL = t
		}
	}
	if m.RCode == wdns.RCodeNameError {
		// The name does not exist: no other type can have an address.
		for i := range e.nq {
			e.q[i].done = true
		}
	}
	for i := range e.nq {
		if !e.q[i].done {
			return
		}
	}
	r.complete(e, now, nil)
	r.arm(now)
}

// askedFrom reports whether src is a server e was sent to.
func (r *Resolver) askedFrom(e *entry, src netip.AddrPort) bool {
	for i, a := range r.servers {
		if e.asked&(1<<i) != 0 && a == src {
			return true
		}
	}
	return false
}

// addAnswers adds the addresses of type t for e.name in m and lowers e.ttl.
func (r *Resolver) addAnswers(e *entry, m *wdns.Message, t wdns.Type) {
	var found bool
	var ttl time.Duration
	e.addrs, ttl, found = Extract(e.addrs, m, e.name, t)
	if found {
		e.ttl = min(e.ttl, ttl)
	}
}

// complete ends e's lookup: with its addresses, a negative answer, or err (a failure).
func (r *Resolver) complete(e *entry, now time.Time, err error) {
	if err == ErrTimeout && e.failed != nil {
		err = e.failed
	}
	e.pcb.Close()
	e.pcb = nil
	addrs := e.addrs
	switch {
	case len(addrs) > 0:
		// IPv4 first, as lwIP's IPV4_IPV6 prefers it.
		slices.SortStableFunc(addrs, func(a, b netip.Addr) int {
			if a.Is4() == b.Is4() {
				return 0
			}
			if a.Is4() {
				return -1
			}
			return 1
		})
		e.state, e.err, e.expires = stDone, nil, now.Add(min(e.ttl, MaxTTL))
		r.st.Answers++
		err = nil
	case err == nil:
		r.st.NXDomain++
		err = ErrNotFound
		if e.negTTL >= 0 {
			e.state, e.err, e.expires = stDone, ErrNotFound, now.Add(min(e.negTTL, MaxNegativeTTL))
		} else {
			e.state = stFree // RFC 2308 §5: without an SOA, not cached
		}
	default:
		if _, ok := err.(*TruncatedError); !ok {
			r.st.Failures++
		}
		e.state = stFree
	}
	r.stamp++
	e.used = r.stamp
	ws := e.waiters
	e.waiters = nil
	name := e.name
	for _, cb := range ws {
		cb(name, addrs, err)
	}
}

// fail ends a lookup in flight with err, caching nothing.
func (r *Resolver) fail(e *entry, err error) {
	e.pcb.Close()
	e.pcb = nil
	e.state = stFree
	ws := e.waiters
	e.waiters = nil
	for _, cb := range ws {
		cb(e.name, nil, err)
	}
}

// Store puts addrs (or, empty, a negative answer) for name into the table for ttl, as an
// answer would: for answers obtained otherwise (over TCP after a truncated one). A name
// in flight is left alone, and a negative ttl stores nothing. Core context.
func (r *Resolver) Store(name string, family AddrType, addrs []netip.Addr, ttl time.Duration) {
	r.timers.AssertCore()
	if r.closed || !ValidName(name) || ttl < 0 {
		return
	}
	now := r.timers.Now()
	var e *entry
	for i := range r.table {
		x := &r.table[i]
		if x.state != stFree && x.fam == family && wdns.EqualName(x.name, name) {
			if x.state == stAsking {
				return
			}
			e = x
			break
		}
	}
	if e == nil {
		if e = r.victim(now); e == nil {
			return
		}
		e.name = normalize(name)
	}
	r.stamp++
	e.state, e.fam, e.used = stDone, family, r.stamp
	e.addrs = slices.Clone(addrs[:min(len(addrs), MaxAddrs)])
	e.err, e.expires = nil, now.Add(min(ttl, MaxTTL))
	if len(addrs) == 0 {
		e.addrs, e.err, e.expires = nil, ErrNotFound, now.Add(min(ttl, MaxNegativeTTL))
	}
}

package dns_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/apps/dns"
	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/transport/udp"
	wdns "github.com/wispstack/wisp/wire/dns"
)

var (
	addrA  = stacktest.AddrA[0]
	addrB  = stacktest.AddrB[0]
	live   = netip.AddrPortFrom(addrB, 53)
	live6  = netip.AddrPortFrom(stacktest.AddrB[1], 53)
	dead   = netip.MustParseAddrPort("198.18.0.99:53") // on A's /24, nobody's
	host4  = netip.MustParseAddr("198.18.1.7")
	host6  = netip.MustParseAddr("fd42:5eed::7")
	start  = time.Unix(1e9, 0)
	ivl    = time.Second
	tries  = 4
	noSuch = "nx.wisp.test"
)

// server answers queries on stack B in core context, from its zone.
type server struct {
	zone     map[string][]netip.Addr // lower case, with the final dot
	cnames   map[string]string
	ttl      uint32
	soa      bool // negative answers carry an SOA (minimum 30 s)
	trunc    bool // every answer truncated
	servfail bool
	mdns     bool // answer as an mDNS responder: by unicast to the querier, class with cache-flush
	queries  int
	from     []netip.AddrPort // the queries' sources
}

func (sv *server) answer(q *wdns.Message) *wdns.Message {
	m := &wdns.Message{Header: wdns.Header{ID: q.ID, Response: true, RecursionDesired: q.RecursionDesired,
		RecursionAvailable: true, Authoritative: true}, Questions: q.Questions}
	qq := q.Questions[0]
	name := strings.ToLower(qq.Name)
	class := wdns.ClassINET
	if sv.mdns {
		class |= 0x8000
	}
	switch {
	case sv.servfail:
		m.RCode = wdns.RCodeServerFailure
		return m
	case sv.trunc:
		m.Truncated = true
		return m
	}
	if target, ok := sv.cnames[name]; ok {
		m.Answers = append(m.Answers, wdns.Resource{Name: qq.Name, Type: wdns.TypeCNAME, Class: class, TTL: sv.ttl, Target: target})
		name = target
	}
	addrs, ok := sv.zone[name]
	if !ok {
		m.RCode = wdns.RCodeNameError
	}
	for _, a := range addrs {
		if qq.Type == wdns.TypeA && a.Is4() || qq.Type == wdns.TypeAAAA && a.Is6() {
			m.Answers = append(m.Answers, wdns.Resource{Name: name, Type: qq.Type, Class: class, TTL: sv.ttl, Addr: a})
		}
	}
	if len(m.Answers) == 0 && sv.soa {
		m.Authorities = append(m.Authorities, wdns.Resource{Name: "wisp.test.", Type: wdns.TypeSOA, Class: wdns.ClassINET, TTL: 300,
			SOA: wdns.SOA{MName: "ns.wisp.test.", RName: "root.wisp.test.", Minimum: 30}})
	}
	return m
}

// serve runs sv on s at addr (core context) until the test ends.
func serve(t testing.TB, s *stack.Stack, at netip.AddrPort, sv *server) {
	t.Helper()
	s.Lock()
	defer s.Unlock()
	pcb, err := s.UDP().NewPCB()
	if err == nil {
		err = pcb.Bind(at)
	}
	if err != nil {
		t.Fatal(err)
	}
	pcb.OnRecv(func(c *udp.PCB, p *pbuf.Pbuf, info *udp.RecvInfo) {
		b := p.Bytes(nil)
		p.Free()
		var q wdns.Message
		if q.Unpack(b) != nil || q.Response || len(q.Questions) != 1 {
			return
		}
		sv.queries++
		sv.from = append(sv.from, info.Src)
		out, err := sv.answer(&q).Pack(nil)
		if err != nil {
			t.Error(err)
			return
		}
		pb, err := s.Allocator().Alloc(pbuf.LayerTransport, len(out), pbuf.RAM)
		if err != nil {
			return
		}
		_ = pb.CopyIn(out, 0)
		_ = c.SendTo(pb, info.Src)
	})
	t.Cleanup(func() {
		s.Lock()
		pcb.Close()
		s.Unlock()
	})
}

type env struct {
	t   testing.TB
	clk *clock.Fake
	p   *stacktest.Pair
	r   *dns.Resolver
}

type result struct {
	addrs []netip.Addr
	err   error
	calls int
}

func newEnv(t testing.TB, mod func(*opt.Options), servers ...netip.AddrPort) *env {
	o := opt.Embedded()
	o.DNSRetryInterval, o.DNSMaxRetries = ivl, tries
	if mod != nil {
		mod(&o)
	}
	e := &env{t: t, clk: clock.NewFake(start)}
	e.p = stacktest.NewPair(t, stacktest.PairConfig{Options: o, Clock: e.clk})
	e.p.A.Lock()
	e.r = e.p.A.DNS()
	for i, s := range servers {
		if err := e.r.SetServer(i, s); err != nil {
			t.Fatal(err)
		}
	}
	e.p.A.Unlock()
	e.settle()
	return e
}

// settle lets the stacks finish their start-up (IPv6 DAD) on the fake clock.
func (e *env) settle() {
	for range 300 {
		e.p.PipeA.Flush()
		e.clk.Advance(10 * time.Millisecond)
	}
	e.p.PipeA.Flush()
}

// lookup calls GetHostByName on A and delivers what it sent; res collects the callback.
func (e *env) lookup(name string, fam dns.AddrType, res *result) ([]netip.Addr, error) {
	e.p.A.Lock()
	addrs, err := e.r.GetHostByName(name, fam, func(n string, a []netip.Addr, err error) {
		res.calls++
		res.addrs, res.err = slices.Clone(a), err
	})
	addrs = slices.Clone(addrs)
	e.p.A.Unlock()
	e.p.PipeA.Flush()
	return addrs, err
}

func (e *env) advance(d time.Duration) {
	e.clk.Advance(d)
	e.p.PipeA.Flush()
}

func (e *env) stats() stats.DNS { return e.p.A.Stats().DNS }

func zone() map[string][]netip.Addr {
	return map[string][]netip.Addr{"host.wisp.test.": {host6, host4}, "other.wisp.test.": {host4}, "third.wisp.test.": {host4}}
}

// A name is asked for A and AAAA; the answer comes by callback, IPv4 first; the next call
// is answered from the table in the same call, without a callback and without allocating.
func TestLookupThenCacheHit(t *testing.T) {
	sv := &server{zone: zone(), ttl: 60}
	e := newEnv(t, nil, live)
	serve(t, e.p.B, live, sv)
	var res result
	if _, err := e.lookup("Host.Wisp.Test.", dns.Any, &res); !errors.Is(err, errs.InProgress) {
		t.Fatalf("first lookup: %v, want InProgress", err)
	}
	if res.calls != 1 || res.err != nil || !slices.Equal(res.addrs, []netip.Addr{host4, host6}) {
		t.Fatalf("callback: %+v; server saw %d queries", res, sv.queries)
	}
	var res2 result
	addrs, err := e.lookup("host.wisp.test", dns.Any, &res2)
	if err != nil || !slices.Equal(addrs, []netip.Addr{host4, host6}) || res2.calls != 0 {
		t.Fatalf("cache hit: %v, %v, %d callbacks", addrs, err, res2.calls)
	}
	e.p.A.Lock()
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := e.r.GetHostByName("host.wisp.test", dns.Any, nil); err != nil {
			t.Fatal(err)
		}
	})
	e.p.A.Unlock()
	if allocs != 0 {
		t.Errorf("a cache hit allocates %v times", allocs)
	}
	if st := e.stats(); st.Queries != 2 || st.Answers != 1 || st.CacheHits != 102 || st.Servers != 1 || sv.queries != 2 {
		t.Errorf("stats %+v, server saw %d", st, sv.queries)
	}
	// A literal is answered at once; a family of its own has its own entry.
	if a, err := e.lookup("198.18.0.5", dns.Any, &res2); err != nil || a[0] != netip.MustParseAddr("198.18.0.5") {
		t.Errorf("literal: %v, %v", a, err)
	}
	var r6 result
	if _, err := e.lookup("host.wisp.test", dns.IPv6, &r6); !errors.Is(err, errs.InProgress) || !slices.Equal(r6.addrs, []netip.Addr{host6}) {
		t.Errorf("IPv6 lookup: %v, %+v", err, r6)
	}
	if _, err := e.lookup("-bad-.wisp.test", dns.Any, &r6); !errors.Is(err, errs.Arg) {
		t.Errorf("bad name: %v", err)
	}
	// The query's source port is random and not the server's.
	if p := sv.from[0].Port(); p < 1024 || p == 53 || sv.from[0].Port() == sv.from[2].Port() && sv.from[0].Port() == sv.from[1].Port() {
		t.Errorf("source ports %v", sv.from)
	}
}

// With a dead first server, the second try goes to the next one: the answer comes after
// one retry interval.
func TestRetriesRotateServers(t *testing.T) {
	sv := &server{zone: zone(), ttl: 60}
	e := newEnv(t, nil, dead, live)
	serve(t, e.p.B, live, sv)
	var res result
	if _, err := e.lookup("other.wisp.test", dns.IPv4, &res); !errors.Is(err, errs.InProgress) {
		t.Fatal(err)
	}
	if res.calls != 0 || sv.queries != 0 {
		t.Fatalf("answered before the retry: %+v, %d queries", res, sv.queries)
	}
	e.advance(ivl - time.Millisecond)
	if sv.queries != 0 {
		t.Fatalf("retried early")
	}
	e.advance(time.Millisecond)
	if res.calls != 1 || res.err != nil || !slices.Equal(res.addrs, []netip.Addr{host4}) {
		t.Fatalf("after one interval: %+v", res)
	}
	if st := e.stats(); st.Queries != 2 || st.Retries != 1 || st.Answers != 1 {
		t.Errorf("stats %+v", st)
	}
}

// No answer at all: DNSMaxRetries queries, rotating, then ErrTimeout; no timer is left.
func TestTimeoutAfterRetries(t *testing.T) {
	e := newEnv(t, nil, dead, netip.MustParseAddrPort("198.18.0.98:53"))
	var res result
	_, _ = e.lookup("other.wisp.test", dns.Any, &res)
	before := e.p.A.Timers().Len()
	for range tries - 1 {
		e.advance(ivl)
	}
	if res.calls != 0 {
		t.Fatalf("failed early: %+v", res)
	}
	e.advance(ivl)
	if res.calls != 1 || !errors.Is(res.err, dns.ErrTimeout) {
		t.Fatalf("after %d tries: %+v", tries, res)
	}
	if st := e.stats(); st.Queries != uint64(2*tries) || st.Retries != uint64(tries-1) || st.Failures != 1 {
		t.Errorf("stats %+v", st)
	}
	if after := e.p.A.Timers().Len(); after != before-1 {
		t.Errorf("timers: %d while in flight, %d after (want the resolver's gone)", before, after)
	}
}

// Every entry in flight: the next name fails at once with errs.Mem; a name in flight is
// joined, not asked twice.
func TestTableFull(t *testing.T) {
	e := newEnv(t, func(o *opt.Options) { o.DNSTableSize = 2 }, dead)
	var r1, r2, r3, r4 result
	_, _ = e.lookup("a.wisp.test", dns.Any, &r1)
	_, _ = e.lookup("b.wisp.test", dns.Any, &r2)
	if _, err := e.lookup("a.wisp.test", dns.Any, &r4); !errors.Is(err, errs.InProgress) {
		t.Errorf("joining a name in flight: %v", err)
	}
	if _, err := e.lookup("c.wisp.test", dns.Any, &r3); !errors.Is(err, errs.Mem) {
		t.Fatalf("third name: %v, want errs.Mem", err)
	}
	if st := e.stats(); st.Mem != 1 {
		t.Errorf("stats %+v", st)
	}
	for range tries {
		e.advance(ivl)
	}
	if r1.calls != 1 || r4.calls != 1 || r2.calls != 1 || r3.calls != 0 {
		t.Errorf("callbacks: %d %d %d %d", r1.calls, r2.calls, r3.calls, r4.calls)
	}
}

// A cached answer expires with its TTL and is asked again; the least recently used entry
// done is the one replaced.
func TestTTLExpiryAndLRU(t *testing.T) {
	sv := &server{zone: zone(), ttl: 5}
	e := newEnv(t, func(o *opt.Options) { o.DNSTableSize = 2 }, live)
	serve(t, e.p.B, live, sv)
	var res result
	_, _ = e.lookup("host.wisp.test", dns.IPv4, &res)
	e.advance(4 * time.Second)
	if _, err := e.lookup("host.wisp.test", dns.IPv4, &res); err != nil || sv.queries != 1 {
		t.Fatalf("within the TTL: %v, %d queries", err, sv.queries)
	}
	e.advance(time.Second)
	if _, err := e.lookup("host.wisp.test", dns.IPv4, &res); !errors.Is(err, errs.InProgress) || sv.queries != 2 || res.calls != 2 {
		t.Fatalf("after the TTL: %v, %d queries, %+v", err, sv.queries, res)
	}
	// LRU: host, other cached; host used again; third replaces other.
	_, _ = e.lookup("other.wisp.test", dns.IPv4, &res)
	_, _ = e.lookup("host.wisp.test", dns.IPv4, &res)
	_, _ = e.lookup("third.wisp.test", dns.IPv4, &res)
	n := sv.queries
	if _, err := e.lookup("host.wisp.test", dns.IPv4, &res); err != nil || sv.queries != n {
		t.Errorf("the recently used entry was replaced: %v", err)
	}
	if _, err := e.lookup("other.wisp.test", dns.IPv4, &res); !errors.Is(err, errs.InProgress) {
		t.Errorf("the least recently used entry was kept: %v", err)
	}
}

// NXDOMAIN with an SOA is kept for the SOA's minimum (RFC 2308 §5); without one it is not.
func TestNegativeCaching(t *testing.T) {
	sv := &server{zone: zone(), ttl: 60, soa: true}
	e := newEnv(t, nil, live)
	serve(t, e.p.B, live, sv)
	var res result
	_, _ = e.lookup(noSuch, dns.Any, &res)
	if res.calls != 1 || !errors.Is(res.err, dns.ErrNotFound) {
		t.Fatalf("NXDOMAIN: %+v", res)
	}
	if _, err := e.lookup(noSuch, dns.Any, &res); !errors.Is(err, dns.ErrNotFound) || res.calls != 1 {
		t.Fatalf("negative cache hit: %v", err)
	}
	e.advance(30 * time.Second)
	if _, err := e.lookup(noSuch, dns.Any, &res); !errors.Is(err, errs.InProgress) {
		t.Fatalf("after the negative TTL: %v", err)
	}
	sv.soa = false
	e.advance(31 * time.Second)
	_, _ = e.lookup(noSuch, dns.Any, &res)
	if _, err := e.lookup(noSuch, dns.Any, &res); !errors.Is(err, errs.InProgress) {
		t.Errorf("cached without an SOA: %v", err)
	}
	if st := e.stats(); st.NXDomain != 4 {
		t.Errorf("stats %+v", st)
	}
}

// A CNAME chain inside the answer; a server failure moves to the next server at once; a
// truncated answer ends the lookup with a *TruncatedError naming the server.
func TestCNAMEServfailTruncated(t *testing.T) {
	sv := &server{zone: zone(), ttl: 60, cnames: map[string]string{"alias.wisp.test.": "host.wisp.test."}}
	bad := &server{servfail: true}
	e := newEnv(t, nil, live6, live)
	serve(t, e.p.B, live, sv)
	serve(t, e.p.B, live6, bad)
	var res result
	_, _ = e.lookup("alias.wisp.test", dns.IPv4, &res)
	if res.calls != 1 || res.err != nil || !slices.Equal(res.addrs, []netip.Addr{host4}) || bad.queries != 1 {
		t.Fatalf("CNAME after SERVFAIL: %+v, servfail server saw %d", res, bad.queries)
	}
	sv.trunc = true
	var rt result
	_, _ = e.lookup("other.wisp.test", dns.IPv4, &rt)
	e.advance(ivl)
	var te *dns.TruncatedError
	if !errors.As(rt.err, &te) || te.Server != live {
		t.Fatalf("truncated: %+v", rt)
	}
	// The TCP answer the socket layer gets is stored as an answer would be.
	e.p.A.Lock()
	e.r.Store("other.wisp.test", dns.IPv4, []netip.Addr{host4}, time.Minute)
	addrs, err := e.r.GetHostByName("other.wisp.test", dns.IPv4, nil)
	e.p.A.Unlock()
	if err != nil || !slices.Equal(addrs, []netip.Addr{host4}) {
		t.Errorf("after Store: %v, %v", addrs, err)
	}
}

// An answer must come from the server asked, with the query's ID: others are ignored.
func TestForeignAnswersIgnored(t *testing.T) {
	sv := &server{zone: zone(), ttl: 60}
	e := newEnv(t, nil, live)
	serve(t, e.p.B, live, sv)
	// Another server on B (not configured) answering to the same port is ignored: send
	// from B:54 to the port the query came from.
	var res result
	_, _ = e.lookup("host.wisp.test", dns.IPv4, &res)
	port := sv.from[0].Port()
	q := wdns.Message{Header: wdns.Header{ID: 1, Response: true}, Questions: []wdns.Question{{Name: "third.wisp.test.", Type: wdns.TypeA, Class: wdns.ClassINET}},
		Answers: []wdns.Resource{{Name: "third.wisp.test.", Type: wdns.TypeA, Class: wdns.ClassINET, TTL: 60, Addr: netip.MustParseAddr("198.18.6.6")}}}
	b, _ := q.Pack(nil)
	e.p.B.Lock()
	pcb, _ := e.p.B.UDP().NewPCB()
	_ = pcb.Bind(netip.AddrPortFrom(addrB, 54))
	pb, _ := e.p.B.Allocator().Alloc(pbuf.LayerTransport, len(b), pbuf.RAM)
	_ = pb.CopyIn(b, 0)
	_ = pcb.SendTo(pb, netip.AddrPortFrom(addrA, port))
	pcb.Close()
	e.p.B.Unlock()
	e.p.PipeA.Flush()
	var r2 result
	if _, err := e.lookup("third.wisp.test", dns.IPv4, &r2); !errors.Is(err, errs.InProgress) || !slices.Equal(r2.addrs, []netip.Addr{host4}) {
		t.Errorf("a foreign answer was taken: %v %+v", err, r2)
	}
}

// ".local" names go to the mDNS group as one-shot queries (RFC 6762 §5.1) from a port
// other than 5353, answered by unicast; without DNSMDNS they go to the servers.
func TestMDNSOneShot(t *testing.T) {
	sv := &server{zone: map[string][]netip.Addr{"printer.local.": {host4}}, ttl: 120, mdns: true}
	e := newEnv(t, func(o *opt.Options) { o.DNSMDNS = true })
	serve(t, e.p.B, netip.AddrPortFrom(netip.Addr{}, dns.MDNSPort), sv)
	e.p.B.Lock()
	if err := e.p.B.IP().JoinGroup(nil, dns.MDNSGroup4); err != nil {
		t.Fatal(err)
	}
	e.p.B.Unlock()
	e.settle()
	var res result
	if _, err := e.lookup("printer.local", dns.IPv4, &res); !errors.Is(err, errs.InProgress) {
		t.Fatal(err)
	}
	if res.calls != 1 || res.err != nil || !slices.Equal(res.addrs, []netip.Addr{host4}) {
		t.Fatalf("mDNS: %+v, responder saw %d queries from %v", res, sv.queries, sv.from)
	}
	if p := sv.from[0].Port(); p == dns.MDNSPort {
		t.Errorf("one-shot query from port %d", p)
	}
	// Without servers, a name that is not .local fails at once.
	if _, err := e.lookup("host.wisp.test", dns.IPv4, &res); !errors.Is(err, dns.ErrNoServers) {
		t.Errorf("no servers: %v", err)
	}
	e.p.B.Lock()
	_ = e.p.B.IP().LeaveGroup(nil, dns.MDNSGroup4)
	e.p.B.Unlock()
}

// Servers learnt from DHCP fill the slots SetServer left empty and are replaced by the
// next lease of the same source.
func TestServers(t *testing.T) {
	o := opt.Embedded()
	o.DNSMaxServers = 3
	s, err := stack.New(stack.Config{Options: o})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := netip.MustParseAddrPort("198.18.0.53:53")
	d1, d2, d3 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	s.Lock()
	defer s.Unlock()
	r := s.DNS()
	if err := r.SetServer(1, netip.AddrPortFrom(m.Addr(), 0)); err != nil {
		t.Fatal(err)
	}
	if err := r.SetServer(3, m); !errors.Is(err, errs.Val) {
		t.Errorf("slot 3 of 3: %v", err)
	}
	r.SetLearnt("dhcp", []netip.Addr{d1, d2, d3})
	want := []netip.AddrPort{netip.AddrPortFrom(d1, 53), m, netip.AddrPortFrom(d2, 53)}
	if got := r.Servers(); !slices.Equal(got, want) {
		t.Errorf("servers %v, want %v", got, want)
	}
	r.SetLearnt("dhcp", []netip.Addr{d3})
	want = []netip.AddrPort{netip.AddrPortFrom(d3, 53), m}
	if got := r.Servers(); !slices.Equal(got, want) {
		t.Errorf("after a new lease: %v, want %v", got, want)
	}
	r.SetLearnt("dhcp", nil)
	if got := r.Servers(); !slices.Equal(got, []netip.AddrPort{m}) {
		t.Errorf("after the lease ends: %v", got)
	}
}

// Closing the stack ends a lookup in flight with errs.Clsd.
func TestCloseEndsLookups(t *testing.T) {
	e := newEnv(t, nil, dead)
	var res result
	_, _ = e.lookup("host.wisp.test", dns.Any, &res)
	e.p.A.Close()
	if res.calls != 1 || !errors.Is(res.err, errs.Clsd) {
		t.Errorf("after Close: %+v", res)
	}
}

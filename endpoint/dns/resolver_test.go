package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
)

// handler answers one query; network is "udp" or "tcp". A nil answer sends nothing.
type handler func(network string, q *Message) []*Message

// fakeNet is a set of DNS servers reached through net.Pipe conns: UDP datagrams are pipe
// writes (one Read returns one whole write), TCP is the pipe as a stream.
type fakeNet struct {
	servers map[netip.AddrPort]handler
	refuse  map[netip.AddrPort]bool
	queries atomic.Int64
	wg      sync.WaitGroup
	mu      sync.Mutex
	log     []string // "udp 10.0.0.1:53 www.example. A"
}

func newFakeNet(t *testing.T) *fakeNet {
	before := runtime.NumGoroutine()
	f := &fakeNet{servers: map[netip.AddrPort]handler{}, refuse: map[netip.AddrPort]bool{}}
	t.Cleanup(func() {
		f.wg.Wait()
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			t.Errorf("%d goroutines left", n-before)
		}
	})
	return f
}

func (f *fakeNet) dial(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
	if f.refuse[addr] {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
	}
	h := f.servers[addr]
	if h == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("no route to host")}
	}
	c, s := net.Pipe()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer s.Close()
		f.serve(s, network, addr, h)
	}()
	return c, nil
}

func (f *fakeNet) serve(c net.Conn, network string, addr netip.AddrPort, h handler) {
	buf := make([]byte, 65536)
	for {
		var req []byte
		if network == "udp" {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			req = buf[:n]
		} else {
			if _, err := io.ReadFull(c, buf[:2]); err != nil {
				return
			}
			l := int(binary.BigEndian.Uint16(buf))
			if _, err := io.ReadFull(c, buf[:l]); err != nil {
				return
			}
			req = buf[:l]
		}
		var q Message
		if err := q.Unpack(req); err != nil {
			return
		}
		f.queries.Add(1)
		f.mu.Lock()
		f.log = append(f.log, fmt.Sprintf("%s %v %s %v", network, addr, q.Questions[0].Name, q.Questions[0].Type))
		f.mu.Unlock()
		for _, m := range h(network, &q) {
			b, err := m.Pack(nil)
			if err != nil {
				panic(err)
			}
			if network == "tcp" {
				b = append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
			}
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	}
}

func (f *fakeNet) logged() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

// reply starts an answer to q.
func reply(q *Message, rcode RCode) *Message {
	return &Message{
		Header:    Header{ID: q.ID, Response: true, RecursionDesired: true, RecursionAvailable: true, RCode: rcode},
		Questions: q.Questions,
	}
}

func a(name string, ttl uint32, addr string) Resource {
	ip := netip.MustParseAddr(addr)
	t := TypeA
	if ip.Is6() {
		t = TypeAAAA
	}
	return Resource{Name: name, Type: t, Class: ClassINET, TTL: ttl, Addr: ip}
}

func soa(ttl, minimum uint32) Resource {
	return Resource{Name: "example.", Type: TypeSOA, Class: ClassINET, TTL: ttl,
		SOA: SOA{MName: "ns.example.", RName: "root.example.", Minimum: minimum}}
}

// zone answers from a fixed table of names.
func zone(records map[string][]Resource) handler {
	return func(network string, q *Message) []*Message {
		qq := q.Questions[0]
		rrs, ok := records[strings.ToLower(qq.Name)]
		if !ok {
			m := reply(q, RCodeNameError)
			m.Authorities = []Resource{soa(3600, 60)}
			return []*Message{m}
		}
		m := reply(q, RCodeSuccess)
		for _, rr := range rrs {
			if rr.Type == qq.Type || rr.Type == TypeCNAME {
				m.Answers = append(m.Answers, rr)
			}
		}
		if len(m.Answers) == 0 {
			m.Authorities = []Resource{soa(30, 600)}
		}
		return []*Message{m}
	}
}

var (
	srv1 = netip.MustParseAddrPort("10.0.0.1:53")
	srv2 = netip.MustParseAddrPort("10.0.0.2:53")
)

func newResolver(f *fakeNet, c clock.Clock, servers ...netip.AddrPort) *Resolver {
	return &Resolver{Servers: servers, Dial: f.dial, Timeout: 200 * time.Millisecond, Clock: c}
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestLookupAndTTL(t *testing.T) {
	f := newFakeNet(t)
	f.servers[srv1] = zone(map[string][]Resource{
		"host.example.": {a("host.example.", 60, "192.0.2.1"), a("host.example.", 120, "192.0.2.2"), a("host.example.", 60, "2001:db8::1")},
	})
	clk := clock.NewFake(t0)
	r := newResolver(f, clk, srv1)
	ctx := context.Background()
	got, err := r.LookupHost(ctx, "host.example")
	if want := []string{"192.0.2.1", "192.0.2.2", "2001:db8::1"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("LookupHost = %v, %v; want %v", got, err, want)
	}
	if q := f.queries.Load(); q != 2 {
		t.Errorf("%d queries, want 2 (A and AAAA)", q)
	}
	// Cached: no new query until the smallest TTL (60 s) passes.
	clk.Advance(59 * time.Second)
	if got, err := r.LookupNetIP(ctx, "ip4", "HOST.example."); err != nil || len(got) != 2 {
		t.Errorf("cached LookupNetIP = %v, %v", got, err)
	}
	if q := f.queries.Load(); q != 2 {
		t.Errorf("%d queries after a cached lookup, want 2", q)
	}
	clk.Advance(time.Second)
	if _, err := r.LookupNetIP(ctx, "ip4", "host.example"); err != nil {
		t.Fatal(err)
	}
	if q := f.queries.Load(); q != 3 {
		t.Errorf("%d queries after the TTL expired, want 3", q)
	}
	// Literals are returned as they are, without a query.
	if got, err := r.LookupNetIP(ctx, "ip", "fe80::1%eth0"); err != nil || got[0] != netip.MustParseAddr("fe80::1") {
		t.Errorf("literal: %v, %v", got, err)
	}
	if _, err := r.LookupNetIP(ctx, "ip6", "192.0.2.1"); err == nil {
		t.Error("IPv4 literal for ip6 accepted")
	}
	var de *net.DNSError
	if _, err := r.LookupHost(ctx, "bad..name"); !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("invalid name: %v", err)
	}
	if q := f.queries.Load(); q != 3 {
		t.Errorf("%d queries, want 3", q)
	}
}

func TestCNAMEChain(t *testing.T) {
	f := newFakeNet(t)
	f.servers[srv1] = zone(map[string][]Resource{
		"www.example.": {
			{Name: "www.example.", Type: TypeCNAME, Class: ClassINET, TTL: 300, Target: "cdn.example."},
			{Name: "cdn.example.", Type: TypeCNAME, Class: ClassINET, TTL: 20, Target: "edge.example."},
			a("edge.example.", 100, "192.0.2.9"),
			a("other.example.", 100, "192.0.2.10"), // not on the chain: ignored
		},
		"loop.example.": {
			{Name: "loop.example.", Type: TypeCNAME, Class: ClassINET, TTL: 300, Target: "loop.example."},
		},
	})
	clk := clock.NewFake(t0)
	r := newResolver(f, clk, srv1)
	got, err := r.LookupNetIP(context.Background(), "ip4", "www.example")
	if err != nil || !reflect.DeepEqual(got, []netip.Addr{netip.MustParseAddr("192.0.2.9")}) {
		t.Fatalf("LookupNetIP = %v, %v", got, err)
	}
	// The chain's smallest TTL (20 s) bounds the cache entry.
	clk.Advance(20 * time.Second)
	if _, err := r.LookupNetIP(context.Background(), "ip4", "www.example"); err != nil {
		t.Fatal(err)
	}
	if q := f.queries.Load(); q != 2 {
		t.Errorf("%d queries, want 2", q)
	}
	var de *net.DNSError
	if _, err := r.LookupNetIP(context.Background(), "ip4", "loop.example"); !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("CNAME loop: %v", err)
	}
}

func TestNXDOMAINNegativeCache(t *testing.T) {
	f := newFakeNet(t)
	f.servers[srv1] = zone(map[string][]Resource{"v4only.example.": {a("v4only.example.", 60, "192.0.2.1")}})
	clk := clock.NewFake(t0)
	r := newResolver(f, clk, srv1)
	ctx := context.Background()
	var de *net.DNSError
	_, err := r.LookupNetIP(ctx, "ip4", "missing.example")
	if !errors.As(err, &de) || !de.IsNotFound || de.Name != "missing.example" || de.Server != srv1.String() {
		t.Fatalf("NXDOMAIN: %#v", err)
	}
	// RFC 2308 §5: cached for min(SOA TTL 3600, MINIMUM 60) = 60 s.
	clk.Advance(59 * time.Second)
	if _, err := r.LookupNetIP(ctx, "ip4", "missing.example"); !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("cached NXDOMAIN: %v", err)
	}
	if q := f.queries.Load(); q != 1 {
		t.Errorf("%d queries, want 1", q)
	}
	clk.Advance(time.Second)
	_, _ = r.LookupNetIP(ctx, "ip4", "missing.example")
	if q := f.queries.Load(); q != 2 {
		t.Errorf("%d queries after expiry, want 2", q)
	}
	// NODATA (the name exists without AAAA): not found, cached for min(30, 600) s; the A
	// records still make "ip" succeed.
	if _, err := r.LookupNetIP(ctx, "ip6", "v4only.example"); !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("NODATA: %v", err)
	}
	if got, err := r.LookupNetIP(ctx, "ip", "v4only.example"); err != nil || len(got) != 1 {
		t.Errorf("ip with only A: %v, %v", got, err)
	}
	if q := f.queries.Load(); q != 4 {
		t.Errorf("%d queries, want 4 (AAAA negative cached)", q)
	}
}

func TestTruncationFallsBackToTCP(t *testing.T) {
	f := newFakeNet(t)
	var big []Resource
	for i := range 60 { // 60 A records: over 512 octets
		big = append(big, a("big.example.", 60, fmt.Sprintf("192.0.2.%d", i+1)))
	}
	full := zone(map[string][]Resource{"big.example.": big})
	f.servers[srv1] = func(network string, q *Message) []*Message {
		if network == "udp" {
			m := reply(q, RCodeSuccess)
			m.Truncated = true
			m.Answers = big[:3] // a truncated answer is not used
			return []*Message{m}
		}
		return full(network, q)
	}
	r := newResolver(f, nil, srv1)
	got, err := r.LookupNetIP(context.Background(), "ip4", "big.example")
	if err != nil || len(got) != 60 {
		t.Fatalf("LookupNetIP = %d addresses, %v", len(got), err)
	}
	if log := f.logged(); len(log) != 2 || !strings.HasPrefix(log[0], "udp") || !strings.HasPrefix(log[1], "tcp") {
		t.Errorf("queries: %q", log)
	}
}

func TestServerFailover(t *testing.T) {
	f := newFakeNet(t)
	good := zone(map[string][]Resource{"h.example.": {a("h.example.", 60, "192.0.2.1")}})
	srv3 := netip.MustParseAddrPort("10.0.0.3:53")
	srv4 := netip.MustParseAddrPort("10.0.0.4:53")
	f.refuse[srv1] = true                                              // dial fails
	f.servers[srv2] = func(string, *Message) []*Message { return nil } // never answers: timeout
	f.servers[srv3] = func(_ string, q *Message) []*Message {          // SERVFAIL
		return []*Message{reply(q, RCodeServerFailure)}
	}
	f.servers[srv4] = func(network string, q *Message) []*Message {
		// A spoofed answer with the wrong ID comes first; it must be ignored (RFC 5452).
		spoof := reply(q, RCodeSuccess)
		spoof.ID++
		spoof.Answers = []Resource{a("h.example.", 60, "203.0.113.66")}
		return append([]*Message{spoof}, good(network, q)...)
	}
	r := newResolver(f, nil, srv1, srv2, srv3, srv4)
	start := time.Now()
	got, err := r.LookupNetIP(context.Background(), "ip4", "h.example")
	if err != nil || !reflect.DeepEqual(got, []netip.Addr{netip.MustParseAddr("192.0.2.1")}) {
		t.Fatalf("LookupNetIP = %v, %v", got, err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("took %v: the silent server should cost one 200 ms timeout", d)
	}
	// All servers failing: the last error, temporary; two rounds over the list.
	delete(f.servers, srv4)
	f.refuse[srv4] = true
	r2 := newResolver(f, nil, srv3, srv4)
	var de *net.DNSError
	if _, err := r2.LookupNetIP(context.Background(), "ip4", "h.example"); !errors.As(err, &de) || de.IsNotFound || !de.IsTemporary {
		t.Errorf("all failing: %#v", err)
	}
	n := 0
	for _, l := range f.logged() {
		if strings.Contains(l, srv3.String()) {
			n++
		}
	}
	if n != 3 { // once for r, twice for r2
		t.Errorf("SERVFAIL server asked %d times, want 3", n)
	}
	// A timeout is reported as one.
	r3 := newResolver(f, nil, srv2)
	r3.Attempts = 1
	if _, err := r3.LookupNetIP(context.Background(), "ip4", "h.example"); !errors.As(err, &de) || !de.IsTimeout {
		t.Errorf("timeout: %#v", err)
	}
}

func TestLookupCanceled(t *testing.T) {
	f := newFakeNet(t)
	f.servers[srv1] = func(string, *Message) []*Message { return nil }
	r := &Resolver{Servers: []netip.AddrPort{srv1}, Dial: f.dial, Timeout: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := r.LookupHost(ctx, "slow.example")
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("LookupHost = %v after %v", err, time.Since(start))
	}
	var de *net.DNSError
	if !errors.As(err, &de) || de.IsNotFound {
		t.Errorf("canceled: %#v", err)
	}
	if _, err := (&Resolver{}).LookupHost(context.Background(), "x.example"); err == nil {
		t.Error("a resolver without servers succeeded")
	}
}

func TestCacheBounded(t *testing.T) {
	f := newFakeNet(t)
	recs := map[string][]Resource{}
	for i := range 5 {
		n := fmt.Sprintf("h%d.example.", i)
		recs[n] = []Resource{a(n, 600, fmt.Sprintf("192.0.2.%d", i+1))}
	}
	f.servers[srv1] = zone(recs)
	r := newResolver(f, clock.NewFake(t0), srv1)
	r.CacheSize = 2
	for i := range 5 {
		if _, err := r.LookupNetIP(context.Background(), "ip4", fmt.Sprintf("h%d.example", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.CacheLen(); n != 2 {
		t.Errorf("cache holds %d entries, want 2", n)
	}
	// The most recent stays; the oldest was evicted.
	_, _ = r.LookupNetIP(context.Background(), "ip4", "h4.example")
	_, _ = r.LookupNetIP(context.Background(), "ip4", "h0.example")
	if q := f.queries.Load(); q != 6 {
		t.Errorf("%d queries, want 6", q)
	}
	// TTLs with the top bit set count as zero (RFC 2181 §8): not cached.
	if ttlOf(1<<31) != 0 || ttlOf(5) != 5*time.Second {
		t.Error("ttlOf")
	}
}

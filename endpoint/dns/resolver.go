package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/wispstack/wisp/clock"
)

// Defaults of Resolver.
const (
	DefaultTimeout   = 5 * time.Second // per query and server, as wireguard-go's netstack
	DefaultAttempts  = 2               // rounds over the server list, as netstack
	DefaultCacheSize = 256
	// maxCNAMEs bounds a CNAME chain inside one answer.
	maxCNAMEs = 16
	// udpBufLen is the receive buffer of a UDP answer: RFC 1035 §4.2.1 limits them to 512
	// octets without EDNS, which is not sent; a larger one is read whole anyway.
	udpBufLen = 4096
)

// Error texts, those of package net where it has one.
const (
	errNoSuchHost        = "no such host"
	errServerMisbehaving = "server misbehaving"
	errLameReferral      = "lame referral"
	errBadMessage        = "cannot unmarshal DNS message"
	errTimeout           = "i/o timeout"
	errNoServers         = "no DNS servers configured"
	errNoSuitable        = "no suitable address"
)

// Resolver is a stub resolver for A and AAAA records (RFC 1035 §7): it asks Servers in
// order over UDP, retries over TCP when an answer is truncated (RFC 7766 §5), follows
// CNAME chains inside an answer, and caches answers for their TTL and negative answers for
// their SOA's minimum (RFC 2308 §5). It does no search-list processing: names are absolute.
//
// Set the fields before the first lookup and do not change them afterwards; the methods are
// then safe for concurrent use.
type Resolver struct {
	// Servers are asked in order (port 0 means 53).
	Servers []netip.AddrPort
	// Dial opens a "udp" or "tcp" conn to a server; nil dials with package net.
	Dial func(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error)
	// Timeout bounds one query to one server, the TCP retry included (0: DefaultTimeout).
	// It is real time: conns' deadlines are.
	Timeout time.Duration
	// Attempts is the number of rounds over Servers (0: DefaultAttempts).
	Attempts int
	// CacheSize bounds the cache in (name, type) entries (0: DefaultCacheSize; negative: no
	// cache).
	CacheSize int
	// Clock times cache entries (nil: the real clock).
	Clock clock.Clock

	once  sync.Once
	cache *cache // nil: no cache
}

func (r *Resolver) init() {
	r.once.Do(func() {
		n := r.CacheSize
		if n == 0 {
			n = DefaultCacheSize
		}
		if n > 0 {
			r.cache = newCache(n)
		}
	})
}

func (r *Resolver) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

// CacheLen returns the number of cached (name, type) entries.
func (r *Resolver) CacheLen() int {
	r.init()
	if r.cache == nil {
		return 0
	}
	return r.cache.len()
}

// LookupHost returns the addresses of host, IPv4 first, as strings. An IP literal is
// returned as it is. Errors are *net.DNSError (IsNotFound for NXDOMAIN and for names
// without addresses).
func (r *Resolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	return AddrStrings(addrs), nil
}

// AddrStrings returns addrs in text form, as LookupHost does (the WireGuard adapter's
// LookupContextHost too).
func AddrStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// LookupNetIP returns the addresses of host: network "ip" asks for A and AAAA records in
// parallel (IPv4 addresses first), "ip4" for A, "ip6" for AAAA.
func (r *Resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	var want4, want6 bool
	switch network {
	case "ip":
		want4, want6 = true, true
	case "ip4":
		want4 = true
	case "ip6":
		want6 = true
	default:
		return nil, net.UnknownNetworkError(network)
	}
	if host == "" {
		return nil, &net.DNSError{Err: errNoSuchHost, Name: host, IsNotFound: true}
	}
	lit := host
	if i := strings.LastIndexByte(host, '%'); i >= 0 && strings.IndexByte(host, ':') >= 0 {
		lit = host[:i]
	}
	if a, err := netip.ParseAddr(lit); err == nil {
		if a.Is4() && !want4 || !a.Is4() && !want6 {
			return nil, &net.AddrError{Err: errNoSuitable, Addr: host}
		}
		return []netip.Addr{a}, nil
	}
	if !isDomainName(host) {
		return nil, &net.DNSError{Err: errNoSuchHost, Name: host, IsNotFound: true}
	}
	r.init()
	if !want4 || !want6 {
		t := TypeA
		if want6 {
			t = TypeAAAA
		}
		return r.lookup(ctx, host, t)
	}
	type result struct {
		addrs []netip.Addr
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		a, err := r.lookup(ctx, host, TypeAAAA)
		ch <- result{a, err}
	}()
	v4, err4 := r.lookup(ctx, host, TypeA)
	v6 := <-ch
	addrs := append(v4, v6.addrs...)
	if len(addrs) > 0 {
		return addrs, nil
	}
	// A real failure says more than one family's absence.
	if notFound(err4) && v6.err != nil {
		return nil, v6.err
	}
	return nil, err4
}

func notFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// lookup answers one (name, type) from the cache or the servers.
func (r *Resolver) lookup(ctx context.Context, host string, t Type) ([]netip.Addr, error) {
	fqdn := host
	if !strings.HasSuffix(fqdn, ".") {
		fqdn += "."
	}
	k := keyOf(fqdn, t)
	if r.cache != nil {
		if addrs, ok := r.cache.get(k, r.now()); ok {
			if len(addrs) == 0 {
				return nil, &net.DNSError{Err: errNoSuchHost, Name: host, IsNotFound: true}
			}
			return addrs, nil
		}
	}
	if len(r.Servers) == 0 {
		return nil, &net.DNSError{Err: errNoServers, Name: host}
	}
	attempts := r.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	var last error
	for range attempts {
		for _, srv := range r.Servers {
			if srv.Port() == 0 {
				srv = netip.AddrPortFrom(srv.Addr(), 53)
			}
			if err := ctx.Err(); err != nil {
				return nil, ctxError(err, host, srv)
			}
			m, err := r.exchange(ctx, srv, fqdn, t)
			if err != nil {
				if cerr := ctx.Err(); cerr != nil {
					return nil, ctxError(cerr, host, srv)
				}
				last = queryError(err, host, srv)
				continue
			}
			addrs, neg, err := r.answer(m, fqdn, t)
			if err != nil {
				last = &net.DNSError{Err: err.Error(), Name: host, Server: srv.String(),
					IsTemporary: m.RCode == RCodeServerFailure}
				continue
			}
			if r.cache != nil {
				now := r.now()
				if addrs != nil {
					r.cache.put(k, addrs.addrs, min(addrs.ttl, maxPositiveTTL), now)
				} else if neg >= 0 {
					r.cache.put(k, nil, min(neg, maxNegativeTTL), now)
				}
			}
			if addrs == nil {
				return nil, &net.DNSError{Err: errNoSuchHost, Name: host, Server: srv.String(), IsNotFound: true}
			}
			return addrs.addrs, nil
		}
	}
	return nil, last
}

type positive struct {
	addrs []netip.Addr
	ttl   time.Duration
}

// answer reads a response: its addresses of type t at the end of qname's CNAME chain and
// their TTL (the smallest on the chain); or, for NXDOMAIN or no data, nil and the negative
// TTL (-1: not to be cached); or an error meaning the next server should be asked.
func (r *Resolver) answer(m *Message, qname string, t Type) (*positive, time.Duration, error) {
	switch m.RCode {
	case RCodeSuccess, RCodeNameError:
	default:
		return nil, 0, errors.New(errServerMisbehaving)
	}
	if m.RCode == RCodeSuccess && len(m.Answers) == 0 && !m.Authoritative && !m.RecursionAvailable {
		// A referral from a server that does not recurse: it cannot answer a stub.
		hasSOA := false
		for _, rr := range m.Authorities {
			hasSOA = hasSOA || rr.Type == TypeSOA
		}
		if !hasSOA {
			return nil, 0, errors.New(errLameReferral)
		}
	}
	if m.RCode == RCodeSuccess {
		cur := qname
		ttl := maxPositiveTTL
		for hops := 0; hops <= maxCNAMEs; hops++ {
			var p positive
			next := ""
			for i := range m.Answers {
				rr := &m.Answers[i]
				if rr.Class != ClassINET || !equalName(rr.Name, cur) {
					continue
				}
				switch rr.Type {
				case t:
					p.addrs = append(p.addrs, rr.Addr)
					ttl = min(ttl, ttlOf(rr.TTL))
				case TypeCNAME:
					if next == "" {
						next = rr.Target
						ttl = min(ttl, ttlOf(rr.TTL))
					}
				}
			}
			if len(p.addrs) > 0 {
				p.ttl = ttl
				return &p, 0, nil
			}
			if next == "" {
				break
			}
			cur = next
		}
	}
	// RFC 2308 §5: "the TTL of this record is set from the minimum of the MINIMUM field of
	// the SOA record and the TTL of the SOA itself"; without an SOA a negative answer
	// "SHOULD NOT be cached".
	for _, rr := range m.Authorities {
		if rr.Type == TypeSOA {
			return nil, min(ttlOf(rr.TTL), ttlOf(rr.SOA.Minimum)), nil
		}
	}
	return nil, -1, nil
}

// exchange asks srv one question: over UDP, then over TCP if the answer is truncated.
func (r *Resolver) exchange(ctx context.Context, srv netip.AddrPort, name string, t Type) (*Message, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q := Message{
		Header:    Header{ID: uint16(rand.Uint32()), RecursionDesired: true},
		Questions: []Question{{Name: name, Type: t, Class: ClassINET}},
	}
	req, err := q.Pack(make([]byte, 2, 2+headerLen+len(name)+6))
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint16(req, uint16(len(req)-2))
	m, err := r.roundTrip(ctx, "udp", srv, &q, req[2:])
	if err != nil || !m.Truncated {
		return m, err
	}
	// RFC 7766 §5: a stub "MUST" retry over TCP when a UDP answer is truncated.
	return r.roundTrip(ctx, "tcp", srv, &q, req)
}

// roundTrip sends req on a new conn and reads the answer to q.
func (r *Resolver) roundTrip(ctx context.Context, network string, srv netip.AddrPort, q *Message, req []byte) (*Message, error) {
	dial := r.Dial
	if dial == nil {
		dial = func(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr.String())
		}
	}
	c, err := dial(ctx, network, srv)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(d); err != nil {
			return nil, err
		}
	}
	// Canceling ctx unblocks the read at once.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	m := new(Message)
	if network == "udp" {
		buf := make([]byte, udpBufLen)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return nil, err
			}
			// RFC 5452 §9.1: an answer whose ID or question does not match is ignored
			// (it may be spoofed or late), not taken as the answer.
			if m.Unpack(buf[:n]) == nil && matches(q, m) {
				return m, nil
			}
		}
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, err
	}
	if err := m.Unpack(buf); err != nil {
		return nil, errors.New(errBadMessage)
	}
	if !matches(q, m) {
		return nil, errors.New(errBadMessage)
	}
	return m, nil
}

// matches reports whether m answers q: a response with q's ID and question.
func matches(q, m *Message) bool {
	if !m.Response || m.ID != q.ID || len(m.Questions) != 1 {
		return false
	}
	a, b := q.Questions[0], m.Questions[0]
	return a.Type == b.Type && a.Class == b.Class && equalName(a.Name, b.Name)
}

func ctxError(err error, host string, srv netip.AddrPort) error {
	de := &net.DNSError{Err: err.Error(), Name: host, Server: srv.String()}
	if errors.Is(err, context.DeadlineExceeded) {
		de.Err, de.IsTimeout = errTimeout, true
	} else {
		de.Err = "operation was canceled"
	}
	return de
}

func queryError(err error, host string, srv netip.AddrPort) error {
	de := &net.DNSError{Err: err.Error(), Name: host, Server: srv.String()}
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout() {
		de.Err, de.IsTimeout, de.IsTemporary = errTimeout, true, true
	} else if _, ok := err.(*net.OpError); ok {
		de.IsTemporary = true
	}
	return de
}

// isDomainName reports whether s is a host name a resolver should ask for (RFC 1035 §2.3.1
// syntax, relaxed as in practice: underscores allowed, digit-only labels allowed but not an
// all-numeric name).
func isDomainName(s string) bool {
	if s == "." {
		return false
	}
	s = strings.TrimSuffix(s, ".")
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	nonNumeric := false
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > maxLabelLen || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			switch c := label[i]; {
			case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-':
				nonNumeric = true
			case '0' <= c && c <= '9':
			default:
				return false
			}
		}
	}
	return nonNumeric
}

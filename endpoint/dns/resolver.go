package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	adns "github.com/wispstack/wisp/apps/dns"
	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/stack"
	wdns "github.com/wispstack/wisp/wire/dns"
)

// DefaultTCPTimeout bounds the TCP retry of a truncated answer when Resolver.TCPTimeout is
// 0 (5 s, the per-query timeout of wireguard-go's netstack).
const DefaultTCPTimeout = 5 * time.Second

// Error texts, those of package net where it has one.
const (
	errNoSuchHost        = "no such host"
	errServerMisbehaving = "server misbehaving"
	errTimeout           = "i/o timeout"
	errNoServers         = "no DNS servers configured"
	errNoSuitable        = "no suitable address"
	errNoMemory          = "resolver table full"
	errCanceled          = "operation was canceled"
)

// Resolver answers names through a stack's resolver, with package net's signatures and
// errors. Set its fields before the first lookup; its methods are then safe for concurrent
// use.
type Resolver struct {
	// Stack is the stack whose resolver (Stack.DNS) answers.
	Stack *stack.Stack
	// DialTCP connects to a server for the TCP retry of a truncated answer (through the
	// same stack: endpoint.Net passes its DialContextTCPAddrPort). nil: no TCP retry, the
	// lookup fails.
	DialTCP func(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
	// TCPTimeout bounds the TCP retry (0: DefaultTCPTimeout).
	TCPTimeout time.Duration
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

// AddrStrings returns addrs in text form, as LookupHost does.
func AddrStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// LookupNetIP returns the addresses of host: network "ip" asks for A and AAAA records at
// once (IPv4 addresses first), "ip4" for A, "ip6" for AAAA. An IP literal is returned as
// it is (*net.AddrError when it is not of the network's family).
func (r *Resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	var fam adns.AddrType
	switch network {
	case "ip":
		fam = adns.Any
	case "ip4":
		fam = adns.IPv4
	case "ip6":
		fam = adns.IPv6
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
		if fam == adns.IPv4 && !a.Is4() || fam == adns.IPv6 && a.Is4() {
			return nil, &net.AddrError{Err: errNoSuitable, Addr: host}
		}
		return []netip.Addr{a}, nil
	}
	if !adns.ValidName(host) {
		return nil, &net.DNSError{Err: errNoSuchHost, Name: host, IsNotFound: true}
	}
	addrs, err := netconn.LookupHost(r.Stack, ctx, host, fam)
	var te *adns.TruncatedError
	if errors.As(err, &te) && r.DialTCP != nil {
		addrs, err = r.overTCP(ctx, host, fam, te.Server)
	}
	if err != nil {
		return nil, dnsError(err, host)
	}
	return addrs, nil
}

// overTCP asks srv for host over TCP (RFC 7766 §5: a stub "MUST" retry over TCP when a UDP
// answer is truncated) and stores the answer in the stack's table.
func (r *Resolver) overTCP(ctx context.Context, host string, fam adns.AddrType, srv netip.AddrPort) ([]netip.Addr, error) {
	timeout := r.TCPTimeout
	if timeout <= 0 {
		timeout = DefaultTCPTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	types := []wdns.Type{wdns.TypeA, wdns.TypeAAAA}
	switch fam {
	case adns.IPv4:
		types = types[:1]
	case adns.IPv6:
		types = types[1:]
	}
	var addrs []netip.Addr
	ttl, neg := adns.MaxTTL, time.Duration(-1)
	nx := false
	for _, t := range types {
		m, err := r.exchangeTCP(ctx, srv, host, t)
		if err != nil {
			return nil, err
		}
		switch m.RCode {
		case wdns.RCodeSuccess, wdns.RCodeNameError:
		default:
			return nil, adns.ErrServer
		}
		var found bool
		var t2 time.Duration
		if addrs, t2, found = adns.Extract(addrs, m, host, t); found {
			ttl = min(ttl, t2)
		} else if n := adns.NegativeTTL(m); n >= 0 && (neg < 0 || n < neg) {
			neg = n
		}
		if m.RCode == wdns.RCodeNameError {
			nx = true
			break
		}
	}
	r.Stack.Lock()
	if res := r.Stack.DNS(); res != nil {
		if len(addrs) > 0 {
			res.Store(host, fam, addrs, ttl)
		} else {
			res.Store(host, fam, nil, neg)
		}
	}
	r.Stack.Unlock()
	if len(addrs) == 0 || nx {
		return nil, adns.ErrNotFound
	}
	v4 := make([]netip.Addr, 0, len(addrs))
	var v6 []netip.Addr
	for _, a := range addrs {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	return append(v4, v6...), nil
}

// exchangeTCP asks srv one question over one TCP connection (RFC 1035 §4.2.2).
func (r *Resolver) exchangeTCP(ctx context.Context, srv netip.AddrPort, host string, t wdns.Type) (*wdns.Message, error) {
	q := wdns.Message{
		Header:    wdns.Header{ID: uint16(rand.Uint32()), RecursionDesired: true},
		Questions: []wdns.Question{{Name: strings.TrimSuffix(host, ".") + ".", Type: t, Class: wdns.ClassINET}},
	}
	req, err := q.Pack(make([]byte, 2, 2+12+len(host)+6))
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint16(req, uint16(len(req)-2))
	c, err := r.DialTCP(ctx, srv)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(d); err != nil {
			return nil, err
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, err
	}
	m := new(wdns.Message)
	if err := m.Unpack(buf); err != nil {
		return nil, adns.ErrServer
	}
	// RFC 5452 §9.1: the answer must carry the query's ID and question.
	if !m.Response || m.ID != q.ID || len(m.Questions) != 1 || m.Questions[0].Type != t ||
		!wdns.EqualName(m.Questions[0].Name, q.Questions[0].Name) {
		return nil, adns.ErrServer
	}
	return m, nil
}

// dnsError maps the resolver's errors to package net's.
func dnsError(err error, host string) error {
	de := &net.DNSError{Err: err.Error(), Name: host}
	var ne net.Error
	switch {
	case errors.Is(err, adns.ErrNotFound):
		de.Err, de.IsNotFound = errNoSuchHost, true
	case errors.Is(err, adns.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		de.Err, de.IsTimeout, de.IsTemporary = errTimeout, true, true
	case errors.Is(err, context.Canceled):
		de.Err = errCanceled
	case errors.Is(err, adns.ErrServer):
		de.Err, de.IsTemporary = errServerMisbehaving, true
	case errors.Is(err, adns.ErrNoServers):
		de.Err = errNoServers
	case errors.Is(err, errs.Mem):
		de.Err, de.IsTemporary = errNoMemory, true
	case errors.Is(err, errs.Arg):
		de.Err, de.IsNotFound = errNoSuchHost, true
	case errors.As(err, &ne) && ne.Timeout():
		de.Err, de.IsTimeout, de.IsTemporary = errTimeout, true, true
	}
	return de
}

package netconn

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/wispstack/wisp/apps/dns"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/stack"
)

// LookupHost resolves name through the stack's resolver and waits for the answer (lwIP's
// netconn_gethostbyname): an IP literal or a name the table holds returns at once; else
// the resolver's queries run (DNSMaxRetries tries every DNSRetryInterval) until an answer,
// a failure or ctx's end. family is dns.Any when not given (A and AAAA, IPv4 first).
// Errors: the resolver's (dns.ErrNotFound, dns.ErrTimeout, dns.ErrServer,
// dns.ErrNoServers, *dns.TruncatedError, errs.Mem when every table entry is in flight,
// errs.Arg for a malformed name), ctx.Err(), net.ErrClosed when the stack is closed. The
// addresses are the caller's. Safe for concurrent use.
func LookupHost(s *stack.Stack, ctx context.Context, name string, family ...dns.AddrType) ([]netip.Addr, error) {
	fam := dns.Any
	if len(family) > 0 {
		fam = family[0]
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		addrs []netip.Addr
		err   error
	}
	ch := make(chan result, 1) // the callback never blocks, even after ctx ended
	s.Lock()
	r := s.DNS()
	if r == nil {
		s.Unlock()
		return nil, net.ErrClosed
	}
	addrs, err := r.GetHostByName(name, fam, func(_ string, addrs []netip.Addr, err error) {
		ch <- result{append([]netip.Addr(nil), addrs...), err}
	})
	if err == nil {
		addrs = append([]netip.Addr(nil), addrs...)
	}
	s.Unlock()
	if !errors.Is(err, errs.InProgress) {
		return addrs, lookupErr(err)
	}
	select {
	case res := <-ch:
		return res.addrs, lookupErr(res.err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func lookupErr(err error) error {
	if errors.Is(err, errs.Clsd) {
		return net.ErrClosed
	}
	return err
}

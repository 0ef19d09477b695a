package endpoint

import (
	"context"
	"net"
	"net/netip"
	"strings"

	"github.com/wispstack/wisp/endpoint/dns"
)

// LookupHost returns the addresses of host, IPv4 first, as net.Resolver.LookupHost does,
// through the stack's resolver (Stack.DNS: its servers, retries and table). A truncated
// UDP answer is asked again over TCP through this socket layer. Errors are *net.DNSError.
func (n *Net) LookupHost(ctx context.Context, host string) ([]string, error) {
	return n.resolver().LookupHost(ctx, host)
}

// LookupNetIP returns the addresses of host for network "ip", "ip4" or "ip6", as
// net.Resolver.LookupNetIP does, through the stack's resolver.
func (n *Net) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return n.resolver().LookupNetIP(ctx, network, host)
}

func (n *Net) resolver() *dns.Resolver {
	return &dns.Resolver{Stack: n.s, DialTCP: func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
		return n.DialContextTCPAddrPort(ctx, a)
	}}
}

// resolveDial is resolve for Dial: a name that is neither a literal nor "localhost" is
// looked up through the stack's resolver, in the network's family.
func (n *Net) resolveDial(ctx context.Context, host string, f family) ([]netip.Addr, error) {
	if host == "" || strings.EqualFold(host, "localhost") || isLiteral(host) {
		return n.resolve(host, f, true)
	}
	network := "ip"
	switch f {
	case fam4:
		network = "ip4"
	case fam6:
		network = "ip6"
	}
	return n.LookupNetIP(ctx, network, host)
}

// isLiteral reports whether host parses as an IP address (with a zone, for IPv6).
func isLiteral(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

package wireguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/endpoint/dns"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stats"
)

// Net is the socket layer of a tunnel's stack, with the methods of wireguard-go's
// tun/netstack.Net under the same names and parameter types. Where netstack returns gonet
// types, Net returns endpoint's, which have gonet's methods (and net's).
//
// Concurrency: every method is safe for concurrent use.
type Net struct {
	ep           *endpoint.Net
	dev          *Device
	res          *dns.Resolver
	hasV4, hasV6 bool
}

// PingConn is an ICMP echo socket (see endpoint.PingConn); its method set includes
// netstack's PingConn's.
type PingConn = endpoint.PingConn

// PingAddr is a ping socket's address, as netstack's.
type PingAddr = endpoint.PingAddr

// PingAddrFromAddr returns the PingAddr of addr.
func PingAddrFromAddr(addr netip.Addr) *PingAddr { return endpoint.PingAddrFromAddr(addr) }

// Stack returns the wisp stack behind the tunnel (for its options, routes and counters).
func (n *Net) Stack() *stack.Stack { return n.ep.Stack() }

// Stats returns a snapshot of every counter of the stack.
func (n *Net) Stats() stats.Snapshot { return n.ep.Stack().Stats() }

// Budget returns the memory the stack reserved, pool by pool: all it will ever use for
// packets and connections.
func (n *Net) Budget() stack.Budget { return n.ep.Stack().Budget() }

// Endpoint returns wisp's own socket layer on the same stack, with package net's
// signatures (Listen, ListenPacket, DialTCP(network, laddr, raddr), ...).
func (n *Net) Endpoint() *endpoint.Net { return n.ep }

// Resolver returns the resolver LookupHost and Dial use: the socket layer's front of the
// stack's resolver (Stack().DNS(), whose servers CreateNetTUN set).
func (n *Net) Resolver() *dns.Resolver { return n.res }

// Device returns the tunnel's device (also returned by CreateNetTUN as a tun.Device).
func (n *Net) Device() *Device { return n.dev }

// DialContextTCPAddrPort connects to addr.
func (n *Net) DialContextTCPAddrPort(ctx context.Context, addr netip.AddrPort) (*endpoint.TCPConn, error) {
	return n.ep.DialContextTCPAddrPort(ctx, addr)
}

// DialContextTCP connects to addr.
func (n *Net) DialContextTCP(ctx context.Context, addr *net.TCPAddr) (*endpoint.TCPConn, error) {
	return n.ep.DialContextTCPAddrPort(ctx, tcpAP(addr))
}

// DialTCPAddrPort connects to addr.
func (n *Net) DialTCPAddrPort(addr netip.AddrPort) (*endpoint.TCPConn, error) {
	return n.ep.DialTCPAddrPort(addr)
}

// DialTCP connects to addr.
func (n *Net) DialTCP(addr *net.TCPAddr) (*endpoint.TCPConn, error) {
	return n.ep.DialTCPAddrPort(tcpAP(addr))
}

// ListenTCPAddrPort listens on addr (an invalid address: every address).
func (n *Net) ListenTCPAddrPort(addr netip.AddrPort) (*endpoint.TCPListener, error) {
	return n.ep.ListenTCPAddrPort(addr)
}

// ListenTCP listens on addr (nil or no IP: every address).
func (n *Net) ListenTCP(addr *net.TCPAddr) (*endpoint.TCPListener, error) {
	return n.ep.ListenTCPAddrPort(tcpAP(addr))
}

// DialUDPAddrPort opens a UDP socket bound to laddr (zero: any) and connected to raddr
// (zero: unconnected).
func (n *Net) DialUDPAddrPort(laddr, raddr netip.AddrPort) (*endpoint.UDPConn, error) {
	return n.ep.DialUDPAddrPort(laddr, raddr)
}

// ListenUDPAddrPort opens an unconnected UDP socket on laddr.
func (n *Net) ListenUDPAddrPort(laddr netip.AddrPort) (*endpoint.UDPConn, error) {
	return n.ep.ListenUDPAddrPort(laddr)
}

// DialUDP is DialUDPAddrPort with *net.UDPAddr arguments (nil: zero).
func (n *Net) DialUDP(laddr, raddr *net.UDPAddr) (*endpoint.UDPConn, error) {
	return n.ep.DialUDPAddrPort(udpAP(laddr), udpAP(raddr))
}

// ListenUDP opens an unconnected UDP socket on laddr (nil: any address, any port).
func (n *Net) ListenUDP(laddr *net.UDPAddr) (*endpoint.UDPConn, error) {
	return n.ep.ListenUDPAddrPort(udpAP(laddr))
}

// DialPingAddr opens a ping socket bound to laddr and connected to raddr (either may be
// invalid, not both).
func (n *Net) DialPingAddr(laddr, raddr netip.Addr) (*PingConn, error) {
	return n.ep.DialPingAddr(laddr, raddr)
}

// ListenPingAddr opens an unconnected ping socket bound to laddr.
func (n *Net) ListenPingAddr(laddr netip.Addr) (*PingConn, error) {
	return n.ep.ListenPingAddr(laddr)
}

// DialPing is DialPingAddr with *PingAddr arguments (nil: invalid).
func (n *Net) DialPing(laddr, raddr *PingAddr) (*PingConn, error) {
	return n.ep.DialPing(laddr, raddr)
}

// ListenPing is ListenPingAddr with a *PingAddr.
func (n *Net) ListenPing(laddr *PingAddr) (*PingConn, error) {
	return n.ep.ListenPing(laddr)
}

func tcpAP(a *net.TCPAddr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	ip, _ := netip.AddrFromSlice(a.IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port))
}

func udpAP(a *net.UDPAddr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	ip, _ := netip.AddrFromSlice(a.IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port))
}

// dialDNS is the resolver's TCP dial (a truncated answer asked again): through the tunnel.
func (n *Net) dialDNS(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	return n.ep.DialContextTCPAddrPort(ctx, addr)
}

// LookupHost resolves host through the tunnel's DNS servers.
func (n *Net) LookupHost(host string) ([]string, error) {
	return n.LookupContextHost(context.Background(), host)
}

// LookupContextHost resolves host as netstack does: an IP literal is returned as it is; a
// name is asked for A records when the tunnel has an IPv4 address and AAAA records when it
// has an IPv6 one, IPv6 results first when it has both. Answers are cached for their TTL
// in the stack's resolver table.
func (n *Net) LookupContextHost(ctx context.Context, host string) ([]string, error) {
	addrs, err := n.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	return dns.AddrStrings(addrs), nil
}

func (n *Net) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if host == "" || !n.hasV4 && !n.hasV6 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	network := "ip"
	switch {
	case !n.hasV6:
		network = "ip4"
	case !n.hasV4:
		network = "ip6"
	}
	addrs, err := n.res.LookupNetIP(ctx, network, host)
	var ae *net.AddrError
	if errors.As(err, &ae) {
		// A literal of the family the tunnel lacks: netstack returns it as it is.
		lit := host
		if i := strings.LastIndexByte(host, '%'); i >= 0 {
			lit = host[:i]
		}
		if a, perr := netip.ParseAddr(lit); perr == nil {
			return []netip.Addr{a}, nil
		}
	}
	if err != nil {
		return nil, err
	}
	if n.hasV6 {
		// No RFC 6724 sorting, as netstack: IPv6 first when the tunnel has IPv6.
		v6 := make([]netip.Addr, 0, len(addrs))
		v4 := make([]netip.Addr, 0, len(addrs))
		for _, a := range addrs {
			if a.Is4() {
				v4 = append(v4, a)
			} else {
				v6 = append(v6, a)
			}
		}
		addrs = append(v6, v4...)
	}
	return addrs, nil
}

// Dial connects to address on network ("tcp", "udp", "ping", each optionally with "4" or
// "6"), resolving host names through the tunnel's DNS.
func (n *Net) Dial(network, address string) (net.Conn, error) {
	return n.DialContext(context.Background(), network, address)
}

// DialContext is Dial with a context, as netstack's: every address of the host is tried
// in order until one connects, each with an equal share of the time left before the
// context's deadline (at least 2 s, as package net).
func (n *Net) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if ctx == nil {
		panic("wireguard: nil context")
	}
	proto, fam := network, byte(0)
	if l := len(network); l > 0 && (network[l-1] == '4' || network[l-1] == '6') {
		proto, fam = network[:l-1], network[l-1]
	}
	if proto != "tcp" && proto != "udp" && proto != "ping" {
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	host, port := address, 0
	if proto != "ping" {
		h, sport, err := net.SplitHostPort(address)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		p, err := strconv.Atoi(sport)
		if err != nil || p < 0 || p > 65535 {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("port must be numeric")}
		}
		host, port = h, p
	}
	all, err := n.lookup(ctx, host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var addrs []netip.AddrPort
	for _, a := range all {
		if fam == 0 || a.Is4() == (fam == '4') {
			addrs = append(addrs, netip.AddrPortFrom(a, uint16(port)))
		}
	}
	if len(addrs) == 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.AddrError{Err: "no suitable address found", Addr: host}}
	}
	var first error
	for i, ap := range addrs {
		if err := ctx.Err(); err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		dctx := ctx
		if deadline, ok := ctx.Deadline(); ok {
			pd, err := partialDeadline(time.Now(), deadline, len(addrs)-i)
			if err != nil {
				if first == nil {
					first = &net.OpError{Op: "dial", Net: network, Err: err}
				}
				break
			}
			if pd.Before(deadline) {
				var cancel context.CancelFunc
				dctx, cancel = context.WithDeadline(ctx, pd)
				defer cancel()
			}
		}
		var c net.Conn
		switch proto {
		case "tcp":
			c, err = n.DialContextTCPAddrPort(dctx, ap)
		case "udp":
			c, err = n.DialUDPAddrPort(netip.AddrPort{}, ap)
		default:
			c, err = n.DialPingAddr(netip.Addr{}, ap.Addr())
		}
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// partialDeadline returns the deadline of one of addrsRemaining connects sharing the time
// until deadline, as package net's dialer: an equal share, but not under 2 s unless less is
// left.
func partialDeadline(now, deadline time.Time, addrsRemaining int) (time.Time, error) {
	left := deadline.Sub(now)
	if left <= 0 {
		return time.Time{}, context.DeadlineExceeded
	}
	share := left / time.Duration(addrsRemaining)
	const saneMinimum = 2 * time.Second
	if share < saneMinimum {
		share = min(left, saneMinimum)
	}
	return now.Add(share), nil
}

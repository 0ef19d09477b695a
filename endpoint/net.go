package endpoint

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/stack"
)

// Net is the socket layer of one stack: package net's functions (Dial, Listen,
// ListenPacket, DialTCP, ...) on wisp instead of the kernel. It holds no state of its own
// beyond the stack; any number of Nets may share a stack, and all methods are safe for
// concurrent use.
type Net struct {
	s *stack.Stack
}

// New returns the socket layer of s. It does not own s: closing every conn is the caller's
// job, and closing s (which aborts what is left) too.
func New(s *stack.Stack) *Net { return &Net{s: s} }

// Stack returns the stack n works on.
func (n *Net) Stack() *stack.Stack { return n.s }

// Dial connects to address on the named network, as net.Dial: "tcp", "tcp4", "tcp6",
// "udp", "udp4", "udp6", "ping4", "ping6", "ip4:icmp", "ip6:ipv6-icmp" (ping sockets) and
// "ip4:proto", "ip6:proto", "ip:proto" for other IP protocols (an *IPConn, a raw socket;
// the address has no port). Addresses are IP literals ("198.18.0.1:80",
// "[fd42:5eed::1]:80"); "localhost" names the stack's loopback addresses when it has
// some; other names are resolved by the stack's resolver (LookupNetIP) and each address
// is tried in turn (a *net.DNSError when that fails).
func (n *Net) Dial(network, address string) (net.Conn, error) {
	var d Dialer
	d.Net = n
	return d.DialContext(context.Background(), network, address)
}

// DialContext is Dial with a context: canceling it or passing its deadline aborts the
// connect (the error then wraps an error that errors.Is context.Canceled or
// context.DeadlineExceeded, as package net's does).
func (n *Net) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var d Dialer
	d.Net = n
	return d.DialContext(ctx, network, address)
}

// Listen announces on the local address, as net.Listen: "tcp", "tcp4", "tcp6". An empty or
// unspecified host on "tcp" listens dual-stack (IPv4 connections are accepted and their
// addresses reported v4-mapped, as Go does).
func (n *Net) Listen(network, address string) (net.Listener, error) {
	var lc ListenConfig
	lc.Net = n
	return lc.Listen(context.Background(), network, address)
}

// ListenPacket announces on the local address, as net.ListenPacket: "udp", "udp4",
// "udp6" (a UDPConn), "ping4", "ping6", "ip4:icmp", "ip6:ipv6-icmp" (a PingConn, an ICMP
// echo socket) or "ip4:proto", "ip6:proto", "ip:proto" for other IP protocols (an
// *IPConn; the address has no port; "ip:proto" without an address is IPv4). Protocol 0,
// IPPROTO_RAW (255) and the IPv6 extension headers fail with EPROTONOSUPPORT.
func (n *Net) ListenPacket(network, address string) (net.PacketConn, error) {
	var lc ListenConfig
	lc.Net = n
	return lc.ListenPacket(context.Background(), network, address)
}

// Dialer holds options for connecting, like net.Dialer.
type Dialer struct {
	// Net is the socket layer to dial on (required).
	Net *Net
	// Timeout bounds the connect (0: none; the TCP SYN retries still end it).
	Timeout time.Duration
	// Deadline is an absolute time after which the connect fails (zero: none).
	Deadline time.Time
	// LocalAddr is the local address to bind (a *net.TCPAddr, *net.UDPAddr, *PingAddr or,
	// for raw sockets, *net.IPAddr); nil picks one from the route.
	LocalAddr net.Addr
	// ReuseAddr sets SO_REUSEADDR on TCP and UDP sockets before they bind LocalAddr (TCP:
	// a local port still in TIME-WAIT may be taken again; UDP: the port may be shared
	// with other sockets that set it). It stands in for the syscall.RawConn of
	// net.Dialer.Control, which a userspace stack cannot give: once Dial returns, the
	// socket is bound and SetsockoptInt(SOL_SOCKET, SO_REUSEADDR) fails with EINVAL.
	// There is no V6Only: a dialing socket's family is its peer's, as in package net,
	// and "tcp6" / "udp6" sockets are IPV6_V6ONLY already.
	ReuseAddr bool
	// KeepAlive is the keep-alive period of TCP conns, as net.Dialer's: 0 enables keep-alive
	// with the defaults (15 s, as Go), negative leaves it off. KeepAliveConfig, when Enable,
	// wins.
	KeepAlive       time.Duration
	KeepAliveConfig net.KeepAliveConfig
	// MSS is TCP_MAXSEG, set on TCP sockets before they connect: the SYN announces it as
	// the largest segment the peer may send, and the conn sends none larger (0: the
	// route's MTU decides; else [88, 65495], EINVAL outside). Once connected,
	// SetsockoptInt(IPPROTO_TCP, TCP_MAXSEG) lowers only what this side sends.
	MSS int
}

// Dial is DialContext with context.Background.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects as net.Dialer.DialContext does. Only a "localhost" address names
// more than one IP; each is tried in turn (the first error is returned).
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	k, f, proto, err := parseNetworkProto(network)
	if err != nil {
		return nil, opError("dial", network, nil, nil, err)
	}
	if ctx == nil {
		panic("endpoint: nil context")
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	if !d.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Deadline)
		defer cancel()
	}
	n := d.Net
	host, port := address, uint16(0)
	if k != kindPing && k != kindRaw {
		if host, port, err = splitHostPort(address); err != nil {
			return nil, opError("dial", network, nil, nil, err)
		}
	}
	addrs, err := n.resolveDial(ctx, host, f)
	if err != nil {
		return nil, opError("dial", network, nil, nil, err)
	}
	bo := bindOpts{reuseAddr: d.ReuseAddr, mss: d.MSS}
	var first error
	for _, a := range addrs {
		if err := ctx.Err(); err != nil {
			return nil, opError("dial", network, nil, nil, err)
		}
		raddr := netip.AddrPortFrom(a, port)
		la, ok := d.localFor(k)
		if !ok {
			return nil, opError("dial", network, d.LocalAddr, nil, errAFNoSupport)
		}
		var c net.Conn
		switch k {
		case kindTCP:
			var tc *TCPConn
			if tc, err = n.dialTCP(ctx, network, f, la, raddr, bo); err == nil {
				d.keepAlive(tc)
			}
			c, err = asConn(tc, err)
		case kindUDP:
			c, err = asConn(n.dialUDP(network, f, la, raddr, bo))
		case kindPing:
			c, err = asConn(n.dialPing(network, la.Addr(), a))
		case kindRaw:
			c, err = asConn(n.openIP(network, f, proto, la.Addr(), a))
		}
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = opError("dial", network, nil, nil, errMissingAddr)
	}
	return nil, first
}

// localFor converts the Dialer's LocalAddr for a socket of kind k (ping and raw sockets use
// the address alone): false when it is not an address such a socket takes.
func (d *Dialer) localFor(k kind) (netip.AddrPort, bool) {
	if d.LocalAddr == nil {
		return netip.AddrPort{}, true
	}
	switch k {
	case kindTCP:
		ta, _ := d.LocalAddr.(*net.TCPAddr)
		return tcpAddrPort(ta)
	case kindUDP:
		ua, _ := d.LocalAddr.(*net.UDPAddr)
		return udpAddrPort(ua)
	case kindPing:
		a, ok := pingAddrOf(d.LocalAddr)
		return netip.AddrPortFrom(a, 0), ok
	}
	ia, _ := d.LocalAddr.(*net.IPAddr)
	a, ok := ipAddrOf(ia)
	return netip.AddrPortFrom(a, 0), ok && ia != nil
}

func (d *Dialer) keepAlive(c *TCPConn) {
	cfg := d.KeepAliveConfig
	if !cfg.Enable {
		if d.KeepAlive < 0 {
			return
		}
		cfg = net.KeepAliveConfig{Enable: true, Idle: d.KeepAlive, Interval: d.KeepAlive}
	}
	_ = c.SetKeepAliveConfig(cfg)
}

// ListenConfig holds options for listening, like net.ListenConfig.
type ListenConfig struct {
	// Net is the socket layer to listen on (required).
	Net *Net
	// KeepAlive and KeepAliveConfig apply to accepted TCP conns, as in net.ListenConfig
	// (0: keep-alive on with Go's defaults; negative: off).
	KeepAlive       time.Duration
	KeepAliveConfig net.KeepAliveConfig
	// ReuseAddr and V6Only are the options of TCP and UDP sockets that act at bind, set
	// before Listen or ListenPacket binds. They stand in for the syscall.RawConn of
	// net.ListenConfig.Control, which a userspace stack cannot give; once bound,
	// SetsockoptInt of SO_REUSEADDR or IPV6_V6ONLY fails with EINVAL.
	//
	// ReuseAddr is SO_REUSEADDR for UDP sockets: those that all set it may share a port (a
	// unicast datagram goes to one of them, a broadcast or multicast one to each). TCP
	// listeners have SO_REUSEADDR whatever it says, as package net's do on Linux: a server
	// listens again on its port while its old connections are closing or in TIME-WAIT. V6Only is IPV6_V6ONLY on an IPv6 socket ("tcp" / "udp" on "::" or an
	// empty host, where it stops the dual stack: IPv4 is then free for a separate
	// "tcp4" socket on the same port); "tcp6" / "udp6" sockets always have it, IPv4
	// sockets ignore it.
	ReuseAddr bool
	V6Only    bool
	// MSS is TCP_MAXSEG for a TCP listener, inherited by the conns it accepts: their
	// SYN-ACK announces it and they send no larger segment (0: the route's MTU decides;
	// else [88, 65495], EINVAL outside).
	MSS int
}

// bindOpts are the options a Dialer or ListenConfig sets before bind (and, for mss, before
// connect).
type bindOpts struct {
	reuseAddr, v6only bool
	mss               int
}

// Listen announces on the local address (see Net.Listen).
func (lc *ListenConfig) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	f, err := parseNetwork(network, kindTCP)
	if err != nil {
		return nil, opError("listen", network, nil, nil, err)
	}
	la, err := lc.Net.localAddr(address, f)
	if err != nil {
		return nil, opError("listen", network, nil, nil, err)
	}
	l, err := lc.Net.listenTCP(network, f, la, bindOpts{reuseAddr: lc.ReuseAddr, v6only: lc.V6Only, mss: lc.MSS})
	if err != nil {
		return nil, err
	}
	l.ka = Dialer{KeepAlive: lc.KeepAlive, KeepAliveConfig: lc.KeepAliveConfig}
	return l, nil
}

// ListenPacket announces on the local address (see Net.ListenPacket).
func (lc *ListenConfig) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	k, f, proto, err := parseNetworkProto(network)
	if err == nil && k == kindTCP {
		err = net.UnknownNetworkError(network)
	}
	if err != nil {
		return nil, opError("listen", network, nil, nil, err)
	}
	if k == kindPing || k == kindRaw {
		addrs, err := lc.Net.resolve(address, f, false)
		if err != nil {
			return nil, opError("listen", network, nil, nil, err)
		}
		var a netip.Addr
		if len(addrs) > 0 {
			a = addrs[0]
		} else if f != famAny {
			a = wildcard(f)
		}
		if k == kindRaw {
			return packetConn(lc.Net.openIP(network, f, proto, a, netip.Addr{}))
		}
		return packetConn(lc.Net.dialPing(network, a, netip.Addr{}))
	}
	la, err := lc.Net.localAddr(address, f)
	if err != nil {
		return nil, opError("listen", network, nil, nil, err)
	}
	return packetConn(lc.Net.listenUDP(network, f, la, bindOpts{reuseAddr: lc.ReuseAddr, v6only: lc.V6Only}))
}

// asConn returns c as a net.Conn, or a nil interface (not a typed nil pointer) with err;
// packetConn is the same for a net.PacketConn.
func asConn[C net.Conn](c C, err error) (net.Conn, error) {
	if err != nil {
		return nil, err
	}
	return c, nil
}

// packetConn returns c as a net.PacketConn, or a nil interface (not a typed nil pointer)
// with err.
func packetConn[C net.PacketConn](c C, err error) (net.PacketConn, error) {
	if err != nil {
		return nil, err
	}
	return c, nil
}

// localAddr parses a listen address "host:port" (empty host: every address).
func (n *Net) localAddr(address string, f family) (netip.AddrPort, error) {
	host, port, err := splitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	addrs, err := n.resolve(host, f, false)
	if err != nil {
		return netip.AddrPort{}, err
	}
	var a netip.Addr
	if len(addrs) > 0 {
		a = addrs[0]
	}
	return netip.AddrPortFrom(a, port), nil
}

// resolve turns a host into addresses of family f: an IP literal, "" (none: the wildcard
// when listening; the loopback addresses when dialing, as package net dials "the local
// system"), or "localhost" (the stack's loopback addresses). Other names fail with a
// *net.DNSError here; Dial resolves them first (resolveDial).
func (n *Net) resolve(host string, f family, dial bool) ([]netip.Addr, error) {
	if host == "" && !dial {
		return nil, nil
	}
	if host != "" && !strings.EqualFold(host, "localhost") {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return nil, &net.DNSError{Err: errNoResolver, Name: host, IsNotFound: true}
		}
		if !matchFamily(a, f) {
			return nil, &net.AddrError{Err: errNoSuitable.Error(), Addr: host}
		}
		if f != fam6 {
			a = a.Unmap()
		}
		return []netip.Addr{a}, nil
	}
	var out []netip.Addr
	n.s.Lock()
	for _, a := range [...]netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()} {
		if matchFamily(a, f) && n.s.IP().IsLocal(a) {
			out = append(out, a)
		}
	}
	n.s.Unlock()
	if len(out) == 0 {
		return nil, &net.DNSError{Err: errNoResolver, Name: host, IsNotFound: true}
	}
	return out, nil
}

// routeErr tells why dst cannot be reached before a connect is tried, as the kernel's
// connect(2) does: ENETUNREACH without a route, ENETDOWN when the only routes go through a
// netif that is down. nil when a route exists (or dst is local).
func (n *Net) routeErr(dst netip.Addr) error {
	n.s.Lock()
	defer n.s.Unlock()
	l := n.s.IP()
	if l.IsLocal(dst.WithZone("")) {
		return nil
	}
	if _, _, err := l.Lookup(dst); err == nil {
		return nil
	}
	if dst.Zone() == "" {
		for _, r := range l.Routes() {
			if r.Dst.Contains(dst) && r.Netif != nil && !r.Netif.Up() {
				return errs.NetDown
			}
		}
	}
	return errs.NetUnreach
}

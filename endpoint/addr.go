package endpoint

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// kind is the socket type a network string names.
type kind uint8

const (
	kindTCP  kind = iota + 1 // SOCK_STREAM, IPPROTO_TCP
	kindUDP                  // SOCK_DGRAM, IPPROTO_UDP
	kindPing                 // SOCK_DGRAM, IPPROTO_ICMP / IPPROTO_ICMPV6 (ping socket)
	kindRaw                  // SOCK_RAW of one IP protocol
)

// family restricts the addresses a network accepts.
type family uint8

const (
	famAny family = iota // "tcp", "udp", "ip:N": either, dual-stack when listening on a wildcard
	fam4                 // "tcp4", "udp4", "ping4", "ip4:icmp", "ip4:N"
	fam6                 // "tcp6", "udp6", "ping6", "ip6:ipv6-icmp", "ip6:N"
)

// IP protocol numbers the network parser treats specially.
const (
	protoICMP   = 1
	protoICMPv6 = 58
	protoRaw    = 255 // IPPROTO_RAW: a send-only socket with IP_HDRINCL on Linux
)

// parseNetwork understands the network names of package net that wisp implements, for a
// socket of kind want. Names package net knows but wisp does not implement (Unix sockets,
// the raw protocols rawProtoErr refuses) fail with EPROTONOSUPPORT, as socket(2) would;
// anything else, or a network of another kind, is a net.UnknownNetworkError, as package
// net reports it.
func parseNetwork(network string, want kind) (family, error) {
	k, f, _, err := parseNetworkProto(network)
	if err == nil && k != want {
		err = net.UnknownNetworkError(network)
	}
	return f, err
}

// plainNetworks are the networks without a protocol part that wisp implements.
var plainNetworks = map[string]struct {
	k     kind
	f     family
	proto uint8
}{
	"tcp":   {kindTCP, famAny, 0},
	"tcp4":  {kindTCP, fam4, 0},
	"tcp6":  {kindTCP, fam6, 0},
	"udp":   {kindUDP, famAny, 0},
	"udp4":  {kindUDP, fam4, 0},
	"udp6":  {kindUDP, fam6, 0},
	"ping4": {kindPing, fam4, protoICMP},
	"ping6": {kindPing, fam6, protoICMPv6},
	"ping":  {kindPing, famAny, 0},
}

// parseNetworkProto is parseNetwork that also returns the IP protocol of an "ip4:proto"
// network. "ip4:icmp" ("ip4:1", "ip:icmp") and "ip6:ipv6-icmp" ("ip6:58", "ip6:icmpv6")
// name ping sockets (kindPing), as they always have in wisp: DialIP and ListenIP, whose
// result is an *IPConn, open raw sockets for them instead. Other protocols are raw
// sockets (kindRaw).
func parseNetworkProto(network string) (kind, family, uint8, error) {
	if n, ok := plainNetworks[network]; ok {
		return n.k, n.f, n.proto, nil
	}
	switch network {
	case "unix", "unixgram", "unixpacket", "ip", "ip4", "ip6":
		return 0, 0, 0, errProtoNoSupp
	}
	afnet, proto, ok := strings.Cut(network, ":")
	if !ok || (afnet != "ip" && afnet != "ip4" && afnet != "ip6") {
		return 0, 0, 0, net.UnknownNetworkError(network)
	}
	num, known := protoNumber(proto)
	if !known {
		return 0, 0, 0, net.UnknownNetworkError(network)
	}
	f := famAny
	switch afnet {
	case "ip4":
		f = fam4
	case "ip6":
		f = fam6
	}
	// ICMP echo keeps its ping socket (like Linux's unprivileged SOCK_DGRAM/IPPROTO_ICMP;
	// package net would open a SOCK_RAW one): existing callers rely on it.
	switch {
	case num == protoICMP && f != fam6:
		return kindPing, fam4, protoICMP, nil
	case num == protoICMPv6 && f != fam4:
		return kindPing, fam6, protoICMPv6, nil
	}
	if err := rawProtoErr(num, f == fam6); err != nil {
		return 0, 0, 0, err
	}
	return kindRaw, f, uint8(num), nil
}

// rawProtoErr tells whether a raw socket of proto may be opened (v6: for IPv6; an "ip:N"
// network checks again once its address gave the family). EPROTONOSUPPORT for protocol
// 0 (Linux's socket(AF_INET, SOCK_RAW, 0) fails so too), for IPPROTO_RAW (255: a
// header-included send-only socket; wisp's raw PCBs always build the IP header) and, on
// IPv6, for the extension headers (RFC 8200 §4: they are not upper-layer protocols, and
// ip consumes them before raw PCBs see the packet).
func rawProtoErr(num int, v6 bool) error {
	switch num {
	case 0, protoRaw:
		return errProtoNoSupp
	case 43, 44, 59, 60: // Routing, Fragment, No Next Header, Destination Options
		if v6 {
			return errProtoNoSupp
		}
	}
	return nil
}

// protoNumber parses the protocol of an "ip4:proto" network: a number or one of the names
// package net knows without /etc/protocols.
func protoNumber(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0 && n < 256
	}
	switch strings.ToLower(s) {
	case "icmp":
		return 1, true
	case "igmp":
		return 2, true
	case "tcp":
		return 6, true
	case "udp":
		return 17, true
	case "ipv6-icmp", "icmpv6":
		return 58, true
	}
	return 0, false
}

// splitHostPort splits "host:port" with a numeric port.
func splitHostPort(address string) (string, uint16, error) {
	host, sport, err := net.SplitHostPort(address)
	if err != nil {
		return "", 0, err
	}
	if sport == "" {
		return host, 0, nil
	}
	p, err := strconv.ParseUint(sport, 10, 16)
	if err != nil {
		// Service names need /etc/services, which a userspace stack should not read.
		return "", 0, &net.AddrError{Err: errUnknownPort, Addr: address}
	}
	return host, uint16(p), nil
}

// matchFamily reports whether a fits the network's family; a v4-mapped v6 address counts
// as v4 on an any-family network (Go's Dial("tcp", "[::ffff:1.2.3.4]:80") dials IPv4).
func matchFamily(a netip.Addr, f family) bool {
	switch f {
	case fam4:
		return a.Unmap().Is4()
	case fam6:
		return a.Is6() && !a.Is4In6()
	}
	return true
}

// wildcard returns the unspecified address a socket of family f binds to.
func wildcard(f family) netip.Addr {
	if f == fam4 {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// ipOf converts a netip.Addr to a net.IP: 4 bytes for IPv4, 16 for IPv6 (v4-mapped stays
// 16 bytes, which prints as IPv4 yet AddrPort returns mapped, as Go does on a
// dual-stack socket).
func ipOf(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return a.AsSlice()
}

// report is how a socket reports an address: an IPv4 address seen on an IPv6
// (dual-stack) socket is reported v4-mapped, as the kernel's sockaddr_in6 is.
func report(a netip.Addr, v6sock bool) netip.Addr {
	if v6sock && a.Is4() {
		return netip.AddrFrom16(a.As16())
	}
	return a
}

func tcpAddrOf(ap netip.AddrPort, v6sock bool) *net.TCPAddr {
	a := report(ap.Addr(), v6sock)
	return &net.TCPAddr{IP: ipOf(a), Port: int(ap.Port()), Zone: a.Zone()}
}

func udpAddrOf(ap netip.AddrPort, v6sock bool) *net.UDPAddr {
	a := report(ap.Addr(), v6sock)
	return &net.UDPAddr{IP: ipOf(a), Port: int(ap.Port()), Zone: a.Zone()}
}

// addrPortOf converts a *net.TCPAddr or *net.UDPAddr (nil → the zero AddrPort, "any").
func addrPortOfIP(ip net.IP, port int, zone string) (netip.AddrPort, bool) {
	if port < 0 || port > 65535 {
		return netip.AddrPort{}, false
	}
	if len(ip) == 0 {
		return netip.AddrPortFrom(netip.Addr{}, uint16(port)), true
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.AddrPort{}, false
	}
	if zone != "" && a.Is6() {
		a = a.WithZone(zone)
	}
	return netip.AddrPortFrom(a, uint16(port)), true
}

func tcpAddrPort(a *net.TCPAddr) (netip.AddrPort, bool) {
	if a == nil {
		return netip.AddrPort{}, true
	}
	return addrPortOfIP(a.IP, a.Port, a.Zone)
}

func udpAddrPort(a *net.UDPAddr) (netip.AddrPort, bool) {
	if a == nil {
		return netip.AddrPort{}, true
	}
	return addrPortOfIP(a.IP, a.Port, a.Zone)
}

// PingAddr is the address of a ping socket, as wireguard-go's netstack PingAddr: an IP
// address whose Network is "ping4" or "ping6".
type PingAddr struct{ addr netip.Addr }

// PingAddrFromAddr returns the PingAddr of a.
func PingAddrFromAddr(a netip.Addr) *PingAddr { return &PingAddr{a} }

// Addr returns the IP address.
func (a PingAddr) Addr() netip.Addr { return a.addr }

// Network returns "ping4", "ping6" (or "ping" for the zero PingAddr).
func (a PingAddr) Network() string {
	switch {
	case a.addr.Is4():
		return "ping4"
	case a.addr.Is6():
		return "ping6"
	}
	return "ping"
}

// String returns the address in netip form.
func (a PingAddr) String() string { return a.addr.String() }

// pingAddrOf accepts the address types a ping WriteTo may be given.
func pingAddrOf(a net.Addr) (netip.Addr, bool) {
	switch v := a.(type) {
	case *PingAddr:
		if v == nil {
			return netip.Addr{}, false
		}
		return v.addr, true
	case PingAddr:
		return v.addr, true
	case *net.IPAddr:
		ip, ok := netip.AddrFromSlice(v.IP)
		if ok && v.Zone != "" {
			ip = ip.WithZone(v.Zone)
		}
		return ip.Unmap(), ok
	case *net.UDPAddr: // golang.org/x/net/icmp on "udp4" ping sockets writes to UDPAddrs
		ip, ok := netip.AddrFromSlice(v.IP)
		return ip.Unmap(), ok
	}
	return netip.Addr{}, false
}

// ne is the byte order of kernel structures in control messages.
var ne = binary.NativeEndian

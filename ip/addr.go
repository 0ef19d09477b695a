package ip

import (
	"net/netip"
	"time"

	"github.com/wispstack/wisp/errs"
)

// AddrState is the state of an address (RFC 4862 §2).
type AddrState uint8

// Address states. IPv4 addresses and IPv6 addresses on netifs without DAD are Preferred
// at once.
const (
	Tentative  AddrState = iota + 1 // DAD running: not yet assigned (RFC 4862 §5.4)
	Preferred                       // usable without restriction
	Deprecated                      // preferred lifetime over: still valid, not chosen as source
	Duplicated                      // DAD found another node using it
)

func (s AddrState) String() string {
	switch s {
	case Tentative:
		return "tentative"
	case Preferred:
		return "preferred"
	case Deprecated:
		return "deprecated"
	case Duplicated:
		return "duplicated"
	}
	return "invalid"
}

// Origin is how an address was configured.
type Origin uint8

// Address origins.
const (
	Manual    Origin = iota + 1 // AddAddr
	LinkLocal                   // formed from the MAC when an Ethernet netif came up
	SLAAC                       // stateless autoconfiguration from a router advertisement
)

func (o Origin) String() string {
	switch o {
	case Manual:
		return "manual"
	case LinkLocal:
		return "link-local"
	case SLAAC:
		return "slaac"
	}
	return "invalid"
}

// AddrInfo describes one address of a netif.
type AddrInfo struct {
	Prefix                     netip.Prefix
	State                      AddrState
	Origin                     Origin
	ValidUntil, PreferredUntil time.Time // zero: forever
}

// ifAddr is one configured address.
type ifAddr struct {
	prefix                     netip.Prefix
	state                      AddrState
	origin                     Origin
	validUntil, preferredUntil time.Time
	dadLeft                    int       // DAD probes still to send
	dadNext                    time.Time // next probe, or the end of DAD after the last
	snm                        netip.Addr
}

// usable reports whether the address is assigned: Preferred or Deprecated.
func (a *ifAddr) usable() bool { return a.state == Preferred || a.state == Deprecated }

// AddAddr adds an IPv4 or IPv6 address with its prefix length and the connected route to
// the prefix. IPv6 addresses on Ethernet netifs start tentative and run DAD (RFC 4862 §5.4)
// unless Options.IPv6DupAddrDetectTransmits is 0. errs.Use if the address is already on a
// netif of the layer, errs.Val for unspecified, multicast, broadcast and IPv4-mapped
// addresses.
func (n *Netif) AddAddr(p netip.Prefix) error {
	n.l.timers.AssertCore()
	if !p.IsValid() {
		return errs.Val
	}
	a := p.Addr()
	if a.Zone() != "" || a.Is4In6() || a.IsUnspecified() || a.IsMulticast() ||
		a == broadcast4 || (a.Is4() && p.Bits() < 32 && a == directedBroadcast(p)) {
		return errs.Val
	}
	if n.l.findLocal(a) != nil {
		return errs.Use
	}
	n.addAddr(p, Manual, time.Time{}, time.Time{})
	n.l.snmSync(n, true)
	n.l.rearm()
	return nil
}

// addAddr adds an address and its connected route, starting DAD where it applies. The
// caller then calls snmSync (SetUp leaves it to mcUp's reports).
func (n *Netif) addAddr(p netip.Prefix, o Origin, valid, preferred time.Time) *ifAddr {
	l := n.l
	a := &ifAddr{prefix: p, state: Preferred, origin: o, validUntil: valid, preferredUntil: preferred}
	if p.Addr().Is6() {
		a.snm = solicitedNode(p.Addr())
	}
	n.addrs = append(n.addrs, a)
	l.addConnected(n, p)
	l.changed()
	n.syncFilter()
	if p.Addr().Is6() && n.eth != nil && l.opts.IPv6DupAddrDetectTransmits > 0 && !n.follower {
		l.setState(a, Tentative)
		if n.up {
			l.nd.startDAD(n, a, false)
		}
	} else if p.Addr().Is4() && n.eth != nil && n.up {
		n.eth.Announce(p.Addr())
	}
	return a
}

// RemoveAddr removes an address, and its connected route when no other address of the
// netif covers the prefix. errs.Val if the address is not on n.
func (n *Netif) RemoveAddr(a netip.Addr) error {
	n.l.timers.AssertCore()
	for i, x := range n.addrs {
		if x.prefix.Addr() == a {
			n.removeAddrAt(i)
			n.l.rearm()
			return nil
		}
	}
	return errs.Val
}

func (n *Netif) removeAddrAt(i int) {
	x := n.addrs[i]
	copy(n.addrs[i:], n.addrs[i+1:])
	n.addrs[len(n.addrs)-1] = nil
	n.addrs = n.addrs[:len(n.addrs)-1]
	n.l.changed()
	n.syncFilter()
	n.l.removeConnected(n, x.prefix)
	n.l.snmSync(n, true)
}

// Addrs returns the netif's addresses.
func (n *Netif) Addrs() []AddrInfo {
	n.l.timers.AssertCore()
	out := make([]AddrInfo, 0, len(n.addrs))
	for _, a := range n.addrs {
		out = append(out, AddrInfo{a.prefix, a.state, a.origin, a.validUntil, a.preferredUntil})
	}
	return out
}

// findAddr returns n's address a in any state, or nil.
func (n *Netif) findAddr(a netip.Addr) *ifAddr {
	for _, x := range n.addrs {
		if x.prefix.Addr() == a {
			return x
		}
	}
	return nil
}

// findLocal returns the netif holding address a in any state, or nil.
func (l *Layer) findLocal(a netip.Addr) *Netif {
	for _, n := range l.list {
		if n.findAddr(a) != nil {
			return n
		}
	}
	return nil
}

// localNetif returns the up netif to which a is assigned (not tentative nor duplicated).
func (l *Layer) localNetif(a netip.Addr) *Netif {
	for _, n := range l.list {
		if !n.up {
			continue
		}
		for _, x := range n.addrs {
			if x.prefix.Addr() == a && x.usable() {
				return n
			}
		}
	}
	return nil
}

// IsLocal reports whether a is assigned to an up netif (tentative addresses are not:
// RFC 4862 §5.4).
func (l *Layer) IsLocal(a netip.Addr) bool {
	l.timers.AssertCore()
	return l.localNetif(a.WithZone("")) != nil
}

// isBroadcast4 reports whether dst is the limited broadcast or the directed broadcast of a
// subnet of n.
func (n *Netif) isBroadcast4(dst netip.Addr) bool {
	if dst == broadcast4 {
		return true
	}
	for _, x := range n.addrs {
		if x.prefix.Addr().Is4() && x.prefix.Bits() < 31 && dst == directedBroadcast(x.prefix) {
			return true
		}
	}
	return false
}

// inGroup reports whether n listens to IPv6 multicast group g: the all-nodes groups and
// the solicited-node group of each of its addresses, tentative ones included (RFC 4862
// §5.4.2 joins it before sending the first probe); MLD reports the latter (snm.go). Never
// all-routers: wisp is a host.
func (n *Netif) inGroup(g netip.Addr) bool {
	if g == allNodes || g == allNodesIface {
		return true
	}
	for _, x := range n.addrs {
		if x.snm == g && x.state != Duplicated {
			return true
		}
	}
	return false
}

// SourceFor picks the source address for dst: an assigned address of the family of dst on
// n (nil: the netif the route to dst uses, else any), chosen with RFC 6724 §5 rules 1
// (same address), 2 (appropriate scope), 3 (avoid deprecated) and 8 (longest matching
// prefix). errs.Rte when there is none.
func (l *Layer) SourceFor(dst netip.Addr, n *Netif) (netip.Addr, error) {
	l.timers.AssertCore()
	dst = dst.Unmap()
	if n == nil {
		if m, _, err := l.Lookup(dst); err == nil {
			n = m
		}
	}
	var best *ifAddr
	consider := func(m *Netif) {
		for _, a := range m.addrs {
			if a.prefix.Addr().Is4() != dst.Is4() || !a.usable() {
				continue
			}
			if best == nil || betterSource(a, best, dst) {
				best = a
			}
		}
	}
	if n != nil {
		consider(n)
	} else {
		for _, m := range l.list {
			if m.up {
				consider(m)
			}
		}
	}
	if best == nil {
		return netip.Addr{}, errs.Rte
	}
	return best.prefix.Addr(), nil
}

// betterSource reports whether a is a better source than b for dst (RFC 6724 §5).
func betterSource(a, b *ifAddr, dst netip.Addr) bool {
	aa, ba := a.prefix.Addr(), b.prefix.Addr()
	// Rule 1: prefer the same address.
	if aa == dst.WithZone("") {
		return true
	}
	if ba == dst.WithZone("") {
		return false
	}
	if dst.Is6() {
		// Rule 2: "If Scope(SA) < Scope(SB): If Scope(SA) < Scope(D), then prefer SB and
		// otherwise prefer SA."
		sa, sb, sd := scope6(aa), scope6(ba), scope6(dst)
		if sa < sb {
			return sa >= sd
		}
		if sb < sa {
			return sb < sd
		}
		// Rule 3: avoid deprecated addresses.
		if (a.state == Deprecated) != (b.state == Deprecated) {
			return b.state == Deprecated
		}
	} else {
		// IPv4 has no scopes: prefer an address on the destination's subnet.
		ina, inb := a.prefix.Contains(dst), b.prefix.Contains(dst)
		if ina != inb {
			return ina
		}
	}
	// Rule 8: longest matching prefix.
	return commonPrefixLen(aa, dst) > commonPrefixLen(ba, dst)
}

// scope6 is an address's scope (RFC 4291 §2.7 for multicast, RFC 6724 §3.1 for unicast).
func scope6(a netip.Addr) int {
	switch {
	case a.IsMulticast():
		return int(a.As16()[1] & 0x0f)
	case a.IsLinkLocalUnicast(), a.IsLoopback():
		return 2
	}
	return 14
}

func commonPrefixLen(a, b netip.Addr) int {
	if a.BitLen() != b.BitLen() {
		return 0
	}
	x, y := a.AsSlice(), b.AsSlice()
	n := 0
	for i := range x {
		d := x[i] ^ y[i]
		if d == 0 {
			n += 8
			continue
		}
		for d&0x80 == 0 {
			n++
			d <<= 1
		}
		break
	}
	return n
}

// solicitedNode returns the solicited-node multicast address of a (RFC 4291 §2.7.1):
// ff02::1:ff00:0/104 with the low 24 bits of a.
func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

// directedBroadcast returns the all-ones host address of an IPv4 prefix.
func directedBroadcast(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= ^uint32(0) >> p.Bits()
	if p.Bits() == 0 {
		v = ^uint32(0)
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

var (
	broadcast4    = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	allNodes      = netip.MustParseAddr("ff02::1")
	allNodesIface = netip.MustParseAddr("ff01::1")
	allRouters    = netip.MustParseAddr("ff02::2")
	unspecified6  = netip.IPv6Unspecified()
)

// syncFilter tells a link that receives only its addresses' traffic (link.AddrFilter) the
// netif's addresses, in every state: a tentative address must hear the solicitations of
// duplicate address detection. A link that refuses them is counted (the netif's Err): it
// keeps filtering on the addresses it had.
func (n *Netif) syncFilter() {
	if n.filter == nil {
		return
	}
	addrs := make([]netip.Addr, len(n.addrs))
	for i, a := range n.addrs {
		addrs[i] = a.prefix.Addr()
	}
	if n.filter.SetAddrs(addrs) != nil {
		n.stats.Err++
	}
}

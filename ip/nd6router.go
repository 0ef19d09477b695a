package ip

import (
	"net/netip"
	"time"

	"github.com/wispstack/wisp/wire"
)

// inputRA validates (RFC 4861 §6.1.2) and applies (§6.3.4, RFC 4862 §5.5.3) a Router
// Advertisement: default router, hop limit, timers, MTU, on-link prefixes and SLAAC.
func (d *ndState) inputRA(h *Header, n *Netif, m []byte) {
	l := d.l
	// "IP Source Address is a link-local address. Routers must use their link-local
	// address as the source for Router Advertisement messages".
	if !h.Src.IsLinkLocalUnicast() || wire.CheckNDPRouterAdvert(m) != nil {
		l.nd6.Drop++
		l.nd6.Proterr++
		return
	}
	ra := wire.NDPRouterAdvert(m)
	now := l.now()
	if v := ra.CurHopLimit(); v != 0 {
		n.hopLimit = v
	}
	if v := ra.ReachableTime(); v != 0 && v <= 3600000 {
		n.reachable = time.Duration(v) * time.Millisecond
	}
	if v := ra.RetransTimer(); v != 0 {
		n.retrans = time.Duration(v) * time.Millisecond
	}
	gw := h.Src
	if lt := ra.RouterLifetime(); lt != 0 {
		// RFC 4861 §6.3.7: after a valid RA with a non-zero Router Lifetime the host "MUST
		// desist from sending additional solicitations on that interface".
		n.rsLeft = 0
		if d.hasRoute(n, defaultRoute6, gw) || d.countRA(true) < l.opts.ND6NumRouters {
			l.setRARoute(n, defaultRoute6, gw, now.Add(time.Duration(lt)*time.Second), false)
		}
	} else {
		// "If the address is already present in the host's Default Router List and the
		// received Router Lifetime value is zero, immediately time-out the entry".
		l.setRARoute(n, defaultRoute6, gw, time.Time{}, true)
	}
	it := ra.Options().Iter()
	for {
		o, ok := it.Next()
		if !ok {
			break
		}
		switch o.Type() {
		case wire.NDPOptSourceLLAddr:
			if mac, ok := o.LinkLayerAddr(); ok {
				d.update(n, gw, mac, true, true)
			}
		case wire.NDPOptMTU:
			// "hosts SHOULD copy the option's value into LinkMTU so long as the value is
			// greater than or equal to the minimum link MTU [IPv6] and does not exceed the
			// maximum LinkMTU value".
			if mtu, ok := o.MTU(); ok && mtu >= wire.IPv6MinMTU && int(mtu) <= n.mtu {
				n.mtu6 = int(mtu)
			}
		case wire.NDPOptPrefixInfo:
			if pi, ok := o.PrefixInfo(); ok {
				d.prefixInfo(n, pi, now)
			}
		}
	}
	l.rearm()
	if n.onRA != nil {
		// RFC 4861 §4.2: M, "addresses are available via DHCPv6"; O, "other
		// configuration information is available via DHCPv6" (RFC 8415 §18.2.6: a
		// stateless client sends an Information-Request).
		n.onRA(ra.Managed(), ra.Other())
	}
}

// SetRAHook makes fn hear the Managed (M) and Other (O) flags of every Router Advertisement
// the netif accepts, in core context after the advertisement was applied (a DHCPv6 client
// starts on them). nil removes it. Core context.
func (n *Netif) SetRAHook(fn func(managed, other bool)) { n.onRA = fn }

// prefixInfo applies one Prefix Information option.
func (d *ndState) prefixInfo(n *Netif, pi wire.NDPPrefixInfo, now time.Time) {
	l := d.l
	pfx := pi.Prefix()
	if !pfx.IsValid() {
		return
	}
	pfx = pfx.Masked()
	// RFC 4861 §6.3.4 and RFC 4862 §5.5.3(b): "If the prefix is the link-local prefix,
	// silently ignore the Prefix Information option."
	if pfx.Addr().IsLinkLocalUnicast() || pfx.Addr().IsMulticast() {
		return
	}
	valid, preferred := pi.ValidLifetime(), pi.PreferredLifetime()
	if pi.OnLink() {
		if valid == 0 {
			l.setRARoute(n, pfx, netip.Addr{}, time.Time{}, true)
		} else if d.hasRoute(n, pfx, netip.Addr{}) || d.countRA(false) < l.opts.ND6NumPrefixes {
			l.setRARoute(n, pfx, netip.Addr{}, lifetimeEnd(now, valid), false)
		}
	}
	if !pi.Autonomous() || !l.opts.IPv6AutoConfig {
		return
	}
	// RFC 4862 §5.5.3(c): "If the preferred lifetime is greater than the valid lifetime,
	// silently ignore the Prefix Information option."
	if preferred > valid {
		return
	}
	var a *ifAddr
	for _, x := range n.addrs {
		if x.origin == SLAAC && x.prefix.Masked() == pfx {
			a = x
			break
		}
	}
	if a == nil {
		// (d) a new prefix with a non-zero valid lifetime forms an address, provided "the
		// sum of the prefix length and interface identifier length" is 128: the modified
		// EUI-64 identifier is 64 bits.
		if valid == 0 || pfx.Bits() != 64 || d.countSLAAC(n) >= max(l.opts.ND6NumPrefixes, 1) {
			return
		}
		b := pfx.Addr().As16()
		iid := eui64(n.hw)
		copy(b[8:], iid[:])
		addr := netip.AddrFrom16(b)
		if l.findLocal(addr) != nil {
			return
		}
		n.addAddr(netip.PrefixFrom(addr, 64), SLAAC, lifetimeEnd(now, valid), lifetimeEnd(now, preferred))
		l.snmSync(n, true)
		return
	}
	// (e) an address from this prefix exists: refresh the lifetimes.
	a.preferredUntil = lifetimeEnd(now, preferred)
	if a.state == Deprecated && preferred != 0 {
		l.setState(a, Preferred)
	}
	// The "two hours" rule protects against a spoofed RA cutting the valid lifetime short:
	// "1. If the received Valid Lifetime is greater than 2 hours or greater than
	// RemainingLifetime, set the valid lifetime of the corresponding address to the
	// advertised Valid Lifetime. 2. If RemainingLifetime is less than or equal to 2 hours,
	// ignore the Prefix Information option with regard to the valid lifetime. 3. Otherwise,
	// reset the valid lifetime of the corresponding address to 2 hours."
	received := time.Duration(valid) * time.Second
	infinite := a.validUntil.IsZero()
	remaining := a.validUntil.Sub(now)
	switch {
	case valid == infiniteLifetime:
		a.validUntil = time.Time{}
	case received > twoHours || !infinite && received > remaining:
		a.validUntil = now.Add(received)
	case !infinite && remaining <= twoHours:
	default:
		a.validUntil = now.Add(twoHours)
	}
}

// lifetimeEnd converts an advertised lifetime in seconds to a deadline (zero: infinity).
func lifetimeEnd(now time.Time, s uint32) time.Time {
	if s == infiniteLifetime {
		return time.Time{}
	}
	return now.Add(time.Duration(s) * time.Second)
}

func (d *ndState) hasRoute(n *Netif, dst netip.Prefix, gw netip.Addr) bool {
	for _, e := range d.l.routes {
		if e.kind == routeRA && e.Netif == n && e.Dst == dst && e.Gateway == gw {
			return true
		}
	}
	return false
}

// countRA counts the default routers (router) or on-link prefixes learned from RAs.
func (d *ndState) countRA(router bool) int {
	k := 0
	for _, e := range d.l.routes {
		if e.kind == routeRA && (e.Dst == defaultRoute6) == router {
			k++
		}
	}
	return k
}

func (d *ndState) countSLAAC(n *Netif) int {
	k := 0
	for _, a := range n.addrs {
		if a.origin == SLAAC {
			k++
		}
	}
	return k
}

// sendRS sends a Router Solicitation to all-routers (RFC 4861 §6.3.7): from a link-local
// address with our link-layer address, or from the unspecified address without it while
// none is assigned yet (§4.1).
func (d *ndState) sendRS(n *Netif) {
	var src netip.Addr
	for _, a := range n.addrs {
		if a.prefix.Addr().IsLinkLocalUnicast() && a.usable() {
			src = a.prefix.Addr()
			break
		}
	}
	if !src.IsValid() {
		src = netip.IPv6Unspecified()
	}
	d.sendSolicit(n, src, allRouters, netip.Addr{})
}

package ip

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/wispstack/wisp/errs"
)

// Route is one entry of the routing table.
type Route struct {
	Dst     netip.Prefix
	Gateway netip.Addr // invalid: on-link
	Netif   *Netif
	Metric  int
}

// routeKind records who owns a route, so that removing an address or a router takes its
// routes along and nothing else.
type routeKind uint8

const (
	routeStatic    routeKind = iota // AddRoute
	routeConnected                  // an address's prefix
	routeRA                         // default router or on-link prefix from an RA
)

type routeEntry struct {
	Route
	kind    routeKind
	refs    int       // connected: addresses covering the prefix
	expires time.Time // RA on-link prefixes: valid lifetime end (zero: forever)
}

// raMetric is the metric of routes learned from router advertisements: above manual
// default routes (metric 0 unless chosen otherwise).
const raMetric = 1024

// AddRoute adds a route. The prefix is masked; the gateway, when valid, must be of the
// prefix's family. errs.Use if a route for the same prefix, netif and gateway exists.
func (l *Layer) AddRoute(r Route) error {
	l.timers.AssertCore()
	if !r.Dst.IsValid() || r.Netif == nil || r.Netif.l != l ||
		r.Gateway.IsValid() && r.Gateway.Is4() != r.Dst.Addr().Is4() {
		return errs.Val
	}
	r.Dst = r.Dst.Masked()
	for _, e := range l.routes {
		if e.Dst == r.Dst && e.Netif == r.Netif && e.Gateway == r.Gateway {
			return errs.Use
		}
	}
	l.routes = append(l.routes, routeEntry{Route: r, kind: routeStatic})
	l.changed()
	return nil
}

// RemoveRoute removes the routes for dst on n (nil: on any netif). errs.Val if none.
func (l *Layer) RemoveRoute(dst netip.Prefix, n *Netif) error {
	l.timers.AssertCore()
	dst = dst.Masked()
	found := false
	l.filterRoutes(func(e *routeEntry) bool {
		if e.Dst == dst && (n == nil || e.Netif == n) {
			found = true
			return false
		}
		return true
	})
	if !found {
		return errs.Val
	}
	return nil
}

// Routes returns a copy of the routing table.
func (l *Layer) Routes() []Route {
	l.timers.AssertCore()
	out := make([]Route, len(l.routes))
	for i, e := range l.routes {
		out[i] = e.Route
	}
	return out
}

// Lookup returns the egress netif and the next hop for dst: the longest matching prefix
// among routes on up netifs, then the lowest metric. A zone on dst ("fe80::1%eth1", or the
// netif's index) restricts the choice to that netif, and the destination is then on-link if
// no route says otherwise. errs.Rte when there is no route.
func (l *Layer) Lookup(dst netip.Addr) (*Netif, netip.Addr, error) {
	l.timers.AssertCore()
	var only *Netif
	if z := dst.Zone(); z != "" {
		only = l.NetifByName(z)
		if only == nil {
			if i, err := strconv.Atoi(z); err == nil {
				only = l.NetifByIndex(i)
			}
		}
		if only == nil || !only.up {
			return nil, netip.Addr{}, errs.Rte
		}
		dst = dst.WithZone("")
	}
	n, nh, ok := l.lookup(dst, only)
	if !ok {
		if only != nil {
			return only, dst, nil
		}
		return nil, netip.Addr{}, errs.Rte
	}
	return n, nh, nil
}

// lookup is Lookup without zones; only, when set, restricts the netif.
func (l *Layer) lookup(dst netip.Addr, only *Netif) (*Netif, netip.Addr, bool) {
	var best *routeEntry
	for i := range l.routes {
		e := &l.routes[i]
		if !e.Netif.up || (only != nil && e.Netif != only) || !e.Dst.Contains(dst) {
			continue
		}
		if best == nil || e.Dst.Bits() > best.Dst.Bits() ||
			e.Dst.Bits() == best.Dst.Bits() && e.Metric < best.Metric {
			best = e
		}
	}
	if best == nil {
		return nil, netip.Addr{}, false
	}
	if best.Gateway.IsValid() {
		return best.Netif, best.Gateway, true
	}
	return best.Netif, dst, true
}

// filterRoutes keeps the routes keep approves of, in order.
func (l *Layer) filterRoutes(keep func(e *routeEntry) bool) {
	out := l.routes[:0]
	for i := range l.routes {
		if keep(&l.routes[i]) {
			out = append(out, l.routes[i])
		}
	}
	clear(l.routes[len(out):])
	l.routes = out
	l.changed()
}

// addConnected adds (or counts another reference to) the on-link route of an address.
func (l *Layer) addConnected(n *Netif, p netip.Prefix) {
	p = p.Masked()
	for i := range l.routes {
		e := &l.routes[i]
		if e.kind == routeConnected && e.Netif == n && e.Dst == p {
			e.refs++
			return
		}
	}
	l.routes = append(l.routes, routeEntry{Route: Route{Dst: p, Netif: n}, kind: routeConnected, refs: 1})
	l.changed()
}

// removeConnected drops one reference to the on-link route of an address.
func (l *Layer) removeConnected(n *Netif, p netip.Prefix) {
	p = p.Masked()
	l.filterRoutes(func(e *routeEntry) bool {
		if e.kind == routeConnected && e.Netif == n && e.Dst == p {
			e.refs--
			return e.refs > 0
		}
		return true
	})
}

// removeRoutes drops every route through n.
func (l *Layer) removeRoutes(n *Netif) {
	l.filterRoutes(func(e *routeEntry) bool { return e.Netif != n })
}

// removeAutoRoutes drops the routes n learned from router advertisements.
func (l *Layer) removeAutoRoutes(n *Netif) {
	l.filterRoutes(func(e *routeEntry) bool { return e.Netif != n || e.kind != routeRA })
}

// setRARoute adds or updates a route learned from an RA; a zero lifetime removes it.
func (l *Layer) setRARoute(n *Netif, dst netip.Prefix, gw netip.Addr, expires time.Time, remove bool) {
	for i := range l.routes {
		e := &l.routes[i]
		if e.kind == routeRA && e.Netif == n && e.Dst == dst && e.Gateway == gw {
			if remove {
				l.filterRoutes(func(x *routeEntry) bool { return x != e })
				return
			}
			e.expires = expires
			return
		}
	}
	if !remove {
		l.routes = append(l.routes, routeEntry{Route: Route{Dst: dst, Gateway: gw, Netif: n, Metric: raMetric},
			kind: routeRA, expires: expires})
		l.changed()
	}
}

// TxRoom returns how many more frames the link towards dst takes at the next flush, beyond
// those already batched (link.TxRoomer), or -1 when its link does not say (or dst is
// local, or has no route); congests reports that a full queue there is congestion
// (link.TxCongester). TCP stops sending new data at 0 and waits for ACKs or a short retry
// rather than hand the link frames it would drop. It allocates nothing.
func (l *Layer) TxRoom(dst netip.Addr) (room int, congests bool) {
	l.timers.AssertCore()
	n, _, local, _, err := l.routeCached(dst, nil)
	if err != nil || local || n.roomer == nil {
		return -1, false
	}
	return max(n.roomer.TxRoom()-len(n.batch), 0), n.congests
}

// RouteErr tells a transport why dst has no route: errs.NetDown when the forced netif, or a
// netif holding a route to dst, is down (ENETDOWN), else errs.NetUnreach (ENETUNREACH).
// Slow path only; it allocates nothing.
func (l *Layer) RouteErr(dst netip.Addr, force *Netif) error {
	l.timers.AssertCore()
	if force != nil && !force.up {
		return errs.NetDown
	}
	dst = dst.WithZone("")
	for i := range l.routes {
		if e := &l.routes[i]; e.Dst.Contains(dst) && e.Netif != nil && !e.Netif.up {
			return errs.NetDown
		}
	}
	return errs.NetUnreach
}

// GroupEgress is the netif a UDP or raw send to multicast group g leaves by: NetifForGroup,
// or the reason there is none: errs.NetUnreach (ifIndex 0 and no netif of g's family),
// errs.Val (no netif has index ifIndex), errs.NetDown (it is down).
func (l *Layer) GroupEgress(g netip.Addr, ifIndex int) (*Netif, error) {
	if n := l.NetifForGroup(g, ifIndex); n != nil {
		return n, nil
	}
	switch {
	case ifIndex == 0:
		return nil, errs.NetUnreach
	case l.NetifByIndex(ifIndex) == nil:
		return nil, errs.Val
	}
	return nil, errs.NetDown
}

// SendSource is the source address of a UDP or raw send from a PCB bound to laddr to dst
// (its zone, if any, naming the netif of a link-local peer) by netif n (nil: the route's):
// laddr when it is a unicast address, else the one SourceFor picks; RouteErr's error when
// there is none.
func (l *Layer) SendSource(laddr, dst netip.Addr, n *Netif) (netip.Addr, error) {
	if laddr.IsValid() && !laddr.IsUnspecified() && !laddr.IsMulticast() && laddr != broadcast4 {
		return laddr, nil
	}
	nif := n
	if nif == nil && dst.Zone() != "" {
		nif, _, _ = l.Lookup(dst)
	}
	src, err := l.SourceFor(dst.WithZone(""), nif)
	if err != nil {
		return netip.Addr{}, l.RouteErr(dst, n)
	}
	return src, nil
}

// IsBroadcast reports whether IPv4 a is the limited broadcast or a directed broadcast
// address of a subnet on n (nil: the netif of the route to a). It allocates nothing.
func (l *Layer) IsBroadcast(a netip.Addr, n *Netif) bool {
	l.timers.AssertCore()
	a = a.Unmap()
	if !a.Is4() {
		return false
	}
	if a == broadcast4 {
		return true
	}
	if a.As4()[3]&1 == 0 {
		return false // host bits all ones is odd; /31 and /32 have no broadcast address
	}
	if n == nil {
		var ok bool
		if n, _, ok = l.lookup(a, nil); !ok {
			return false
		}
	}
	return n.isBroadcast4(a)
}

// route picks the egress for dst: a local address loops back; o.Netif forces the netif.
func (l *Layer) route(dst netip.Addr, force *Netif) (n *Netif, nh netip.Addr, local bool, err error) {
	if m := l.localNetif(dst.WithZone("")); m != nil {
		return m, dst.WithZone(""), true, nil
	}
	if force != nil {
		if force.l != l || !force.up {
			return nil, nh, false, errs.Rte
		}
		d := dst.WithZone("")
		if m, gw, ok := l.lookup(d, force); ok && !d.IsMulticast() && d != broadcast4 {
			return m, gw, false, nil
		}
		return force, d, false, nil
	}
	n, nh, err = l.Lookup(dst)
	return n, nh, false, err
}

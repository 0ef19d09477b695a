package ip

import "net/netip"

// Per-packet caches. A bulk transfer sends and receives packet after packet between the
// same two addresses, so the input checks (is the source acceptable, is the destination a
// broadcast, which netif holds it) and the output route are the same each time. The
// caches remember one answer each, valid for one generation of the configuration: every
// change of a netif, an address (or its state) or a route calls changed, which bumps
// Layer.gen and so invalidates them all. Only answers that let the packet through are
// cached; drops take the full checks.

// changed invalidates the caches. Call it after every change of netifs (added, removed,
// up or down), addresses (added, removed, state) or routes.
func (l *Layer) changed() { l.gen++ }

// setState changes an address's state (and so whether it is usable, which the caches
// depend on).
func (l *Layer) setState(a *ifAddr, s AddrState) {
	if a.state != s {
		a.state = s
		l.changed()
	}
}

// inCache remembers the last packet accepted for local delivery by input4 or input6.
type inCache struct {
	gen      uint64
	n        *Netif
	src, dst netip.Addr
	looped   bool
	bcast    bool // IPv4: dst is a broadcast address of n
	icept    bool // dst is not ours: n intercepts it
	valid    bool
}

// hit reports whether a packet from src to dst on n was the last one accepted.
func (c *inCache) hit(l *Layer, n *Netif, src, dst netip.Addr, looped bool) bool {
	return c.valid && c.gen == l.gen && c.n == n && c.dst == dst && c.src == src && c.looped == looped
}

func (c *inCache) set(l *Layer, n *Netif, src, dst netip.Addr, looped, bcast, icept bool) {
	*c = inCache{gen: l.gen, n: n, src: src, dst: dst, looped: looped, bcast: bcast, icept: icept, valid: true}
}

// routeCache remembers the last successful route: route(dst, force) and, for IPv4,
// whether dst is a broadcast address of the egress netif.
type routeCache struct {
	gen   uint64
	dst   netip.Addr
	force *Netif
	n     *Netif
	nh    netip.Addr
	local bool
	bcast bool
	valid bool
}

// routeCached is route through the family's one-entry cache; bcast reports (IPv4) that dst
// is a broadcast address of n.
func (l *Layer) routeCached(dst netip.Addr, force *Netif) (n *Netif, nh netip.Addr, local, bcast bool, err error) {
	c := &l.route4
	if dst.Is6() {
		c = &l.route6
	}
	if c.valid && c.gen == l.gen && c.dst == dst && c.force == force {
		return c.n, c.nh, c.local, c.bcast, nil
	}
	n, nh, local, err = l.route(dst, force)
	if err != nil {
		return nil, nh, false, false, err
	}
	bcast = dst.Is4() && n.isBroadcast4(dst)
	*c = routeCache{gen: l.gen, dst: dst, force: force, n: n, nh: nh, local: local, bcast: bcast, valid: true}
	return n, nh, local, bcast, nil
}

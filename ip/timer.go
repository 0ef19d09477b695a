package ip

import (
	"time"

	"github.com/wispstack/wisp/wire"
)

// The layer has one clock.Timeout for everything with a deadline: DAD probes, router
// solicitations, address and RA lifetimes, and neighbour cache transitions. rearm points it
// at the earliest deadline, or cancels it when nothing is pending, so an idle layer
// schedules nothing.

// rearm schedules the timer for the earliest pending deadline.
func (l *Layer) rearm() {
	if l.closed {
		return
	}
	next, ok := l.nextDeadline()
	if !ok {
		l.timers.Cancel(&l.tmo)
		return
	}
	if l.tmo.Pending() && l.tmo.When().Equal(next) {
		return
	}
	l.timers.Schedule(&l.tmo, max(next.Sub(l.now()), 0))
}

// nextDeadline returns the earliest pending deadline.
func (l *Layer) nextDeadline() (time.Time, bool) {
	var next time.Time
	ok := false
	take := func(t time.Time) {
		if !ok || t.Before(next) {
			next, ok = t, true
		}
	}
	for _, n := range l.list {
		if !n.up {
			continue
		}
		for _, a := range n.addrs {
			if a.state == Tentative && n.eth != nil {
				take(a.dadNext)
			}
			if !a.validUntil.IsZero() {
				take(a.validUntil)
			}
			if !a.preferredUntil.IsZero() && a.state == Preferred {
				take(a.preferredUntil)
			}
		}
		if n.rsLeft > 0 {
			take(n.rsNext)
		}
	}
	for i := range l.nd.cache {
		switch e := &l.nd.cache[i]; e.state {
		case nIncomplete, nReachable, nDelay, nProbe:
			take(e.next)
		}
	}
	for _, r := range l.routes {
		if r.kind == routeRA && !r.expires.IsZero() {
			take(r.expires)
		}
	}
	return next, ok
}

// onTimer runs every due event, then re-arms.
func (l *Layer) onTimer() {
	if l.closed {
		return
	}
	now := l.now()
	due := func(t time.Time) bool { return !t.After(now) }
	for _, n := range l.list {
		if !n.up {
			continue
		}
		for i := 0; i < len(n.addrs); i++ {
			a := n.addrs[i]
			if !a.validUntil.IsZero() && due(a.validUntil) {
				// RFC 4862 §5.5.4: "An address whose valid lifetime expires MUST be removed".
				n.removeAddrAt(i)
				i--
				continue
			}
			if a.state == Tentative && n.eth != nil && due(a.dadNext) {
				if a.dadLeft > 0 {
					// RFC 4862 §5.4.2: DupAddrDetectTransmits solicitations, RetransTimer
					// apart, from the unspecified address to the solicited-node group.
					a.dadLeft--
					a.dadNext = now.Add(l.nd.retrans(n))
					l.nd.sendNS(n, unspecified6, a.snm, a.prefix.Addr())
				} else {
					// §5.4.3: no answer RetransTimer after the last: the address is unique.
					l.setState(a, Preferred)
				}
			}
			if a.state == Preferred && !a.preferredUntil.IsZero() && due(a.preferredUntil) {
				l.setState(a, Deprecated) // RFC 4862 §5.5.4
			}
		}
		if n.rsLeft > 0 && due(n.rsNext) {
			n.rsLeft--
			n.rsNext = now.Add(rtrSolicitationInterval)
			l.nd.sendRS(n)
		}
	}
	for i := range l.nd.cache {
		e := &l.nd.cache[i]
		if e.state == nFree || !due(e.next) {
			continue
		}
		switch e.state {
		case nIncomplete:
			if e.probes >= maxMulticastSolicit {
				// RFC 4861 §7.2.2: "If no Neighbor Advertisement is received after
				// MAX_MULTICAST_SOLICIT solicitations, address resolution has failed. The
				// sender MUST return ICMP destination unreachable indications with code 3
				// (Address Unreachable) for each packet queued".
				for p := range e.q.All() {
					l.icmp6Error(e.n, p, wire.ICMPv6DestUnreach, wire.ICMPv6AddrUnreach, 0)
				}
				l.nd6.Drop++
				l.nd6.Rterr++
				l.nd.free(e)
				continue
			}
			l.nd.solicit(e, true)
		case nReachable:
			e.state = nStale // §7.3.3: ReachableTime passed without confirmation
		case nDelay:
			e.state, e.probes = nProbe, 0
			l.nd.solicit(e, false)
		case nProbe:
			if e.probes >= maxUnicastSolicit {
				if e.router {
					l.setRARoute(e.n, defaultRoute6, e.addr, time.Time{}, true)
				}
				l.nd.free(e)
				continue
			}
			l.nd.solicit(e, false)
		}
	}
	l.filterRoutes(func(r *routeEntry) bool {
		return r.kind != routeRA || r.expires.IsZero() || !due(r.expires)
	})
	l.rearm()
	l.flushLinks()
}

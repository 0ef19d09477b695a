package ip

import (
	"net/netip"
	"time"
)

// Solicited-node memberships. RFC 4861 §7.2.1: "a node MUST join the all-nodes multicast
// address and the solicited-node multicast address of every unicast and anycast address
// assigned to the interface", "done using a Multicast Listener Discovery such as [MLD] or
// [MLDv2] protocols"; RFC 4862 §5.4.2 joins it for a tentative address too, "before
// sending the Neighbor Solicitation". RFC 3810 §6 reports every group but ff02::1 and the
// interface-local ones, so a solicited-node group (link-local scope) is reported like a
// group JoinGroup joined: state-change reports when the first address using it appears,
// answers to general and group-specific queries, a leave (TO_IN{} or Done) when the last
// one goes.
//
// Only netifs that run Neighbor Discovery (Ethernet) hold them: on an IP-medium link
// nothing resolves addresses or probes for duplicates through these groups. The input
// filter (Netif.inGroup) accepts them on every netif, as before.
//
// An element is one per distinct group of a netif (addresses whose low 24 bits agree
// share it), marked group.snm, in the netif's MLD list. It is heap-allocated
// (group.heap), not taken from the MLD6_GROUP pool: see mcast.go.

// holdsSNM reports whether an address of n still needs solicited-node group g: one whose
// group it is and that DAD has not found duplicated (RFC 4862 §5.4.5: such an address is
// not used; Netif.inGroup stops accepting its group too).
func (n *Netif) holdsSNM(g netip.Addr) bool {
	for _, a := range n.addrs {
		if a.snm == g && a.state != Duplicated {
			return true
		}
	}
	return false
}

// snmSync makes n's solicited-node memberships follow its addresses: groups no address
// needs any more are left (reported unless JoinGroup still holds them), groups of new
// addresses joined. With report false a new membership is only recorded: the caller is
// bringing n up and mcUp reports every group next. Call it after every change of n's IPv6
// addresses (added, removed, DAD failed). Core context.
func (l *Layer) snmSync(n *Netif, report bool) {
	if n.eth == nil || n.follower { // a follower joins no group (ipv6Input accepts its ND)
		return
	}
	f := &n.mc6
	for e := f.groups; e != nil; {
		next := e.next
		if e.snm && !n.holdsSNM(e.addr) {
			e.snm = false
			if !e.joined() {
				// RFC 3810 §6.1: leaving is a state change (TO_IN{}; MLDv1: Done).
				l.stateChange(n, f, e, true)
			}
		}
		e = next
	}
	for _, a := range n.addrs {
		if !a.snm.IsValid() || a.state == Duplicated {
			continue
		}
		e := f.find(a.snm)
		if e == nil {
			e = &group{n: n, addr: a.snm, heap: true, next: f.groups}
			f.groups = e
			f.count++
		} else if e.snm {
			continue // another address shares the group
		}
		was := e.joined()
		e.snm = true
		if !was && report {
			l.snmJoin(n, f, e)
		}
	}
}

// snmJoin reports a new solicited-node membership e: at once, or, when every address
// holding it waits for its first DAD probe (the random delay after the netif came up),
// from that probe on: RFC 4862 §5.4.2 "the sender SHOULD delay joining the solicited-node
// multicast address by a random delay between 0 and MAX_RTR_SOLICITATION_DELAY ... Note
// that the delay for joining the multicast address implicitly means delaying the MLD
// report message".
func (l *Layer) snmJoin(n *Netif, f *mcFamily, e *group) {
	if at := n.snmDelay(e.addr, l.now()); !at.IsZero() && n.up {
		l.delayedJoin(f, e, at)
		return
	}
	l.stateChange(n, f, e, false)
}

// snmDelay returns when the first DAD probe of an address holding solicited-node group g
// goes, when that is after now for every such address; zero when one of them is assigned
// or probing already.
func (n *Netif) snmDelay(g netip.Addr, now time.Time) time.Time {
	var at time.Time
	for _, a := range n.addrs {
		if a.snm != g || a.state == Duplicated {
			continue
		}
		if a.state != Tentative || a.dadLeft < n.l.opts.IPv6DupAddrDetectTransmits ||
			!a.dadNext.After(now) {
			return time.Time{}
		}
		if at.IsZero() || a.dadNext.Before(at) {
			at = a.dadNext
		}
	}
	return at
}

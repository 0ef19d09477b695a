package tcp

import (
	"net/netip"
)

// pickPort chooses an ephemeral port with RFC 6056 Algorithm 3 ("Simple Hash-Based Port
// Selection"): offset = F(local_IP, remote_IP, remote_port, secret_key), then
//
//	port = min_ephemeral + (next_ephemeral + offset + count) % num_ephemeral
//
// trying successive counts until the port is free. With remote unset (Bind to port 0) the
// port must be free of every binding; with a remote it must only make a unique 4-tuple and
// not collide with a listener or a bound-but-unconnected PCB.
func (t *Proto) pickPort(local netip.Addr, remote netip.AddrPort) (uint16, bool) {
	lo, hi := uint32(t.opts.TCPPortLow), uint32(t.opts.TCPPortHigh)
	num := hi - lo + 1
	offset := t.keys.PortOffset(local, remote)
	for count := uint32(0); count < num; count++ {
		port := uint16(lo + (t.nextEphem+offset+count)%num)
		if !remote.IsValid() && t.portTaken(nil, local, port) || remote.IsValid() && t.portBlocksConnect(local, port) {
			continue
		}
		if remote.IsValid() && t.lookupConn(local, remote.Addr(), port, remote.Port()) != nil {
			continue
		}
		if remote.IsValid() && t.portOK != nil && !t.portOK(local, remote, port) {
			continue
		}
		// RFC 6056 §3.3.3: "next_ephemeral = next_ephemeral + count + 1" (here + 1 only,
		// which Algorithm 3's variant in §3.3.3 also allows, to spread the next choice).
		t.nextEphem += count + 1
		return port, true
	}
	return 0, false
}

// overlaps reports whether two local addresses (invalid or unspecified: wildcard) can
// receive the same segment. v6only tells, for an unspecified IPv6 address, whether it is
// IPV6_V6ONLY: without it "::" holds the port for IPv4 as well (RFC 3493 §3.7, Linux).
func overlaps(a netip.Addr, aV6Only bool, b netip.Addr, bV6Only bool) bool {
	if !a.IsValid() || !b.IsValid() {
		return true
	}
	if a.Is4() != b.Is4() {
		return a.Is6() && a.IsUnspecified() && !aV6Only || b.Is6() && b.IsUnspecified() && !bV6Only
	}
	return a.IsUnspecified() || b.IsUnspecified() || a == b
}

// portTaken reports whether binding addr:port would conflict with a listener or another
// PCB (skip, may be nil). A listener always does. With SO_REUSEADDR on skip, a TIME-WAIT PCB
// does not, nor does a connection that has SO_REUSEADDR itself (an accepted one inherits
// its listener's): a server restarted with SO_REUSEADDR binds while its old connections
// finish closing, as on Linux and in lwIP (SO_REUSE).
func (t *Proto) portTaken(skip *PCB, addr netip.Addr, port uint16) bool {
	v6only := skip != nil && skip.flags&fV6Only != 0
	for l := t.lbuckets[uint32(port)&t.lmask]; l != nil; l = l.hnext {
		if l.local.Port() == port && overlaps(l.local.Addr(), l.flags&fV6Only != 0, addr, v6only) {
			return true
		}
	}
	reuse := skip != nil && skip.flags&fReuseAddr != 0
	for o := t.all.head; o != nil; o = o.all.next {
		if o == skip || o.flags&fBound == 0 || o.lport != port || !overlaps(o.laddr, o.flags&fV6Only != 0, addr, v6only) {
			continue
		}
		if reuse && (o.state == StateTimeWait || o.flags&fReuseAddr != 0) {
			continue
		}
		return true
	}
	return false
}

// portBlocksConnect reports whether an ephemeral port is held by a listener or by a bound,
// unconnected PCB (connections on it are fine as long as the 4-tuple differs).
func (t *Proto) portBlocksConnect(addr netip.Addr, port uint16) bool {
	for l := t.lbuckets[uint32(port)&t.lmask]; l != nil; l = l.hnext {
		if l.local.Port() == port && overlaps(l.local.Addr(), l.flags&fV6Only != 0, addr, false) {
			return true
		}
	}
	if t.boundIdle == 0 {
		return false
	}
	for o := t.all.head; o != nil; o = o.all.next {
		if o.flags&fBound != 0 && o.state == StateClosed && o.lport == port && overlaps(o.laddr, o.flags&fV6Only != 0, addr, false) {
			return true
		}
	}
	return false
}

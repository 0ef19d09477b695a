package dns

import (
	"net/netip"
	"slices"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/stats"
)

// SetServer sets server slot i (lwIP dns_setserver); port 0 means 53, the zero AddrPort
// clears the slot. A slot set here wins over servers learnt from DHCP. errs.Val if i is not
// below DNSMaxServers.
func (r *Resolver) SetServer(i int, a netip.AddrPort) error {
	r.timers.AssertCore()
	if i < 0 || i >= len(r.manual) {
		return errs.Val
	}
	r.manual[i] = fixPort(a, Port)
	r.recompute()
	return nil
}

// SetLearnt replaces the servers learnt from one source ("dhcp", "dhcpv6", ...): they fill,
// in order, the slots SetServer left empty. Core context.
func (r *Resolver) SetLearnt(from string, addrs []netip.Addr) {
	r.timers.AssertCore()
	var aps []netip.AddrPort
	for _, a := range addrs {
		if a.IsValid() && !a.IsUnspecified() {
			aps = append(aps, netip.AddrPortFrom(a.Unmap(), Port))
		}
	}
	i := slices.IndexFunc(r.learnt, func(s source) bool { return s.from == from })
	switch {
	case i >= 0 && len(aps) == 0:
		r.learnt = slices.Delete(r.learnt, i, i+1)
	case i >= 0:
		r.learnt[i].addrs = aps
	case len(aps) > 0:
		r.learnt = append(r.learnt, source{from, aps})
	}
	r.recompute()
}

func (r *Resolver) recompute() {
	copy(r.servers, r.manual)
	slot := 0
	for _, s := range r.learnt {
		for _, a := range s.addrs {
			if slices.Contains(r.servers, a) {
				continue
			}
			for slot < len(r.servers) && r.servers[slot].IsValid() {
				slot++
			}
			if slot < len(r.servers) {
				r.servers[slot] = a
			}
		}
	}
	r.live = r.live[:0]
	for i, a := range r.servers {
		if a.IsValid() {
			r.live = append(r.live, i)
		}
	}
}

// Servers returns the servers in use, in the order they are asked. Core context.
func (r *Resolver) Servers() []netip.AddrPort {
	r.timers.AssertCore()
	out := make([]netip.AddrPort, 0, len(r.live))
	for _, i := range r.live {
		out = append(out, r.servers[i])
	}
	return out
}

// Stats fills dst with the resolver's counters. Core context.
func (r *Resolver) Stats(dst *stats.DNS) {
	s := r.st
	s.Servers = len(r.live)
	*dst = s
}

func fixPort(a netip.AddrPort, port uint16) netip.AddrPort {
	if !a.IsValid() {
		return netip.AddrPort{}
	}
	if a.Port() == 0 {
		return netip.AddrPortFrom(a.Addr().Unmap(), port)
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

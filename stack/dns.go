package stack

import (
	"net/netip"

	"github.com/wispstack/wisp/apps/dns"
	"github.com/wispstack/wisp/stats"
)

// initDNS creates the stack's resolver (package apps/dns) on core 0, sized by the options
// (DNSTableSize, DNSMaxServers, DNSMaxRetries, DNSRetryInterval, DNSMDNS), with no
// servers; Close ends it. New calls it once the cores exist.
func (s *Stack) initDNS() error {
	s.core.Lock()
	defer s.core.Unlock()
	r := dns.New(dns.Config{UDP: s.udp, IP: s.ip, Timers: s.timers, Alloc: s.alloc, Options: s.opts})
	s.dns.Store(r)
	s.OnClose(func() {
		r.Close()
		s.dns.Store(nil)
	})
	return nil
}

// DNS returns the stack's resolver (lwIP's dns.c): GetHostByName, SetServer, Servers,
// Stats. Its methods are core context: call them inside Callback or between Lock and
// Unlock. nil after Close.
func (s *Stack) DNS() *dns.Resolver {
	return s.dns.Load()
}

// setDNSServers installs servers learnt from a configuration source ("dhcp", "dhcpv6",
// "ra") in core 0's context: they replace that source's earlier ones and fill the server
// slots that SetServer left empty (servers set by hand win).
func (s *Stack) setDNSServers(from string, addrs []netip.Addr) {
	if r := s.DNS(); r != nil {
		r.SetLearnt(from, addrs)
	}
}

// dnsStats fills snap.DNS; core 0's lock is held.
func (s *Stack) dnsStats(snap *stats.Snapshot) {
	if r := s.DNS(); r != nil {
		r.Stats(&snap.DNS)
	}
}

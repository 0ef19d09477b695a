package stack

import (
	"net/netip"

	"github.com/wispstack/wisp/stats"
)

// initDNS creates the stack's resolver (package apps/dns) on core 0; New calls it once the
// cores exist. (Stub: the DNS helper fills this file.)
func (s *Stack) initDNS() error { return nil }

// setDNSServers installs servers learnt from a configuration source ("dhcp", "dhcpv6",
// "ra") in core 0's context. (Stub.)
func (s *Stack) setDNSServers(from string, addrs []netip.Addr) { _, _ = from, addrs }

// dnsStats fills snap.DNS; core 0's lock is held. (Stub.)
func (s *Stack) dnsStats(snap *stats.Snapshot) { _ = snap }

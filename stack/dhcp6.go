package stack

import (
	"net/netip"

	"github.com/wispstack/wisp/apps/dhcp6"
)

// startDHCPv6 starts the netif's stateless DHCPv6 client (NetifConfig.DHCPv6); core 0's
// lock is held. The client listens for Router Advertisements with O (or M) set and sends
// the DNS servers of each Reply to the stack's resolver as the source "dhcpv6".
func (n *Netif) startDHCPv6() error {
	s := n.s
	c, err := dhcp6.New(dhcp6.Env{
		UDP: s.udp, Timers: s.timers, Alloc: s.alloc, Netif: n.n,
		Seed: s.ip.Rand64(),
		SetDNS: func(servers []netip.Addr, _ []string) {
			s.setDNSServers("dhcpv6", servers)
		},
	}, dhcp6.Config{})
	if err != nil {
		return err
	}
	n.dhcp6.Store(c)
	return nil
}

// stopDHCPv6 stops it when the netif is removed; core 0's lock is held.
func (n *Netif) stopDHCPv6() {
	if c := n.dhcp6.Swap(nil); c != nil {
		c.Stop()
	}
}

// DHCPv6 returns the netif's DHCPv6 client, nil when NetifConfig.DHCPv6 was off. Its Info,
// State and Stats are safe for concurrent use.
func (n *Netif) DHCPv6() *dhcp6.Client {
	return n.dhcp6.Load()
}

package stack

// startDHCPv6 starts the netif's stateless DHCPv6 client (NetifConfig.DHCPv6); core 0's
// lock is held. (Stub: the DHCPv6 helper fills this file.)
func (n *Netif) startDHCPv6() error { return nil }

// stopDHCPv6 stops it when the netif is removed; core 0's lock is held.
func (n *Netif) stopDHCPv6() {}

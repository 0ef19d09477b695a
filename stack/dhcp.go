package stack

// startDHCP starts the netif's DHCPv4 client (NetifConfig.DHCP); core 0's lock is held.
// (Stub: the DHCP helper fills this file.)
func (n *Netif) startDHCP() error { return nil }

// stopDHCP stops it (releasing the lease) when the netif is removed; core 0's lock is held.
func (n *Netif) stopDHCP() {}

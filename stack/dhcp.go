package stack

import (
	"fmt"
	"net/netip"

	"github.com/wispstack/wisp/apps/dhcp"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
)

// dhcpRun is a netif's DHCPv4 client and what its lease installed.
type dhcpRun struct {
	c     *dhcp.Client
	route bool // the lease's default route was added (not one that was there before)
}

// startDHCP starts the netif's DHCPv4 client (NetifConfig.DHCP, with NetifConfig.DHCPConfig
// when given); core 0's lock is held. errs.Val on a link that is not Ethernet.
func (n *Netif) startDHCP(c dhcp.Config) error {
	if n.ep.Medium() != link.MediumEthernet {
		return fmt.Errorf("%w: DHCP needs an Ethernet link (a TAP device, not a TUN)", errs.Val)
	}
	s := n.s
	run := &dhcpRun{}
	cl, err := dhcp.New(dhcp.Env{
		UDP: s.udp, Timers: s.timers, Netif: n.n, Alloc: s.alloc, Core: s.core,
		Seed: s.ip.Rand64(), ACD: s.opts.DHCPDoesACDCheck,
		Install: func(l dhcp.Lease) error { return n.dhcpInstall(run, l) },
		Remove:  func(l dhcp.Lease) { n.dhcpRemove(run, l) },
		Change:  func(old, l dhcp.Lease) { n.dhcpChange(run, old, l) },
	}, c)
	if err != nil {
		return err
	}
	run.c = cl
	if err := cl.Start(); err != nil {
		return err
	}
	n.dhcp.Store(run)
	return nil
}

// stopDHCP stops the client when the netif is removed (core 0's lock held): the lease is
// released and everything it installed removed, and the RELEASE is written before the link
// goes.
func (n *Netif) stopDHCP() {
	run := n.forgetDHCP()
	if run == nil {
		return
	}
	run.c.Stop()
	n.s.ip.Flush()
}

// ReleaseDHCP stops the netif's DHCPv4 client as lwIP's dhcp_release_and_stop does: a
// RELEASE goes to the server (written to the link before ReleaseDHCP returns) and the
// lease's address, route and DNS servers are removed; the netif stays. A program that
// closes a TAP right after may lose the frame in the kernel (its device goes with the
// file), so it should give the kernel a moment first. No-op without a client.
func (n *Netif) ReleaseDHCP() {
	n.s.core.Lock()
	defer n.s.core.Unlock()
	n.stopDHCP()
}

func (n *Netif) forgetDHCP() *dhcpRun { return n.dhcp.Swap(nil) }

// closeApps stops the netif's configuration clients when the stack closes (every core's
// lock held): nothing is sent and nothing uninstalled, as the whole stack goes.
func (n *Netif) closeApps() {
	if run := n.forgetDHCP(); run != nil {
		run.c.Close()
	}
	if c := n.dhcp6.Swap(nil); c != nil {
		c.Stop()
	}
}

// DHCP returns the netif's DHCPv4 client, nil when NetifConfig.DHCP is off or the netif was
// removed. Its State, Lease and Stats are safe for concurrent use; Renew takes the core lock.
func (n *Netif) DHCP() *dhcp.Client {
	if run := n.dhcp.Load(); run != nil {
		return run.c
	}
	return nil
}

var defaultRoute4 = netip.PrefixFrom(netip.IPv4Unspecified(), 0)

// dhcpInstall puts a lease on the netif, on every core: the address with its prefix (and
// connected route), the router as the default route, the DNS servers. Core 0's context.
func (n *Netif) dhcpInstall(run *dhcpRun, l dhcp.Lease) error {
	if err := n.addAddrLocked(l.Addr); err != nil {
		return err
	}
	n.addDHCPRoute(run, l.Router)
	n.s.setDNSServers("dhcp", l.DNS)
	return nil
}

// addDHCPRoute adds the default route through router on every core (none when router is
// invalid, or when the netif has one already).
func (n *Netif) addDHCPRoute(run *dhcpRun, router netip.Addr) {
	s := n.s
	if !router.IsValid() {
		return
	}
	r := ip.Route{Dst: defaultRoute4, Gateway: router, Netif: n.n}
	if s.ip.AddRoute(r) != nil {
		return
	}
	run.route = true
	for k := 1; k < len(n.per); k++ {
		s.withCore(k, func(c *Core) {
			r.Netif = n.per[k]
			_ = c.ip.AddRoute(r)
		})
	}
}

// removeDHCPRoute removes the default route addDHCPRoute added.
func (n *Netif) removeDHCPRoute(run *dhcpRun) {
	s := n.s
	if !run.route {
		return
	}
	run.route = false
	_ = s.ip.RemoveRoute(defaultRoute4, n.n)
	for k := 1; k < len(n.per); k++ {
		s.withCore(k, func(c *Core) { _ = c.ip.RemoveRoute(defaultRoute4, n.per[k]) })
	}
}

// dhcpChange installs a renewed lease's new router and DNS servers; the address stays.
func (n *Netif) dhcpChange(run *dhcpRun, _, l dhcp.Lease) {
	n.removeDHCPRoute(run)
	n.addDHCPRoute(run, l.Router)
	n.s.setDNSServers("dhcp", l.DNS)
}

// dhcpRemove takes a lease off the netif: the route, the DNS servers, and the address by
// the path of RemoveAddr, so that Options.TCPKeepConnWhenIPChanges decides the fate of the
// TCP connections bound to it. Core 0's context.
func (n *Netif) dhcpRemove(run *dhcpRun, l dhcp.Lease) {
	s := n.s
	n.removeDHCPRoute(run)
	s.setDNSServers("dhcp", nil)
	a := l.Addr.Addr()
	if n.n.RemoveAddr(a) != nil {
		return
	}
	s.addrRemoved(s.cores[0], a)
	for k := 1; k < len(n.per); k++ {
		s.withCore(k, func(c *Core) {
			_ = n.per[k].RemoveAddr(a)
			s.addrRemoved(c, a)
		})
	}
}

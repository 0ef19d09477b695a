package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/wispstack/wisp/apps/dhcp"
	"github.com/wispstack/wisp/stack"
)

// dhcpServiceAddrs are the addresses the services listen on with --dhcp: 0.0.0.0 (the
// lease's address is not known yet, and changes) in place of every IPv4 --addr, and the
// IPv6 --addr addresses.
func dhcpServiceAddrs(addrs prefixList) prefixList {
	out := prefixList{netip.PrefixFrom(netip.IPv4Unspecified(), 0)}
	for _, p := range addrs {
		if p.Addr().Is6() {
			out = append(out, p)
		}
	}
	return out
}

// describeAddrs says what the netif's addresses are and where they come from.
func describeAddrs(addrs prefixList, useDHCP, useDHCPv6 bool) string {
	var parts []string
	if len(addrs) > 0 {
		parts = append(parts, addrs.String())
	}
	if useDHCP {
		parts = append(parts, "DHCP")
	}
	if useDHCPv6 {
		parts = append(parts, "DHCPv6")
	}
	return strings.Join(parts, ", ")
}

// printLeases prints the lease of nif's DHCP client (Netif.DHCP) whenever it changes: bound,
// renewed, lost. It polls (the CLI's own goroutine; the client is not disturbed) until stop.
func printLeases(nif *stack.Netif, stdout io.Writer) (stop func()) {
	fmt.Fprintf(stdout, "wisp: DHCP on %s: asking for a lease\n", nif.Name())
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		var last dhcp.Lease
		had := false
		for {
			select {
			case <-tick.C:
			case <-done:
				return
			}
			c := nif.DHCP()
			if c == nil {
				continue
			}
			l, ok := c.Lease()
			switch {
			case ok && (!had || l.Addr != last.Addr || !l.Acquired.Equal(last.Acquired)):
				fmt.Fprintf(stdout, "wisp: DHCP on %s: %s\n", nif.Name(), leaseString(l))
			case !ok && had:
				fmt.Fprintf(stdout, "wisp: DHCP on %s: lease of %v lost (%v): address removed\n", nif.Name(), last.Addr, c.State())
			}
			last, had = l, ok
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}

// leaseString prints a lease in one line.
func leaseString(l dhcp.Lease) string {
	life := "infinite"
	if l.Lease != dhcp.Infinite {
		life = fmt.Sprintf("%v (renew at %v, rebind at %v)", l.Lease, l.T1, l.T2)
	}
	s := fmt.Sprintf("bound %v from server %v, lease %s", l.Addr, l.Server, life)
	if l.Router.IsValid() {
		s += fmt.Sprintf(", router %v", l.Router)
	}
	if len(l.DNS) > 0 {
		s += fmt.Sprintf(", DNS %v", l.DNS)
	}
	return s + ", acquired " + l.Acquired.Format(time.TimeOnly)
}

// Package dhcp6 is a stateless DHCPv6 client (RFC 8415 §18.2.6): on a Router
// Advertisement with the O (or M) flag it sends an Information-Request from the netif's
// link-local address to All_DHCP_Relay_Agents_and_Servers (ff02::1:2, port 547),
// retransmits it as RFC 8415 §15 says (INF_TIMEOUT 1 s doubling to INF_MAX_RT 3600 s, each
// ±10 %), and hands the DNS servers (RFC 3646 option 23) and search list (24) of the Reply
// to the stack; it asks again when the Information Refresh Time (option 32) runs out.
// Addresses come from SLAAC (package ip), not from here: stateful DHCPv6 (IA_NA, IA_PD) is
// not implemented.
//
// Layer: apps. It imports ip, transport/udp, pbuf, clock, errs and wire/dhcpv6 — never
// stack, which starts one client per netif (stack.NetifConfig.DHCPv6) on core 0.
//
// Concurrency: New, Stop and the RA hook run in core context; Info, State and Stats are
// safe for concurrent use.
package dhcp6

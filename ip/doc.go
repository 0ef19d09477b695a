// Package ip is wisp's network layer, lwIP's ip4.c, ip6.c, icmp.c, icmp6.c, nd6.c, igmp.c,
// mld6.c and netif.c in one place: netifs and their addresses, the routing table, IPv4 (RFC 791, RFC
// 1122) and IPv6 (RFC 8200) input and output with fragmentation through ip/frag, ICMP and
// ICMPv6 (RFC 792, RFC 4443) with rate-limited errors, local (loopback) delivery, and on
// Ethernet netifs Neighbor Discovery (RFC 4861), duplicate address detection and stateless
// address autoconfiguration (RFC 4862). ARP lives in link/ethernet.
//
// Multicast: JoinGroup / LeaveGroup / Groups / NetifForGroup manage memberships per
// (netif, group), refcounted, in the IGMP_GROUP and MLD6_GROUP pools (MempNumIGMPGroup,
// MempNumMLD6Group; errs.Mem when full). The host side of IGMPv3 (RFC 3376) with the IGMPv2
// (RFC 2236) and IGMPv1 (RFC 1112) compatibility modes, and of MLDv2 (RFC 3810) with MLDv1
// (RFC 2710) compatibility, follows the querier's version (Older Version Querier Present
// timers): unsolicited reports on join ([Robustness Variable] times), leaves (TO_IN{},
// Leave Group, Done), answers to general and group-specific queries after a random delay,
// v1/v2 report suppression, the querier's QRV and QQIC. Every IGMP packet carries the IPv4
// Router Alert option (RFC 2113) with TTL 1; MLD a Hop-by-Hop Router Alert (RFC 2711), hop
// limit 1, from the link-local address (:: while there is none, RFC 3590). Input: multicast
// reaches transports only for joined groups, 224.0.0.1, the all-nodes and solicited-node
// groups; queries must pass the RFC checks (checksum, length, Router Alert, MLD link-local
// source and hop limit 1). Output: OutputOptions.MulticastLoop loops a copy back when the
// egress netif is a member; OutputOptions.LoopOnly (IP_MULTICAST_TTL 0) keeps a multicast
// packet off the link, delivering it to local members only. Only any-source membership
// exists (every group is EXCLUDE {}): there is no source-filtering API (RFC 3678), and
// group-and-source-specific queries are answered with IS_EX{}.
//
// Solicited-node groups (RFC 4861 §7.2.1): every netif accepts the group of each of its
// IPv6 addresses, tentative ones included, without JoinGroup. On Ethernet netifs (those
// that run Neighbor Discovery) MLD also reports them like joined groups: state-change
// reports from the moment DAD starts (after its random delay when the netif comes up, RFC
// 4862 §5.4.2; from :: while no link-local address is assigned), answers to queries, and
// a leave when the last address using the group is removed or found duplicated. They are
// held by the addresses, not in the MLD6_GROUP pool (MempNumMLD6Group bounds JoinGroup
// only), and Groups does not list them.
//
// Layer: ip. It imports the base packages (opt, stats, clock, errs), wire, memp, pbuf, link,
// link/ethernet and ip/frag. Transports are reached through the Transport interface the
// stack registers, never imported.
//
// Concurrency: none. A Layer and everything it owns run in the stack's core context (the
// core lock held); every exported method must be called there. In builds with the
// wispcheck tag the Layer's methods and the Netif's that change or read its state (AddAddr,
// RemoveAddr, Addrs, SetMTU, SetUp, Input) check it (Layer.AssertCore), except
// RegisterTransport, SetRaw and Tables, which the stack calls while it builds the layer.
// Timers run there too (clock.Timeouts takes the core lock). The Layer never starts a
// goroutine and never reads the wall clock: Config.Timers.Now() is the time.
//
// Ownership: every function that takes a *pbuf.Pbuf says whether it takes ownership or
// borrows; ownership never depends on the returned error.
//
// Counters (one reason besides Drop for every dropped packet), in the IP, ICMP, IGMP, IP6,
// ICMP6, MLD6 and ND6 records:
//
//	Lenerr   truncated packets, bad header/total/payload lengths
//	Chkerr   IPv4 header checksum, ICMP and IGMP checksums
//	Err      bad version, source or destination addresses we must not accept, not for us
//	         (forwarding off), multicast groups not joined, netif down; ICMP errors
//	         suppressed by the rate limiter; MLD from a non-link-local source or hop limit
//	         other than 1
//	Proterr  unknown protocol (after answering with ICMP), malformed ICMP/ND messages
//	Opterr   malformed or unrecognised IPv6 extension headers and options; IGMPv2/v3
//	         queries and MLD messages without Router Alert
//	Rterr    no route (output and forwarding)
//	Memerr   pool, heap or queue exhausted; IGMP/MLD: group table full on JoinGroup
//
// Not implemented yet: multicast source filtering, multicast forwarding, IPv4 options
// processing (options are accepted and ignored,
// and not copied into forwarded fragments), redirects, a path-MTU cache (PTB/Frag-needed
// are passed to transports via ControlInput). DHCP is apps/dhcp's; ip gives it the one
// hook it needs before the netif has an address (SetAcceptUDPPort, dhcphook.go).
package ip

// Package ip is wisp's network layer, lwIP's ip4.c, ip6.c, icmp.c, icmp6.c, nd6.c and
// netif.c in one place: netifs and their addresses, the routing table, IPv4 (RFC 791, RFC
// 1122) and IPv6 (RFC 8200) input and output with fragmentation through ip/frag, ICMP and
// ICMPv6 (RFC 792, RFC 4443) with rate-limited errors, local (loopback) delivery, and on
// Ethernet netifs Neighbor Discovery (RFC 4861), duplicate address detection and stateless
// address autoconfiguration (RFC 4862). ARP lives in link/ethernet.
//
// Layer: ip. It imports the base packages (opt, stats, clock, errs), wire, memp, pbuf, link,
// link/ethernet and ip/frag. Transports are reached through the Transport interface the
// stack registers, never imported.
//
// Concurrency: none. A Layer and everything it owns run in the stack's core context (the
// core lock held); every exported method must be called there. Timers run there too
// (clock.Timeouts takes the core lock). The Layer never starts a goroutine and never reads
// the wall clock: Config.Timers.Now() is the time.
//
// Ownership: every function that takes a *pbuf.Pbuf says whether it takes ownership or
// borrows; ownership never depends on the returned error.
//
// Counters (one reason besides Drop for every dropped packet):
//
//	Lenerr   truncated packets, bad header/total/payload lengths
//	Chkerr   IPv4 header checksum, ICMP checksums
//	Err      bad version, source or destination addresses we must not accept, not for us
//	         (forwarding off), netif down; ICMP errors suppressed by the rate limiter
//	Proterr  unknown protocol (after answering with ICMP), malformed ICMP/ND messages
//	Opterr   malformed or unrecognised IPv6 extension headers and options
//	Rterr    no route (output and forwarding)
//	Memerr   pool, heap or queue exhausted
//
// Not implemented yet: IGMP and MLD (no multicast group joins besides the all-nodes and
// solicited-node groups, which are accepted without reports), IPv4 options processing
// (options are accepted and ignored, and not copied into forwarded fragments), redirects,
// a path-MTU cache (PTB/Frag-needed are passed to transports via ControlInput), DHCP.
package ip

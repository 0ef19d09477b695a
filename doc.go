// Package wisp is the root of wisp, a userspace TCP/UDP/IP engine with lwIP's semantics for
// Go programs: pbuf chains, fixed pools sized by one options struct, a hard memory budget,
// one core context and timers that fire only on demand.
//
// The engine lives in layered packages, each importing only the layers before it:
//
//	opt, stats, clock, errs   base: options, counters, time, core errors
//	wire                      packet views, reprs and checksums
//	memp, pbuf                fixed pools; packet buffer chains
//	link                      the link interface and links (pipe, loopback, tun, impair, pcap, ethernet/ARP)
//	ip                        IPv4/IPv6, ICMP, NDP, fragments, routing
//	transport                 tcp, udp, raw
//	stack                     Stack: netifs, pools, timers, stats, the core lock
//	endpoint                  netconn and socket layers
//	adapter, xdp              gVisor and wireguard-go adapters; AF_XDP link
//	bench, integration, cmd   proof and tools
//
// layering_test.go enforces the direction. See docs/ARCHITECTURE.md.
package wisp

// Package ethernet frames IP packets in Ethernet II and resolves IPv4 next hops with ARP
// (RFC 826), including gratuitous ARP announcements (RFC 5227 §3). It is lwIP's ethernet.c
// and etharp.c.
//
// An Iface sits between a netif's link (which it reaches through Config.Transmit) and the
// IP layer (Upper). Received frames go to Input; the IP layer sends through OutputIPv4 (which
// resolves the next hop) or Output (a known destination MAC).
//
// The ARP table is a fixed array of Config.TableSize entries. Packets waiting for a
// resolution are held in the ARP_QUEUE pool (MempNumARPQueue elements for all entries). One
// clock.Timeout per Iface drives retries, refreshes and expiry, and it is armed only while
// some entry is pending or resolved (static entries never time out): an empty table arms no
// timer.
//
// Layer: link (imports wire, memp, pbuf, stats, errs, clock). Every method runs in core
// context (the stack's core lock held); an Iface is not safe for concurrent use on its own.
package ethernet

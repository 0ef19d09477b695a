// Package dns is the stack's resolver, lwIP's dns.c: a fixed table of DNSTableSize names,
// each in flight or cached for its TTL, asked of DNSMaxServers servers over a UDP PCB of
// core 0, DNSMaxRetries times every DNSRetryInterval, rotating through the servers.
//
// What it does, beyond lwIP's: A and AAAA for one name at once (AddrType Any, lwIP's
// LWIP_DNS_ADDRTYPE_IPV4_IPV6 asking for both), every address of an answer (up to
// MaxAddrs), CNAME chains inside an answer, negative caching for the SOA's minimum (RFC
// 2308 §5, bounded by MaxNegativeTTL), a random source port and ID per name (RFC 5452 §9.2),
// answers matched by ID, server address and port and question (RFC 5452 §9.1), and names
// ending in ".local" sent to the mDNS groups as one-shot queries (RFC 6762 §5.1) when
// DNSMDNS is set. A truncated answer is not cached: the caller gets a *TruncatedError and
// may ask again over TCP (the socket layer, endpoint/dns, does) and Store the result.
//
// Memory: the table is made once (TableDecls: the budget's DNS_TABLE line), with at most
// MaxAddrs addresses and a name of at most 255 octets per entry; a lookup answered from
// the table allocates nothing. Each name in flight holds one UDP PCB from the stack's
// UDP_PCB pool (MempNumUDPPCB) for its random port, as lwIP's
// LWIP_DNS_SECURE_RAND_SRC_PORT does: none when nothing is in flight.
//
// mDNS: a one-shot query goes from the name's random port to 224.0.0.251 and, on every
// netif that is up, ff02::fb, port 5353; responders answer it by unicast to that port
// (RFC 6762 §6.7), so no group is joined.
// Timers: one clock.Timeout, armed only while a name is in flight.
//
// Layer: apps (imports transport/udp, ip, pbuf, wire/dns, opt, stats, errs, clock and the
// standard library; never stack). Concurrency: every method is core context (core 0's lock
// held); the stack starts and closes the resolver.
package dns

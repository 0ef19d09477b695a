// Package dns is a small stub resolver written from RFC 1035: a message codec (Message,
// Pack, Unpack, with name decompression) and a Resolver that looks up A and AAAA records
// through any Dial function — so a tunnel's DNS goes over the tunnel's own stack.
//
// The Resolver asks its servers in order with a timeout each, over UDP first and over TCP
// when an answer is truncated (RFC 7766 §5); follows CNAME chains inside an answer; ignores
// answers whose ID or question do not match (RFC 5452 §9.1); and keeps a bounded LRU cache
// honouring TTLs (the smallest on the chain, RFC 2181 §8 for huge ones) and caching
// negative answers for the SOA's minimum (RFC 2308 §5). The cache's time comes from an
// injected clock.Clock. It does no search lists, no EDNS(0) and no DNSSEC.
//
// Layer: endpoint (imports only the standard library and clock). Concurrency: a Resolver
// is safe for concurrent use once its fields are set; Message is a plain value.
package dns

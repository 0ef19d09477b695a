// Package dns is the socket layer's front of the stack's resolver (package apps/dns, lwIP's
// dns.c on core 0): Resolver.LookupHost and LookupNetIP have package net's signatures and
// errors (*net.DNSError), wait for the stack's resolver through netconn.LookupHost, and,
// when a server's UDP answer is truncated, ask that server again over TCP (RFC 7766 §5)
// and store the answer in the stack's table. There is one cache, the stack's table (sized
// by opt.Options.DNSTableSize, with the TTLs of the answers); servers, retries and timeouts
// are the stack's (DNSMaxServers, SetServer, DNSMaxRetries, DNSRetryInterval). The message
// codec is wire/dns. It does no search lists, no EDNS(0) and no DNSSEC.
//
// Layer: endpoint (imports stack, endpoint/netconn, apps/dns, wire/dns, errs and the
// standard library). Concurrency: a Resolver is safe for concurrent use once its fields
// are set.
package dns

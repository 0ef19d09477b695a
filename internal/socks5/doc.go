// Package socks5 is a SOCKS version 5 server (RFC 1928) for `wisp wg --socks5`: CONNECT
// with no authentication, to IPv4, IPv6 and domain-name destinations, relayed over
// whatever dial function the caller gives — in wisp wg, a dial through the WireGuard
// tunnel, which resolves domain names with the tunnel's DNS (so a client using socks5h://
// never leaks names to the host's resolver).
//
// BIND and UDP ASSOCIATE are answered "command not supported" (X'07'); username/password
// and GSSAPI authentication are not offered. Failures to connect are answered with the
// reply code that names their cause (ReplyFor): refused, network or host unreachable,
// timeout (TTL expired), not allowed, or general failure.
//
// Layer: internal (standard library only). Concurrency: Serve runs one goroutine per
// client connection plus one per relay direction; closing the listener ends Serve, which
// first closes every connection it opened and waits for their goroutines.
package socks5

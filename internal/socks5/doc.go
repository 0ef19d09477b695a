// Package socks5 is a SOCKS version 5 server (RFC 1928) for `wisp wg --socks5`, and a
// client for `wisp proxy`.
//
// The server: CONNECT
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
// The client (Client): CONNECT to IPv4, IPv6 and domain-name destinations (Dial,
// DialAddrPort) and UDP ASSOCIATE (Associate: a UDPConn that holds the association's TCP
// connection, with RFC 1928 §7's datagram header, UDPHeader), offering no authentication
// and, when a username is set, RFC 1929's username/password. A refusal is a *ReplyError
// that unwraps to the errno its code names (X'05' → ECONNREFUSED, so a TUN proxy can answer
// with a RST); a server that answers something else wraps ErrProtocol; every exchange is
// bounded by HandshakeTimeout and the caller's context.
//
// Layer: internal (standard library only). Concurrency: Serve runs one goroutine per
// client connection plus one per relay direction; closing the listener ends Serve, which
// first closes every connection it opened and waits for their goroutines. A Client is
// safe for concurrent use; a UDPConn is too, and runs one goroutine (watching its TCP
// connection) until Close.
package socks5

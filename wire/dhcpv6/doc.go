// Package dhcpv6 is the DHCPv6 client/server message (RFC 8415 §8) and its options (§21):
// a zero-copy view (Message) with an option iterator that never allocates, and a Repr that
// parses and emits the options a stateless client uses — Client and Server Identifier,
// Option Request, Elapsed Time, Status Code, DNS Recursive Name Server and Domain Search
// List (RFC 3646), Information Refresh Time (§21.23) and INF_MAX_RT (§21.25). Relay messages (§9) are not parsed.
//
// Layer: wire. It imports only the standard library and package wire (its errors).
//
// Concurrency: no state; safe for concurrent use on distinct buffers.
package dhcpv6

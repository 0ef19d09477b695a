// Package secret holds TCP's keyed hashes: RFC 6528 initial sequence numbers, RFC 6056
// ephemeral port offsets and RFC 4987 SYN cookies (with the options a cookie handshake
// carries in the timestamp), all built on SipHash-2-4.
//
// Layer: transport (imports only the standard library). Concurrency: a Keys value is
// read-only after NewKeys and safe to share between goroutines; nothing here allocates or
// reads the clock (time comes in as an argument).
package secret

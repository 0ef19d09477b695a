// Package dns is the DNS message codec (RFC 1035 §4, RFC 3596 for AAAA): Message, Pack,
// Unpack with name decompression (§4.1.4), and EqualName, the case-insensitive name
// comparison of RFC 4343. Names are in presentation form ("example.com."). It is the one
// codec of wisp: the stack's resolver (apps/dns) and the socket layer's TCP fallback
// (endpoint/dns) use it.
//
// Layer: wire (imports only the standard library). Concurrency: Message is a plain value.
package dns

// Package ntp is the NTP packet header (RFC 5905 §7.3), as an SNTP client (RFC 4330) reads
// and writes it: a zero-copy view (Header), a value repr (Repr) with Parse and Emit, the
// 64-bit timestamp format with era-aware conversions to and from time.Time, the 32-bit
// short format, and the Kiss-o'-Death codes (RFC 5905 §7.4).
//
// Layer: wire. It imports only the standard library and package wire (its errors).
// Extension fields and the MAC (RFC 5905 §7.5) are not parsed: they follow the 48-byte
// header and an SNTP client ignores them.
//
// Concurrency: no state; safe for concurrent use on distinct buffers.
package ntp

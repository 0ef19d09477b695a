// Package wire holds zero-copy views and small value reprs for the wire
// formats wisp speaks: Ethernet, ARP, IPv4, IPv6 and its extension headers,
// ICMPv4, ICMPv6 with NDP and MLD, IGMP, UDP and TCP with its options, the virtio-net
// header a TUN with offloads puts in front of each packet, and the Internet checksum.
//
// Layer: wire, the bottom of the stack. It imports only the standard library
// and no other wisp package.
//
// Shape. Each format is a byte-slice view named after the protocol
// (type IPv4 []byte) with accessors named after the RFC fields, a CheckXxx
// function that validates a buffer, and, where a header is built by the
// stack, an XxxRepr value with Parse and Emit. Once CheckXxx (or a Repr's
// Parse) has accepted a buffer, no accessor of that view panics. Views,
// Check, Parse and Emit never allocate; tests pin this with
// testing.AllocsPerRun.
//
// Emit writes a header in place in a caller-supplied buffer. Payload is
// never copied: it is expected to be in the buffer already, right after the
// header, so checksums over header and payload can be computed in one pass.
//
// Concurrency: the package has no state. Every function is safe for
// concurrent use on distinct buffers; a buffer shared between goroutines
// needs the caller's synchronisation.
package wire

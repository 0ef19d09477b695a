// Package frag reassembles IPv4 (RFC 791) and IPv6 (RFC 8200 §4.5, RFC 5722) fragments and
// splits outgoing datagrams into zero-copy fragment views. It knows nothing of IP headers
// beyond their length: the ip package parses them, calls Reassembler.Input with the fragment
// offset and MF flag, and rewrites the headers of what comes out (length fields, MF/offset,
// the IPv6 Fragment header); for output it calls Fragmenter.Split and prepends a header to
// each view.
//
// Memory is fixed, as in lwIP: datagrams under reassembly come from the REASSDATA pool
// (opt.MempNumReassData), the fragments they hold are bounded by opt.IPReassMaxPbufs (the
// oldest datagram is evicted to make room, lwIP's ip_reass_remove_oldest_datagram), and the
// views of outgoing fragments come from the FRAG_PBUF pool (opt.MempNumFragPbuf). One
// clock.Timeout per Reassembler is armed only while a datagram is pending.
//
// Layer: ip (imports clock, errs, stats, memp and pbuf; nothing of link or ip). Not safe
// for concurrent use: a Reassembler and a Fragmenter run in the stack's core context, with
// the core lock held (the timer's function runs there too).
package frag

// Package gro is software generic receive offload: it coalesces the TCP segments of one
// received batch into fewer, larger segments before IP input, as Linux's GRO does for a
// NAPI poll, so IP and TCP run once per burst of a flow instead of once per segment.
//
// Engine.Coalesce takes a batch of bare IP packets (the link header already removed) and
// merges each TCP segment into the segment of the same flow held before it in the batch
// when the result is exactly what the sender's TSO would have cut into those segments:
//
//   - same flow: addresses, ports and IP version; IPv4 with no options and not a fragment,
//     IPv6 with no extension header;
//   - the same IP fields that the segments of one GSO packet share: IPv4 TOS, TTL, DF and
//     reserved flag, and, without DF, IDs that increase by one per segment (RFC 6864: only
//     an atomic datagram's ID may be anything); IPv6 traffic class, flow label and hop
//     limit;
//   - contiguous: the new segment's sequence number is the held one's plus its payload;
//   - the same ACK number, window, data offset and reserved bits, and byte-identical options
//     (so equal timestamps);
//   - the same segment size: the first segment sets it (the GSO size), every later one may
//     be at most that size, and one that is smaller is the last;
//   - flags: the held segment has no FIN, PSH, SYN, RST or URG (CWR only on the first);
//     the new one has none of SYN, RST, URG or CWR and otherwise the held one's flags
//     (ACK, ECE); a new one with PSH or FIN is merged as the last segment, and its PSH/FIN
//     goes to the coalesced header (Linux's rules, the contract's "CWR only on the first,
//     FIN/PSH only on the last");
//   - a payload, and a coalesced IPv4 total length (IPv6 payload length) of at most 65535;
//   - verified checksums: unless the link set pbuf.FlagChecksumOK, each candidate's IPv4
//     header checksum and TCP checksum are checked; a segment that fails is left alone for
//     IP or TCP to count and drop.
//
// Order: Linux holds one list per flow, so segments of a flow merge across packets of other
// flows and across non-TCP packets; so does Coalesce. Any other packet of the same flow
// between two segments (a pure ACK, a SYN, a segment that does not fit) ends the merge, and
// so does an IP packet between the same addresses whose ports cannot be read (an IPv4
// fragment or a packet with options, an IPv6 extension header), so TCP never sees data
// ahead of a packet that preceded it. A segment with a bad checksum does not end it: TCP
// drops it, so nothing can be reordered around it. Each output packet keeps the place of
// its first segment.
//
// A coalesced packet has the lengths of the whole (IPv4 total length and header checksum,
// or IPv6 payload length), the OR of the PSH/FIN of its segments, the GSO mark
// (pbuf.GSOTCPv4 or pbuf.GSOTCPv6, segment size = the first segment's payload),
// pbuf.FlagChecksumOK, and pbuf.FlagChecksumPartial with its TCP checksum field set to the
// folded pseudo-header sum over the whole TCP length (the contract's partial checksum), so
// that it can leave again as a GSO packet. A segment verified here but not merged gets
// FlagChecksumOK, so TCP does not sum it twice.
//
// Memory: merging moves the payload pbufs of a segment onto the held chain (pbuf.Cat) after
// removing its headers, and frees a first pbuf that held only headers; nothing is copied
// or allocated. Only packets whose pbufs are all singly referenced are merged, and only
// into a POOL or RAM first pbuf (its headers are rewritten).
//
// Layer: ip (imports pbuf, wire and stats; never ip, transport or stack). An Engine is
// per-netif scratch used in the core context: not safe for concurrent use.
package gro

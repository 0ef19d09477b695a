// Package udp is wisp's UDP (RFC 768) with lwIP's raw callback API (udp.c): PCBs from a
// fixed pool, a receive callback that takes the payload pbuf, sends that take a pbuf and
// prepend the 8-byte header in its header room.
//
// What it implements: bind (ephemeral ports chosen as RFC 6056 §3.3.1 Algorithm 1 from a
// seeded generator, SO_REUSEADDR when both PCBs set it), connect (a connected PCB only
// hears its peer and takes the route's source address, as Linux does), the checksum (RFC
// 768, always sent unless SO_NO_CHECK on IPv4; zero means "none" on IPv4 receive; IPv6
// requires it, RFC 8200 §8.1), broadcast (sends need SetBroadcast, errs.Access otherwise),
// multicast and broadcast delivery to every matching PCB (a copy per extra receiver),
// IP_PKTINFO-style receive information and source/netif choice on send, TTL/TOS and the
// multicast TTL, loop and netif, ICMP port unreachable for datagrams nobody wants (never
// for broadcast or multicast), ICMP errors reported to connected PCBs, IPv4-mapped IPv6
// addresses on dual-stack PCBs, and errs.Mem when the egress link's queue is full (sends
// use ip.OutputOptions.FailIfFull, as esp-lwip's UDP reports ERR_MEM).
//
// Offloads. SetSegmentSize is Linux's UDP_SEGMENT (UDP GSO; SendToFromSeg its control
// message): a send of more than the segment size becomes one packet, one UDP header in
// front of the whole payload, marked pbuf.GSOUDPL4 with its checksum partial, that a link
// offering USO takes whole and ip cuts into datagrams for any other (ip/gso.go). Linux's
// rules: errs.MsgSize when a datagram would not fit the MTU, errs.Val past MaxSegments
// (Linux's UDP_MAX_SEGMENTS, 128) or with SO_NO_CHECK on IPv4, an ordinary datagram
// when the payload fits one segment, and a send that would need more frames than the
// link's queue holds fails whole with errs.Mem. Sends to this host, multicast and
// broadcast are cut here, datagram by datagram (ip delivers looped packets as they are).
// Where the route's link completes checksums (ip.Layer.GSO's CsumPartial), an ordinary
// unicast datagram that leaves unfragmented carries a partial checksum too. On input, a
// packet the link coalesced (GSOUDPL4: USO from a local peer, UDP GRO) is delivered as
// its datagrams, zero-copy views of it, as Linux does for a socket without UDP_GRO.
//
// Demultiplexing never grows: bound PCBs hang in a fixed array of buckets indexed by local
// port (TableDecls), chained through the PCB. A datagram goes to the connected PCB whose
// 4-tuple matches, else to the PCB bound to its destination address, else to a wildcard.
//
// Interception (TUN proxies): a datagram a netif intercepted (ip.Header.Intercepted: its
// destination is not this stack's) goes only to the PCB given to SetIntercept, never to an
// ordinary PCB, with RecvInfo.Dst/DstPort the destination and RecvInfo.Intercepted set;
// without one it gets a port unreachable. That PCB answers with SendFrom, from any address
// and port (no locality check, no bind), as lwIP forks' udp_sendfrom.
//
// Dual stack: a PCB bound to "::" (or to nothing) hears IPv4 too unless SetV6Only. A PCB
// bound or connected with an IPv6 address ("::", or an IPv4-mapped one) is an IPv6 socket:
// the IPv4 addresses it reports (LocalAddr, RemoteAddr, RecvInfo) are IPv4-mapped, as a
// Linux AF_INET6 socket reports them. Internally addresses are kept unmapped.
//
// Counters (stats.Snapshot.UDP): Recv every datagram in, Xmit every datagram handed to ip
// (each datagram of a GSO or coalesced packet counts); every drop counts Drop and one
// reason: Lenerr (truncated, bad Length, a segment past the MTU), Chkerr (bad or, on IPv6,
// missing checksum), Proterr (no PCB for the port), Memerr (no memory for a copy or a
// header, or the link queue full), Rterr (no route on send), Err (sends refused for other
// reasons, input after Close).
//
// Not implemented: UDP-Lite, jumbograms (RFC 2675: Length 0 is dropped), UDP_GRO (a
// socket receiving coalesced datagrams whole), IP_RECVERR-style error queues (errors reach connected PCBs' ErrFunc only, and only port
// and protocol unreachable, net and host unreachable, administratively prohibited and
// packet too big; time exceeded and parameter problems are ignored).
//
// Layer: transport. Imports the base packages (opt, stats, clock, errs), wire, memp, pbuf
// and ip.
//
// Concurrency: none. A Proto and its PCBs run in the stack's core context (the core lock
// held, or inside a callback the stack runs); every exported function must be called there,
// and checks it (ip.Layer.AssertCore) in builds with the wispcheck tag, as the tests run.
// Callbacks run in core context too and may use the PCB (send, close) directly. No goroutine
// is started and the wall clock is never read.
package udp

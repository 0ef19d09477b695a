// Package raw is wisp's raw IP API (lwIP raw.c) and ICMP echo sockets (Linux's
// SOCK_DGRAM/IPPROTO_ICMP "ping" sockets, wireguard-go's netstack PingConn): PCBs from a
// fixed pool, callbacks in core context.
//
// Ping PCBs (NewPing) send whole ICMP or ICMPv6 echo requests: the stack writes the PCB's
// identifier and the checksum (ICMPv6's over the pseudo-header, RFC 4443 §2.3), so the
// identifier plays the role of a port, unique per family. Echo replies carrying it (and,
// when connected, from the peer; when bound, to the local address) are eaten: the PCB gets
// the whole reply message and nothing else sees it. Echo requests still reach ip, which
// answers them. They are the stack's only way to ping: the CLI and the demo use them too
// (through endpoint's PingConn).
//
// Raw PCBs (NewRaw) send protocol payloads (ip adds the IP header) and receive a copy of
// every packet of their protocol addressed to the stack, starting at the transport header.
// For protocols the stack implements (ICMP, IGMP, TCP, UDP, ICMPv6) the packet then goes on
// to them; for any other protocol a packet that a raw PCB received is eaten, so ip sends no
// protocol unreachable (as Linux). IPv6 raw PCBs of ICMPv6 always have the checksum computed
// on send and verified on receive (RFC 3542 §3.1); SetChecksumOffset (IPV6_CHECKSUM) does the
// same for other IPv6 protocols. IPv4 raw PCBs send what they are given (ICMP checksums
// included).
//
// Sends use ip.OutputOptions.FailIfFull: a full link queue is errs.Mem.
//
// Not implemented: IP_HDRINCL (the IP header is always built by ip), ICMP filters
// (ICMP_FILTER, ICMP6_FILTER), reassembled packets on raw PCBs (ip does not offer them),
// counters (stats has no RAW record).
//
// Layer: transport. Imports the base packages (opt, stats, errs), wire, memp, pbuf and ip.
//
// Concurrency: none. A Proto and its PCBs run in the stack's core context; every exported
// function must be called there (each checks it with ip.Layer.AssertCore in builds with the
// wispcheck tag), and callbacks run there. No goroutine is started.
package raw

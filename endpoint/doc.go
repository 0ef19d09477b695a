// Package endpoint is wisp's socket layer: package net's API on a wisp stack. A Net made
// from a *stack.Stack has Dial, DialContext, Listen and ListenPacket with net's
// signatures, DialTCP / ListenTCP / DialUDP / ListenUDP / DialIP / ListenIP with
// *net.TCPAddr, *net.UDPAddr and *net.IPAddr, their netip.AddrPort variants and ping
// sockets named as in wireguard-go's tun/netstack. The types it returns implement
// net.Conn, net.Listener and net.PacketConn, so net/http, crypto/tls and io.Copy run over
// wisp unchanged:
//
//	n := endpoint.New(s)
//	l, _ := n.Listen("tcp", ":80")
//	http.Serve(l, handler)
//
// Networks: "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6", "ping4", "ping6",
// "ip4:icmp" / "ip6:ipv6-icmp" (ICMP echo sockets, like Linux's unprivileged ping
// sockets), and "ip4:proto" / "ip6:proto" / "ip:proto" for any other IP protocol, by
// number or by the names package net knows without /etc/protocols (an *IPConn: a raw
// socket, like net.IPConn). Through Dial and ListenPacket, ICMP and ICMPv6 keep naming ping
// sockets, as they always have in wisp (package net would open raw ones); DialIP and
// ListenIP open raw sockets for them too. Raw sockets send protocol payloads and read
// packets from the transport header on, in both families: unlike Linux's AF_INET raw
// sockets, whose read(2) and recvmsg(2) (package net's Read and ReadMsgIP) include the
// IPv4 header, wisp never returns it (see IPConn). Protocol 0, IPPROTO_RAW (255: no
// IP_HDRINCL), the IPv6 extension headers and Unix sockets fail with EPROTONOSUPPORT.
// Addresses are IP literals; "localhost" names the stack's loopback addresses when it has
// them. Dial resolves other names through the stack's resolver (Net.LookupHost and
// LookupNetIP: package apps/dns, lwIP's dns.c, with its servers, retries and one table);
// Listen and ListenPacket take literals only (other names fail with a *net.DNSError). A "tcp" or "udp"
// socket on a wildcard address is dual-stack: it accepts IPv4 and reports IPv4 peers
// v4-mapped (::ffff:198.18.0.1), as Go does on a kernel dual-stack socket.
//
// Options before bind: package net sets them through the syscall.RawConn that
// ListenConfig.Control and Dialer.Control receive, which a userspace stack cannot give.
// ListenConfig has ReuseAddr (SO_REUSEADDR) and V6Only (IPV6_V6ONLY) fields and Dialer a
// ReuseAddr field instead, applied to TCP and UDP sockets before they bind. Once a socket
// is bound (when Dial, Listen or ListenPacket return), SetsockoptInt of SO_REUSEADDR or
// IPV6_V6ONLY fails with EINVAL. Dialer and ListenConfig have an MSS field too: TCP_MAXSEG
// set before connect or listen, so that the SYN (or SYN-ACK) announces it.
//
// Errors are what package net returns, with errnos where a kernel would give them: every
// error is a *net.OpError (Op "dial", "listen", "accept", "read", "write", "close", "set"
// or "get") whose Err is a syscall.Errno mapped once from the core's errs sentinel (so
// errors.Is(err, syscall.ECONNREFUSED) holds), except io.EOF, returned bare as net does;
// os.ErrDeadlineExceeded when a deadline passes (Timeout() true); net.ErrClosed after
// Close; a context's end in DialContext (errors.Is context.Canceled or
// context.DeadlineExceeded, with net's texts); and *net.AddrError / *net.DNSError /
// net.UnknownNetworkError for bad arguments. Before connecting, Dial checks the route as
// connect(2) does: ENETUNREACH without one, ENETDOWN when its netif is down. UDP sends
// never block for room: a full link queue fails with ENOMEM, as lwIP documents. A TCP
// write after CloseWrite fails with EPIPE, as on Linux (lwIP says ENOTCONN).
//
// connect(2)'s EINPROGRESS and EALREADY have no place in a blocking API; StartDialTCP is
// the non-blocking connect that returns them (see its documentation).
//
// Socket options are typed methods (SetNoDelay, SetKeepAliveConfig, SetLinger, SetMSS,
// SetUserTimeout, SetCork, SetNotSentLowat, SetBroadcast, JoinGroup, ...) and
// GetsockoptInt / SetsockoptInt by level and name with golang.org/x/sys/unix constants
// (see sockopt.go for the list and units): lwIP's options, and Linux's TCP_MAXSEG,
// TCP_USER_TIMEOUT, TCP_CORK and TCP_NOTSENT_LOWAT. Unknown ones fail with ENOPROTOOPT.
// Each socket type has one option table (optTable) that both directions and the typed
// setters go through; the values live on the PCB, read and set through netconn, and the
// socket keeps only what the PCB does not hold (SO_RCVTIMEO / SO_SNDTIMEO, IP_PKTINFO).
//
// Concurrency: every exported method of every type is safe for concurrent use. Close from
// any goroutine unblocks every Read, Write and Accept in progress on that socket (they
// return net.ErrClosed). No method may be called from the stack's core context (a raw-API
// callback), which would deadlock.
//
// Layer: endpoint (imports endpoint/netconn, stack, ip, transport, opt, errs and
// golang.org/x/sys/unix). It does not own the stack: closing the stack closes what
// sockets are left.
package endpoint

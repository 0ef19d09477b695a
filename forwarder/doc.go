// Package forwarder is wisp as the engine of a TUN proxy (tun2socks, sing-tun, Xray): it
// catches every TCP connection, UDP flow and ICMP echo a device sends to any address
// through a netif that intercepts (stack.NetifConfig.Intercept) and hands each to the
// host's code as a net.Conn, a net.PacketConn or an echo request, answering from the
// address the device sent to.
//
//   - TCP: an intercepted SYN opens a TCPRequest, given to TCPConfig.Handler on a new
//     goroutine. Early (the default) the handshake has already run, as tun2socks; deferred
//     (TCPConfig.Deferred) the SYN waits, unanswered, until the host dials upstream and calls
//     Accept (then wisp completes the handshake) or Reject (RST, or silence), as sing-tun,
//     so a client never sees a phantom connection. Undecided requests (MaxPending) and live
//     flows (MaxFlows) are bounded: beyond, the SYN gets a RST and a counter moves, never a
//     silent drop. Accepted connections are *endpoint.TCPConn (half-close, keepalive on with
//     60/15/4 by default, linger, NoDelay).
//   - UDP: datagrams are grouped into sessions by the NAT mode (endpoint-independent, or
//     full cone, by default: one session per client address and port; address- or
//     address-and-port-dependent), each a net.PacketConn whose ReadFrom returns what the
//     client sent with the destination, and whose WriteTo answers the client from any
//     address. Each session has a bounded queue (drops counted) and an idle timeout on the
//     stack's clock; sessions are bounded (MaxSessions) and a session beyond, or a
//     rejected one, gets an ICMP port unreachable.
//   - ICMP and ICMPv6 echo to any address: answered in the core (EchoLocal), handed to the
//     host to answer after a real round trip (EchoHost), or dropped (EchoDrop), counted.
//
// The host sets interception on its netif(s) and routes 0.0.0.0/0 and ::/0 through them;
// New registers on every core (a TCP intercept listener per core, UDP and echo on core 0).
// Close undoes it; if the stack closes first, the forwarder lets go at once (sessions end
// and free their queues, a waiting Accept returns net.ErrClosed).
//
// Memory: everything per packet comes from the stack's pools. Undecided requests, live
// flows, sessions, each session's queue and the queues together (half the PBUF_POOL) are
// bounded; what is refused is answered (RST, port unreachable) or counted (Stats).
//
// Layer: forwarder, between endpoint and adapter. Imports endpoint, endpoint/netconn,
// stack, ip, transport/tcp, transport/udp, pbuf, errs, clock, ring and the standard
// library. No gVisor types: netip and net.Conn.
//
// Concurrency: every exported method is safe for concurrent use and must not be called
// from core context (a raw-API callback of the same stack), which would deadlock. Handlers
// run on their own goroutines. The core-context parts (the listeners' callbacks, the UDP
// receive callback, the echo hook, the timers) never block: they queue and wake.
package forwarder

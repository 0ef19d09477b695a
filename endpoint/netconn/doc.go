// Package netconn is wisp's sequential API, lwIP's netconn in Go: goroutine-safe TCP, UDP,
// ping and raw IP connections over the raw callback API of transport/tcp, transport/udp and
// transport/raw. The socket layer (package endpoint) wraps these in net.Conn,
// net.Listener and net.PacketConn and maps their errors to syscall.Errno.
//
// How it works: each connection registers callbacks on its PCB. They run in core context
// (the stack's core lock held) and never block: they append to the connection's mailbox
// (a ring of received pbuf chains, bounded by the TCP window, UDPRecvMboxSize or
// AcceptMboxSize) under a per-connection mutex and wake the waiting goroutine through a
// one-slot channel per direction. Blocking calls wait outside the core lock and re-check
// their conditions whenever they are woken: by data, by send space, by an error, by a
// deadline timer, by Close from another goroutine, or by the stack closing.
//
// A TCP reader never takes the core lock per Read: it copies from the queued chains under
// the connection's mutex and returns consumed bytes to TCP (tcp.PCB.Recved) in batches of a
// quarter window. A writer copies into TCP's send buffer in chunks under the core lock
// (tcp.WriteCopy), or references the caller's memory (WriteRef), and waits for the sent
// callback when the buffer is full. Neither allocates in steady state.
//
// Errors: the core's errs.* sentinels unchanged (the socket layer maps them), io.EOF after
// the peer's FIN, os.ErrDeadlineExceeded when a deadline passes, net.ErrClosed after Close
// (from any goroutine) and after the stack closes, ctx.Err() from DialTCP. Asynchronous
// errors (RST, keepalive or retransmission timeout, ICMP on a connected UDP socket) are kept
// for the next call and for Err (SO_ERROR).
//
// Stack close: every connection and listener is registered with its stack's registry;
// when the stack closes, each is told in core context, forgets its PCB (the stack frees
// them), frees its mailbox and wakes its waiters, which return net.ErrClosed. The registry
// learns of the close through Stack.OnClose, which runs before the protocols free their PCBs.
//
// Mailboxes: TCP queues the chains TCP delivers (TCP cannot be refused data, so the
// receive window is the byte bound; TCPRecvMboxSize bounds the ring's slots, and later
// chains are concatenated onto the last one). UDP, ping and raw sockets queue at most
// UDPRecvMboxSize datagrams (and SetReadBuffer bytes) and drop the rest, counted by Drops.
// A listener's mailbox holds at most AcceptMboxSize connections, counted against the
// backlog until accepted; beyond, new connections are reset and counted by Overflows.
//
// Interception: AdoptTCP wraps a PCB that an intercept listener accepted (package forwarder
// hands it to the host) exactly as Accept wraps a listener's, counted against
// MempNumNetconn the same way.
//
// Limits: the connections of one stack are bounded by Options.MempNumNetconn (errs.Mem
// beyond; a connection counts from creation until Close, an accepted one from the moment
// it enters the accept mailbox).
//
// Options live on the PCB: each setter sets the PCB's value under the core lock, and
// Sockopts reads them back from there (a TCP connection's, the values its PCB had last once
// it is gone). netconn keeps only what the PCB does not hold or report.
//
// Layer: endpoint (imports stack, ip, transport/tcp, transport/udp, transport/raw, ring,
// pbuf, errs). Concurrency: every exported method is safe for concurrent use, and must not
// be called from core context (a raw-API callback), which would deadlock.
package netconn

// Package tcp is wisp's TCP (RFC 9293) with lwIP's raw callback API: PCBs from fixed pools,
// pbuf chains in and out, callbacks in the core context, nothing allocated per segment.
//
// What it implements: the full state machine (active, passive and simultaneous open,
// half-close, simultaneous close, TIME-WAIT with 2·MSL and recycling of the oldest TIME-WAIT
// PCB when TCP_PCB runs out), RST rules of RFC 9293 §3.10.7 in every state, RFC 5961
// (challenge ACKs, rate limited stack-wide), options (MSS clamped to the route MTU, window
// scaling, timestamps with RTTM and PAWS — RFC 7323, SACK-permitted and SACK blocks —
// RFC 2018, generated and used), RTO per RFC 6298 with backoff and Karn's rule, fast
// retransmit and NewReno (RFC 5681, RFC 6582), SACK-based recovery with a scoreboard and
// pipe (RFC 6675), RACK-TLP (RFC 8985), F-RTO (RFC 5682, the SACK-enhanced variant as
// Linux runs it; frto.go), Eifel spurious-RTO undo with timestamps (RFC 3522),
// congestion control through package cc (CUBIC, RFC 9438, or NewReno), delayed ACKs, Nagle
// and TCP_NODELAY, one ACK per batch of in-order segments a link delivers together (at most
// eight full segments each; batch.go), SWS avoidance on both sides, persist timer and zero-window probes,
// keepalive, listen backlog with SYN cookies (RFC 4987) when it is full, RFC 6528 ISNs,
// RFC 6056 ephemeral ports, PMTU updates from ICMP (RFC 1191, RFC 8201), receive window
// autotuning bounded by the stack's free packet memory, send-buffer autotuning (towards
// twice cwnd, up to TCPMaxSndBuf, while the heap has room), and link back-pressure: a link
// whose queue is full (link.TxRoomer) makes TCP wait rather than drop, and one whose full
// queue is congestion (link.TxCongester) also reduces the window once per window of data.
// Interception for TUN proxies (intercept.go): one intercept listener per Proto takes the
// intercepted packets (ip.Header.Intercepted) that match no connection, answering from the
// address they were sent to, with the handshake at once or deferred until its host decides.
//
// Files by role: proto.go (Proto, demux tables), pcb.go (the PCB), listen.go and cookie.go
// (passive open), intercept.go (the intercept listener, undecided SYNs), input.go
// (validation and demux), states.go (the state machine), ack.go (acknowledgments, RTT,
// recovery, PRR), rtt.go (windowed minimum RTT), rack.go (SACK
// scoreboard, RACK-TLP), frto.go (spurious timeouts), recv.go (data reception, out-of-order queue, SACK generation),
// window.go (options, autotuning, the window advertised), batch.go (ACKs for a batch of
// segments), output.go (what to send: new data, retransmissions, the timers that follow),
// emit.go (building one segment), cold.go (parking an idle PCB's cold part), control.go
// (SYN, pure ACK, RST and challenge ACK senders), timers.go, ports.go, icmp.go, pcbapi.go
// (the raw API on a PCB) and types.go (its types).
//
// Memory: TCP_PCB (connections, TIME-WAIT included), TCP_PCB_LISTEN and TCP_SEG (one
// record per queued pbuf of send data, per segment in flight, per out-of-order segment) are
// memp pools created in New, TCP_PCB and TCP_SEG lazy (made as connections need them); the
// demux tables are fixed arrays. A PCB's cold part (cold.go: queues, recovery, the
// congestion controller) comes from a pool of its own, one per PCB slot and reserved in
// TCP_PCB's element size, and is given back while the connection is idle. Data written with
// WriteCopy lives in RAM pbufs from the stack's heap (errs.Mem when it is exhausted);
// segments are cut at output time as zero-copy views of that data behind a small header
// pbuf. Received data is the pbuf the link filled, delivered without copying.
//
// SACK fast recovery paces what it sends with Proportional Rate Reduction (RFC 6937,
// PRR-SSRB); RACK is the only loss detector with SACK, its reordering window grows with
// D-SACK rounds and uses a 10 s windowed minimum RTT (rtt.go). Beyond RFC 8985, a
// retransmission that RACK cannot judge (in recovery with nothing but retransmissions in
// flight) is deemed lost a probe timeout after it left instead of waiting for the RTO
// (rack.go lostRetxCheck).
//
// Not implemented (known gaps): pacing, ECN, TCP Fast Open, urgent data (URG is
// ignored and the data delivered inline, as RFC 6093 recommends), MD5/AO signatures. Zero
// window probes are Linux's (an ACK one below SND.UNA), not RFC 9293's one octet of data.
// TCPMSS caps the send MSS below what the route MTU allows (the tunnel preset sets 65495, so
// the route decides; the embedded preset keeps lwIP's 536). Links that do not report their
// queue (link.TxRoomer) still drop when it is full, and TCP recovers as from loss; pure ACKs
// and retransmissions are never held back. The SACK scoreboard is a list walked linearly
// (fine for thousands of segments in flight).
//
// Layer: transport. Imports the base packages (opt, stats, clock, errs), wire, memp, pbuf,
// ip and transport/tcp/cc, transport/tcp/secret.
//
// Concurrency: none. A Proto and everything it owns run in the stack's core context (the
// core lock held, or inside a callback or timer the stack runs); every exported function
// must be called there (each asserts it in builds with the wispcheck tag). Timers are
// clock.Timeouts embedded in the PCBs. Time has one source, Proto.now/nowNs: the clock of
// the Timers New was given (never the wall clock), read once per segment, batch or timer
// run and fresh otherwise, so work done outside input (a connect, a write, a timer) never
// runs on the time of the last segment received. The segment being processed is a
// parameter of the functions of the input path. No goroutine is ever started.
package tcp

// Package conformance is a test-only package: TCP conformance tests for transport/tcp, grouped
// by connection state and driven by crafted segments. The test plays the peer: it injects
// IPv4/IPv6 TCP segments built with wire's reprs into one ip.Layer (an iptest.Node) whose
// netif writes to a capture endpoint (linktest.Capture), and checks, segment by segment, what
// the stack under test sends back, on a fake clock (RFC 9293, RFC 5961, RFC 7323, RFC 2018,
// RFC 6675, RFC 6298, RFC 8985, RFC 4987).
//
// Files: harness_test.go (the stack under test and the end-of-test checks: Proto.Close, pools
// and heap back to zero, no timer, no goroutine, lwIP counters consistent), segment_test.go
// (the peer's segments, the stack's segments parsed back), invariants_test.go (rules checked
// on every segment the stack sends), conn_test.go (handshakes, callbacks recorded), then one
// file per state group: listen, synsent, synrcvd, established, rfc5961, flow, recovery,
// congestion, window, close, timewait, nopcb, invalid, icmp, robust, api, bulk, chaos.
// TCPTRACE=1 go test -v -run X logs every segment in both directions.
//
// Layer: test only (transport). The package has no non-test code besides this file; its
// _test.go files import ip, ip/iptest, link/linktest, transport/tcp, wire, pbuf, clock, opt,
// stats and errs.
//
// Concurrency: every test is one goroutine, and it runs in core context: it holds the
// node's core lock (so its calls into TCP pass the core check of the wispcheck build) and
// lets go of it only while the fake clock advances, for the timers that run inside Advance
// to take it. Releasing it flushes the IP layer, as the stack's core lock does, so frames
// sent from timers are stamped with the time they were sent.
package conformance

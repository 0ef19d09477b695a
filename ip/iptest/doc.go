// Package iptest is test support below stack: IP layers with their own pools, timers and
// core lock (Node), two of them joined by a synchronous pipe on a fake clock (Pair), and IP
// packets to inject (Packet); the link that records what a Node writes is linktest.Capture.
// It serves the internal tests of the transports, which cannot import stack/stacktest
// (stack imports them), and the external tests of ip; ip's own internal tests cannot import
// it (it imports ip).
//
// Layer: ip (imports ip, link and its tests' helpers, pbuf, memp, clock, opt, wire; never
// stack or a transport). For tests only. Like the core, nothing here is safe for concurrent
// use except what a Node's core lock guards.
package iptest

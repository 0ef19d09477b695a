// Package tcpapp holds small applications written on wisp's raw TCP API, shared by the
// `wisp serve` command, the kernel integration tests, the gVisor interop tests and the
// benchmarks:
//
//   - Echo and Discard: the classic servers (RFC 862, RFC 863) on raw callbacks.
//   - Serve (Sink, Source): a server whose every connection sends n bytes of a seeded
//     pattern and checksums what arrives, for byte-exact transfer tests.
//   - Send and Recv: the client side of the same transfers.
//
// The pattern (FillPattern, NewPattern, PatternSum) is a pure function of a seed and a byte
// offset, so a peer outside wisp (a kernel socket in a test) produces and checks the same
// stream.
//
// Layer: internal (imports stack, transport/tcp, pbuf, errs). Concurrency: the exported
// functions and methods are safe for concurrent use and must not be called from core
// context (they take the core lock through stack.Callback); the callbacks they install run
// in core context and never block: they report to other goroutines by closing channels.
package tcpapp

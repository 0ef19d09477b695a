// Package linktest holds helpers for testing links and the layers above them: a Dispatcher
// that allocates receive buffers from a *pbuf.Allocator and collects what is delivered, an
// endpoint that records what is written to it (Capture, optionally stamped with a clock), a
// small allocator for tests, and leak checks (pools and heap back to zero, no goroutine left).
//
// Layer: link (imports link, pbuf, memp, clock, and the standard testing package). It is meant for
// _test.go files, but other packages' tests may import it. Dispatcher is safe for concurrent
// use.
package linktest

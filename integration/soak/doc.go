// Command soak runs two wisp stacks against each other for a long time under mixed,
// concurrent load and checks that nothing is lost, nothing hangs, other traffic keeps
// moving while some readers stall, and everything returns to idle at the end:
//
//	go run ./integration/soak -d 1h
//	go run ./integration/soak -d 90s -seed 7 -conns 64 -stalled 6 -loss 0.02 -v
//
// It needs no root and no kernel networking: stacks A (198.18.0.1, fd42:5eed::1) and B
// (198.18.0.2, fd42:5eed::2) are joined by an in-memory Ethernet pipe (link/pipe) whose A end
// is wrapped in seeded impairment (link/impair: loss, reordering, a little duplication and
// corruption, delay) in both directions. The stacks use the tunnel preset with packet memory
// cut down so that pressure is real (see soakOptions).
//
// The load, all through package endpoint's net.Conn / net.PacketConn sockets, both ways and
// over both families:
//
//   - churn: -conns workers dial, send a request of random size, read a response of random
//     size, and close (three closing orders: server first, client first, client half-close
//     first); every byte of both directions is checked against a seeded pattern;
//   - bulk: -bulk long streams, each checked byte for byte and by total at the end;
//   - stalled: -stalled streams whose reader stops reading for seconds at a time, or for
//     good until the end (then one kind drains and checks, the other closes with data
//     unread, which resets), while the writer keeps writing;
//   - udp: -udp request/response clients against an echo server on each stack; payloads are
//     checked, losses are compared with what the impairment explains.
//
// Every read, write and dial has a deadline. Every 5 s window the churn, bulk and UDP
// traffic must each have moved; a window where one did not is a failure and prints both
// stacks' counters. At the end the load stops, every socket closes, and the run checks that
// both stacks' pools and heap return to their idle use, that the goroutines return to their
// starting count, and that the Go heap after a GC is within 8 MiB of its idle size. The exit
// status is 0 only if every check held.
//
// Layer: integration (imports anything below it). The logic is in run, which soak_test.go
// also calls for a short run under go test.
package main

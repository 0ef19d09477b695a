// Command bench runs wisp side by side with gVisor netstack (as wireguard-go configures it,
// and tuned the way the issue describes Tailscale's tuning) and, as root, the Linux kernel
// between two network namespaces, and prints one table of every scenario with the ratios
// wisp/netstack. See README.md for what each scenario measures and RESULTS.md for the last
// full run. The WireGuard scenarios (wg/*, wg-udp/*) put two wireguard-go devices in the
// path, one over wisp's adapter/wireguard and one over wireguard-go's tun/netstack per
// engine, joined by conn/bindtest's channel binds or, as root, real UDP inside a namespace.
// The TUN scenarios (tun/*, root) put the kernel's TCP behind a kernel TUN in a namespace as
// the peer of one stack per engine, with and without offloads (a virtio-net header, GSO).
//
// Layer: bench (imports every wisp package, gVisor and wireguard-go's pins, x/sys/unix).
//
// Concurrency: each engine runs in a network of its own (two stacks joined by the shared
// link, two namespaces for the kernel, or one stack and the kernel across a TUN), opened and
// closed around every run. The wisp
// driver (wispconn.go) calls the raw TCP API only in core context (Stack.Callback or a TCP
// callback) and hands data to the benchmark goroutines through mutex-guarded queues and a
// sync.Cond; wisp's UDP, gVisor and the kernel are used through their net.Conn and
// net.PacketConn APIs (wisp's through package endpoint). In the WireGuard scenarios
// wireguard-go's goroutines move the packets and both stacks are used through their Net's
// sockets.
package main

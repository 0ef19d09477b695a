// Package wireguard runs wisp under wireguard-go: a drop-in for
// golang.zx2c4.com/wireguard/tun/netstack. A program written for netstack changes only its
// import line,
//
//	import netstack "github.com/wispstack/wisp/adapter/wireguard"
//
//	tun, tnet, err := netstack.CreateNetTUN(addrs, dnsServers, 1420)
//	dev := device.NewDevice(tun, conn.NewDefaultBind(), logger)
//	l, err := tnet.ListenTCP(&net.TCPAddr{Port: 80})
//
// and gets wisp's stack: a fixed memory budget (Net.Budget), counters (Net.Stats), and a
// tun.Device that moves packets in batches (BatchSize > 1) with no allocation and no
// channel operation per packet. Net has every method of netstack's Net with the same
// parameter types; where netstack returns gonet's TCPConn, TCPListener and UDPConn, Net
// returns endpoint's, which have their methods. Host names given to Dial and LookupHost
// are resolved over the tunnel by the stack's resolver (apps/dns: its table caches for the
// TTL) through endpoint/dns's front (package net's errors, TCP on truncation).
// CreateNetTUNWithOptions takes wisp's Options (stack sizing, clock, batch and queue,
// offloads).
//
// CreateNetTUN sizes the stack with opt.Client: tens of connections and a multi-gigabit
// stream in about 6 MiB of reserved packet memory, which costs the process only what
// traffic touches (pool elements are made as they are first used, packet memory is mapped
// outside the Go heap). Its receive window stops at 256 KiB, which keeps wireguard-go's
// 64 KiB-per-packet buffers few on a local link; downloads over long paths want a larger
// TCPMaxWnd, and a server or a relay of thousands of connections opt.Tunnel(), passed in
// Options.Stack.
//
// The device's packet mechanics are link/packet's (a Link, whose Read and Write already
// have tun.Device's batch shape); Device adds the rest of tun.Device (Name, Events, File)
// and closes the stack with itself. Offloads are on unless Options.NoOffload: the stack
// hands the device TCP segments of up to 64 KiB with one header and leaves checksums
// partial, and Read cuts each segment into MTU-sized packets straight into wireguard-go's
// buffers, completing their checksums in the same pass; Write hands each batch wireguard-go
// decrypted to the stack in one call, where GRO may coalesce it.
//
// Layer: adapter (imports endpoint, endpoint/dns, stack, link, link/packet, opt, clock,
// stats and golang.zx2c4.com/wireguard/tun). It is the only wisp package that
// imports wireguard-go, besides bench and tests. Concurrency: Device and Net are safe for
// concurrent use; closing the Device closes the stack and every socket on it, and leaves
// no goroutine behind.
package wireguard

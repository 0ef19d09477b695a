// Package gvisor joins wisp and gVisor's netstack at the link layer, in both directions:
//
//   - NewLink drives wisp from any gVisor stack.LinkEndpoint (fdbased, channel, xdp, a TUN,
//     sharedmem ...): the returned *Link is a wisp link.Endpoint, and the gVisor endpoint's
//     NetworkDispatcher is the adapter, which copies each inbound PacketBuffer into a pbuf
//     from wisp's Dispatcher.AllocRx and turns each outbound pbuf chain into a PacketBuffer.
//   - NewEndpoint does the reverse: any wisp link.Endpoint (link/pipe, link/tun, link/impair
//     ...) becomes a gVisor stack.LinkEndpoint that a gVisor stack can put a NIC on. Frames
//     from the wisp link become PacketBuffers delivered to gVisor; gVisor's outbound packets
//     are copied into pbufs from the pbuf.Allocator the caller gives.
//   - NewStack, NewTCPForwarder and NewUDPForwarder (forwarder*.go) are gVisor's tcp and udp
//     forwarders over package forwarder, for TUN proxies written against gVisor (tun2socks's
//     core/): requests with ID, CreateEndpoint and Complete, whose TCPEndpoint and
//     UDPEndpoint gVisor's adapters/gonet drives. tun2socks's core/tcp.go and core/udp.go
//     change in 5 lines (the stack type and the two constructors' package).
//
// With both, link/pipe is a wire with wisp on one end and gVisor on the other:
//
//	wisp Stack ──▶ [impair] ──▶ pipe End a ═══ pipe End b ──▶ NewEndpoint ──▶ gVisor NIC
//
// Copies: gVisor keeps packet bytes in its own reference-counted chunks and cannot point
// into memory it does not own, and a pbuf cannot point into a chunk that gVisor may recycle,
// so each crossing copies the frame once. Nothing else is allocated per packet on the wisp
// side: batches, scratch slices and PacketBufferLists are reused. gVisor itself takes its
// PacketBuffer, View and chunk from sync.Pools, so the steady state allocates nothing either;
// those pools refill (allocate) after a garbage collection empties them.
//
// Media: a gVisor endpoint whose ARPHardwareType is Ethernet or whose link address is 6
// bytes is driven as link.MediumEthernet (wisp writes whole Ethernet frames, the adapter
// pushes the 14-byte header as the packet's link header); otherwise as link.MediumIP.
// NewEndpoint reports Ethernet (ARPHardwareEther, CapabilityResolutionRequired, a 14-byte
// link header) for a wisp link of MediumEthernet, and a bare IP link otherwise.
//
// Offloads (offload.go): a gVisor endpoint with host GSO (stack.HostGSOSupported: fdbased
// on a socket with a virtio-net header) makes the Link a link.Offloader with checksum
// offload and TSO; wisp's GSO packets and partial checksums become GSOOptions as gVisor's
// own TCP fills them, and RXChecksumValidated or GSOOptions on a received packet become
// FlagChecksumOK, FlagChecksumPartial and pbuf.SetGSO. The other way, a wisp link with TSO
// for both IP versions makes the Endpoint offer host GSO to gVisor, whose GSO packets become
// wisp GSO packets; partial checksums the wisp link delivers are completed for gVisor, whose
// NIC checks every checksum of an endpoint without CapabilityRXChecksumOffload. Endpoints
// and links without offloads move exactly the frames they did.
//
// Layer: adapter (imports link, pbuf, wire, errs, stack, endpoint, forwarder, transport/tcp,
// x/sys/unix and gVisor's buffer, tcpip, tcpip/header, tcpip/stack and waiter packages; it is
// the only wisp package that imports gVisor outside tests).
//
// Concurrency: TCPEndpoint and UDPEndpoint start one reader goroutine each (it waits for
// data and signals gVisor's waiter queue); Close stops it and waits for it. Link and
// Endpoint are safe for concurrent use. Neither starts a goroutine:
// deliveries run in the goroutine of the link that receives (a gVisor dispatch loop, a pipe
// delivery goroutine), and writes in the caller's. Close stops deliveries and waits for the
// one in progress, so it must not be called from inside a delivery (gVisor's stack.Wait and
// wisp's Stack.Close call it outside every lock, as required). A gVisor endpoint that
// delivers synchronously from inside WritePackets (gVisor's link/loopback and link/pipe do)
// cannot be given to NewLink: wisp writes with its core lock held, and the synchronous
// delivery would wait for that lock.
package gvisor

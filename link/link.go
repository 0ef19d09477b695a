// Package link defines wisp's link interface, batch-first: frames go out in batches through
// WritePackets and come in in batches through a Dispatcher. Sub-packages implement links
// (pipe, loopback, tun, impair, pcap) and Ethernet framing with ARP (link/ethernet).
//
// Layer: link (imports wire, memp, pbuf, stats, errs, clock, opt). Endpoints are safe for
// concurrent use unless their doc says otherwise: WritePackets may be called from the stack
// core while the link's own goroutine delivers received frames.
package link

import (
	"net/netip"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
)

// Medium is what a link's frames carry.
type Medium uint8

const (
	// MediumIP frames are bare IPv4/IPv6 packets (a TUN device, a WireGuard tunnel).
	MediumIP Medium = iota + 1
	// MediumEthernet frames start with a 14-byte Ethernet header.
	MediumEthernet
)

func (m Medium) String() string {
	switch m {
	case MediumIP:
		return "ip"
	case MediumEthernet:
		return "ethernet"
	}
	return "unknown"
}

// HeaderLen returns the link header length of a medium.
func (m Medium) HeaderLen() int {
	if m == MediumEthernet {
		return 14
	}
	return 0
}

// Endpoint is one link. It never allocates per frame and never blocks the caller of
// WritePackets for long: a full transmit queue drops and reports it.
type Endpoint interface {
	// Medium reports the framing.
	Medium() Medium
	// MTU is the largest IP packet a frame carries (the link header not counted).
	MTU() int
	// HardwareAddr is the link-layer address (Ethernet), zero for MediumIP.
	HardwareAddr() [6]byte
	// Attach sets the dispatcher that receives frames; nil detaches. A link delivers
	// nothing before Attach. Attach must not wait for a delivery in progress: the stack
	// calls it with its core lock held, which that delivery may be waiting for. A delivery
	// that raced with a detach may still reach the old dispatcher, which drops it.
	Attach(d Dispatcher)
	// WritePackets sends a batch of frames. It takes ownership of every pbuf in pkts,
	// whatever it returns; the slice itself is borrowed. It returns how many frames were
	// accepted; the rest were dropped, and err says why (errs.WouldBlock: queue full,
	// errs.Clsd: link closed, errs.Val: frame larger than the MTU).
	WritePackets(pkts []*pbuf.Pbuf) (int, error)
	// Close stops the link's goroutines, frees every frame it still holds and makes later
	// writes fail with errs.Clsd. It waits until no delivery is in progress.
	Close() error
}

// TxRoomer is implemented by links whose transmit queue can fill. TxRoom reports how many
// frames WritePackets would accept now, counting a GSO packet as the packets it becomes
// on the wire (a link that queues GSO packets whole may count either: TCP assumes the
// former, and a queue counted in frames then only holds less than it could); it is a hint (a concurrent delivery may free room),
// so a caller that sees room may still be refused. Wrappers report their inner link's room,
// or a large number when it does not say. The stack uses it to fail a datagram send with
// errs.Mem (ENOMEM) instead of dropping the datagram silently at the next flush, and TCP
// to wait for room instead of overflowing the queue (as Linux's TCP Small Queues).
type TxRoomer interface {
	TxRoom() int
}

// TxCongester is implemented by a link whose full transmit queue means the path behind it
// is congested, not just that a burst arrived: a WireGuard device, whose queue fills only
// once wireguard-go's own queues are full. TCP then also reduces its window once per
// window of data, as for an ECN echo (RFC 3168), so that it does not keep them full.
type TxCongester interface {
	TxRoomer
	TxFullIsCongestion() bool
}

// Offloads is what a link does for the stack with large segments and checksums. The zero
// value is a link without offloads: every frame it is given fits the MTU and has its
// checksums complete.
type Offloads struct {
	// TxChecksum: the link completes a transport checksum left partial
	// (pbuf.FlagChecksumPartial) by itself or by the next hop (a virtio-net header's
	// NEEDS_CSUM). Without it the stack completes the checksum before handing the frame over.
	TxChecksum bool
	// TSO4, TSO6, USO: the link segments a GSO packet of that type (pbuf.GSOTCPv4,
	// pbuf.GSOTCPv6, pbuf.GSOUDPL4) itself; the others the stack cuts in software just
	// before the link (GSO).
	TSO4, TSO6, USO bool
	// GSOMax is the largest GSO packet, IP header included, the stack builds for the link;
	// 0 disables GSO altogether (TCP then sends MTU-sized segments, as without offloads).
	// At most 65535. With GSOMax set and no TSO, the link only saves the stack the work
	// per segment above the cut: TCP, routing and IP header building run once per 64 KiB.
	GSOMax int
}

// Offloader is implemented by a link that offers offloads. A link that does not implement
// it gets exactly the frames it got before offloads existed. Received frames need no
// declaration: a link may deliver a coalesced segment (pbuf.SetGSO with the size of the
// segments it was made of), and marks it pbuf.FlagChecksumOK when the checksums were
// verified (or the sender left them partial, as a local kernel does).
type Offloader interface {
	Offloads() Offloads
}

// Dispatcher receives frames from a link; the stack implements it.
type Dispatcher interface {
	// AllocRx returns a POOL chain of n bytes to receive one frame into, or nil when the pool
	// is exhausted (the dispatcher counts it; the link drops the frame). The link owns the
	// chain until it passes it to DeliverPackets or frees it.
	AllocRx(n int) *pbuf.Pbuf
	// DeliverPackets hands received frames to the stack. It takes ownership of every pbuf in
	// pkts; the slice is borrowed. Safe for concurrent use; it takes the stack's core lock.
	DeliverPackets(pkts []*pbuf.Pbuf)
}

// MaxBatch is the batch size links use when they have no reason to choose another.
const MaxBatch = 64

// MultiQueue is implemented by a link with several transmit queues that can be written in
// parallel (AF_XDP sockets, one per NIC queue). A stack with several cores has core k write
// to queue k mod TxQueues(), so cores do not share a lock on the way out; a stack with one
// core uses WritePackets.
type MultiQueue interface {
	// TxQueues is the number of transmit queues, at least 1.
	TxQueues() int
	// WriteQueue is WritePackets on queue q (0 ≤ q < TxQueues()), with the same ownership:
	// it takes every pbuf in pkts. Writes to different queues may run in parallel; writes to
	// one queue must not overlap (the caller serializes them), nor overlap WritePackets
	// when q is the queue WritePackets uses.
	WriteQueue(q int, pkts []*pbuf.Pbuf) (int, error)
	// QueueRoom is TxRoom for queue q.
	QueueRoom(q int) int
}

// AddrFilter is implemented by a link that receives only the traffic of the stack's own
// addresses out of a medium the host shares (an AF_XDP socket, whose XDP program passes the
// rest to the kernel). The stack calls SetAddrs with every address of the netif (IPv4 and
// IPv6, link-local included) whenever they change, with a core lock held: it must not block
// for long and must not call back into the stack.
type AddrFilter interface {
	SetAddrs(addrs []netip.Addr) error
}

// DeviceStater is implemented by a link whose device keeps counters of its own, per queue
// (ring drops, kicks); the stack reports them in its stats Snapshot.
type DeviceStater interface {
	// DeviceStats appends one record per queue to dst and returns it.
	DeviceStats(dst []stats.Queue) []stats.Queue
}

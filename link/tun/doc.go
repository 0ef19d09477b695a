// Package tun is a Linux TUN link (IFF_TUN|IFF_NO_PI): bare IPv4/IPv6 packets
// (link.MediumIP) exchanged with the kernel through /dev/net/tun, or with Config.TAP a TAP
// link (IFF_TAP|IFF_NO_PI): Ethernet frames (link.MediumEthernet), so that the stack runs
// ARP and NDP with the kernel, answers as a host of its own MAC address (Config.HardwareAddr,
// or a random locally administered unicast address, never the kernel interface's) and can
// sit on a bridge beside other hosts (a DHCP server, for one). The MTU is the IP packet's on
// both: a TAP's frames are 14 bytes longer.
//
// On a TAP everything below works the same, but for where the virtio-net header's offsets
// count from: the frame's start, the Ethernet header included (and its EtherType must say
// the IP version of the packet: a VLAN-tagged GSO frame is dropped as malformed). Checksum
// offload and TSO4/TSO6 both ways and multi-queue (the kernel spreads flows over the queues
// by hash) are tested on a TAP with a stack on it; USO is asked for the same way as on a
// TUN, where alone it is tested.
//
// Open gives one queue without offloads. OpenConfig can ask for offloads: a virtio-net
// header on every packet (IFF_VNET_HDR, wire.VirtioNetHdr, little-endian) with checksum
// offload and TSO over IPv4 and IPv6 (TUNSETOFFLOAD: TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6, and
// TUN_F_USO4|TUN_F_USO6 where the kernel has them, Linux 6.2). The kernel then hands over
// TCP segments (and UDP GSO packets) of up to 64 KiB, coalesced from its own sends, with
// their checksum left partial: they are delivered with pbuf.SetGSO and
// FlagChecksumOK (and FlagChecksumPartial), or FlagChecksumOK alone for DATA_VALID. A header
// that is malformed or does not match the packet it precedes is dropped and counted
// (OffloadStats), never trusted. The Device implements link.Offloader, so the stack hands it
// GSO packets (one TCP or UDP header, up to 64 KiB) that the kernel segments. A kernel that
// refuses the offload settings gets the plain path, with one log line.
//
// Each queue (IFF_MULTI_QUEUE when there are several) has its own fd and reader goroutine,
// which waits on the Go netpoller (the non-blocking fd wrapped in an os.File) and reads
// frames with one readv into a standing chain of POOL pbufs from the dispatcher's AllocRx:
// the packet takes the pbufs it filled and the next read tops the chain up with exactly
// those bytes, so a short packet costs one pbuf whatever the 64 KiB a read must offer; the
// chain is freed whenever the reader waits, so an idle device holds no pool memory. Up
// to link.MaxBatch frames go to one DeliverPackets while reads keep succeeding. Writes
// gather each frame's virtio-net header and pbuf payloads with one writev on the first
// queue's fd: no copy (but for a frame of more pbufs than one writev takes, copied once into
// the device's buffer). Neither path allocates per frame.
//
// Opening needs CAP_NET_ADMIN. The device is created in the network namespace of the
// calling OS thread.
//
// Layer: link (imports link, pbuf, wire, errs, golang.org/x/sys/unix). A Device is safe for
// concurrent use; writes are serialized by a mutex.
package tun

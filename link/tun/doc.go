// Package tun is a Linux TUN link (IFF_TUN|IFF_NO_PI): bare IPv4/IPv6 packets
// (link.MediumIP) exchanged with the kernel through /dev/net/tun.
//
// One reader goroutine waits on the Go netpoller (the non-blocking fd wrapped in an
// os.File) and reads frames straight into POOL chains from the dispatcher's AllocRx with
// readv over the chain's payload slices, delivering up to link.MaxBatch frames per
// DeliverPackets while reads keep succeeding. Writes gather each frame's pbuf payloads with
// writev: no copy.
//
// Opening needs CAP_NET_ADMIN. The device is created in the network namespace of the
// calling OS thread.
//
// Layer: link (imports link, pbuf, errs, golang.org/x/sys/unix). A Device is safe for
// concurrent use; writes are serialized by a mutex.
package tun

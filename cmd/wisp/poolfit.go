package main

import (
	"fmt"

	"github.com/wispstack/wisp/opt"
)

// offloadRead is what one read of a TUN/TAP device with offloads must have room for: a
// 64 KiB GSO packet and its headers (link/tun keeps a standing chain of POOL pbufs that
// long per queue).
const offloadRead = 65535 + 14

// offloadsFit reports whether o's PBUF_POOL holds a standing 64 KiB receive chain for
// every queue and as much again for the packets in flight; when it does not (the embedded
// preset: 16 pbufs of 592 bytes), every read finds the pool empty and every frame is
// dropped, so the device must be opened without offloads. why says so.
func offloadsFit(o opt.Options, queues int) (ok bool, why string) {
	pool := o.PbufPoolSize * o.PbufPoolBufSize
	if pool >= 2*queues*offloadRead {
		return true, ""
	}
	return false, fmt.Sprintf("PBUF_POOL (%d pbufs of %d bytes, %d bytes) cannot hold a 64 KiB offload read per queue and the packets in flight:"+
		" opening the device without offloads (as --no-offload), every packet within the MTU", o.PbufPoolSize, o.PbufPoolBufSize, pool)
}

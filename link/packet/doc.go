// Package packet is a link whose other side is the host program itself: it writes the IP
// packets it has (from a TUN device it reads itself, a tunnel it decrypts, a VM's network)
// and reads the packets the stack sends, in wireguard-go's tun.Device batch shape:
//
//	n, err := l.Read(bufs, sizes, offset)  // packets the stack sent, bufs[i][offset:offset+sizes[i]]
//	n, err := l.Write(bufs, offset)        // packets into the stack, bufs[i][offset:]
//
// so that code written for wireguard-go's tun.Device, or a sing-tun style packet loop, drives
// a wisp stack directly. Endpoint is the same link seen from the stack (stack.AddNetif takes
// it; MediumIP). adapter/wireguard's Device is a thin tun.Device over a Link.
//
// With Config.Offload the stack hands the link TCP segments of up to 64 KiB and partial
// checksums; Read cuts them into MTU-sized packets and completes the checksums as it copies
// (segment.go), so the host always reads ordinary packets.
//
// Layer: link (imports link, pbuf, ring, wire, errs). Concurrency: every method of Link and
// of its Endpoint is safe for concurrent use; concurrent Reads (and concurrent Writes) are
// serialized. Close unblocks Read (os.ErrClosed) and makes Write fail (os.ErrClosed).
package packet

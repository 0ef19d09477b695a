package ip

import "github.com/wispstack/wisp/pbuf"

// ChainChecksum is p.Checksum(off, n, initial), for callers not yet moved to it.
//
// Deprecated: use (*pbuf.Pbuf).Checksum.
func ChainChecksum(p *pbuf.Pbuf, off, n int, initial uint32) uint32 {
	return p.Checksum(off, n, initial)
}

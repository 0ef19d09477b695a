// Package loopback is a link whose written frames come back to its own dispatcher, as lwIP's
// loopback netif (netif_loop_output): bare IP packets (link.MediumIP), a bounded queue from
// link/internal/fifo, and a delivery goroutine that copies each frame into a POOL chain from
// the dispatcher's AllocRx and delivers it in batches. In sync mode there is no goroutine
// and Flush delivers.
//
// Layer: link (imports link, link/internal/fifo, pbuf). A Link is safe for concurrent use.
// Close must not be called from inside DeliverPackets.
package loopback

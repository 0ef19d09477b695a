package tcp

import "github.com/wispstack/wisp/pbuf"

// What a connection holds, for the live view (Proto.Conns) and the doctor: byte totals
// derived from the sequence numbers, and the packet memory of its queues.

// rcvAdvance moves RCV.NXT by n, counting a trip round the sequence space.
func (c *PCB) rcvAdvance(n int) {
	old := c.rcvNxt - c.irs
	c.rcvNxt += uint32(n)
	if c.rcvNxt-c.irs < old {
		c.rcvWraps++
	}
}

// bytesAcked is the data the peer has acknowledged: SND.UNA's distance from the ISS, less
// the SYN and (once acknowledged) the FIN.
func (c *PCB) bytesAcked() uint64 {
	n := uint64(c.ackWraps)<<32 | uint64(c.sndUna-c.iss)
	if n == 0 {
		return 0 // SYN not acknowledged
	}
	n-- // the SYN
	if c.flags&fFinQueued != 0 && seqGT(c.sndUna, c.sndEnd) {
		n-- // the FIN
	}
	return n
}

// bytesReceived is the data received in order: RCV.NXT's distance from the IRS, less the
// SYN and the FIN.
func (c *PCB) bytesReceived() uint64 {
	n := uint64(c.rcvWraps)<<32 | uint64(c.rcvNxt-c.irs)
	if n == 0 {
		return 0 // no SYN yet
	}
	n--
	if c.flags&fFinRcvd != 0 {
		n--
	}
	return n
}

// memHeld walks the send and out-of-order queues: POOL pbufs, heap bytes of RAM pbufs,
// and the bytes waiting out of order. A parked connection holds none.
func (c *PCB) memHeld() (pbufs, heap, ooBytes int) {
	if c.pcbCold == nil {
		return 0, 0, 0
	}
	for s := c.sndq.head; s != nil; s = s.next {
		pbufs, heap = addHeld(s.p, pbufs, heap)
	}
	for s := c.ooseq.head; s != nil; s = s.next {
		pbufs, heap = addHeld(s.p, pbufs, heap)
		ooBytes += int(s.len)
		if s.flags&sFIN != 0 {
			ooBytes--
		}
	}
	return pbufs, heap, ooBytes
}

// addHeld adds chain p's POOL pbufs and heap blocks.
func addHeld(p *pbuf.Pbuf, pbufs, heap int) (int, int) {
	for ; p != nil; p = p.Next() {
		switch p.Type() {
		case pbuf.POOL:
			pbufs++
		case pbuf.RAM:
			heap += heapBlock(p.HeaderRoom() + p.Len())
		}
	}
	return pbufs, heap
}

// heapBlock is the heap block a RAM pbuf of n bytes (header room and payload) takes: the
// heap is a buddy allocator of 64-byte units, so a power of two of at least 64 (exact
// unless the pbuf was shrunk below half its block).
func heapBlock(n int) int {
	b := 64
	for b < n {
		b <<= 1
	}
	return b
}

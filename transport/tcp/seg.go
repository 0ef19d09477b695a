package tcp

import (
	"github.com/wispstack/wisp/pbuf"
)

// seg is one TCP_SEG record. The same record type serves three queues of a PCB:
//
//   - the send queue (sndq): one record per pbuf the application queued; p holds the data,
//     seq is the sequence number of the record's first unacknowledged byte and off/len
//     locate those bytes in p's payload (p is always a single pbuf);
//   - the retransmission queue (rtxq): one record per segment sent and not yet
//     acknowledged, metadata only (the bytes stay in sndq); len counts SYN and FIN;
//   - the out-of-order queue (ooseq): one record per segment received ahead of RCV.NXT;
//     p is the received chain with its TCP header removed, len its length (plus FIN).
type seg struct {
	next  *seg
	p     *pbuf.Pbuf
	seq   uint32
	len   int32
	off   int32
	flags segFlags
	xmits uint8  // rtxq: transmissions so far
	cap   int32  // sndq: bytes of p's payload that may hold data (WriteCopy tail room)
	tsval uint32 // rtxq: TSval of the latest transmission
	xmit  int64  // rtxq: time of the latest transmission, ns since the Proto's epoch
}

type segFlags uint16

const (
	sSYN      segFlags = 1 << iota // rtxq: carries SYN
	sFIN                           // rtxq/ooseq: carries FIN
	sSacked                        // rtxq: covered by a SACK block
	sLost                          // rtxq: deemed lost (RFC 6675 IsLost, RACK, RTO)
	sRetrans                       // rtxq: retransmitted and the retransmission not yet acked or lost
	sEverRetx                      // rtxq: retransmitted at least once (Karn)
	sOwned                         // sndq: RAM pbuf wisp allocated for WriteCopy (tail may grow)
	sPush                          // sndq: the write that ended here asked for PSH
	sTLP                           // rtxq: carried a tail loss probe
	sSpare                         // the PCB's own spare record, not from TCP_SEG
)

// end is the sequence number after the record.
func (s *seg) end() uint32 { return s.seq + uint32(s.len) }

// segQueue is a singly linked FIFO of records.
type segQueue struct {
	head, tail *seg
	n          int
}

func (q *segQueue) push(s *seg) {
	s.next = nil
	if q.tail == nil {
		q.head = s
	} else {
		q.tail.next = s
	}
	q.tail = s
	q.n++
}

// pop removes and returns the head.
func (q *segQueue) pop() *seg {
	if q.head == nil {
		return nil
	}
	return q.removeAfter(nil)
}

// insertAfter puts s after prev (prev nil: at the head).
func (q *segQueue) insertAfter(prev, s *seg) {
	if prev == nil {
		s.next = q.head
		q.head = s
	} else {
		s.next = prev.next
		prev.next = s
	}
	if s.next == nil {
		q.tail = s
	}
	q.n++
}

// removeAfter removes the record after prev (prev nil: the head) and returns it.
func (q *segQueue) removeAfter(prev *seg) *seg {
	var s *seg
	if prev == nil {
		s = q.head
		q.head = s.next
	} else {
		s = prev.next
		prev.next = s.next
	}
	if q.tail == s {
		q.tail = prev
	}
	s.next = nil
	q.n--
	return s
}

// newSeg takes a record from TCP_SEG, or nil (counted by the pool) when it is exhausted.
func (t *Proto) newSeg() *seg { return t.segs.Get() }

// freeSeg frees the record's pbuf (if any) and returns it to the pool.
func (t *Proto) freeSeg(s *seg) {
	s.p.Free()
	if s.flags&sSpare != 0 {
		*s = seg{} // the owning PCB's spare: free again
		return
	}
	t.segs.Put(s)
}

// freeQueue frees every record of q.
func (t *Proto) freeQueue(q *segQueue) {
	for s := q.pop(); s != nil; s = q.pop() {
		t.freeSeg(s)
	}
}

// Sequence number arithmetic (RFC 9293 §3.4): comparisons modulo 2^32.
func seqLT(a, b uint32) bool  { return int32(a-b) < 0 }
func seqLEQ(a, b uint32) bool { return int32(a-b) <= 0 }
func seqGT(a, b uint32) bool  { return int32(a-b) > 0 }
func seqGEQ(a, b uint32) bool { return int32(a-b) >= 0 }
func seqMax(a, b uint32) uint32 {
	if seqGT(a, b) {
		return a
	}
	return b
}
func seqMin(a, b uint32) uint32 {
	if seqLT(a, b) {
		return a
	}
	return b
}

// trimFront drops the first n bytes of chain p (n < p.TotLen()) and returns the rest: whole
// leading pbufs are freed, the first kept one has its header moved. Takes ownership of p,
// returns ownership of the result.
func trimFront(p *pbuf.Pbuf, n int) *pbuf.Pbuf {
	for n > 0 && n >= p.Len() {
		n -= p.Len()
		rest := p.Dechain()
		if rest != nil {
			rest.SetFlags(p.Flags())
			rest.SetIfIndex(p.IfIndex())
		}
		p.Free()
		p = rest
	}
	if n > 0 {
		_ = p.RemoveHeader(n)
	}
	return p
}

// countPbufs returns the number of pbufs in chain p.
func countPbufs(p *pbuf.Pbuf) int {
	n := 0
	for ; p != nil; p = p.Next() {
		n++
	}
	return n
}

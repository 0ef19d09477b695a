package tcp

import (
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// receive is "seventh, process the segment text" and "eighth, check the FIN bit" (RFC 9293
// §3.10.7.4) for ESTABLISHED, FIN-WAIT-1 and FIN-WAIT-2. p (payload only, may be nil) is
// owned by receive. The segment already passed the acceptability test.
func (c *PCB) receive(in *segIn, p *pbuf.Pbuf, gen uint32) {
	t := c.t
	seq := in.seq
	n := in.dataLen
	fin := in.hasFIN()
	if seqLT(seq, c.rcvNxt) {
		// Data we already have: trim it, and report it as a D-SACK (RFC 2883 §4) so the
		// sender can tell spurious retransmissions.
		d := int(c.rcvNxt - seq)
		if c.flags&fSACK != 0 && n > 0 {
			c.dsack = wire.SACKBlock{Left: seq, Right: seq + uint32(min(d, n))}
			t.ext.DSACKSent++
		}
		if d >= n {
			p.Free()
			p = nil
			if !fin || d > n {
				c.ackNow() // a pure duplicate: RFC 9293 says acknowledge it
				return
			}
			n = 0
		} else {
			p = trimFront(p, d)
			n -= d
		}
		seq = c.rcvNxt
		c.ackNow()
	}
	// Trim what lies beyond the window we advertised ("segments with higher beginning
	// sequence numbers may be held", the part past the window is not).
	edge := seqMax(c.rcvAdv, c.rcvNxt)
	if seqGT(seq+uint32(n), edge) {
		keep := int(int32(edge - seq))
		if keep <= 0 {
			p.Free()
			p, n = nil, 0
		} else if keep < n {
			p.Shrink(keep)
			n = keep
		}
		fin = false
		c.ackNow()
	}
	if n == 0 && p != nil {
		p.Free()
		p = nil
	}
	if n > 0 && t.rxHolders > 0 && !c.rxAdmit() {
		// The pool is down to its reserve (windows granted at once to many connections
		// outran it): data for a reader that is not moving waits for a retransmission,
		// so the link keeps room for handshakes, ACKs and moving connections.
		t.ext.RcvPruned++
		p.Free()
		c.ackNow()
		return
	}
	if seq != c.rcvNxt {
		if n > 0 || fin {
			c.ooInsert(p, seq, n, fin)
		}
		// RFC 5681 §4.2: "an immediate ACK SHOULD be generated when an out-of-order
		// segment arrives".
		c.ackNow()
		return
	}
	if n == 0 && !fin {
		return
	}
	c.deliver(in, p, n, fin, gen)
}

// deliver takes in-order data (and a FIN) of segment in at RCV.NXT, pulls what became
// contiguous from the out-of-order queue and hands it all to RecvFunc in one chain (p may
// be nil with fin).
func (c *PCB) deliver(in *segIn, p *pbuf.Pbuf, n int, fin bool, gen uint32) {
	t := c.t
	c.rcvAdvance(n)
	total := n
	if c.ooseq.head != nil {
		for s := c.ooseq.head; s != nil && !fin && seqLEQ(s.seq, c.rcvNxt); s = c.ooseq.head { // nothing follows a FIN
			c.ooseq.pop()
			dl := int(s.len)
			if s.flags&sFIN != 0 {
				dl--
			}
			if s.p != nil {
				c.ooPbufs -= countPbufs(s.p)
			}
			if d := int(c.rcvNxt - s.seq); d < dl {
				q := s.p
				s.p = nil
				if d > 0 {
					q = trimFront(q, d)
				}
				if p == nil {
					p = q
				} else {
					pbuf.Cat(p, q)
				}
				c.rcvAdvance(dl - d)
				total += dl - d
			}
			if s.flags&sFIN != 0 && c.rcvNxt == s.seq+uint32(dl) {
				// (A FIN below RCV.NXT was contradicted by data past it: ignored.)
				fin = true
			}
			t.freeSeg(s)
			// RFC 5681 §4.2: ACK at once when a segment fills a hole.
			c.ackNow()
		}
		if fin && c.ooseq.head != nil {
			// Nothing follows a FIN: data queued beyond it is the peer's error or a
			// forgery, and is never delivered; it need not hold memory or SACK blocks.
			t.freeQueue(&c.ooseq)
			c.ooPbufs, c.nsacks = 0, 0
		}
		c.pruneSACK()
	} else if c.nsacks > 0 {
		c.pruneSACK()
	}
	c.syncPromise()
	if total > 0 {
		c.setUnread(c.rcvUnread + total)
		c.drsReceived(&in.opts)
		// Delayed ACK (RFC 9293 §3.8.6.3, RFC 5681 §4.2): "an ACK SHOULD be generated for
		// at least every second full-sized segment", and never delayed beyond
		// TCPDelAckTimeout.
		c.segsUnacked += total
		if seg := in.segSize(n); seg > c.rcvMSS {
			c.rcvMSS = min(seg, c.advMSS)
		}
		if c.segsUnacked >= 2*c.rcvMSS {
			if !t.batching || c.segsUnacked >= ackStretch*c.rcvMSS || !c.deferAck() {
				c.ackNow()
			}
		} else if c.flags&fAckNow == 0 && c.delackAt == 0 {
			c.delackAt = t.nowNs() + int64(t.opts.TCPDelAckTimeout)
			c.schedule()
		}
	}
	if fin {
		c.rcvAdvance(1)
		c.flags |= fFinRcvd
		c.syncPromise() // the window's left edge moved by the FIN
		c.ackNow()
		switch c.state {
		case StateSynReceived, StateEstablished:
			c.setState(StateCloseWait)
		case StateFinWait1:
			// Our FIN is not acknowledged yet (else we would be in FIN-WAIT-2).
			c.setState(StateClosing)
		case StateFinWait2:
			c.closeAt = 0
			c.enterTimeWait()
		}
	}
	if p != nil {
		if fn := c.recvFn; fn != nil && c.flags&fAppClosed == 0 {
			fn(c, p)
			if !c.alive(gen) {
				return
			}
		} else {
			// lwIP tcp_recv_null: nobody reads, the data is consumed at once.
			p.Free()
			c.recved(total)
		}
	}
	if fin && c.recvFn != nil && c.flags&fAppClosed == 0 {
		c.recvFn(c, nil)
	}
}

// ooInsert queues a segment that arrived ahead of RCV.NXT, trimmed against what is already
// queued, and records the SACK block it belongs to (RFC 2018 §4). Takes ownership of p.
func (c *PCB) ooInsert(p *pbuf.Pbuf, seq uint32, n int, fin bool) {
	t := c.t
	end := seq + uint32(n)
	var prev *seg
	for s := c.ooseq.head; s != nil && seqLEQ(s.seq, seq); s = s.next {
		prev = s
	}
	if prev != nil {
		pend := prev.seq + uint32(prev.dataLen())
		if fin && seqLT(end, pend) {
			// Data already queued goes past this FIN: the FIN is contradicted (a forgery,
			// or a confused peer) and ignored. Trimmed below, it would have moved to the end
			// of that data, and a FIN never sent there would have been acknowledged.
			fin = false
		}
		if seqGEQ(pend, end) && (!fin || prev.flags&sFIN != 0) {
			// Entirely a duplicate of queued data.
			if c.flags&fSACK != 0 && n > 0 {
				c.dsack = wire.SACKBlock{Left: seq, Right: end}
				t.ext.DSACKSent++
			}
			p.Free()
			return
		}
		if seqGT(pend, seq) {
			d := int(pend - seq)
			if d >= n {
				p.Free()
				p, n = nil, 0
			} else {
				p = trimFront(p, d)
				n -= d
			}
			seq = pend
		}
	}
	// Drop queued records the new one covers; cut it before the next one it overlaps.
	for {
		var next *seg
		if prev == nil {
			next = c.ooseq.head
		} else {
			next = prev.next
		}
		if next == nil || seqGEQ(next.seq, end) {
			break
		}
		nend := next.seq + uint32(next.dataLen())
		if seqLEQ(nend, end) && (next.flags&sFIN == 0 || fin) {
			r := c.ooseq.removeAfter(prev)
			if r.p != nil {
				c.ooPbufs -= countPbufs(r.p)
			}
			t.freeSeg(r)
			continue
		}
		keep := int(next.seq - seq)
		if keep <= 0 {
			p.Free()
			return
		}
		if keep < n {
			p.Shrink(keep)
			n = keep
		}
		end = seq + uint32(n)
		fin = false
		break
	}
	if n == 0 && !fin {
		p.Free()
		return
	}
	np := 0
	if p != nil {
		np = countPbufs(p)
	}
	s := t.newSeg()
	if s == nil || t.opts.TCPOOSeqMaxPbufs > 0 && c.ooPbufs+np > t.opts.TCPOOSeqMaxPbufs {
		if s != nil {
			t.segs.Put(s)
		} else {
			t.st.Memerr++
		}
		t.dropSeg(p, &t.ext.DropOOOFull)
		return
	}
	s.p, s.seq, s.len = p, seq, int32(n)
	if fin {
		s.flags |= sFIN
		s.len++
	}
	c.ooseq.insertAfter(prev, s)
	c.ooPbufs += np
	t.ext.OOOQueued++
	if c.flags&fSACK != 0 && n > 0 {
		c.addSACK(s)
	}
}

// dataLen is an ooseq record's data length (its FIN excluded).
func (s *seg) dataLen() int {
	if s.flags&sFIN != 0 {
		return int(s.len) - 1
	}
	return int(s.len)
}

// addSACK puts the block holding s first in the list of blocks to report: RFC 2018 §4,
// "The first SACK block ... MUST specify the contiguous block of data containing the
// segment which triggered this ACK", then the most recently reported others.
func (c *PCB) addSACK(s *seg) {
	// The contiguous run of queued records around s.
	left, right := s.seq, s.seq+uint32(s.dataLen())
	// Walk once, tracking runs.
	var cl, cr uint32
	inRun := false
	for r := c.ooseq.head; r != nil; r = r.next {
		rs, re := r.seq, r.seq+uint32(r.dataLen())
		if inRun && seqLEQ(rs, cr) {
			cr = seqMax(cr, re)
		} else {
			if inRun && seqLEQ(cl, left) && seqLEQ(right, cr) {
				break
			}
			cl, cr, inRun = rs, re, true
		}
	}
	if inRun && seqLEQ(cl, left) && seqLEQ(right, cr) {
		left, right = cl, cr
	}
	nb := wire.SACKBlock{Left: left, Right: right}
	var out [wire.TCPMaxSACKBlocks]wire.SACKBlock
	out[0] = nb
	k := 1
	for i := 0; i < c.nsacks && k < len(out); i++ {
		b := c.sacks[i]
		if seqLEQ(b.Right, nb.Left) || seqGEQ(b.Left, nb.Right) {
			out[k] = b
			k++
		}
	}
	c.sacks, c.nsacks = out, k
}

// pruneSACK drops blocks RCV.NXT has passed.
func (c *PCB) pruneSACK() {
	k := 0
	for i := 0; i < c.nsacks; i++ {
		b := c.sacks[i]
		if seqGT(b.Right, c.rcvNxt) {
			if seqLT(b.Left, c.rcvNxt) {
				b.Left = c.rcvNxt
			}
			c.sacks[k] = b
			k++
		}
	}
	c.nsacks = k
}

// recved opens the window by n consumed bytes (lwIP tcp_recved) and sends a window update
// when the window would at least double and grow by a segment (Linux's rule, which keeps
// bulk transfers from sending an update per segment read while still reopening a closed
// window at once).
func (c *PCB) recved(n int) {
	if n <= 0 {
		return
	}
	c.setUnread(max(c.rcvUnread-n, 0))
	c.noteRead()
	c.drsConsumed(n)
	if !c.synchronized() || c.flags&fFinRcvd != 0 {
		return
	}
	cur := int(int32(c.rcvAdv - c.rcvNxt))
	if cur < 0 {
		cur = 0
	}
	if avail := c.rcvSpace(); avail >= 2*cur && avail-cur >= c.advMSS {
		c.flags |= fWndUpdate
		c.ackNow()
	}
}

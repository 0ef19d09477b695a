package tcp

import (
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// Building one segment: the header (through wire.TCPRepr), options, data and checksum, and
// the hand-over to IP; what to send and when is output.go's business. Segments are cut at
// output time. A data segment is a small RAM pbuf holding the TCP
// header (with header room for IP and the link) followed by zero-copy REF views of the send
// queue's pbufs (pbuf.Allocator.RefRange): the queue keeps the bytes until they are
// acknowledged, the views keep them alive while the link still holds the frame.

// emit builds and sends one segment of c: header h (sequence number and flags set; ports,
// acknowledgment, window and options are filled here) and n bytes of the send queue
// starting at h.SeqNum (n may be 0). It returns errs.Mem when no memory is left for the
// header or the views (nothing was sent), or the IP layer's error (the segment counts as
// sent: TCP recovers a packet lost below it like any other).
//
// The data goes as zero-copy views (measured with the bulk benchmarks on two stacks over a
// sync pipe against segments copied behind their header: equal within noise at MTU 1500,
// views 15-25% faster at MTU 9000, where copying 9 KB per segment costs more than the view
// headers); a copy only when no view can be had.
func (c *PCB) emit(h *wire.TCPRepr, n int) error {
	return c.emitData(h, n, txOffload{})
}

// txOffload is what one segment asks of the link below: to be cut into segments of gso
// bytes of data (0: it is one segment), and to complete its checksum (partial).
type txOffload struct {
	gso     int
	partial bool
}

// emitData is emit for new data, which may go as a GSO packet with a partial checksum.
func (c *PCB) emitData(h *wire.TCPRepr, n int, off txOffload) error {
	t := c.t
	if h.Flags&wire.TCPFlagACK != 0 {
		h.AckNum = c.rcvNxt
	}
	h.SrcPort, h.DstPort = c.lport, c.rport
	c.fillOptions(h, n)
	var data *pbuf.Pbuf
	var err error
	if n > 0 {
		data, err = c.dataRef(h.SeqNum, n)
	}
	if err != nil {
		// No REF header for a view (zero-copy writes may hold them all): copy.
		err = c.sendCopy(h, n, off)
	} else {
		h.Window = c.windowField(h.Flags&wire.TCPFlagSYN != 0)
		err = t.send(c.laddr, c.dst, h, data, n, c.phsum, c.TTL(), c.TOS(), off)
	}
	if err == errs.Mem {
		return err
	}
	if h.Flags&wire.TCPFlagACK != 0 {
		c.lastAckSent = c.rcvNxt
		c.flags &^= fAckNow | fAckBatch
		c.segsUnacked = 0
		c.delackAt = 0
		if h.Options.NumSACK > 0 && c.dsack != (wire.SACKBlock{}) {
			c.dsack = wire.SACKBlock{}
		}
	}
	return nil
}

// send builds a segment with header h (every field set but the checksum) and data (n
// bytes, ownership taken; nil for none) and hands it to IP, as a GSO packet and with a
// partial checksum when off says so. phsum is the pseudo-header sum without length (0:
// computed here). errs.Mem when no header pbuf could be allocated (data is freed).
func (t *Proto) send(src, dst netip.Addr, h *wire.TCPRepr, data *pbuf.Pbuf, n int, phsum uint32, ttl, tos uint8, off txOffload) error {
	hl := h.HeaderLen()
	p, err := t.alloc.Alloc(pbuf.LayerIP, hl, pbuf.RAM)
	if err != nil {
		// The heap is full (send queues hold it): a POOL chunk carries the header, so the
		// segments whose acknowledgments free the heap can still leave.
		if p, err = t.alloc.Alloc(pbuf.LayerIP, hl, pbuf.POOL); err != nil {
			data.Free()
			t.st.Memerr++
			return errs.Mem
		}
	}
	b, _ := p.Header(hl)
	_, _ = h.EmitHeader(b) // TCP's own options never exceed the header
	if phsum == 0 {
		phsum = wire.PseudoHeaderChecksum(wire.ProtoTCP, src, dst, 0)
	}
	if off.partial || off.gso > 0 {
		if data != nil {
			pbuf.Cat(p, data)
		}
		setOffload(p, dst, hl+n, phsum, off)
	} else {
		sum := wire.Checksum(b, phsum+uint32(hl+n))
		if data != nil {
			if data.Next() == nil {
				sum = wire.Checksum(data.Payload(), sum)
			} else {
				sum = data.Checksum(0, n, sum)
			}
			pbuf.Cat(p, data)
		}
		wire.TCP(b).SetChecksumField(wire.Finish(sum))
	}
	t.st.Xmit++
	if h.Flags&wire.TCPFlagRST != 0 {
		t.ext.ResetsSent++
	}
	return t.ip.Output(p, src, dst, wire.ProtoTCP, ip.OutputOptions{TTL: ttl, TOS: tos})
}

// sendCopy builds a data segment as a copy of n bytes of the send queue from h.SeqNum behind
// its header, in one RAM pbuf when the heap has a block, else in whatever RAM or POOL
// chain memory allows (the header always in the first pbuf), and hands it to IP. It is
// also the fallback when views cannot be made (REF headers exhausted).
func (c *PCB) sendCopy(h *wire.TCPRepr, n int, off txOffload) error {
	t := c.t
	hl := h.HeaderLen()
	p, err := t.alloc.Alloc(pbuf.LayerIP, hl+n, pbuf.RAM)
	if err != nil {
		if p, err = t.alloc.Alloc(pbuf.LayerIP, hl+n, pbuf.POOL); err != nil {
			t.st.Memerr++
			return errs.Mem
		}
	}
	b, _ := p.Header(hl)
	h.Window = c.windowField(false)
	_, _ = h.EmitHeader(b)
	if p.Next() == nil {
		c.copyData(h.SeqNum, p.Payload()[hl:hl+n])
	} else {
		o := hl
		for q := p; q != nil; q = q.Next() {
			pl := q.Payload()
			if q == p {
				pl = pl[hl:]
			}
			c.copyData(h.SeqNum+uint32(o-hl), pl)
			o += len(pl)
		}
	}
	if off.partial || off.gso > 0 {
		setOffload(p, c.dst, hl+n, c.phsum, off)
	} else {
		wire.TCP(b).SetChecksumField(wire.Finish(p.Checksum(0, hl+n, c.phsum+uint32(hl+n))))
	}
	t.st.Xmit++
	return t.ip.Output(p, c.laddr, c.dst, wire.ProtoTCP, ip.OutputOptions{TTL: c.TTL(), TOS: c.TOS()})
}

// setOffload marks segment p (borrowed; its TCP header first, tl bytes in all) for the link: the
// checksum field gets the pseudo-header sum with the length, folded and not complemented
// (what a link completing it expects: pbuf.FlagChecksumPartial), and a GSO packet its
// segment size. phsum is the pseudo-header sum without length.
func setOffload(p *pbuf.Pbuf, dst netip.Addr, tl int, phsum uint32, off txOffload) {
	b, _ := p.Header(wire.TCPMinHeaderLen)
	wire.TCP(b).SetChecksumField(wire.Fold(phsum + uint32(tl)))
	p.SetFlags(p.Flags() | pbuf.FlagChecksumPartial)
	if off.gso > 0 && tl-wire.TCP(b).HeaderLen() > off.gso {
		typ := pbuf.GSOTCPv6
		if dst.Unmap().Is4() {
			typ = pbuf.GSOTCPv4
		}
		p.SetGSO(typ, off.gso)
	}
}

// sndRecord is the send queue record holding seq (nil: none), found from c.pos, where
// output is, without a walk when it is there.
func (c *PCB) sndRecord(seq uint32) *seg {
	s := c.pos
	if s == nil || seqLT(seq, s.seq) || !seqLT(seq, s.seq+uint32(s.len)) {
		for s = c.sndq.head; s != nil && !seqLT(seq, s.seq+uint32(s.len)); s = s.next {
		}
	}
	return s
}

// copyData copies len(dst) bytes of the send queue starting at seq into dst.
func (c *PCB) copyData(seq uint32, dst []byte) {
	s := c.sndRecord(seq)
	for len(dst) > 0 && s != nil {
		o := int(s.off) + int(seq-s.seq)
		k := copy(dst, s.p.Payload()[o:int(s.off)+int(s.len)])
		dst = dst[k:]
		seq += uint32(k)
		s = s.next
	}
}

// dataRef returns zero-copy views of n bytes of the send queue starting at seq.
func (c *PCB) dataRef(seq uint32, n int) (*pbuf.Pbuf, error) {
	s := c.sndRecord(seq)
	var head *pbuf.Pbuf
	for n > 0 && s != nil {
		o := int(seq - s.seq)
		take := min(n, int(s.len)-o)
		v, err := c.t.alloc.RefRange(nil, s.p, int(s.off)+o, take)
		if err != nil {
			head.Free()
			return nil, err
		}
		if head == nil {
			head = v
		} else {
			pbuf.Cat(head, v)
		}
		n -= take
		seq += uint32(take)
		s = s.next
	}
	if n > 0 {
		head.Free()
		return nil, errs.Val // the queue is shorter than the segment: a bug
	}
	return head, nil
}

// fillOptions sets the options of a non-SYN segment: timestamps and SACK blocks.
func (c *PCB) fillOptions(h *wire.TCPRepr, n int) {
	if h.Flags&wire.TCPFlagSYN != 0 {
		return // synOptions already did
	}
	h.Options = wire.TCPOptions{}
	if c.flags&fTS != 0 {
		h.Options.HasTimestamps = true
		h.Options.TSVal = c.tsNow()
		h.Options.TSEcr = c.tsRecent
	}
	if c.flags&fSACK != 0 && h.Flags&wire.TCPFlagACK != 0 && h.Flags&wire.TCPFlagRST == 0 {
		k := 0
		maxBlocks := wire.TCPMaxSACKBlocks
		if h.Options.HasTimestamps {
			maxBlocks = 3
		}
		if c.dsack != (wire.SACKBlock{}) {
			h.Options.SACKBlocks[k] = c.dsack
			k++
		}
		for i := 0; i < c.nsacks && k < maxBlocks; i++ {
			h.Options.SACKBlocks[k] = c.sacks[i]
			k++
		}
		h.Options.NumSACK = k
	}
}

// tsNow is our TSval clock: milliseconds plus a per-connection offset (RFC 7323 §5.4).
func (c *PCB) tsNow() uint32 {
	return uint32(c.t.nowNs()/1e6) + c.tsOff
}

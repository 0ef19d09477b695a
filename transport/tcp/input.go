package tcp

import (
	"encoding/binary"

	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// segIn is the segment being processed, parsed once. Its storage is Proto.in (one segment
// at a time, core context, nothing allocated); the functions of the input path get it as a
// parameter. The time of its processing is the core's (Proto.nowNs), not a field of it.
type segIn struct {
	hdr              *ip.Header
	srcPort, dstPort uint16
	seq, ack         uint32
	flags            wire.TCPFlags
	wnd              uint16
	dataLen          int // payload bytes (SYN and FIN not counted)
	hl               int // header length
	gso              int // a coalesced segment (GRO): the size of the segments it was made of
	opts             wire.TCPOptions
}

// segSize is the size of the segments the peer sent for n bytes received: n, or for a
// coalesced segment the size it was made of (Linux's tcp_measure_rcv_mss reads gso_size).
func (in *segIn) segSize(n int) int {
	if in.gso > 0 {
		return min(in.gso, n)
	}
	return n
}

func (in *segIn) hasFIN() bool { return in.flags&wire.TCPFlagFIN != 0 }
func (in *segIn) hasSYN() bool { return in.flags&wire.TCPFlagSYN != 0 }
func (in *segIn) hasACK() bool { return in.flags&wire.TCPFlagACK != 0 }
func (in *segIn) hasRST() bool { return in.flags&wire.TCPFlagRST != 0 }

// segLen is SEG.LEN: data plus one for each of SYN and FIN.
func (in *segIn) segLen() int {
	n := in.dataLen
	if in.hasSYN() {
		n++
	}
	if in.hasFIN() {
		n++
	}
	return n
}

// Input takes ownership of p (starting at the TCP header); h is borrowed (ip.Transport).
// Every field is validated before anything else looks at the segment, each failure counted
// under its own reason.
func (t *Proto) Input(h *ip.Header, p *pbuf.Pbuf) {
	t.timers.AssertCore()
	held := t.holdClock()
	t.input(h, p)
	t.releaseClock(held)
}

func (t *Proto) input(h *ip.Header, p *pbuf.Pbuf) {
	t.st.Recv++
	if t.closed {
		p.Free()
		return
	}
	b, ok := p.Header(wire.TCPMinHeaderLen)
	if !ok {
		t.st.Lenerr++
		t.dropSeg(p, &t.ext.DropBadHeader)
		return
	}
	tcp := wire.TCP(b)
	hl := tcp.HeaderLen()
	total := p.TotLen()
	if hl < wire.TCPMinHeaderLen || hl > total {
		t.st.Lenerr++
		t.dropSeg(p, &t.ext.DropBadHeader)
		return
	}
	if b, ok = p.Header(hl); !ok {
		// The pool holds link+IP+TCP headers in one chunk (opt.Validate); a frame split
		// inside its TCP header is malformed.
		t.st.Lenerr++
		t.dropSeg(p, &t.ext.DropBadHeader)
		return
	}
	tcp = wire.TCP(b)
	if p.Flags()&pbuf.FlagChecksumOK == 0 {
		sum := wire.PseudoHeaderChecksum(wire.ProtoTCP, h.Src, h.Dst, uint32(total))
		if p.Next() == nil {
			sum = wire.Checksum(p.Payload(), sum)
		} else {
			sum = p.Checksum(0, total, sum)
		}
		if wire.Finish(sum) != 0 {
			t.st.Chkerr++
			t.dropSeg(p, &t.ext.DropBadChecksum)
			return
		}
	}
	in := &t.in
	in.hdr = h
	in.srcPort, in.dstPort = tcp.SrcPort(), tcp.DstPort()
	in.seq, in.ack = tcp.SeqNum(), tcp.AckNum()
	in.flags = tcp.Flags()
	in.wnd = tcp.Window()
	in.dataLen = total - hl
	in.hl = hl
	_, in.gso = p.GSO()
	f := in.flags
	// RFC 9293 §3.1: SYN with FIN or RST, and FIN or RST without ACK outside the handshake,
	// mean nothing a conforming peer sends; RFC 1122 §4.2.3.10: TCP is unicast only; port 0
	// is reserved (RFC 6335 §6).
	if f&wire.TCPFlagSYN != 0 && f&(wire.TCPFlagFIN|wire.TCPFlagRST) != 0 ||
		in.srcPort == 0 || in.dstPort == 0 {
		t.st.Proterr++
		t.dropSeg(p, &t.ext.DropBadHeader)
		return
	}
	if h.Broadcast || h.Multicast || h.Dst.IsMulticast() || h.Src.IsMulticast() || h.Src.IsUnspecified() {
		t.st.Proterr++
		t.dropSeg(p, &t.ext.DropBadHeader)
		return
	}
	if !parseOptions(&in.opts, tcp[wire.TCPMinHeaderLen:hl]) {
		t.st.Opterr++
		t.dropSeg(p, &t.ext.DropBadOption)
		return
	}
	if c := t.lookupConn(h.Dst, h.Src, in.dstPort, in.srcPort); c != nil {
		if c.flags&fDeferred != 0 {
			c.deferredInput(in, p) // undecided: parked, nothing sent (intercept.go)
			t.checkInput(in)
			return
		}
		gen := c.enter()
		c.input(in, payload(in, p))
		c.leave(gen)
		t.checkInput(in)
		return
	}
	l := t.listenerFor(h, in.dstPort)
	if h.Intercepted && f&(wire.TCPFlagSYN|wire.TCPFlagACK) == wire.TCPFlagSYN {
		t.ext.InterceptSyn++
		if l == nil {
			t.ext.InterceptRefused++ // the RST below (never a silent drop)
		}
	}
	if l != nil {
		t.listenInput(l, in, p)
		t.checkInput(in)
		return
	}
	// RFC 9293 §3.10.7.1: "If the state is CLOSED (i.e., TCB does not exist) then all data
	// in the incoming segment is discarded. An incoming segment containing a RST is
	// discarded. An incoming segment not containing a RST causes a RST to be sent".
	if f&wire.TCPFlagRST == 0 {
		if f&wire.TCPFlagACK != 0 {
			t.resetFor(in, in.ack, 0, false)
		} else {
			t.resetFor(in, 0, in.seq+uint32(in.segLen()), true)
		}
	}
	t.dropSeg(p, &t.ext.DropNoPCB)
}

// parseOptions parses the options area b into o; false if malformed. The common layouts
// (nothing; NOP NOP TS) are decoded without the general parser.
func parseOptions(o *wire.TCPOptions, b []byte) bool {
	switch {
	case len(b) == 0:
		*o = wire.TCPOptions{}
		return true
	case len(b) == 12 && b[0] == wire.TCPOptNOP && b[1] == wire.TCPOptNOP && b[2] == wire.TCPOptTimestamps && b[3] == 10:
		*o = wire.TCPOptions{HasTimestamps: true, TSVal: binary.BigEndian.Uint32(b[4:]), TSEcr: binary.BigEndian.Uint32(b[8:])}
		return true
	}
	opts, err := wire.ParseTCPOptions(b)
	if err != nil {
		return false
	}
	*o = opts
	return true
}

// payload turns segment p (header included) into what PCB.input takes: its data without
// the header, or nil when it has none (then the header pbuf, and any padding, go at once).
func payload(in *segIn, p *pbuf.Pbuf) *pbuf.Pbuf {
	if in.dataLen == 0 {
		p.Free()
		return nil
	}
	return trimFront(p, in.hl)
}

// dropSeg frees p (nil is fine) and counts one dropped segment under reason (nil: not an
// error, such as an ignored RST).
func (t *Proto) dropSeg(p *pbuf.Pbuf, reason *uint64) {
	p.Free()
	if reason != nil {
		*reason++
		t.st.Drop++
	}
}

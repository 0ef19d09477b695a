package tcp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// FuzzConnection is a stateful fuzzer: the input is a program that drives one connection of
// a node on a fake clock, playing its peer and its application. The first byte picks the
// configuration (active or passive open, SACK, timestamps, window scaling, Nagle,
// congestion control); then each step is an operation read from the input: a segment from
// the peer (in or out of window, in order or not, any flags, ACKs anywhere, SACK blocks,
// timestamps, windows down to zero), the clock moving (a little, or past RTO, keepalive,
// TIME-WAIT), the application writing, reading, shutting down, closing or aborting, ICMP
// Packet Too Big, input batches, and the pools (TCP_SEG, PBUF_POOL, the heap) taken and
// given back.
//
// After every step the invariant checker (invariant.go) runs on the connection, besides
// the hooks after each segment and timer. Every segment the stack sends is checked as well:
// its data is what the application wrote at that place of the stream, and its ACK never
// covers a byte (or FIN) the peer did not send; every byte the application receives is
// what the peer sent there. At the end every PCB is aborted and every pool must be back to
// zero. At most fuzzSteps steps run per input, so an input takes milliseconds.
//
// A long run: scripts/fuzz -t 600 -run FuzzConnection (or go test -run '^$' -fuzz
// '^FuzzConnection$' -fuzztime 10m -parallel 1 ./transport/tcp).
func FuzzConnection(f *testing.F) {
	for _, s := range fuzzConnSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		runConnProgram(t, prog)
	})
}

const (
	fuzzSteps    = 256     // operations per input
	fuzzPeerSpan = 1 << 20 // peer sequence space tracked for the ACK check (bytes after its ISN)
	fuzzPeerISN  = 0xfff00000
	fuzzPort     = 80
	fuzzPeerPort = 40000
)

// Operations of a program.
const (
	opSegment = iota // a segment from the peer (three entries: the most common step)
	opSegment2
	opSegment3
	opAck     // a pure ACK of some of what is outstanding, maybe with SACK blocks
	opAck2    //
	opClock   // the clock moves
	opWrite   // the application writes (and calls Output)
	opRecved  // the application consumes received data
	opClose   // Shutdown(tx), Shutdown(rx), Close or Abort
	opPools   // take or give back all of TCP_SEG, PBUF_POOL, the heap
	opBatch   // BeginBatch / EndBatch
	opOptions // Nagle, keepalive, poll, buffer sizes
	opICMP    // Packet Too Big
	numOps
)

// fuzzTrace logs every segment (WISP_FUZZTRACE=1 go test -v -run FuzzConnection/...).
var fuzzTrace = os.Getenv("WISP_FUZZTRACE") != ""

// peerByte and appByte are the contents of the two streams at a place: every copy of a
// byte (retransmissions, overlaps) carries the same value, so what arrives can be checked
// without storing what was sent.
func peerByte(seq uint32) byte { return byte(seq*7 + seq>>8 + seq>>17) }
func appByte(off int) byte     { return byte(off*13 + off>>9 + 1) }

// prog reads the program; past its end it reads zeros, and done reports that.
type prog struct {
	b []byte
	i int
}

func (p *prog) done() bool { return p.i >= len(p.b) }
func (p *prog) u8() int {
	if p.i >= len(p.b) {
		return 0
	}
	p.i++
	return int(p.b[p.i-1])
}
func (p *prog) u16() int { return p.u8()<<8 | p.u8() }
func (p *prog) u32() uint32 {
	return uint32(p.u16())<<16 | uint32(p.u16())
}

// fuzzConn is the world of one program.
type fuzzConn struct {
	t     testing.TB
	clk   *clock.Fake
	n     *node
	ep    *fuzzEP
	c     *PCB
	gen   uint32
	cport uint16 // the stack's port
	hdr   ip.Header

	// The peer.
	peerNxt  uint32 // highest end of what the peer sent
	tsval    uint32
	lastTS   uint32 // newest TSval the stack sent
	sent     []byte // bitmap of the peer's sequence space sent, from its ISN
	prefix   int    // bytes (and SYN, FIN) from the ISN the peer has sent without a gap
	ts, sack bool   // negotiated
	mss      int

	// The application.
	iss      uint32
	synced   bool // iss known
	written  int  // bytes written (stream offsets from ISS+1)
	received int  // bytes received
	unread   int
	finRcvd  bool
	track    bool // frames belong to the connection under test
	closed   bool // the application called Close (or Abort): it must not use the PCB again
	failure  string
	batch    bool

	// Memory taken from the pools.
	segs  []*seg
	pbufs []*pbuf.Pbuf
	heap  []*pbuf.Pbuf
}

// fuzzEP is the link under the node: it checks every frame the stack sends and frees it.
type fuzzEP struct {
	f *fuzzConn
}

func (e *fuzzEP) Medium() link.Medium      { return link.MediumIP }
func (e *fuzzEP) MTU() int                 { return 1500 }
func (e *fuzzEP) HardwareAddr() [6]byte    { return [6]byte{} }
func (e *fuzzEP) Attach(d link.Dispatcher) {}
func (e *fuzzEP) Close() error             { return nil }
func (e *fuzzEP) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	var buf [2048]byte
	for _, p := range pkts {
		n := min(p.TotLen(), len(buf))
		p.CopyOut(buf[:n], 0)
		p.Free()
		e.f.frame(buf[:n])
	}
	return len(pkts), nil
}

// frame checks one IPv4 frame the stack sent.
func (f *fuzzConn) frame(b []byte) {
	if len(b) < 40 || b[9] != wire.ProtoTCP {
		return
	}
	hl := int(b[0]&15) * 4
	tcp := wire.TCP(b[hl:])
	if tcp.DstPort() != fuzzPeerPort || !f.track {
		return
	}
	fl := tcp.Flags()
	if fuzzTrace {
		f.t.Logf("stack: seq=%d ack=%d flags=%v wnd=%d len=%d", tcp.SeqNum()-f.iss, tcp.AckNum()-fuzzPeerISN, fl, tcp.Window(), len(tcp.Payload()))
	}
	if fl&wire.TCPFlagRST != 0 {
		return
	}
	if opts, err := wire.ParseTCPOptions(tcp.Options()); err == nil && opts.HasTimestamps {
		f.lastTS = opts.TSVal
	}
	if f.c != nil && !f.alive() {
		f.track = false // only RSTs or a new incarnation of the 4-tuple from now on
		return
	}
	if fl&wire.TCPFlagSYN != 0 {
		f.iss, f.synced = tcp.SeqNum(), true
	}
	if data := tcp.Payload(); len(data) > 0 && f.synced {
		off := int(int32(tcp.SeqNum() - f.iss - 1))
		if off < 0 || off+len(data) > f.written {
			f.fail("the stack sent bytes %d..%d of a stream of %d written: %v", off, off+len(data), f.written, f.info())
		}
		for i, x := range data {
			if x != appByte(off+i) {
				f.fail("the stack sent byte %d of the stream as %#x, the application wrote %#x: %v", off+i, x, appByte(off+i), f.info())
			}
		}
	}
	if fl&wire.TCPFlagACK != 0 {
		if a := int(int32(tcp.AckNum() - fuzzPeerISN)); a > f.prefix {
			f.fail("the stack acknowledged %d bytes of the peer's sequence space, the peer sent %d without a gap: %v", a, f.prefix, f.info())
		}
	}
}

// fail records the first failure seen in core context (where t.Fatal would leave the core
// lock held); the step loop reports it.
func (f *fuzzConn) fail(format string, args ...any) {
	if f.failure == "" {
		f.failure = fmt.Sprintf(format, args...)
	}
}

// info prints the connection under test, if it lives.
func (f *fuzzConn) info() string {
	if !f.alive() {
		return "(connection gone)"
	}
	i := f.c.Info()
	i.Timers = f.c.timersString(f.n.tcp.nowNs())
	return i.String()
}

func (f *fuzzConn) alive() bool { return f.c != nil && f.c.alive(f.gen) }

// usable reports whether the application may still call the PCB.
func (f *fuzzConn) usable() bool { return !f.closed && f.alive() }

// markSent records that the peer sent seq..seq+n (SYN and FIN counted in n).
func (f *fuzzConn) markSent(seq uint32, n int) {
	off := int(int32(seq - fuzzPeerISN))
	for i := max(off, 0); i < off+n && i < fuzzPeerSpan; i++ {
		f.sent[i>>3] |= 1 << (i & 7)
	}
	for f.prefix < fuzzPeerSpan && f.sent[f.prefix>>3]&(1<<(f.prefix&7)) != 0 {
		f.prefix++
	}
	if end := seq + uint32(n); off >= 0 && off < fuzzPeerSpan && seqGT(end, f.peerNxt) {
		f.peerNxt = end
	}
}

// inject sends a segment from the peer. Without a pool buffer (the fuzzer took them) the
// link drops it, as a NIC without receive buffers would.
func (f *fuzzConn) inject(r wire.TCPRepr, data []byte) {
	r.SrcPort, r.DstPort = fuzzPeerPort, f.cport
	r.PayloadLen = len(data)
	hl := r.HeaderLen()
	b := make([]byte, hl+len(data))
	copy(b[hl:], data)
	if err := r.Emit(b, addrB, addrA); err != nil {
		return
	}
	p, err := f.n.Alloc.Alloc(pbuf.LayerRaw, len(b), pbuf.POOL)
	if err != nil {
		return
	}
	_ = p.CopyIn(b, 0)
	n := len(data)
	if r.Flags&wire.TCPFlagSYN != 0 {
		n++
	}
	if r.Flags&wire.TCPFlagFIN != 0 {
		n++
	}
	if r.Flags&wire.TCPFlagRST == 0 {
		f.markSent(r.SeqNum, n)
	}
	if fuzzTrace {
		f.t.Logf("peer: seq=%d ack=%d flags=%v wnd=%d len=%d opts=%+v", r.SeqNum-fuzzPeerISN, r.AckNum-f.iss, r.Flags, r.Window, len(data), r.Options)
	}
	f.hdr = ip.Header{Src: addrB, Dst: addrA, Proto: wire.ProtoTCP, TTL: 64, HeaderLen: 20, Netif: f.n.Netif}
	f.n.tcp.Input(&f.hdr, p)
}

// peerData is n bytes of the peer's stream starting at seq.
func peerData(seq uint32, n int) []byte {
	if n == 0 {
		return nil
	}
	d := make([]byte, n)
	for i := range d {
		d[i] = peerByte(seq + uint32(i))
	}
	return d
}

// runConnProgram runs one program.
func runConnProgram(t *testing.T, b []byte) {
	pr := &prog{b: b}
	f := newFuzzConn(t, pr.u8())
	defer f.finish()
	defer func() {
		if testing.Verbose() {
			s := f.n.stats()
			t.Logf("written %d, received %d, segments in %d out %d, retransmits %d, state %v", f.written, f.received,
				s.TCP.Recv, s.TCP.Xmit, s.TCPExt.Retransmits, f.info())
		}
	}()
	for step := 0; step < fuzzSteps && !pr.done(); step++ {
		f.step(pr)
		f.check()
	}
}

// check fails the test on a failure seen in core context or a broken invariant.
func (f *fuzzConn) check() {
	f.t.Helper()
	if f.failure != "" {
		f.t.Fatal(f.failure)
	}
	if f.alive() {
		f.n.Do(func() {
			if r := f.c.violation(); r != "" {
				f.t.Fatal(f.c.invariantReport(r))
			}
		})
	}
}

// newFuzzConn builds the node and opens the connection cfg describes: bit 0 active open,
// 1 SACK, 2 timestamps, 3 window scaling, 4 Nagle off, 5 CUBIC.
func newFuzzConn(t testing.TB, cfg int) *fuzzConn {
	o := testOpts()
	o.MempNumTCPPCB = 8
	o.MempNumTCPSeg = 96
	o.TCPSndBuf = 32 << 10
	o.TCPMaxSndBuf = 64 << 10
	o.TCPSndQueueLen = 48
	o.PbufPoolSize = 128
	o.MempNumPbuf = 256
	o.MempNumPbufRAM = 256
	o.MemSize = 1 << 20
	o.TCPWnd = 32 << 10
	o.TCPMaxWnd = 128 << 10
	o.TCPSACK = cfg&2 != 0
	o.TCPTimestamps = cfg&4 != 0
	o.TCPWndScale = cfg&8 != 0
	if !o.TCPWndScale {
		o.TCPMaxWnd = 0xffff
	}
	o.TCPCongestion = "newreno"
	if cfg&32 != 0 {
		o.TCPCongestion = "cubic"
	}
	o.TCPMSL = 5 * time.Second
	o.TCPKeepIdle = 20 * time.Second
	o.TCPKeepIntvl = 5 * time.Second
	o.TCPKeepCnt = 3
	if err := o.Validate(); err != nil {
		t.Fatalf("options: %v", err)
	}
	f := &fuzzConn{t: t, clk: clock.NewFake(time.Unix(1_700_000_000, 0)), sent: make([]byte, fuzzPeerSpan/8),
		tsval: 1000, track: true, peerNxt: fuzzPeerISN}
	f.n = newNode(t, f.clk, o, 3)
	f.ep = &fuzzEP{f: f}
	f.n.Attach(f.ep, netip.PrefixFrom(addrA, 24))
	f.open(cfg)
	return f
}

// open makes the connection: the stack connects (cfg&1) or accepts; the peer's SYN offers
// SACK, timestamps and window scaling as the options allow.
func (f *fuzzConn) open(cfg int) {
	n := f.n
	var c *PCB
	accept := func(c *PCB) {
		c.OnRecv(func(c *PCB, p *pbuf.Pbuf) {
			if p == nil {
				f.finRcvd = true
				return
			}
			if f.track {
				k := 0
				for q := p; q != nil; q = q.Next() {
					for i, x := range q.Payload() {
						if want := peerByte(fuzzPeerISN + 1 + uint32(f.received+k+i)); x != want {
							f.fail("the application received byte %d as %#x, the peer sent %#x", f.received+k+i, x, want)
						}
					}
					k += q.Len()
				}
			}
			f.received += p.TotLen()
			f.unread += p.TotLen()
			p.Free()
		})
		c.OnErr(func(*PCB, error) { f.track = false })
		c.OnSent(func(*PCB, int) {})
	}
	syn := wire.TCPOptions{HasMSS: true, MSS: 1460, HasWindowScale: true, WindowScale: 7, SACKPermitted: true,
		HasTimestamps: true, TSVal: f.tsval}
	n.Do(func() {
		if cfg&1 == 0 {
			l0, _ := n.tcp.NewPCB()
			if err := l0.Bind(netip.AddrPortFrom(netip.Addr{}, fuzzPort)); err != nil {
				f.t.Fatal(err)
			}
			l, err := l0.Listen(0)
			if err != nil {
				f.t.Fatal(err)
			}
			l.OnAccept(func(l *Listener, nc *PCB) {
				if c == nil {
					c = nc
					accept(nc)
				}
			})
			f.cport = fuzzPort
			f.inject(wire.TCPRepr{SeqNum: fuzzPeerISN, Flags: wire.TCPFlagSYN, Window: 0xffff, Options: syn}, nil)
		} else {
			c0, _ := n.tcp.NewPCB()
			accept(c0)
			if err := c0.Connect(netip.AddrPortFrom(addrB, fuzzPeerPort), func(*PCB) {}); err != nil {
				f.t.Fatal(err)
			}
			c = c0
			f.cport = c0.lport
		}
	})
	if cfg&1 != 0 {
		n.Do(func() {
			syn.TSEcr = f.lastTS
			f.inject(wire.TCPRepr{SeqNum: fuzzPeerISN, AckNum: f.iss + 1, Flags: wire.TCPFlagSYN | wire.TCPFlagACK,
				Window: 0xffff, Options: syn}, nil)
		})
	}
	if cfg&1 == 0 {
		f.tsval++
		n.Do(func() {
			f.inject(wire.TCPRepr{SeqNum: fuzzPeerISN + 1, AckNum: f.iss + 1, Flags: wire.TCPFlagACK, Window: 0xffff,
				Options: wire.TCPOptions{HasTimestamps: true, TSVal: f.tsval, TSEcr: f.lastTS}}, nil)
		})
	}
	if c == nil || c.state != StateEstablished {
		f.t.Fatalf("no connection: %v", c)
	}
	f.c, f.gen = c, c.gen()
	f.ts, f.sack, f.mss = c.flags&fTS != 0, c.flags&fSACK != 0, c.mss
	if cfg&16 != 0 {
		n.Do(func() { c.SetNoDelay(true) })
	}
}

// step runs one operation of the program.
func (f *fuzzConn) step(pr *prog) {
	op := pr.u8() % numOps
	switch op {
	case opSegment, opSegment2, opSegment3:
		f.segment(pr, false)
	case opAck, opAck2:
		f.segment(pr, true)
	case opClock:
		f.advance(pr)
	case opWrite:
		f.write(pr)
	case opRecved:
		k := pr.u8()
		f.n.Do(func() {
			if !f.usable() || f.unread == 0 {
				return
			}
			m := f.unread
			if k < 200 {
				m = min(m, 1+k*64)
			}
			f.unread -= m
			f.c.Recved(m)
		})
	case opClose:
		f.close(pr.u8())
	case opPools:
		f.pools(pr.u8())
	case opBatch:
		f.n.Do(func() {
			if f.batch {
				f.n.tcp.EndBatch()
			} else {
				f.n.tcp.BeginBatch()
			}
			f.batch = !f.batch
		})
	case opOptions:
		f.options(pr.u8(), pr.u8())
	case opICMP:
		f.icmp(pr.u16())
	}
}

// segment sends one segment from the peer, its fields read from the program.
func (f *fuzzConn) segment(pr *prog, pureAck bool) {
	k := pr.u8()
	lenB := pr.u16()
	flagB := pr.u8()
	ackB := pr.u8()
	wndB := pr.u8()
	optB := pr.u8()
	x := pr.u32()
	f.n.Do(func() {
		c := f.c
		alive := f.alive()
		var una, nxt, rcvNxt uint32
		if alive {
			una, nxt, rcvNxt = c.sndUna, c.sndNxt, c.rcvNxt
		} else {
			una, nxt, rcvNxt = f.iss+1, f.iss+1+uint32(f.written), f.peerNxt
		}
		out := nxt - una
		r := wire.TCPRepr{Flags: wire.TCPFlagACK}
		n := 0
		if !pureAck {
			n = lenB % (2*f.mss + 1)
			if lenB&0x8000 != 0 {
				n = lenB % 64
			}
		}
		// Sequence number.
		switch k & 7 {
		case 0, 1, 2:
			r.SeqNum = rcvNxt // in order (fills the first hole)
		case 3:
			r.SeqNum = f.peerNxt // new data after everything sent
		case 4:
			r.SeqNum = rcvNxt + 1 + x%uint32(4*f.mss) // ahead: out of order
		case 5:
			r.SeqNum = rcvNxt - x%uint32(2*f.mss+1) // old: a duplicate, maybe overlapping
		case 6:
			r.SeqNum = rcvNxt + x%(1<<17) // anywhere in or past the window
		case 7:
			r.SeqNum = x // anywhere
		}
		if off := int(int32(r.SeqNum - fuzzPeerISN)); off+n > fuzzPeerSpan/2 {
			n = 0 // the peer's stream is bounded (so is the ACK check)
		}
		// Control bits: ACK with PSH; FIN, RST, SYN, URG, no ACK now and then.
		if flagB&1 != 0 && n > 0 {
			r.Flags |= wire.TCPFlagPSH
		}
		switch flagB >> 1 & 31 {
		case 1, 2:
			r.Flags |= wire.TCPFlagFIN
		case 3:
			r.Flags |= wire.TCPFlagRST
			n = 0
		case 4:
			r.Flags = wire.TCPFlagRST
			n = 0
		case 5:
			r.Flags = wire.TCPFlagSYN
			n = 0
		case 6:
			r.Flags &^= wire.TCPFlagACK
		case 7:
			r.Flags |= wire.TCPFlagURG
			r.UrgentPointer = uint16(x)
		case 8:
			r.Flags |= wire.TCPFlagFIN | wire.TCPFlagPSH
		}
		// Acknowledgment number.
		switch ackB & 7 {
		case 0, 1:
			r.AckNum = una
		case 2, 3:
			if out > 0 {
				r.AckNum = una + 1 + uint32(ackB>>3)*out/32%out
			} else {
				r.AckNum = una
			}
		case 4:
			r.AckNum = nxt
		case 5:
			r.AckNum = nxt + uint32(ackB>>3) // beyond what was sent
		case 6:
			r.AckNum = una - uint32(ackB>>3)*1000 // old
		case 7:
			r.AckNum = x ^ 0x5a5a5a5a
		}
		// Window.
		switch wndB & 7 {
		case 0:
			r.Window = 0
		case 1:
			r.Window = uint16(wndB >> 3)
		case 2:
			r.Window = uint16(wndB>>3) * 64
		default:
			r.Window = 0xffff
		}
		// Options.
		if f.ts && optB&7 != 0 {
			f.tsval += uint32(optB >> 6)
			r.Options.HasTimestamps = true
			r.Options.TSVal, r.Options.TSEcr = f.tsval, f.lastTS
			switch optB & 7 {
			case 1:
				r.Options.TSVal -= uint32(x % 5000) // old (PAWS)
			case 2:
				r.Options.TSEcr = 0
			case 3:
				r.Options.TSEcr -= uint32(x % 3000)
			}
		}
		if f.sack && optB&0x38 != 0 && out > 0 {
			nb := int(optB>>3&7) % 4
			if r.Options.HasTimestamps {
				nb = min(nb, 3)
			}
			y := x
			for i := 0; i < nb; i++ {
				l := una + y%out
				y = y*2654435761 + 12345
				rr := l + 1 + y%(nxt-l)
				y = y*2654435761 + 12345
				if i == 0 && optB&0x40 != 0 {
					// A D-SACK below the ACK.
					l, rr = una-uint32(f.mss), una
				}
				r.Options.SACKBlocks[i] = wire.SACKBlock{Left: l, Right: rr}
			}
			r.Options.NumSACK = nb
		}
		f.inject(r, peerData(r.SeqNum, n))
	})
}

// advance moves the clock: a little, an RTO or so, or past keepalive and TIME-WAIT.
func (f *fuzzConn) advance(pr *prog) {
	k := pr.u8()
	var d time.Duration
	switch k & 3 {
	case 0:
		d = time.Duration(k>>2+1) * time.Millisecond
	case 1:
		d = time.Duration(k>>2+1) * 10 * time.Millisecond
	case 2:
		d = time.Duration(k>>2+1) * 200 * time.Millisecond
	case 3:
		d = time.Duration(k>>2+1) * 2 * time.Second
	}
	f.clk.Advance(d)
	f.n.Do(func() {})
}

// write queues application data (copied or referenced, with or without PSH) and sends.
func (f *fuzzConn) write(pr *prog) {
	k := pr.u16()
	fl := pr.u8()
	f.n.Do(func() {
		if !f.usable() {
			return
		}
		n := k % (3*f.mss + 1)
		if fl&8 != 0 {
			n = k % 40000
		}
		d := make([]byte, n)
		for i := range d {
			d[i] = appByte(f.written + i)
		}
		var wf WriteFlags
		if fl&1 == 0 {
			wf |= WriteCopy
		}
		if fl&2 != 0 {
			wf |= WriteMore
		}
		var err error
		if fl&4 != 0 && n > 0 {
			// A chain the application built: a pbuf per 700 bytes.
			var p *pbuf.Pbuf
			for off := 0; off < n; off += 700 {
				q, e := f.n.Alloc.Alloc(pbuf.LayerRaw, min(700, n-off), pbuf.RAM)
				if e != nil {
					if p != nil {
						p.Free()
					}
					return
				}
				_ = q.CopyIn(d[off:off+q.TotLen()], 0)
				if p == nil {
					p = q
				} else {
					pbuf.Cat(p, q)
				}
			}
			err = f.c.WritePbuf(p, wf)
		} else {
			err = f.c.Write(d, wf)
		}
		if err == nil {
			f.written += n
		}
		// As the netconn layer does: the raw API leaves sending to Output.
		_ = f.c.Output()
	})
}

// appWrite writes n bytes of the application's stream (copied) and sends. Core context.
func (f *fuzzConn) appWrite(n int) {
	d := make([]byte, n)
	for i := range d {
		d[i] = appByte(f.written + i)
	}
	if err := f.c.Write(d, WriteCopy); err != nil {
		f.t.Fatal(err)
	}
	f.written += n
	_ = f.c.Output()
}

// close ends the application's side: Shutdown(tx), Shutdown(rx), Close or Abort.
func (f *fuzzConn) close(k int) {
	f.n.Do(func() {
		if !f.usable() {
			return
		}
		switch k % 8 {
		case 0, 1:
			_ = f.c.Shutdown(false, true)
		case 2:
			_ = f.c.Shutdown(true, false)
		case 3, 4, 5:
			_ = f.c.Close()
			f.closed = true
		case 6:
			f.c.Abort()
			f.closed = true
		case 7:
			if f.unread > 0 {
				f.c.Recved(f.unread)
				f.unread = 0
			}
			_ = f.c.Close()
			f.closed = true
		}
	})
}

// pools takes all of a pool (TCP_SEG, PBUF_POOL, the heap) or gives back what was taken.
func (f *fuzzConn) pools(k int) {
	f.n.Do(func() {
		t := f.n.tcp
		switch k % 4 {
		case 0:
			for s := t.segs.Get(); s != nil; s = t.segs.Get() {
				f.segs = append(f.segs, s)
			}
		case 1:
			for {
				p, err := f.n.Alloc.Alloc(pbuf.LayerRaw, 64, pbuf.POOL)
				if err != nil {
					break
				}
				f.pbufs = append(f.pbufs, p)
			}
		case 2:
			for size := 64 << 10; size >= 64; {
				p, err := f.n.Alloc.Alloc(pbuf.LayerRaw, size, pbuf.RAM)
				if err != nil || p.Next() != nil {
					if p != nil {
						p.Free()
					}
					size /= 2
					continue
				}
				f.heap = append(f.heap, p)
			}
		case 3:
			f.release()
		}
	})
}

// release gives back everything pools took. Core context.
func (f *fuzzConn) release() {
	for _, s := range f.segs {
		f.n.tcp.segs.Put(s)
	}
	for _, p := range f.pbufs {
		p.Free()
	}
	for _, p := range f.heap {
		p.Free()
	}
	f.segs, f.pbufs, f.heap = nil, nil, nil
}

// options changes what the application may change at any time.
func (f *fuzzConn) options(k, v int) {
	f.n.Do(func() {
		if !f.usable() {
			return
		}
		c := f.c
		switch k % 6 {
		case 0:
			c.SetNoDelay(v&1 != 0)
		case 1:
			c.SetKeepAlive(v&1 != 0, time.Duration(v>>1+1)*time.Second, time.Second, 2)
		case 2:
			if v&1 != 0 {
				c.OnPoll(func(*PCB) {}, time.Duration(v>>1+1)*100*time.Millisecond)
			} else {
				c.OnPoll(nil, 0)
			}
		case 3:
			c.SetRcvBuf(v * 512)
		case 4:
			c.SetSndBuf(v * 512)
		case 5:
			_ = c.Output()
		}
	})
}

// icmp delivers a Packet Too Big for a segment in flight.
func (f *fuzzConn) icmp(k int) {
	f.n.Do(func() {
		if !f.alive() || f.c.sndNxt == f.c.sndUna {
			return
		}
		c := f.c
		q := make([]byte, 28)
		q[0] = 0x45
		binary.BigEndian.PutUint16(q[20:], c.lport)
		binary.BigEndian.PutUint16(q[22:], c.rport)
		binary.BigEndian.PutUint32(q[24:], c.sndUna+uint32(k)%(c.sndNxt-c.sndUna))
		h := &ip.Header{Src: addrA, Dst: addrB, Proto: wire.ProtoTCP, HeaderLen: 20}
		f.n.tcp.ControlInput(h, ip.ControlPacketTooBig, 500+k%1100, q)
	})
}

// finish ends the program: the batch, the memory taken, the connection and every other PCB
// go, time runs out every timer, and every pool must be back to zero.
func (f *fuzzConn) finish() {
	n := f.n
	if f.t.Failed() {
		return
	}
	n.Do(func() {
		if f.batch {
			n.tcp.EndBatch()
		}
		f.release()
		if f.alive() {
			if err := f.c.violation(); err != "" {
				f.t.Fatal(f.c.invariantReport(err))
			}
		}
		for c := n.tcp.all.head; c != nil; c = n.tcp.all.head {
			c.Abort()
		}
	})
	f.clk.Advance(time.Minute)
	n.Do(func() {})
	if f.failure != "" {
		f.t.Fatal(f.failure)
	}
	for _, p := range n.Pools.Snapshot(nil) {
		want := 0
		if p.Name == memp.TCPPCBListen.String() && f.cport == fuzzPort {
			want = 1
		}
		if p.Used != want {
			f.t.Errorf("pool %s: %d in use after every connection was aborted", p.Name, p.Used)
		}
	}
	if h := n.Alloc.HeapStats(); h.Used != 0 {
		f.t.Errorf("heap: %d bytes in use after every connection was aborted", h.Used)
	}
	n.Close()
}

// fuzzConnSeeds are programs worth starting from.
func fuzzConnSeeds() [][]byte {
	b := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	write := func(n int) []byte { return []byte{opWrite, byte(n >> 8), byte(n), 0} }
	ackAll := []byte{opAck, 0, 0, 0, 0, 4, 3, 1, 0, 0, 0, 0}
	ackUna := []byte{opAck, 0, 0, 0, 0, 0, 3, 1, 0, 0, 0, 0}
	zeroWnd := []byte{opAck, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0, 0}
	data := func(n int) []byte { return []byte{opSegment, 0, byte(n >> 8), byte(n), 0, 0, 3, 1, 0, 0, 0, 0} }
	ooo := func(n int) []byte { return []byte{opSegment, 4, byte(n >> 8), byte(n), 0, 0, 3, 1, 0, 0, 5, 0} }
	fin := []byte{opSegment, 0, 0, 0, 0, 0, 3, 1, 0, 0, 0, 0}
	fin[4] = 2 // flagB: FIN
	clock := func(k byte) []byte { return []byte{opClock, k} }
	sackAck := []byte{opAck, 0, 0, 0, 0, 0, 3, 0x19, 0, 0, 0x12, 0x34}
	return [][]byte{
		// Passive open with everything, a bulk write acknowledged in pieces, close.
		b([]byte{2 | 4 | 8}, write(5000), ackUna, ackAll, write(3000), ackAll, []byte{opClose, 3}, ackAll, fin, clock(3)),
		// Active open, data in both directions, out of order and filled, FIN from the peer.
		b([]byte{1 | 2 | 4 | 8}, data(1000), ooo(500), data(300), write(2000), ackAll, []byte{opRecved, 255}, fin, clock(2), []byte{opClose, 4}),
		// Zero window with data queued: persist probes, then the window opens.
		b([]byte{2 | 4}, write(4000), zeroWnd, clock(2), clock(6), clock(10), ackAll, clock(1)),
		// Losses: SACKed segments, RTOs, recovery.
		b([]byte{2 | 4 | 8 | 16}, write(12000), sackAck, sackAck, sackAck, clock(2), clock(6), ackUna, ackAll),
		// Reno (no SACK): duplicate ACKs, fast retransmit, RTO.
		b([]byte{16}, write(9000), ackUna, ackUna, ackUna, ackUna, clock(6), ackAll),
		// Memory exhausted under a write, given back, then a TIME-WAIT that runs out.
		b([]byte{2 | 4 | 8}, []byte{opPools, 0}, write(3000), clock(5), []byte{opPools, 3}, clock(5), ackAll,
			[]byte{opClose, 0}, ackAll, fin, clock(3), clock(3)),
	}
}

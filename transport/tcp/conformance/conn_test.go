package conformance

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

// Ports: the stack listens on listenPort; the test connects from peerPort, and the stack's
// active opens go to remotePort.
const (
	listenPort = 80
	peerPort   = 40000
	remotePort = 8080
	peerISS    = 1_000_000
)

// rec records what a PCB's callbacks reported.
type rec struct {
	data      []byte
	fins      int // RecvFunc calls with a nil chain
	sent      int
	sentCalls int
	errs      []error
	connected int
	polls     int
	// manualRecved: RecvFunc does not call Recved, the test does (to hold the window).
	manualRecved bool
	// held keeps delivered chains unfreed while manualRecved tests look at them.
	unread int
	// recvHook, when set, runs at the end of each RecvFunc call (after the chain was
	// recorded and freed).
	recvHook func(c *tcp.PCB, n int)
	dead     bool
}

func (r *rec) err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return r.errs[len(r.errs)-1]
}

// watch sets every callback of pcb to record into a new rec.
func (e *env) watch(pcb *tcp.PCB) *rec {
	r := &rec{}
	pcb.OnRecv(func(c *tcp.PCB, p *pbuf.Pbuf) {
		if p == nil {
			r.fins++
			return
		}
		n := p.TotLen()
		r.data = p.Bytes(r.data)
		p.Free()
		if r.manualRecved {
			r.unread += n
		} else {
			c.Recved(n)
		}
		if r.recvHook != nil {
			r.recvHook(c, n)
		}
	})
	pcb.OnSent(func(c *tcp.PCB, n int) { r.sent += n; r.sentCalls++ })
	pcb.OnErr(func(c *tcp.PCB, err error) { r.errs = append(r.errs, err); r.dead = true })
	return r
}

// listener is a listening PCB and the connections it accepted.
type listener struct {
	l        *tcp.Listener
	accepted []*tcp.PCB
	recs     []*rec
	// onAccept, when set, replaces the default accept behaviour (record and watch).
	onAccept func(l *tcp.Listener, c *tcp.PCB)
}

// listen binds a PCB to the local address of the family at port and listens.
func (e *env) listen(port uint16, backlog int) *listener {
	e.t.Helper()
	return e.listenWith(port, backlog, nil)
}

// listenWith is listen with setup (may be nil) applied to the PCB before Bind.
func (e *env) listenWith(port uint16, backlog int, setup func(*tcp.PCB)) *listener {
	e.t.Helper()
	pcb, err := e.tcp.NewPCB()
	if err != nil {
		e.t.Fatalf("NewPCB: %v", err)
	}
	if setup != nil {
		setup(pcb)
	}
	if err := pcb.Bind(netip.AddrPortFrom(e.local, port)); err != nil {
		e.t.Fatalf("Bind: %v", err)
	}
	l, err := pcb.Listen(backlog)
	if err != nil {
		e.t.Fatalf("Listen: %v", err)
	}
	ls := &listener{l: l}
	l.OnAccept(func(tl *tcp.Listener, c *tcp.PCB) {
		if ls.onAccept != nil {
			ls.onAccept(tl, c)
			return
		}
		ls.accepted = append(ls.accepted, c)
		ls.recs = append(ls.recs, e.watch(c))
	})
	return ls
}

// synRcvd listens on listenPort (backlog 0) and plays the plain peer's SYN to it: the
// connection is in SYN-RECEIVED, the stack's SYN-ACK consumed.
func (e *env) synRcvd() (*listener, *conn) {
	e.t.Helper()
	ls := e.listen(listenPort, 0)
	return ls, e.synToListener(ls, plain())
}

// passiveOpened listens on listenPort (backlog 0) and completes the plain peer's handshake
// to it: the connection is ESTABLISHED and accepted.
func (e *env) passiveOpened() (*listener, *conn) {
	e.t.Helper()
	ls := e.listen(listenPort, 0)
	return ls, e.passiveOpen(ls, plain())
}

// peerOpts is what the peer offers in its SYN or SYN-ACK.
type peerOpts struct {
	mss  uint16 // 0: no MSS option
	ws   int    // < 0: no window scale option
	sack bool
	ts   bool
	wnd  uint16 // window field of the SYN (never scaled, RFC 7323 §2.2)
	// dataWnd is the window field of later segments (scaled by ws when both sides offered
	// it); 0 means wnd.
	dataWnd uint16
	iss     uint32
	port    uint16 // peer's port (0: peerPort)
}

// plain is a peer without the optional options: MSS 1460, window 65535.
func plain() peerOpts { return peerOpts{mss: 1460, ws: -1, wnd: 0xffff, iss: peerISS} }

// from is po with the peer's port set to port: a second peer beside the test's own.
func (po peerOpts) from(port uint16) peerOpts {
	po.port = port
	return po
}

// modern is a peer offering everything: MSS 1460, WS 7, SACK, timestamps.
func modern() peerOpts {
	return peerOpts{mss: 1460, ws: 7, sack: true, ts: true, wnd: 0xffff, dataWnd: 0xffff >> 2, iss: peerISS}
}

func (po peerOpts) synOptions(e *env) wire.TCPOptions {
	var o wire.TCPOptions
	if po.mss != 0 {
		o.HasMSS, o.MSS = true, po.mss
	}
	if po.ws >= 0 {
		o.HasWindowScale, o.WindowScale = true, uint8(po.ws)
	}
	o.SACKPermitted = po.sack
	if po.ts {
		o.HasTimestamps, o.TSVal = true, e.peerTS
		e.peerTS++
	}
	return o
}

// conn is one connection seen from the peer's side.
type conn struct {
	e     *env
	pcb   *tcp.PCB
	rec   *rec
	lport uint16 // the stack's port
	rport uint16 // the peer's port

	iss, irs uint32 // the stack's and the peer's initial sequence numbers
	// stackNxt is the next sequence number the stack sends, as far as the test has seen it
	// (the peer's RCV.NXT); peerNxt is the peer's SND.NXT.
	stackNxt, peerNxt uint32
	wnd               uint16 // window field of the peer's segments

	po       peerOpts
	synack   *rxSeg // the stack's SYN or SYN-ACK
	wsOK     bool   // both sides offered window scaling
	stackWS  uint8  // the shift the stack announced
	tsOK     bool
	sackOK   bool
	stackMSS int // MSS option the stack announced
}

// seg builds a segment from the peer at peerNxt acknowledging stackNxt.
func (c *conn) seg(flags wire.TCPFlags, data []byte) segment {
	s := segment{srcPort: c.rport, dstPort: c.lport, seq: c.peerNxt, ack: c.stackNxt,
		flags: flags, wnd: c.wnd, data: data}
	if c.tsOK {
		s.opts.HasTimestamps, s.opts.TSVal, s.opts.TSEcr = true, c.e.peerTS, c.e.lastTSval
		c.e.peerTS++
	}
	return s
}

// send injects a segment built by seg and advances peerNxt past it.
func (c *conn) send(flags wire.TCPFlags, data []byte) {
	c.e.t.Helper()
	s := c.seg(flags, data)
	c.e.inject(s)
	c.peerNxt += uint32(len(data))
	if flags.Has(wire.TCPFlagSYN) {
		c.peerNxt++
	}
	if flags.Has(wire.TCPFlagFIN) {
		c.peerNxt++
	}
}

// inject sends s as is.
func (c *conn) inject(s segment) { c.e.t.Helper(); c.e.inject(s) }

// ack sends a pure ACK for everything seen.
func (c *conn) ack() { c.e.t.Helper(); c.send(wire.TCPFlagACK, nil) }

// ackTo sends a pure ACK for seq with the current window.
func (c *conn) ackTo(seq uint32) {
	c.e.t.Helper()
	s := c.seg(wire.TCPFlagACK, nil)
	s.ack = seq
	c.e.inject(s)
}

// expectAck expects a pure ACK at stackNxt acknowledging peerNxt.
func (c *conn) expectAck(why string) *rxSeg {
	c.e.t.Helper()
	s := c.e.expectSeg(why, wire.TCPFlagACK, c.stackNxt, c.peerNxt)
	if len(s.data) != 0 {
		c.e.t.Fatalf("%s: expected a pure ACK, got %v", why, s)
	}
	return s
}

// expectData expects a data segment at stackNxt of n bytes (n < 0: any length, but some) and
// advances stackNxt past it.
func (c *conn) expectData(why string, n int) *rxSeg {
	c.e.t.Helper()
	s := c.e.expectSeg(why, wire.TCPFlagACK, c.stackNxt, c.peerNxt)
	if n >= 0 && len(s.data) != n || n < 0 && len(s.data) == 0 {
		c.e.t.Fatalf("%s: expected %d bytes of data, got %v", why, n, s)
	}
	c.stackNxt += uint32(len(s.data))
	return s
}

// window is the peer's receive window (bytes) a window field stands for.
func (c *conn) stackWindow(s *rxSeg) int {
	if c.wsOK {
		return int(s.Window) << c.stackWS
	}
	return int(s.Window)
}

// peerWindowField returns the window field for bytes of peer receive window.
func (c *conn) peerWindowField(bytes int) uint16 {
	if c.wsOK {
		bytes >>= c.po.ws
	}
	if bytes > 0xffff {
		bytes = 0xffff
	}
	return uint16(bytes)
}

// noteSyn records the options of the stack's SYN or SYN-ACK.
func (c *conn) noteSyn(s *rxSeg) {
	c.synack = s
	o := s.Options
	c.wsOK = o.HasWindowScale && c.po.ws >= 0
	c.stackWS = min(o.WindowScale, 14)
	c.tsOK = o.HasTimestamps && c.po.ts
	c.sackOK = o.SACKPermitted && c.po.sack
	if o.HasMSS {
		c.stackMSS = int(o.MSS)
	}
	n := negotiated{ts: c.tsOK, sack: c.sackOK, peerMSS: int(c.po.mss)}
	if c.wsOK {
		n.shift = c.stackWS
	}
	if c.po.mss == 0 {
		n.peerMSS = 536 // RFC 9293 §3.7.1
		if c.e.fam == v6 {
			n.peerMSS = 1220 // RFC 8200 §8.3
		}
	}
	c.e.negotiated[[2]uint16{c.lport, c.rport}] = n
	c.wnd = c.po.wnd
	if c.po.dataWnd != 0 {
		c.wnd = c.po.dataWnd
	}
	if !c.wsOK {
		c.wnd = c.po.wnd
	}
}

// passiveOpen runs the three-way handshake against ls from the peer and returns the
// accepted connection.
func (e *env) passiveOpen(ls *listener, po peerOpts) *conn {
	e.t.Helper()
	c := e.synToListener(ls, po)
	n := len(ls.accepted)
	c.ack()
	if len(ls.accepted) != n+1 {
		e.t.Fatalf("handshake ACK: AcceptFunc not called (accepted %d)", len(ls.accepted))
	}
	c.pcb, c.rec = ls.accepted[n], ls.recs[n]
	if st := c.pcb.State(); st != tcp.StateEstablished {
		e.t.Fatalf("accepted PCB in %v, want ESTABLISHED", st)
	}
	e.expectNothing("after the handshake ACK")
	return c
}

// synToListener sends the peer's SYN and checks the SYN-ACK; the connection is left in
// SYN-RECEIVED.
func (e *env) synToListener(ls *listener, po peerOpts) *conn {
	e.t.Helper()
	port := po.port
	if port == 0 {
		port = peerPort
	}
	c := &conn{e: e, lport: ls.l.Addr().Port(), rport: port, irs: po.iss, po: po, wnd: po.wnd}
	e.inject(segment{srcPort: c.rport, dstPort: c.lport, seq: c.irs, flags: wire.TCPFlagSYN,
		wnd: po.wnd, opts: po.synOptions(e)})
	c.peerNxt = c.irs + 1
	s := e.next()
	// A SYN that finds TCP_PCB exhausted may first recycle an orphaned connection (one the
	// application closed, waiting only on its peer): that connection's RST leaves first.
	for s.Flags.Has(wire.TCPFlagRST) && s.DstPort != c.rport {
		s = e.next()
	}
	if !flagsEq(s.Flags, wire.TCPFlagSYN|wire.TCPFlagACK) || s.AckNum != c.irs+1 {
		e.t.Fatalf("SYN to a listener: expected [SYN|ACK] ack=%d, got %v", c.irs+1, s)
	}
	if len(s.data) != 0 {
		e.t.Fatalf("SYN-ACK carries data: %v", s)
	}
	c.iss = s.SeqNum
	c.stackNxt = c.iss + 1
	c.noteSyn(s)
	return c
}

// activeOpen connects a new PCB to the peer and completes the handshake with a SYN-ACK
// offering po.
func (e *env) activeOpen(po peerOpts) *conn {
	e.t.Helper()
	c, connected := e.connect(nil)
	e.synAck(c, po)
	c.expectAck("ACK of our SYN-ACK")
	if *connected != 1 {
		e.t.Fatalf("ConnectedFunc called %d times, want 1", *connected)
	}
	if st := c.pcb.State(); st != tcp.StateEstablished {
		e.t.Fatalf("after SYN-ACK: state %v, want ESTABLISHED", st)
	}
	return c
}

// connect creates a PCB, connects it to the peer's remotePort and consumes the SYN. setup,
// when set, runs on the PCB before Connect.
func (e *env) connect(setup func(*tcp.PCB)) (*conn, *int) {
	e.t.Helper()
	pcb, err := e.tcp.NewPCB()
	if err != nil {
		e.t.Fatalf("NewPCB: %v", err)
	}
	c := &conn{e: e, pcb: pcb, rport: remotePort}
	c.rec = e.watch(pcb)
	if setup != nil {
		setup(pcb)
	}
	connected := new(int)
	if err := pcb.Connect(netip.AddrPortFrom(e.remote, remotePort), func(*tcp.PCB) { *connected++ }); err != nil {
		e.t.Fatalf("Connect: %v", err)
	}
	if st := pcb.State(); st != tcp.StateSynSent {
		e.t.Fatalf("after Connect: state %v, want SYN-SENT", st)
	}
	s := e.next()
	if !flagsEq(s.Flags, wire.TCPFlagSYN) {
		e.t.Fatalf("Connect: expected [SYN], got %v", s)
	}
	if s.src != e.local || s.dst != e.remote || s.DstPort != remotePort {
		e.t.Fatalf("SYN addressed %v:%d -> %v:%d", s.src, s.SrcPort, s.dst, s.DstPort)
	}
	c.lport = s.SrcPort
	c.iss = s.SeqNum
	c.stackNxt = c.iss + 1
	c.synack = s
	return c, connected
}

// synAck answers the stack's SYN with a SYN-ACK offering po.
func (e *env) synAck(c *conn, po peerOpts) {
	e.t.Helper()
	c.po = po
	c.irs = po.iss
	c.noteSyn(c.synack)
	e.inject(segment{srcPort: c.rport, dstPort: c.lport, seq: c.irs, ack: c.iss + 1,
		flags: wire.TCPFlagSYN | wire.TCPFlagACK, wnd: po.wnd, opts: po.synOptions(e)})
	c.peerNxt = c.irs + 1
}

// established returns a connection in ESTABLISHED: passive (through a listener on
// listenPort) or active.
func (e *env) established(passive bool, po peerOpts) *conn {
	e.t.Helper()
	if passive {
		return e.passiveOpen(e.listen(listenPort, 0), po)
	}
	return e.activeOpen(po)
}

// write queues data (copied) and calls Output.
func (c *conn) write(data []byte) {
	c.e.t.Helper()
	if err := c.pcb.Write(data, tcp.WriteCopy); err != nil {
		c.e.t.Fatalf("Write(%d bytes): %v", len(data), err)
	}
	if err := c.pcb.Output(); err != nil {
		c.e.t.Fatalf("Output: %v", err)
	}
}

// state checks the PCB's state.
func (c *conn) state(why string, want tcp.State) {
	c.e.t.Helper()
	if got := c.pcb.State(); got != want {
		c.e.t.Fatalf("%s: state %v, want %v", why, got, want)
	}
}

// survived fails the test unless c is still ESTABLISHED and its ErrFunc was not called: what
// the test sent (a RST, a SYN) did not kill it.
func (c *conn) survived(why string) {
	c.e.t.Helper()
	if len(c.rec.errs) != 0 {
		c.e.t.Fatalf("%s: the connection was killed: %v", why, c.rec.errs)
	}
	c.state(why, tcp.StateEstablished)
}

// rto is how long to wait for sure for a retransmission timeout in these tests.
const rtoWait = 3 * time.Second

// delayAccepts makes ls's AcceptFunc hold each connection it records against the backlog
// (BacklogDelayed) until the test calls BacklogAccepted.
func (ls *listener) delayAccepts(e *env) {
	ls.onAccept = func(l *tcp.Listener, p *tcp.PCB) {
		p.BacklogDelayed()
		ls.accepted = append(ls.accepted, p)
		ls.recs = append(ls.recs, e.watch(p))
	}
}

// expectAccepted fails the test unless ls's AcceptFunc has run n times.
func (ls *listener) expectAccepted(t *testing.T, n int, why string) {
	t.Helper()
	if len(ls.accepted) != n {
		t.Fatalf("%s: %d connections accepted, want %d", why, len(ls.accepted), n)
	}
}

// dupAcks acknowledges up to seq, then repeats that ACK n times: n duplicate ACKs (RFC 5681
// §2).
func (c *conn) dupAcks(seq uint32, n int) {
	c.e.t.Helper()
	for range n + 1 {
		c.ackTo(seq)
	}
}

// synAt sends the peer's SYN for c's 4-tuple at c.peerNxt+off (plain options): a new
// incarnation of the connection (RFC 6191) or a stray SYN.
func (c *conn) synAt(off uint32) {
	c.e.t.Helper()
	c.e.inject(segment{srcPort: c.rport, dstPort: c.lport, seq: c.peerNxt + off, flags: wire.TCPFlagSYN, wnd: 1000,
		opts: plain().synOptions(c.e)})
}

// crossSYN plays the peer of a connection in SYN-SENT (e.connect) sending its own SYN
// (plain options) instead of a SYN-ACK: a simultaneous open (RFC 9293 §3.5 Figure 8). It
// returns the stack's answer, which must be <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>.
func (c *conn) crossSYN() *rxSeg {
	c.e.t.Helper()
	c.po = plain()
	c.irs = peerISS
	c.noteSyn(c.synack)
	c.e.inject(segment{srcPort: remotePort, dstPort: c.lport, seq: c.irs, flags: wire.TCPFlagSYN, wnd: 0xffff,
		opts: c.po.synOptions(c.e)})
	c.peerNxt = c.irs + 1
	return c.e.expectSeg("SYN in SYN-SENT", wire.TCPFlagSYN|wire.TCPFlagACK, c.iss, c.irs+1)
}

// injectCrafted builds s, lets alter change the TCP segment's bytes, recomputes the
// checksum and sends it to c's stack in an IP packet; it checks that s's data was
// delivered.
func (c *conn) injectCrafted(s segment, alter func(b []byte), why string) {
	c.e.t.Helper()
	e := c.e
	b := s.build(e.remote, e.local)
	alter(b)
	wire.TCP(b).SetChecksum(e.remote, e.local)
	e.injected++
	e.injectIP(e.remote, e.local, b)
	c.peerNxt += uint32(len(s.data))
	if string(c.rec.data) != string(s.data) {
		e.t.Errorf("%s: delivered %q, want %q", why, c.rec.data, s.data)
	}
}

// injectFramed sends pkt, an IP packet the test built (with options, extension headers or
// padding) around seg, the TCP segment of s, to c's stack; it checks that s's data was
// delivered.
func (c *conn) injectFramed(pkt, seg []byte, s segment, why string) {
	c.e.t.Helper()
	e := c.e
	e.injected++
	e.notePeerEnd(seg, e.remote, e.local)
	e.injectFrame(pkt)
	c.peerNxt += uint32(len(s.data))
	if string(c.rec.data) != string(s.data) {
		e.t.Errorf("%s: delivered %q, want %q", why, c.rec.data, s.data)
	}
}

// checkOpened checks pcb's Info right after a handshake in which the peer offered
// everything (modern; o is the stack's SYN or SYN-ACK options), that PassiveOpens (passive)
// or ActiveOpens and Established each counted one, and that nothing more was sent.
func (c *conn) checkOpened(pcb *tcp.PCB, o wire.TCPOptions, passive bool) {
	c.e.t.Helper()
	t := c.e.t
	in := pcb.Info()
	if !in.SACK || !in.Timestamps || in.SndWndScale != 7 || in.RcvWndScale != o.WindowScale {
		t.Errorf("Info after a full-option handshake: %+v (our ws %d)", in, o.WindowScale)
	}
	if in.SndUna != c.iss+1 || in.SndNxt != c.iss+1 || in.RcvNxt != c.irs+1 {
		t.Errorf("Info: SndUna %d SndNxt %d RcvNxt %d, want %d %d %d", in.SndUna, in.SndNxt, in.RcvNxt, c.iss+1, c.iss+1, c.irs+1)
	}
	x := c.e.ext()
	name, opens := "ActiveOpens", x.ActiveOpens
	if passive {
		name, opens = "PassiveOpens", x.PassiveOpens
	}
	if opens != 1 || x.Established != 1 {
		t.Errorf("%s %d Established %d, want 1 and 1", name, opens, x.Established)
	}
	c.e.expectNothing("after the handshake")
}

package tcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// iceptRig is one node whose segments are crafted: they reach Proto.Input with the header
// a test chooses (Intercepted or not), and what the node sends is parsed and counted.
type iceptRig struct {
	t     testing.TB
	n     *node
	clk   *clock.Fake
	sent  int                   // segments the node sent
	rsts  int                   // of which RSTs
	iss   map[iceptKey]uint32   // the node's ISS per 4-tuple (from its SYN-ACKs)
	last  wire.TCPFlags         // flags of the last segment sent
	buf   []byte                // segment under construction
	hdr   ip.Header             // the header of the segment being injected
	addrs map[netip.Addr]string // for failure messages
}

type iceptKey struct {
	client, dst netip.AddrPort
}

type rigEP struct{ r *iceptRig }

func (e rigEP) Medium() link.Medium      { return link.MediumIP }
func (e rigEP) MTU() int                 { return 1500 }
func (e rigEP) HardwareAddr() [6]byte    { return [6]byte{} }
func (e rigEP) Attach(d link.Dispatcher) {}
func (e rigEP) Close() error             { return nil }
func (e rigEP) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	var b [2048]byte
	for _, p := range pkts {
		n := min(p.TotLen(), len(b))
		p.CopyOut(b[:n], 0)
		p.Free()
		e.r.frame(b[:n])
	}
	return len(pkts), nil
}

// frame records one IP packet the node sent.
func (r *iceptRig) frame(b []byte) {
	var src, dst netip.Addr
	var seg []byte
	switch {
	case len(b) >= 40 && b[0]>>4 == 4 && b[9] == wire.ProtoTCP:
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		seg = b[int(b[0]&15)*4:]
	case len(b) >= 60 && b[0]>>4 == 6 && b[6] == wire.ProtoTCP:
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		seg = b[40:]
	default:
		return
	}
	if len(seg) < wire.TCPMinHeaderLen {
		return
	}
	tcp := wire.TCP(seg)
	r.sent++
	r.last = tcp.Flags()
	if r.last&wire.TCPFlagRST != 0 {
		r.rsts++
	}
	if r.last&(wire.TCPFlagSYN|wire.TCPFlagACK) == wire.TCPFlagSYN|wire.TCPFlagACK {
		k := iceptKey{netip.AddrPortFrom(dst, tcp.DstPort()), netip.AddrPortFrom(src, tcp.SrcPort())}
		r.iss[k] = tcp.SeqNum()
	}
}

func newIceptRig(t testing.TB, o func(*struct{ pcbs int })) *iceptRig {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	opts := testOpts()
	cfg := struct{ pcbs int }{opts.MempNumTCPPCB}
	if o != nil {
		o(&cfg)
	}
	opts.MempNumTCPPCB = cfg.pcbs
	n := newNode(t, clk, opts, 9)
	r := &iceptRig{t: t, n: n, clk: clk, iss: map[iceptKey]uint32{}, buf: make([]byte, 2048)}
	n.Attach(rigEP{r}, netip.PrefixFrom(addrA, 24), netip.PrefixFrom(addrA6, 64))
	return r
}

// inject delivers a segment from client to dst (with data bytes of payload), as the IP
// layer would with Intercepted set to icept; it takes the core lock (what the node sends is
// seen when it is released).
func (r *iceptRig) inject(client, dst netip.AddrPort, icept bool, flags wire.TCPFlags, seq, ack uint32, opts wire.TCPOptions, data int) {
	rp := wire.TCPRepr{SrcPort: client.Port(), DstPort: dst.Port(), SeqNum: seq, AckNum: ack, Flags: flags,
		Window: 0xffff, PayloadLen: data, Options: opts}
	hl := rp.HeaderLen()
	b := r.buf[:hl+data]
	for i := range data {
		b[hl+i] = byte(i)
	}
	if err := rp.Emit(b, client.Addr(), dst.Addr()); err != nil {
		return
	}
	r.n.Do(func() {
		p, err := r.n.Alloc.Alloc(pbuf.LayerRaw, len(b), pbuf.POOL)
		if err != nil {
			return
		}
		_ = p.CopyIn(b, 0)
		hl4 := 20
		if dst.Addr().Is6() {
			hl4 = 40
		}
		r.hdr = ip.Header{Src: client.Addr(), Dst: dst.Addr(), Proto: wire.ProtoTCP, TTL: 64, HeaderLen: hl4,
			Netif: r.n.Netif, Intercepted: icept}
		r.n.tcp.Input(&r.hdr, p)
	})
}

// TestInterceptDeferredSegments: what an undecided SYN does with each kind of segment:
// nothing is ever sent; a retransmitted SYN is dropped and counted; other segments and a
// RST off RCV.NXT are ignored; a RST at RCV.NXT frees it and its host hears errs.Rst. A
// segment without Intercepted never reaches the intercept listener.
func TestInterceptDeferredSegments(t *testing.T) {
	r := newIceptRig(t, nil)
	defer r.n.Close()
	client := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.9"), 40000)
	dst := netip.AddrPortFrom(iceptDst, 80)
	var offered []*PCB
	var heard error
	var l *Listener
	r.n.Do(func() {
		var err error
		l, err = r.n.tcp.ListenIntercept(4, true)
		if err != nil {
			t.Fatal(err)
		}
		l.OnAccept(func(l *Listener, c *PCB) {})
		l.OnSyn(func(l *Listener, c *PCB) {
			offered = append(offered, c)
			c.OnErr(func(c *PCB, err error) { heard = err })
		})
	})
	{
		syn := wire.TCPOptions{HasMSS: true, MSS: 1460, HasTimestamps: true, TSVal: 5, SACKPermitted: true}
		r.inject(client, dst, true, wire.TCPFlagSYN, 1000, 0, syn, 0)
		syn.TSVal = 7
		r.inject(client, dst, true, wire.TCPFlagSYN, 1000, 0, syn, 0)
		r.inject(client, dst, true, wire.TCPFlagACK, 1001, 12345, wire.TCPOptions{}, 10)
		r.inject(client, dst, true, wire.TCPFlagRST, 5000, 0, wire.TCPOptions{}, 0)
		r.inject(client, dst, true, wire.TCPFlagSYN, 777, 0, wire.TCPOptions{}, 0) // another ISN: ignored
		if len(offered) != 1 || r.sent != 0 {
			t.Fatalf("offered %d, sent %d: want 1, 0", len(offered), r.sent)
		}
		c := offered[0]
		r.n.Do(func() {
			if !c.Undecided() || c.tsRecent != 7 || c.pcbCold != nil {
				t.Errorf("undecided %v tsRecent %d parked %v", c.Undecided(), c.tsRecent, c.pcbCold == nil)
			}
		})
		// Not intercepted: the same 4-tuple's PCB takes it (as any segment), but a new SYN to
		// a non-local address without Intercepted finds no listener: RST, no offer.
		other := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.10"), 40001)
		r.inject(other, dst, false, wire.TCPFlagSYN, 1, 0, wire.TCPOptions{}, 0)
		if len(offered) != 1 || r.rsts != 1 {
			t.Errorf("a SYN without Intercepted: offered %d, RSTs %d", len(offered), r.rsts)
		}
		r.inject(client, dst, true, wire.TCPFlagRST, 1001, 0, wire.TCPOptions{}, 0)
		if !errors.Is(heard, errs.Rst) || r.n.conns() != 0 {
			t.Errorf("RST at RCV.NXT: host heard %v, %d PCBs left", heard, r.n.conns())
		}
		r.n.Do(func() { l.Close() })
	}
	e := r.n.stats().TCPExt
	if e.SynDeduped != 1 || e.InterceptSyn != 1 || e.DropBadRST != 1 || e.ResetsRecv != 1 || r.sent != 1 {
		t.Errorf("SynDeduped %d InterceptSyn %d DropBadRST %d ResetsRecv %d sent %d; want 1 1 1 1 1",
			e.SynDeduped, e.InterceptSyn, e.DropBadRST, e.ResetsRecv, r.sent)
	}
	idle(t, r.n, 0)
}

// FuzzIntercept drives a node's intercept path with a program: segments from a few
// clients to intercepted and local addresses (v4 and v6, any flags, with and without
// Intercepted, handshakes completed from the SYN-ACKs the node sent), the host's
// decisions on undecided SYNs (AcceptSyn, RefuseSyn, Close, Abort), its writes and closes
// on accepted connections, the intercept listener closed and reopened in either mode, an
// ordinary listener beside it, and the clock. TCP_PCB is small, so recycling and the
// oldest undecided SYN's refusal happen. The invariant checker runs after every segment and
// timer; at the end every pool must be back to zero.
//
// A long run: go test -run '^$' -fuzz '^FuzzIntercept$' -fuzztime 5m -parallel 1 ./transport/tcp
func FuzzIntercept(f *testing.F) {
	// Early: a SYN and the handshake's ACK (an accepted connection).
	f.Add([]byte{0, 0, 0, 0, 0, 0, 1, 0, 0, 3, 1})
	// Deferred: a SYN, AcceptSyn, the handshake's ACK, a write.
	f.Add([]byte{1, 0, 0, 0, 0, 0, 3, 0, 0, 1, 0, 0, 3, 1, 4, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 1, 5, 0, 4, 0, 0, 0, 2, 0, 0, 1, 1, 0, 1, 3, 16, 0, 0, 6, 0, 0, 0, 4, 2, 0, 0, 5, 2})
	f.Add([]byte{1, 0, 1, 2, 3, 1, 0, 1, 2, 0, 1, 0, 5, 3, 0, 2, 1, 3, 0, 0, 0, 1, 0, 0, 6, 1, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 1, 1, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 5, 0, 7, 1, 0, 6, 1, 0, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		runIceptProgram(t, prog)
	})
}

type iceptFuzz struct {
	*iceptRig
	l, ord   *Listener
	offered  []pcbRef
	accepted []pcbRef
	next     map[iceptKey]uint32 // the client's next sequence number per 4-tuple
	failure  string
}

type pcbRef struct {
	c   *PCB
	gen uint32
}

func (f *iceptFuzz) live(list []pcbRef, k int) *PCB {
	if len(list) == 0 {
		return nil
	}
	r := list[k%len(list)]
	if r.c.alive(r.gen) {
		return r.c
	}
	return nil
}

var (
	fuzzClients = []netip.Addr{netip.MustParseAddr("198.18.0.9"), netip.MustParseAddr("198.18.0.10"),
		netip.MustParseAddr("fd42:5eed::9")}
	fuzzDsts4 = []netip.Addr{iceptDst, netip.MustParseAddr("198.18.0.78"), addrA}
	fuzzDsts6 = []netip.Addr{iceptDst6, addrA6}
)

func runIceptProgram(t *testing.T, b []byte) {
	if len(b) == 0 {
		return
	}
	pcbs := 3 + int(b[0]>>4)%6
	r := newIceptRig(t, func(c *struct{ pcbs int }) { c.pcbs = pcbs })
	f := &iceptFuzz{iceptRig: r, next: map[iceptKey]uint32{}}
	pr := &prog{b: b, i: 1}
	f.open(b[0]&1 != 0, 1+int(b[0]>>1)%4)
	for steps := 0; !pr.done() && steps < fuzzSteps && !t.Failed() && f.failure == ""; steps++ {
		f.step(pr)
	}
	if f.failure != "" {
		t.Fatal(f.failure)
	}
	r.n.Do(func() {
		if f.l != nil {
			f.l.Close()
		}
		if f.ord != nil {
			f.ord.Close()
		}
		for c := r.n.tcp.all.head; c != nil; c = r.n.tcp.all.head {
			c.Abort()
		}
	})
	r.clk.Advance(time.Minute)
	r.n.Do(func() {})
	for _, p := range r.n.Pools.Snapshot(nil) {
		if (p.Name == memp.TCPPCB.String() || p.Name == memp.TCPPCBListen.String() || p.Name == memp.TCPSeg.String()) && p.Used != 0 {
			t.Errorf("pool %s: %d in use after every connection was aborted", p.Name, p.Used)
		}
	}
	r.n.Close()
}

// open makes the intercept listener (closing the old one).
func (f *iceptFuzz) open(deferred bool, backlog int) {
	f.n.Do(func() {
		if f.l != nil {
			f.l.Close()
			f.l = nil
		}
		l, err := f.n.tcp.ListenIntercept(backlog, deferred)
		if err != nil {
			f.failure = fmt.Sprintf("ListenIntercept: %v", err)
			return
		}
		f.l = l
		l.OnAccept(func(l *Listener, c *PCB) {
			f.accepted = append(f.accepted, pcbRef{c, c.gen()})
			c.OnRecv(func(c *PCB, p *pbuf.Pbuf) {
				if p != nil {
					n := p.TotLen()
					p.Free()
					c.Recved(n)
				}
			})
		})
		l.OnSyn(func(l *Listener, c *PCB) {
			if !c.Undecided() {
				f.failure = fmt.Sprintf("OnSyn with %v (undecided %v)", c.Info(), c.Undecided())
			}
			f.offered = append(f.offered, pcbRef{c, c.gen()})
			c.OnErr(func(c *PCB, err error) {})
		})
	})
}

func (f *iceptFuzz) step(pr *prog) {
	switch op := pr.u8() % 8; op {
	case 0, 1, 2:
		f.segment(pr)
	case 3:
		f.decide(pr.u8(), pr.u8())
	case 4:
		f.conn(pr.u8(), pr.u8())
	case 5:
		d := [...]time.Duration{time.Millisecond, 200 * time.Millisecond, time.Second, 3 * time.Second,
			11 * time.Second, 70 * time.Second, 0, 0}[pr.u8()%8]
		f.clk.Advance(d)
		f.n.Do(func() {})
	case 6:
		k := pr.u8()
		switch k % 4 {
		case 0:
			f.open(k&4 != 0, 1+k>>3%4)
		case 1:
			f.n.Do(func() {
				if f.l != nil {
					f.l.Close()
					f.l = nil
				}
			})
		case 2:
			f.n.Do(func() {
				if f.ord != nil {
					return
				}
				c, err := f.n.tcp.NewPCB()
				if err != nil {
					return // TCP_PCB exhausted
				}
				c.SetReuseAddr(true)
				if c.Bind(netip.AddrPortFrom(netip.Addr{}, 80)) != nil {
					c.Close()
					return
				}
				if f.ord, err = c.Listen(2); err != nil {
					c.Close()
					return
				}
				f.ord.OnAccept(func(l *Listener, c *PCB) {})
			})
		case 3:
			f.n.Do(func() {
				if f.ord != nil {
					f.ord.Close()
					f.ord = nil
				}
				if f.l != nil {
					f.l.SetDeferTimeout(time.Duration(k>>2) * 100 * time.Millisecond)
				}
			})
		}
	case 7:
		f.n.Do(func() {
			f.n.tcp.BeginBatch()
			f.n.tcp.EndBatch()
		})
	}
}

// segment injects one segment: client, destination, flags and numbers from the program.
func (f *iceptFuzz) segment(pr *prog) {
	a, d, fl, kind := pr.u8(), pr.u8(), pr.u8(), pr.u8()
	ca := fuzzClients[a%len(fuzzClients)]
	var da netip.Addr
	if ca.Is4() {
		da = fuzzDsts4[d%len(fuzzDsts4)]
	} else {
		da = fuzzDsts6[d%len(fuzzDsts6)]
	}
	client := netip.AddrPortFrom(ca, 40000+uint16(a>>4&1))
	dst := netip.AddrPortFrom(da, [...]uint16{80, 443}[d>>4&1])
	local := da == addrA || da == addrA6
	icept := !local
	if d&0x80 != 0 {
		icept = !icept // never from the IP layer, but TCP must hold
	}
	k := iceptKey{client, dst}
	isn := uint32(1000 + 100000*uint32(a%8) + uint32(d%8)*7919)
	var seq, ack uint32
	var flags wire.TCPFlags
	var opts wire.TCPOptions
	data := 0
	switch kind % 6 {
	case 0: // SYN (a retransmission when repeated)
		flags, seq = wire.TCPFlagSYN, isn
		opts = wire.TCPOptions{HasMSS: true, MSS: 1460, HasTimestamps: fl&1 != 0, TSVal: uint32(fl), SACKPermitted: fl&2 != 0,
			HasWindowScale: fl&4 != 0, WindowScale: 7}
		f.next[k] = isn + 1
	case 1: // the handshake's ACK, with data sometimes
		seq, ack, flags = f.next[k], f.iss[k]+1, wire.TCPFlagACK
		data = int(fl&3) * 100
		f.next[k] += uint32(data)
	case 2: // FIN
		seq, ack, flags = f.next[k], f.iss[k]+1, wire.TCPFlagACK|wire.TCPFlagFIN
		f.next[k]++
	case 3: // RST at the right place or not
		seq, flags = f.next[k]+uint32(fl&1)*1000, wire.TCPFlagRST
	default: // anything
		seq, ack = isn+uint32(fl)*13, f.iss[k]+uint32(fl>>4)
		flags = wire.TCPFlags(fl) & (wire.TCPFlagFIN | wire.TCPFlagSYN | wire.TCPFlagRST | wire.TCPFlagPSH | wire.TCPFlagACK)
		data = int(fl>>6) * 50
	}
	before := len(f.offered)
	f.inject(client, dst, icept, flags, seq, ack, opts, data)
	if len(f.offered) > before && !icept {
		f.failure = fmt.Sprintf("a segment without Intercepted (to %v) reached the intercept listener", dst)
	}
}

// decide is the host's decision on an undecided SYN.
func (f *iceptFuzz) decide(k, how int) {
	f.n.Do(func() {
		c := f.live(f.offered, k)
		if c == nil {
			return
		}
		switch how % 5 {
		case 0:
			if err := c.AcceptSyn(); err != nil && c.Undecided() {
				f.failure = fmt.Sprintf("AcceptSyn of an undecided PCB: %v", err)
			}
		case 1:
			c.RefuseSyn(true)
		case 2:
			c.RefuseSyn(false)
		case 3:
			_ = c.Close()
		case 4:
			c.SetKeepAlive(true, 0, 0, 0) // an API call that takes and gives back the cold part
		}
	})
}

// conn is the host working on an accepted connection.
func (f *iceptFuzz) conn(k, how int) {
	f.n.Do(func() {
		c := f.live(f.accepted, k)
		if c == nil {
			return
		}
		switch how % 4 {
		case 0:
			var b [300]byte
			binary.BigEndian.PutUint32(b[:], uint32(k))
			_ = c.Write(b[:], WriteCopy)
			_ = c.Output()
		case 1:
			_ = c.Close()
		case 2:
			c.Abort()
		case 3:
			_ = c.Shutdown(false, true)
		}
	})
}

// TestInterceptDedupNoAllocs: a retransmitted SYN of an undecided connection is dropped
// without allocating (a client retries while its host dials).
func TestInterceptDedupNoAllocs(t *testing.T) {
	r := newIceptRig(t, nil)
	defer r.n.Close()
	client := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.9"), 40000)
	dst := netip.AddrPortFrom(iceptDst, 80)
	r.n.Do(func() {
		l, err := r.n.tcp.ListenIntercept(4, true)
		if err != nil {
			t.Fatal(err)
		}
		l.OnSyn(func(l *Listener, c *PCB) {})
	})
	syn := wire.TCPOptions{HasMSS: true, MSS: 1460}
	r.inject(client, dst, true, wire.TCPFlagSYN, 1000, 0, syn, 0)
	rp := wire.TCPRepr{SrcPort: client.Port(), DstPort: dst.Port(), SeqNum: 1000, Flags: wire.TCPFlagSYN, Window: 0xffff, Options: syn}
	b := make([]byte, rp.HeaderLen())
	if err := rp.Emit(b, client.Addr(), dst.Addr()); err != nil {
		t.Fatal(err)
	}
	h := ip.Header{Src: client.Addr(), Dst: dst.Addr(), Proto: wire.ProtoTCP, TTL: 64, HeaderLen: 20, Netif: r.n.Netif, Intercepted: true}
	r.n.Core.Lock()
	allocs := testing.AllocsPerRun(100, func() {
		p, err := r.n.Alloc.Alloc(pbuf.LayerRaw, len(b), pbuf.POOL)
		if err != nil {
			panic(err)
		}
		_ = p.CopyIn(b, 0)
		r.n.tcp.Input(&h, p)
	})
	r.n.Core.Unlock()
	if allocs != 0 {
		t.Errorf("%v allocations per retransmitted SYN", allocs)
	}
	if e := r.n.stats().TCPExt; e.SynDeduped < 100 || r.sent != 0 {
		t.Errorf("SynDeduped %d, sent %d", e.SynDeduped, r.sent)
	}
	r.n.Do(func() { r.n.tcp.icept.Close() })
}

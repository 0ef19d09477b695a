package tcp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// Microbenchmarks of one side: a node whose netif writes into capEP (frames kept only as
// the last one seen), and a fake peer that crafts segments.

type capEP struct {
	last []byte
	n    int
}

func (c *capEP) Medium() link.Medium      { return link.MediumIP }
func (c *capEP) MTU() int                 { return 1500 }
func (c *capEP) HardwareAddr() [6]byte    { return [6]byte{} }
func (c *capEP) Attach(d link.Dispatcher) {}
func (c *capEP) Close() error             { return nil }
func (c *capEP) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	for _, p := range pkts {
		if cap(c.last) < p.TotLen() {
			c.last = make([]byte, 0, 2048)
		}
		c.last = c.last[:p.TotLen()]
		p.CopyOut(c.last, 0)
		c.n++
		p.Free()
	}
	return len(pkts), nil
}

// peer plays the remote end of one connection to node n.
type peer struct {
	n         *node
	ep        *capEP
	c         *PCB
	seq, ack  uint32 // peer's next sequence number, what it acknowledges
	buf       []byte
	dataLen   int
	tsval     uint32
	recvBytes int
	hdr       ip.Header
}

// newPeer makes n (listening on 80) accept a connection from the fake peer, with
// timestamps and SACK.
func newPeer(tb testing.TB) *peer {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	o := testOpts()
	n := newNode(tb, clk, o, 5)
	ep := &capEP{}
	n.Attach(ep, netip.PrefixFrom(addrA, 24))
	tb.Cleanup(n.Close)
	pr := &peer{n: n, ep: ep, seq: 1000, buf: make([]byte, 2048), tsval: 1}
	listenFunc(tb, n, 80, 0, func(l *Listener, c *PCB) {
		pr.c = c
		c.OnRecv(sinkRecv(&pr.recvBytes))
	})
	syn := wire.TCPOptions{HasMSS: true, MSS: 1460, HasWindowScale: true, WindowScale: 7, SACKPermitted: true,
		HasTimestamps: true, TSVal: pr.tsval}
	pr.inject(wire.TCPFlagSYN, nil, &syn)
	synack := wire.TCP(ep.last[20:])
	pr.seq++
	pr.ack = synack.SeqNum() + 1
	pr.inject(wire.TCPFlagACK, nil, nil)
	if pr.c == nil {
		tb.Fatal("no connection")
	}
	return pr
}

// inject sends one segment from the peer (data may be nil).
func (pr *peer) inject(flags wire.TCPFlags, data []byte, opts *wire.TCPOptions) {
	r := wire.TCPRepr{SrcPort: 40000, DstPort: 80, SeqNum: pr.seq, AckNum: pr.ack, Flags: flags,
		Window: 0xffff, PayloadLen: len(data)}
	if opts != nil {
		r.Options = *opts
	} else {
		pr.tsval++
		r.Options = wire.TCPOptions{HasTimestamps: true, TSVal: pr.tsval}
	}
	hl := r.HeaderLen()
	b := pr.buf[:hl+len(data)]
	copy(b[hl:], data)
	_ = r.Emit(b, addrB, addrA)
	pr.n.Do(func() {
		p, err := pr.n.Alloc.Alloc(pbuf.LayerRaw, len(b), pbuf.POOL)
		if err != nil {
			panic(err)
		}
		_ = p.CopyIn(b, 0)
		pr.hdr = ip.Header{Src: addrB, Dst: addrA, Proto: wire.ProtoTCP, TTL: 64, HeaderLen: 20, Netif: pr.n.Netif}
		pr.n.tcp.Input(&pr.hdr, p)
	})
}

// send is step i of the send path: the node writes and sends data, and every second step
// the peer acknowledges all it sent.
func (pr *peer) send(data []byte, i int) {
	c := pr.c
	pr.n.Do(func() {
		_ = c.Write(data, WriteCopy)
		_ = c.Output()
	})
	if i&1 == 1 {
		pr.ack = c.sndNxt
		pr.inject(wire.TCPFlagACK, nil, nil)
	}
}

// recv has the peer send data as the next in-order segment.
func (pr *peer) recv(data []byte) {
	pr.inject(wire.TCPFlagACK, data, nil)
	pr.seq += uint32(len(data))
}

// BenchmarkSegmentInput is the receive path: one in-order full-sized data segment per
// iteration (checksum, demux, delivery to RecvFunc, window update, an ACK every second
// segment).
func BenchmarkSegmentInput(b *testing.B) {
	benchSegments(b, func(pr *peer, data []byte, _ int) { pr.recv(data) })
}

// BenchmarkSegmentOutput is the send path: per iteration one full-sized segment written,
// cut from the send queue and sent, and (every second iteration) the ACK for two segments
// processed.
func BenchmarkSegmentOutput(b *testing.B) { benchSegments(b, (*peer).send) }

// benchSegments runs step b.N times on a new peer with a full-sized segment's data.
func benchSegments(b *testing.B, step func(pr *peer, data []byte, i int)) {
	pr := newPeer(b)
	data := make([]byte, 1448)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		step(pr, data, i)
	}
}

// TestSegmentPathsNoAllocs pins both one-sided paths at zero allocations.
func TestSegmentPathsNoAllocs(t *testing.T) {
	pr := newPeer(t)
	data := make([]byte, 1448)
	if n := testing.AllocsPerRun(1000, func() { pr.recv(data) }); n != 0 {
		t.Errorf("segment input: %v allocations per segment", n)
	}
	if pr.recvBytes < 1000*1448 {
		t.Fatalf("received %d bytes", pr.recvBytes)
	}
	c := pr.c
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		pr.send(data, i)
		i++
	}); n != 0 {
		t.Errorf("segment output: %v allocations per segment", n)
	}
	if c.sndUna != c.sndNxt && int(c.sndNxt-c.sndUna) > 2*1448 {
		t.Errorf("output path: %d bytes unacknowledged", c.sndNxt-c.sndUna)
	}
}

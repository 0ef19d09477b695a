package packet

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/wire"
)

// The stack's addresses and the host's: the host writes packets from its own to the
// stack's and reads the answers.
var (
	stackV4 = netip.MustParseAddr("198.18.77.1")
	hostV4  = netip.MustParseAddr("198.18.77.2")
	stackV6 = netip.MustParseAddr("fd42:5eed::1")
	hostV6  = netip.MustParseAddr("fd42:5eed::2")
)

// newTestLink returns a link made with c (MTU 1420 unless set) under a stack with the
// given addresses (stackV4 when none) and default routes through the link. When the test
// ends it closes the stack (and with it the link), and checks that the pools are empty
// and no goroutine is left.
func newTestLink(t testing.TB, c Config, addrs ...netip.Addr) (*Link, *stack.Stack) {
	t.Helper()
	stacktest.NoGoroutineLeak(t)
	if c.MTU == 0 {
		c.MTU = 1420
	}
	l, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	o := opt.Client()
	o.IPv6AutoConfig = false // no router solicitations among the packets a test reads
	o.IPv6DupAddrDetectTransmits = 0
	s, err := stack.New(stack.Config{Options: o, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) == 0 {
		addrs = []netip.Addr{stackV4}
	}
	var prefixes []netip.Prefix
	for _, a := range addrs {
		prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	nif, err := s.AddNetif(l.Endpoint(), stack.NetifConfig{Name: "pkt0", Addrs: prefixes})
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	for _, dst := range []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")} {
		if err := s.AddRoute(stack.Route{Dst: dst, Netif: nif}); err != nil {
			s.Close()
			t.Fatal(err)
		}
	}
	stacktest.WaitReady(t, nif)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stack Close: %v", err)
		}
		if _, err := l.Write([][]byte{{0x45}}, 0); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Write after the stack closed: %v, want os.ErrClosed", err)
		}
		stacktest.PoolsZero(t, s)
	})
	return l, s
}

// at returns pkt at offset off of a new buffer (the room a host leaves for its own header).
func at(off int, pkt []byte) []byte { return append(make([]byte, off), pkt...) }

// echoRequest is an ICMP or ICMPv6 echo request (by the family of src) from src to dst.
func echoRequest(src, dst netip.Addr, id, seq uint16, data []byte) []byte {
	m := make([]byte, wire.ICMPv4HeaderLen+len(data))
	copy(m[wire.ICMPv4HeaderLen:], data)
	if src.Is4() {
		r := wire.ICMPv4Repr{Type: wire.ICMPv4EchoRequest, Ident: id, Seq: seq, PayloadLen: len(data)}
		if err := r.Emit(m); err != nil {
			panic(err)
		}
		return iptest.Packet(wire.ProtoICMP, src, dst, m)
	}
	r := wire.ICMPv6Repr{Type: wire.ICMPv6EchoRequest, Ident: id, Seq: seq, PayloadLen: len(data)}
	if err := r.Emit(m, src, dst); err != nil {
		panic(err)
	}
	return iptest.Packet(wire.ProtoICMPv6, src, dst, m)
}

// udpPacket is a UDP datagram from src to dst.
func udpPacket(src, dst netip.AddrPort, data []byte) []byte {
	u := make([]byte, wire.UDPHeaderLen+len(data))
	copy(u[wire.UDPHeaderLen:], data)
	r := wire.UDPRepr{SrcPort: src.Port(), DstPort: dst.Port(), PayloadLen: len(data)}
	if err := r.Emit(u, src.Addr(), dst.Addr()); err != nil {
		panic(err)
	}
	return iptest.Packet(wire.ProtoUDP, src.Addr(), dst.Addr(), u)
}

// parsed is what a test looks at in a packet the host read.
type parsed struct {
	src, dst netip.Addr
	proto    uint8
	l4       []byte // the transport header and payload, checksum verified
}

// parse parses an IP packet the host read and verifies its checksums.
func parse(t testing.TB, b []byte) parsed {
	t.Helper()
	var p parsed
	if len(b) > 0 && b[0]>>4 == 4 {
		if err := wire.CheckIPv4(b); err != nil || !wire.IPv4(b).ValidChecksum() {
			t.Fatalf("bad IPv4 packet (%v): % x", err, b[:min(len(b), 40)])
		}
		ip := wire.IPv4(b)
		p = parsed{ip.Src(), ip.Dst(), ip.Protocol(), b[ip.HeaderLen():ip.TotalLength()]}
	} else {
		if err := wire.CheckIPv6(b); err != nil {
			t.Fatalf("bad IPv6 packet (%v): % x", err, b[:min(len(b), 48)])
		}
		ip := wire.IPv6(b)
		p = parsed{ip.Src(), ip.Dst(), ip.NextHeader(), b[wire.IPv6HeaderLen : wire.IPv6HeaderLen+int(ip.PayloadLength())]}
	}
	if p.proto != wire.ProtoICMP {
		sum := wire.PseudoHeaderChecksum(p.proto, p.src, p.dst, uint32(len(p.l4)))
		if c := wire.Finish(wire.Checksum(p.l4, sum)); c != 0 {
			t.Fatalf("bad protocol %d checksum (residue %#04x)", p.proto, c)
		}
	} else if wire.Finish(wire.Checksum(p.l4, 0)) != 0 {
		t.Fatal("bad ICMP checksum")
	}
	return p
}

// hostReader reads from l in its own goroutine, as a host's packet loop does, and hands
// each packet (a copy) to the test.
type hostReader struct {
	pkts chan []byte
	done chan error
}

func readLoop(l *Link, per, off int) *hostReader {
	h := &hostReader{pkts: make(chan []byte, 1024), done: make(chan error, 1)}
	go func() {
		bufs := make([][]byte, per)
		for i := range bufs {
			bufs[i] = make([]byte, off+65535)
		}
		sizes := make([]int, per)
		for {
			n, err := l.Read(bufs, sizes, off)
			if err != nil {
				close(h.pkts)
				h.done <- err
				return
			}
			for i := range n {
				h.pkts <- bytes.Clone(bufs[i][off : off+sizes[i]])
			}
		}
	}()
	return h
}

// next returns the next packet of protocol proto, skipping others (MLD reports, say); it
// fails the test after 5 s.
func (h *hostReader) next(t *testing.T, proto uint8, ev func() string) parsed {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case b, ok := <-h.pkts:
			if !ok {
				t.Fatalf("the host's Read ended waiting for protocol %d\n%s", proto, ev())
			}
			if p := parse(t, b); p.proto == proto {
				return p
			}
		case <-deadline:
			t.Fatalf("no protocol %d packet within 5 s\n%s", proto, ev())
		}
	}
}

// evidence prints what the link and the stack hold, for a failing test.
func evidence(l *Link, s *stack.Stack) func() string {
	return func() string {
		var b strings.Builder
		stacktest.WriteEvidence(&b, stacktest.Side{Name: "wisp", Stack: s, Links: []any{l}})
		return b.String()
	}
}

// TestHostLoop drives a stack the way a TUN proxy or a VM's network does: a host loop
// writes packets it made (ICMP and ICMPv6 echo requests, UDP datagrams over IPv4 and IPv6)
// and another reads what the stack answers, concurrently.
func TestHostLoop(t *testing.T) {
	l, s := newTestLink(t, Config{Offload: true}, stackV4, stackV6)
	ev := evidence(l, s)
	const off = 16
	h := readLoop(l, l.BatchSize(), off)

	// A UDP echo server on the stack.
	en := endpoint.New(s)
	var srv sync.WaitGroup
	t.Cleanup(srv.Wait) // after the Closes below (cleanups run last first)
	for _, a := range []netip.Addr{stackV4, stackV6} {
		c, err := en.ListenUDPAddrPort(netip.AddrPortFrom(a, 7))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		srv.Go(func() {
			b := make([]byte, 2048)
			for {
				n, from, err := c.ReadFromUDPAddrPort(b)
				if err != nil {
					return
				}
				c.WriteToUDPAddrPort(b[:n], from)
			}
		})
	}

	for _, fam := range []struct{ host, stack netip.Addr }{{hostV4, stackV4}, {hostV6, stackV6}} {
		name := "IPv4"
		icmp, reply := uint8(wire.ProtoICMP), uint8(wire.ICMPv4EchoReply)
		if fam.host.Is6() {
			name, icmp, reply = "IPv6", wire.ProtoICMPv6, wire.ICMPv6EchoReply
		}
		t.Run(name, func(t *testing.T) {
			// A batch of echo requests in one Write, answered in order.
			const n = 8
			var in [][]byte
			for i := range n {
				in = append(in, at(off, echoRequest(fam.host, fam.stack, 7, uint16(i), []byte("ping through the link"))))
			}
			if w, err := l.Write(in, off); err != nil || w != n {
				t.Fatalf("Write = %d, %v", w, err)
			}
			for i := range n {
				p := h.next(t, icmp, ev)
				m := wire.ICMPv4(p.l4) // the echo fields are where ICMPv6 has them
				if p.src != fam.stack || p.dst != fam.host || m.Type() != reply || m.Seq() != uint16(i) ||
					string(m.Payload()) != "ping through the link" {
					t.Fatalf("reply %d: %v → %v type %d seq %d %q", i, p.src, p.dst, m.Type(), m.Seq(), m.Payload())
				}
			}
			// UDP to the echo server, and back.
			from := netip.AddrPortFrom(fam.host, 40000)
			to := netip.AddrPortFrom(fam.stack, 7)
			for i := range 4 {
				data := fmt.Appendf(nil, "datagram %d over %s", i, name)
				if _, err := l.Write([][]byte{at(off, udpPacket(from, to, data))}, off); err != nil {
					t.Fatal(err)
				}
				p := h.next(t, wire.ProtoUDP, ev)
				u := wire.UDP(p.l4)
				if p.src != fam.stack || p.dst != fam.host || u.SrcPort() != 7 || u.DstPort() != 40000 ||
					!bytes.Equal(u.Payload(), data) {
					t.Fatalf("UDP reply %d: %v:%d → %v:%d %q", i, p.src, u.SrcPort(), p.dst, u.DstPort(), u.Payload())
				}
			}
		})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := stacktest.WaitErr(t, h.done, 5*time.Second, "the host's Read after Close"); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v, want os.ErrClosed", err)
	}
	if tx, txd, rx, rxd := l.Stats(); tx < 24 || rx != 24 || txd != 0 || rxd != 0 {
		t.Errorf("Stats: tx %d (%d dropped), rx %d (%d dropped); want ≥ 24 (0), 24 (0)", tx, txd, rx, rxd)
	}
}

// tcpSegment is a TCP segment from src to dst.
func tcpSegment(src, dst netip.AddrPort, seq, ack uint32, f wire.TCPFlags, o wire.TCPOptions) []byte {
	r := wire.TCPRepr{SrcPort: src.Port(), DstPort: dst.Port(), SeqNum: seq, AckNum: ack, Flags: f,
		Window: 0xffff, Options: o}
	b := make([]byte, r.HeaderLen())
	if err := r.Emit(b, src.Addr(), dst.Addr()); err != nil {
		panic(err)
	}
	return iptest.Packet(wire.ProtoTCP, src.Addr(), dst.Addr(), b)
}

// TestStackSegmentsCut: a TCP connection from the host to the stack, which sends 256 KiB
// as large segments (offloads on); the host reads only packets within the MTU, with valid
// checksums, carrying the stream in order, and acknowledges them as a receiver would.
func TestStackSegmentsCut(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			host, addr := hostV4, stackV4
			if v6 {
				host, addr = hostV6, stackV6
			}
			l, s := newTestLink(t, Config{Offload: true, QueueLen: 512}, addr)
			ev := evidence(l, s)
			h := readLoop(l, 16, 0)
			ln, err := endpoint.New(s).ListenTCPAddrPort(netip.AddrPortFrom(addr, 80))
			if err != nil {
				t.Fatal(err)
			}
			const size = 256 << 10
			want := make([]byte, size)
			for i := range want {
				want[i] = byte(i * 131 >> 3)
			}
			srv := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					srv <- err
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				_, err = c.Write(want)
				srv <- err
			}()
			defer ln.Close()

			from, to := netip.AddrPortFrom(host, 50000), netip.AddrPortFrom(addr, 80)
			write := func(b []byte) {
				if _, err := l.Write([][]byte{b}, 0); err != nil {
					t.Fatal(err)
				}
			}
			const iss = 1000
			write(tcpSegment(from, to, iss, 0, wire.TCPFlagSYN, wire.TCPOptions{HasMSS: true, MSS: 1460,
				HasWindowScale: true, WindowScale: 7}))
			synAck := h.next(t, wire.ProtoTCP, ev)
			st := wire.TCP(synAck.l4)
			if st.Flags() != wire.TCPFlagSYN|wire.TCPFlagACK || st.AckNum() != iss+1 {
				t.Fatalf("not a SYN-ACK: flags %v ack %d", st.Flags(), st.AckNum())
			}
			next := st.SeqNum() + 1
			write(tcpSegment(from, to, iss+1, next, wire.TCPFlagACK, wire.TCPOptions{}))
			var got []byte
			for len(got) < size {
				p := h.next(t, wire.ProtoTCP, ev)
				tot := len(p.l4) + wire.IPv4MinHeaderLen
				if v6 {
					tot = len(p.l4) + wire.IPv6HeaderLen
				}
				if tot > l.MTU() {
					t.Fatalf("a %d-byte packet, over the MTU of %d", tot, l.MTU())
				}
				seg := wire.TCP(p.l4)
				if seg.SeqNum() != next {
					continue // a retransmission (the ACKs below came late): skip it
				}
				got = append(got, seg.Payload()...)
				next += uint32(len(seg.Payload()))
				write(tcpSegment(from, to, iss+1, next, wire.TCPFlagACK, wire.TCPOptions{}))
			}
			if !bytes.Equal(got, want) {
				t.Fatal("the stream read differs from the one written")
			}
			if err := stacktest.WaitErr(t, srv, 10*time.Second, "server"); err != nil {
				t.Fatalf("server: %v\n%s", err, ev())
			}
			if f, segs, _ := l.OffloadStats(); f == 0 || segs < f {
				t.Errorf("OffloadStats: %d large segments cut into %d packets; want some", f, segs)
			}
			// RST: the connection ends at once (the server closed; the cleanup checks
			// the pools).
			write(tcpSegment(from, to, iss+1, 0, wire.TCPFlagRST, wire.TCPOptions{}))
		})
	}
}

// TestLinkAllocs pins both directions at zero allocations per packet: Write (into the
// stack, which answers) and Read (out of the ring).
func TestLinkAllocs(t *testing.T) {
	l, _ := newTestLink(t, Config{Offload: true}, stackV4, stackV6)
	const off = 16
	for _, fam := range [][2]netip.Addr{{hostV4, stackV4}, {hostV6, stackV6}} {
		in := [][]byte{at(off, echoRequest(fam[0], fam[1], 9, 1, make([]byte, 1000)))}
		bufs := [][]byte{make([]byte, off+1500), make([]byte, off+1500)}
		sizes := make([]int, 2)
		round := func() {
			if _, err := l.Write(in, off); err != nil {
				t.Fatal(err)
			}
			if r, err := l.Read(bufs, sizes, off); err != nil || r != 1 {
				t.Fatalf("Read = %d, %v", r, err)
			}
		}
		round() // warm up
		if a := testing.AllocsPerRun(200, round); a != 0 {
			t.Errorf("%v: %v allocations per echo round trip, want 0", fam[1], a)
		}
	}
}

// TestLinkRingFull: the stack never blocks on a full ring; frames past it are dropped,
// counted and reported, and the ring's room is visible to the stack.
func TestLinkRingFull(t *testing.T) {
	d, s := newTestLink(t, Config{QueueLen: 4})
	ep := d.Endpoint().(*linkEP)
	alloc := s.Allocator()
	var pkts []*pbuf.Pbuf
	for range 6 {
		p, err := alloc.Alloc(pbuf.LayerRaw, 100, pbuf.POOL)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p)
	}
	if room := ep.TxRoom(); room != 4 {
		t.Errorf("TxRoom = %d, want 4", room)
	}
	w, err := ep.WritePackets(pkts)
	if w != 4 || !errors.Is(err, errs.WouldBlock) {
		t.Errorf("WritePackets = %d, %v; want 4, WouldBlock", w, err)
	}
	if room := ep.TxRoom(); room != 0 {
		t.Errorf("TxRoom = %d, want 0", room)
	}
	if _, txd, _, _ := d.Stats(); txd != 2 {
		t.Errorf("%d dropped, want the 2 past the ring", txd)
	}
	big, _ := alloc.Alloc(pbuf.LayerRaw, 1421, pbuf.POOL)
	bufs := [][]byte{make([]byte, 1500), make([]byte, 1500), make([]byte, 1500)}
	sizes := make([]int, 3)
	if r, err := d.Read(bufs, sizes, 0); r != 3 || err != nil || sizes[0] != 100 {
		t.Errorf("Read = %d, %v (size %d)", r, err, sizes[0])
	}
	if w, err := ep.WritePackets([]*pbuf.Pbuf{big}); w != 0 || !errors.Is(err, errs.Val) {
		t.Errorf("WritePackets(too long) = %d, %v", w, err)
	}
	if tx, txd, _, _ := d.Stats(); tx != 3 || txd != 3 {
		t.Errorf("Stats: tx %d, %d dropped; want 3, 3", tx, txd)
	}
	// One frame is left in the ring; the stack's Close frees it.
}

// TestLinkCloseUnblocksRead: Close ends a blocked Read with os.ErrClosed, makes Write
// fail and the stack's sends fail with errs.Clsd; the stack, still open, closes later
// (newTestLink's cleanup), and nothing is left behind.
func TestLinkCloseUnblocksRead(t *testing.T) {
	d, s := newTestLink(t, Config{})
	done := make(chan error, 1)
	go func() {
		_, err := d.Read([][]byte{make([]byte, 1500)}, make([]int, 1), 0)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := stacktest.WaitErr(t, done, 5*time.Second, "Read after Close"); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v, want os.ErrClosed", err)
	}
	if _, err := d.Write([][]byte{echoRequest(hostV4, stackV4, 1, 1, nil)}, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	p, _ := s.Allocator().Alloc(pbuf.LayerRaw, 100, pbuf.POOL)
	if w, err := d.Endpoint().WritePackets([]*pbuf.Pbuf{p}); w != 0 || !errors.Is(err, errs.Clsd) {
		t.Errorf("WritePackets after Close = %d, %v", w, err)
	}
	if room := d.Endpoint().(link.TxRoomer).TxRoom(); room != 0 {
		t.Errorf("TxRoom after Close = %d", room)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestWriteDetached: before the stack attaches the link (and after it detaches),
// Write drops every packet and counts it.
func TestWriteDetached(t *testing.T) {
	l, err := New(Config{MTU: 1500})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if w, err := l.Write([][]byte{{0x45}, {0x60}}, 0); w != 2 || err != nil {
		t.Errorf("Write = %d, %v", w, err)
	}
	if _, _, rx, rxd := l.Stats(); rx != 0 || rxd != 2 {
		t.Errorf("Stats: rx %d (%d dropped), want 0 (2)", rx, rxd)
	}
}

// TestNewConfig: the MTU must be one IPv4 allows; zero Batch and QueueLen take the
// defaults; offloads are offered only when asked for.
func TestNewConfig(t *testing.T) {
	for _, c := range []struct {
		c   Config
		err string
	}{
		{Config{MTU: 67}, "MTU 67 out of range [68, 65535]"},
		{Config{MTU: 65536}, "MTU 65536 out of range [68, 65535]"},
		{Config{MTU: 1500, Batch: -1}, "negative Batch"},
		{Config{MTU: 1500, QueueLen: -1}, "negative Batch (0) or QueueLen (-1)"},
		{Config{MTU: 68}, ""},
		{Config{MTU: 65535, Batch: 3, QueueLen: 5}, ""},
	} {
		l, err := New(c.c)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%+v: %v, want %q", c.c, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", c.c, err)
			continue
		}
		wantBatch, wantQueue := c.c.Batch, c.c.QueueLen
		if wantBatch == 0 {
			wantBatch, wantQueue = DefaultBatch, DefaultQueueLen
		}
		ep := l.Endpoint()
		if l.MTU() != c.c.MTU || ep.MTU() != c.c.MTU || l.BatchSize() != wantBatch ||
			ep.(link.TxRoomer).TxRoom() != wantQueue || ep.Medium() != link.MediumIP {
			t.Errorf("%+v: MTU %d/%d, BatchSize %d, TxRoom %d, %v", c.c, l.MTU(), ep.MTU(), l.BatchSize(),
				ep.(link.TxRoomer).TxRoom(), ep.Medium())
		}
		if off := ep.(link.Offloader).Offloads(); off != (link.Offloads{}) {
			t.Errorf("%+v: Offloads() = %+v without Offload", c.c, off)
		}
		l.Close()
	}
}

// countingDispatcher passes frames on to the stack and records the size of each batch.
type countingDispatcher struct {
	link.Dispatcher
	batches []int
}

func (c *countingDispatcher) DeliverPackets(pkts []*pbuf.Pbuf) {
	c.batches = append(c.batches, len(pkts))
	c.Dispatcher.DeliverPackets(pkts)
}

// TestWriteDeliversOnce: the batch of one Write reaches the stack in one DeliverPackets
// call, larger than BatchSize too (wireguard-go's batch is the larger of its bind's and
// the device's), so that the stack's GRO sees all of it.
func TestWriteDeliversOnce(t *testing.T) {
	d, _ := newTestLink(t, Config{Batch: 8, QueueLen: 512, Offload: true})
	cd := &countingDispatcher{Dispatcher: d.disp.Load().d}
	d.Endpoint().Attach(cd)
	const off = 16
	for _, n := range []int{1, 8, 100} {
		cd.batches = cd.batches[:0]
		var in [][]byte
		for i := range n {
			in = append(in, at(off, echoRequest(hostV4, stackV4, 3, uint16(i), []byte("one batch"))))
		}
		in = append(in, make([]byte, off)) // an empty packet is skipped
		if w, err := d.Write(in, off); err != nil || w != len(in) {
			t.Fatalf("Write = %d, %v", w, err)
		}
		if fmt.Sprint(cd.batches) != fmt.Sprint([]int{n}) {
			t.Errorf("Write of %d packets: DeliverPackets batches %v, want one of %d", n, cd.batches, n)
		}
		readAll(t, d, n, 64, 1500, 0) // the replies
	}
}

// BenchmarkEchoBatch measures the host loop: a Write of 8 echo requests (56 bytes of data)
// into the stack and the Reads of the 8 replies; ns/op is per batch.
func BenchmarkEchoBatch(b *testing.B) {
	l, _ := newTestLink(b, Config{Batch: 8, Offload: true})
	const off, n = 16, 8
	var in [][]byte
	for i := range n {
		in = append(in, at(off, echoRequest(hostV4, stackV4, 5, uint16(i), make([]byte, 56))))
	}
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, off+1500)
	}
	sizes := make([]int, n)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Write(in, off); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < n; {
			r, err := l.Read(bufs, sizes, off)
			if err != nil {
				b.Fatal(err)
			}
			got += r
		}
	}
}

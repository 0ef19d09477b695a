package gvisor

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// LinkConfig adjusts NewLink. The zero value infers everything from the gVisor endpoint.
type LinkConfig struct {
	// Medium overrides the framing (0: MediumEthernet when the endpoint's ARPHardwareType
	// is Ethernet or its link address is 6 bytes, MediumIP otherwise).
	Medium link.Medium
	// HardwareAddr overrides the MAC wisp uses on an Ethernet link (zero: the endpoint's
	// link address, which must then be a non-zero 6-byte address).
	HardwareAddr [6]byte
	// NoOffloads declines the endpoint's host GSO: the Link then offers wisp no offloads
	// (link.Offloads zero) and writes the frames it wrote before offloads. What gVisor
	// says of a received packet (RXChecksumValidated, GSOOptions, a length beyond the MTU)
	// still reaches wisp: those are facts about the packet, not an offer.
	NoOffloads bool
}

// Link is a wisp link.Endpoint driven by a gVisor stack.LinkEndpoint: give it to
// stack.AddNetif. The adapter is the gVisor endpoint's NetworkDispatcher.
type Link struct {
	ep     stack.LinkEndpoint
	medium link.Medium
	mac    [6]byte
	// reserve is the header room each outbound PacketBuffer gets: the endpoint's
	// MaxHeaderLength, and at least the Ethernet header the adapter pushes.
	reserve int
	// gsoMax is the largest GSO packet (IP header included) wisp may write, 0 when the
	// endpoint offers no host GSO (offload.go); gsoMaxSize is the endpoint's own figure,
	// which gVisor's TCP puts in GSOOptions.MaxSize.
	gsoMax     int
	gsoMaxSize uint32

	disp atomic.Pointer[wispDispatcher] // nil: detached, deliveries are dropped

	// mu guards the attachment of the gVisor endpoint; it is never held while calling into
	// gVisor or wisp code that could wait for a delivery.
	mu         sync.Mutex
	gvAttached bool
	closed     bool

	// rxMu is held for reading by each delivery and for writing by Close, which so waits
	// for the delivery in progress.
	rxMu     sync.RWMutex
	rxClosed bool

	// txMu serializes writes; txList is reused by every WritePackets.
	txMu     sync.Mutex
	txClosed bool
	txList   stack.PacketBufferList

	cnt       counters
	closeOnce sync.Once
}

type wispDispatcher struct{ d link.Dispatcher }

// linkRx is the Link as gVisor sees it: the endpoint's stack.NetworkDispatcher.
type linkRx Link

var (
	_ link.Endpoint           = (*Link)(nil)
	_ link.Offloader          = (*Link)(nil)
	_ stack.NetworkDispatcher = (*linkRx)(nil)
)

// oneBatch holds a reusable one-frame batch: gVisor delivers frame by frame, wisp's
// DeliverPackets takes a slice it borrows.
var oneBatch = sync.Pool{New: func() any { return new([1]*pbuf.Pbuf) }}

// NewLink returns a wisp link driven by ep. The Link owns ep from now on: its Close detaches,
// closes and waits for ep. The gVisor endpoint is attached (its dispatch goroutines, if any,
// start) when wisp first attaches a dispatcher. errs.Arg for a nil ep, errs.Use if ep is
// already attached to a gVisor stack, errs.Val for an MTU of 0 or an Ethernet endpoint
// without a usable MAC.
func NewLink(ep stack.LinkEndpoint, cfg LinkConfig) (*Link, error) {
	if ep == nil {
		return nil, errs.Arg
	}
	if ep.IsAttached() {
		return nil, errs.Use
	}
	if ep.MTU() == 0 {
		return nil, errs.Val
	}
	l := &Link{ep: ep, medium: cfg.Medium}
	addr := ep.LinkAddress()
	if l.medium == 0 {
		l.medium = link.MediumIP
		if ep.ARPHardwareType() == header.ARPHardwareEther || len(addr) == 6 {
			l.medium = link.MediumEthernet
		}
	}
	switch l.medium {
	case link.MediumEthernet:
		l.mac = cfg.HardwareAddr
		if l.mac == ([6]byte{}) && len(addr) == 6 {
			copy(l.mac[:], addr)
		}
		if l.mac == ([6]byte{}) {
			return nil, errs.Val
		}
	case link.MediumIP:
	default:
		return nil, errs.Val
	}
	l.reserve = max(int(ep.MaxHeaderLength()), l.medium.HeaderLen())
	if !cfg.NoOffloads {
		if l.gsoMax = hostGSOMax(ep); l.gsoMax > 0 {
			l.gsoMaxSize = ep.(stack.GSOEndpoint).GSOMaxSize()
		}
	}
	return l, nil
}

// Endpoint returns the gVisor endpoint the Link drives.
func (l *Link) Endpoint() stack.LinkEndpoint { return l.ep }

// Medium implements link.Endpoint.
func (l *Link) Medium() link.Medium { return l.medium }

// MTU implements link.Endpoint: the gVisor endpoint's MTU.
func (l *Link) MTU() int { return int(l.ep.MTU()) }

// HardwareAddr implements link.Endpoint (zero for MediumIP).
func (l *Link) HardwareAddr() [6]byte { return l.mac }

// Offloads implements link.Offloader. An endpoint with gVisor's host GSO (fdbased on a
// socket with a virtio-net header, for one) gets checksum offload and TCP segmentation for
// both IP versions, up to its GSOMaxSize (at most 65535); every other endpoint, and a Link
// made with NoOffloads, offers none. Such an fdbased endpoint wants RXChecksumOffload (and
// the RecvMMsg dispatcher, the one that reports it) too: it drops the virtio-net header of
// what it reads, and the large packets a host sends arrive with partial checksums that
// only RXChecksumValidated lets wisp accept.
func (l *Link) Offloads() link.Offloads {
	if l.gsoMax == 0 {
		return link.Offloads{}
	}
	return link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: l.gsoMax}
}

// Stats returns the Link's counters: Rx is gVisor endpoint → wisp, Tx wisp → endpoint.
func (l *Link) Stats() Counters { return l.cnt.snapshot() }

// Attach implements link.Endpoint. The first non-nil dispatcher attaches the adapter to the
// gVisor endpoint; detaching (nil) only makes deliveries drop, because detaching a gVisor
// endpoint may wait for its dispatch loop (fdbased does), which may wait for wisp's core
// lock that the caller holds.
func (l *Link) Attach(d link.Dispatcher) {
	if d == nil {
		l.disp.Store(nil)
		return
	}
	l.disp.Store(&wispDispatcher{d: d})
	l.mu.Lock()
	attach := !l.closed && !l.gvAttached
	l.gvAttached = l.gvAttached || attach
	l.mu.Unlock()
	if attach {
		// gVisor's Attach with a non-nil dispatcher only records it and starts loops.
		l.ep.Attach((*linkRx)(l))
	}
}

// WritePackets implements link.Endpoint: it takes ownership of every pbuf in pkts (the slice
// is borrowed). Each frame is copied into a PacketBuffer (an Ethernet header becomes the
// packet's link header) and the batch goes to the gVisor endpoint's WritePackets in one
// call. With host GSO (Offloads), a GSO packet of up to GSOMax bytes and a partial checksum
// become the packet's GSOOptions (txOffload). Frames are accepted in order until one fails:
// a frame with no IP packet, longer than the MTU (or GSOMax), or an offload request that
// cannot be met (errs.Val), a closed Link (errs.Clsd); that frame and the rest are dropped.
// A refusal by the gVisor endpoint maps to errs.WouldBlock (no buffer space), errs.Clsd or
// errs.If.
func (l *Link) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	l.txMu.Lock()
	defer l.txMu.Unlock()
	var err error
	if l.txClosed {
		err = errs.Clsd
	}
	hl, mtu := l.medium.HeaderLen(), int(l.ep.MTU())
	for _, p := range pkts {
		if err != nil {
			p.Free()
			l.cnt.txDropped.Add(1)
			continue
		}
		limit := mtu
		if typ, _ := p.GSO(); typ != pbuf.GSONone && l.gsoMax > 0 {
			limit = l.gsoMax
		}
		proto, ok := l.outboundProto(p, hl, limit)
		var pkt *stack.PacketBuffer
		if ok {
			pkt, ok = l.packet(p, hl, mtu, proto)
		}
		p.Free()
		if !ok {
			err = errs.Val
			l.cnt.txDropped.Add(1)
			continue
		}
		l.txList.PushBack(pkt)
	}
	queued := l.txList.Len()
	if queued == 0 {
		return 0, err
	}
	sent, terr := l.ep.WritePackets(l.txList)
	// The writer of a PacketBufferList keeps its references (gVisor's qdiscs reset their
	// batch after WritePackets too): drop ours, keep the slice for the next call.
	l.txList.Reset()
	sent = min(max(sent, 0), queued)
	l.cnt.txPackets.Add(uint64(sent))
	l.cnt.txDropped.Add(uint64(queued - sent))
	if terr != nil {
		return sent, wispError(terr)
	}
	if sent < queued && err == nil {
		err = errs.WouldBlock
	}
	return sent, err
}

// outboundProto checks a frame's length against limit and returns its network protocol: the
// EtherType of an Ethernet frame, the IP version of a bare packet.
func (l *Link) outboundProto(p *pbuf.Pbuf, hl, limit int) (tcpip.NetworkProtocolNumber, bool) {
	tot := p.TotLen()
	if tot <= hl || tot-hl > limit {
		return 0, false
	}
	if hl > 0 {
		var t [2]byte
		p.CopyOut(t[:], 12)
		return tcpip.NetworkProtocolNumber(binary.BigEndian.Uint16(t[:])), true
	}
	b, _ := p.ByteAt(0)
	return ipVersionProto(b)
}

// packet copies frame p (borrowed) into a new PacketBuffer whose data is the network packet
// and whose link header, for Ethernet, is p's first hl bytes; not ok (nothing allocated)
// when p's offload request cannot be met.
func (l *Link) packet(p *pbuf.Pbuf, hl, mtu int, proto tcpip.NetworkProtocolNumber) (*stack.PacketBuffer, bool) {
	v := viewOf(p, hl, p.TotLen()-hl)
	var gso stack.GSO
	var t l4
	partial := p.Flags()&pbuf.FlagChecksumPartial != 0
	if typ, size := p.GSO(); typ != pbuf.GSONone || partial {
		var ok bool
		if t, gso, ok = l.txOffload(v.AsSlice(), typ, size, mtu, partial); !ok {
			v.Release()
			return nil, false
		}
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: l.reserve,
		Payload:            buffer.MakeWithView(v),
	})
	if hl > 0 {
		p.CopyOut(pkt.LinkHeader().Push(hl), 0)
	}
	pkt.NetworkProtocolNumber = proto
	if gso.Type != stack.GSONone {
		// As gVisor's own TCP hands its packets over: headers apart, Data the TCP payload
		// (fdbased sizes its virtio-net header's hdr_len by them and compares Data to MSS).
		pkt.NetworkHeader().Consume(t.l3)
		pkt.TransportHeader().Consume(t.thl)
		pkt.TransportProtocolNumber = header.TCPProtocolNumber
		pkt.GSOOptions = gso
	}
	return pkt, true
}

// txOffload turns the offload request on IP packet b (typ and size from pbuf.GSO, a partial
// checksum either way) into the GSOOptions gVisor's TCP would have set for the endpoint,
// as its initHostGSO and buildTCPHdr do: Type by IP version, NeedsCsum, CsumOffset 16, MSS,
// L3HdrLen and MaxSize; the checksum field already holds the pseudo-header sum gVisor
// writes there. A non-GSO TCP packet with a partial checksum gets the same options (every
// TCP packet of a gVisor endpoint with host GSO does), with the MSS of the MTU; other
// partial checksums (UDP) are completed here. Not ok: no host GSO for a GSO packet, a GSO
// packet that is not TCP of typ's IP version or whose checksum is not partial, a partial
// checksum in no TCP or UDP header.
func (l *Link) txOffload(b []byte, typ pbuf.GSOType, size, mtu int, partial bool) (l4, stack.GSO, bool) {
	t, ok := l4Of(b[:min(len(b), maxL4Probe)])
	if !ok {
		return t, stack.GSO{}, false
	}
	tcp := t.proto == uint8(header.TCPProtocolNumber) && len(b) >= t.l3+t.thl
	if typ != pbuf.GSONone {
		want := pbuf.GSOTCPv4
		if t.v6 {
			want = pbuf.GSOTCPv6
		}
		if l.gsoMax == 0 || !tcp || typ != want || size <= 0 || !partial {
			return t, stack.GSO{}, false
		}
		l.cnt.txGSO.Add(1)
		return t, l.hostGSO(t, size), true
	}
	if tcp && l.gsoMax > 0 {
		return t, l.hostGSO(t, max(mtu-t.l3-t.thl, 1)), true
	}
	if !wire.CompleteChecksum(b) {
		return t, stack.GSO{}, false
	}
	l.cnt.txCsum.Add(1)
	return t, stack.GSO{}, true
}

// hostGSO returns the GSOOptions of a TCP packet with header t and segments of mss bytes.
func (l *Link) hostGSO(t l4, mss int) stack.GSO {
	g := stack.GSO{Type: stack.GSOTCPv4, NeedsCsum: true, CsumOffset: header.TCPChecksumOffset,
		MSS: uint16(min(mss, 0xffff)), L3HdrLen: uint16(t.l3), MaxSize: l.gsoMaxSize}
	if t.v6 {
		g.Type = stack.GSOTCPv6
	}
	return g
}

// Close implements link.Endpoint: later writes fail with errs.Clsd, later deliveries are
// dropped; it waits for the delivery in progress, then detaches, closes and waits for the
// gVisor endpoint (whose dispatch goroutines stop). It is idempotent and must not be called
// from inside a delivery.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		attached := l.gvAttached
		l.mu.Unlock()

		l.txMu.Lock()
		l.txClosed = true
		l.txMu.Unlock()

		l.rxMu.Lock()
		l.rxClosed = true
		l.rxMu.Unlock()
		l.disp.Store(nil)

		if !attached {
			// Some endpoints start goroutines in their constructor and stop them only on a
			// detach after an attach (fdbased's packet processors): give them that pair.
			// Deliveries in between are dropped, rxClosed being set.
			l.ep.Attach((*linkRx)(l))
		}
		l.ep.Attach(nil)
		l.ep.Close()
		l.ep.Wait()
	})
	return nil
}

// DeliverNetworkPacket implements stack.NetworkDispatcher: the gVisor endpoint hands over
// one received packet, which it keeps owning. The frame (link header, for Ethernet, plus the
// packet) is copied into a pbuf from wisp's AllocRx and delivered; with no buffer, no
// dispatcher or no Ethernet header it is dropped and counted, never waited for.
func (r *linkRx) DeliverNetworkPacket(_ tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	l := (*Link)(r)
	l.rxMu.RLock()
	defer l.rxMu.RUnlock()
	w := l.disp.Load()
	if l.rxClosed || w == nil {
		l.cnt.rxDropped.Add(1)
		return
	}
	var hdr []byte
	if l.medium == link.MediumEthernet {
		// gVisor's Ethernet endpoints consume the header into LinkHeader before delivering;
		// one that leaves it in the data gets the chance to parse it here.
		hdr = pkt.LinkHeader().Slice()
		if len(hdr) == 0 && l.ep.ParseHeader(pkt) {
			hdr = pkt.LinkHeader().Slice()
		}
		if len(hdr) < ethHeaderLen {
			l.cnt.rxInvalid.Add(1)
			return
		}
	}
	n := pkt.Data().Size()
	if n == 0 {
		l.cnt.rxInvalid.Add(1)
		return
	}
	p := w.d.AllocRx(len(hdr) + n)
	if p == nil {
		l.cnt.rxNoBuffer.Add(1)
		return
	}
	if len(hdr) > 0 {
		_ = p.CopyIn(hdr, 0)
	}
	vl, off := dataOffset(pkt)
	copyFromViews(p, len(hdr), &vl, off, n)
	if pkt.RXChecksumValidated || pkt.GSOOptions.Type != stack.GSONone || n > int(l.ep.MTU()) {
		l.rxOffload(p, len(hdr), n, pkt)
	}
	b := oneBatch.Get().(*[1]*pbuf.Pbuf)
	b[0] = p
	w.d.DeliverPackets(b[:])
	b[0] = nil
	oneBatch.Put(b)
	l.cnt.rxPackets.Add(1)
}

// rxOffload marks frame p (its IP packet of n bytes after hl bytes of link header) with
// what gVisor knows of received packet pkt. RXChecksumValidated (the endpoint's
// CapabilityRXChecksumOffload: the host verified the checksums, or a local sender left
// them partial) is FlagChecksumOK; a TCP or UDP checksum field that then holds the
// pseudo-header sum is partial (fdbased drops the virtio-net header that said so; a
// complete checksum equal to that sum completes to itself, so the guess is never wrong
// in effect). GSOOptions of host GSO type on a received packet (an endpoint that keeps a
// virtio-net header's GSO fields, or a test wire) say the packet was coalesced from
// MSS-byte segments, NeedsCsum that its checksum is partial. A TCP packet longer than the
// MTU without them (what the host coalesced arrives bare) is marked as made of segments
// that fill the MTU: the best guess of what the sender cut.
func (l *Link) rxOffload(p *pbuf.Pbuf, hl, n int, pkt *stack.PacketBuffer) {
	const ok, partial = pbuf.FlagChecksumOK, pbuf.FlagChecksumPartial
	f := p.Flags()
	if pkt.RXChecksumValidated {
		f |= ok
	}
	g := pkt.GSOOptions
	typ := gsoTypeOf(g.Type)
	if typ != pbuf.GSONone && g.NeedsCsum {
		f |= partial | ok
	}
	mtu := int(l.ep.MTU())
	if typ == pbuf.GSONone && n <= mtu && f&(ok|partial) != ok {
		p.SetFlags(f)
		return
	}
	var b [maxL4Probe]byte
	pb := b[:p.CopyOut(b[:min(n, maxL4Probe)], hl)]
	t, found := l4Of(pb)
	if found && f&(ok|partial) == ok && checksumPartial(pb, t) {
		f |= partial
	}
	p.SetFlags(f)
	if !found || t.proto != uint8(header.TCPProtocolNumber) || (typ == pbuf.GSONone && n <= mtu) {
		return
	}
	want := pbuf.GSOTCPv4
	if t.v6 {
		want = pbuf.GSOTCPv6
	}
	mss := int(g.MSS)
	if typ != want || mss == 0 {
		mss = mtu - t.l3 - t.thl
	}
	if mss > 0 && n-t.l3-t.thl > mss {
		p.SetGSO(want, mss)
		l.cnt.rxGSO.Add(1)
	}
}

// DeliverLinkPacket implements stack.NetworkDispatcher. wisp has no packet sockets: it
// ignores copies of frames meant for them.
func (r *linkRx) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

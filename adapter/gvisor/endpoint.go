package gvisor

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// Endpoint is a gVisor stack.LinkEndpoint backed by a wisp link.Endpoint: give it to a gVisor
// stack's CreateNIC. The adapter is the wisp link's Dispatcher.
type Endpoint struct {
	ep     link.Endpoint
	alloc  *pbuf.Allocator
	medium link.Medium
	mtu    atomic.Uint32
	addr   atomic.Pointer[linkAddr]
	// gsoMax is what the Endpoint offers gVisor as host GSO, 0 for nothing (offload.go).
	gsoMax uint32

	gdisp atomic.Pointer[gvisorDispatcher] // nil: not attached, deliveries are dropped

	// mu guards the attachment to the wisp link and the close action.
	mu      sync.Mutex
	onClose func()
	closed  bool

	// txMu serializes writes; txBatch is reused by every WritePackets.
	txMu     sync.Mutex
	txClosed bool
	txBatch  []*pbuf.Pbuf

	cnt       counters
	closeOnce sync.Once
}

type gvisorDispatcher struct{ d stack.NetworkDispatcher }

// linkAddr is the Endpoint's link address in both of the forms it is used in.
type linkAddr struct {
	s   tcpip.LinkAddress
	mac [6]byte
}

// endpointRx is the Endpoint as the wisp link sees it: its link.Dispatcher.
type endpointRx Endpoint

var (
	_ stack.LinkEndpoint = (*Endpoint)(nil)
	_ stack.GSOEndpoint  = (*Endpoint)(nil)
	_ link.Dispatcher    = (*endpointRx)(nil)
)

// NewEndpoint returns a gVisor link endpoint backed by the wisp link ep. Received frames are
// read into POOL pbufs from alloc and gVisor's outbound packets are copied into pbufs from
// alloc (RAM, or POOL when the heap is short), so alloc's pools bound the memory the adapter
// holds. A link that segments TCP over both IP versions (link.Offloader: TxChecksum, TSO4,
// TSO6, a GSOMax above its MTU) is offered to gVisor as host GSO (GSOMaxSize,
// SupportedGSO). The Endpoint owns ep from now on: its Close closes ep. It panics if ep or
// alloc is nil.
func NewEndpoint(ep link.Endpoint, alloc *pbuf.Allocator) *Endpoint {
	if ep == nil || alloc == nil {
		panic("gvisor: NewEndpoint needs a link and an allocator")
	}
	e := &Endpoint{ep: ep, alloc: alloc, medium: ep.Medium(),
		txBatch: make([]*pbuf.Pbuf, 0, link.MaxBatch)}
	e.mtu.Store(uint32(ep.MTU()))
	e.gsoMax = uint32(linkGSOMax(ep))
	a := &linkAddr{}
	if e.medium == link.MediumEthernet {
		a.mac = ep.HardwareAddr()
		a.s = tcpip.LinkAddress(a.mac[:])
	}
	e.addr.Store(a)
	return e
}

// Link returns the wisp link behind the Endpoint.
func (e *Endpoint) Link() link.Endpoint { return e.ep }

// Stats returns the Endpoint's counters: Rx is wisp link → gVisor, Tx gVisor → wisp link.
func (e *Endpoint) Stats() Counters { return e.cnt.snapshot() }

// MTU implements stack.LinkEndpoint: the wisp link's MTU unless SetMTU changed it.
func (e *Endpoint) MTU() uint32 { return e.mtu.Load() }

// SetMTU implements stack.LinkEndpoint. It changes what gVisor believes; the wisp link still
// refuses frames longer than its own MTU.
func (e *Endpoint) SetMTU(mtu uint32) { e.mtu.Store(mtu) }

// MaxHeaderLength implements stack.LinkEndpoint: 14 for Ethernet, 0 for bare IP.
func (e *Endpoint) MaxHeaderLength() uint16 { return uint16(e.medium.HeaderLen()) }

// LinkAddress implements stack.LinkEndpoint: the wisp link's MAC, empty for bare IP.
func (e *Endpoint) LinkAddress() tcpip.LinkAddress { return e.addr.Load().s }

// SetLinkAddress implements stack.LinkEndpoint. It changes the source address gVisor writes
// and the address frames are classified against; the wisp link's own MAC does not change.
func (e *Endpoint) SetLinkAddress(addr tcpip.LinkAddress) {
	a := &linkAddr{s: addr}
	copy(a.mac[:], addr)
	e.addr.Store(a)
}

// Capabilities implements stack.LinkEndpoint: Ethernet links need address resolution (ARP,
// NDP); no checksum offload is claimed, so gVisor checks every checksum it receives (the
// partial ones arrive completed, deliver) and completes none it sends outside host GSO
// (SupportedGSO).
func (e *Endpoint) Capabilities() stack.LinkEndpointCapabilities {
	if e.medium == link.MediumEthernet {
		return stack.CapabilityResolutionRequired
	}
	return stack.CapabilityNone
}

// GSOMaxSize implements stack.GSOEndpoint: the wisp link's GSOMax when it segments TCP
// (see NewEndpoint), else 0.
func (e *Endpoint) GSOMaxSize() uint32 { return e.gsoMax }

// SupportedGSO implements stack.GSOEndpoint: stack.HostGSOSupported when the wisp link
// segments TCP, so gVisor's TCP sends packets of up to GSOMaxSize with partial checksums
// (WritePackets makes them wisp GSO packets); GSONotSupported otherwise.
func (e *Endpoint) SupportedGSO() stack.SupportedGSO {
	if e.gsoMax == 0 {
		return stack.GSONotSupported
	}
	return stack.HostGSOSupported
}

// ARPHardwareType implements stack.LinkEndpoint.
func (e *Endpoint) ARPHardwareType() header.ARPHardwareType {
	if e.medium == link.MediumEthernet {
		return header.ARPHardwareEther
	}
	return header.ARPHardwareNone
}

// Attach implements stack.LinkEndpoint. The adapter attaches itself to the wisp link as its
// dispatcher when gVisor attaches, and detaches when gVisor does (nil); neither waits for a
// delivery in progress.
func (e *Endpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	if d == nil {
		e.gdisp.Store(nil)
		e.ep.Attach(nil)
		return
	}
	e.gdisp.Store(&gvisorDispatcher{d: d})
	e.ep.Attach((*endpointRx)(e))
}

// IsAttached implements stack.LinkEndpoint.
func (e *Endpoint) IsAttached() bool { return e.gdisp.Load() != nil }

// Wait implements stack.LinkEndpoint. The Endpoint owns no goroutine; the wisp link's stop
// in Close, which waits for them (gVisor's stack.Wait calls Wait with its stack lock held
// and Close afterwards, so Wait must not wait for a delivery).
func (e *Endpoint) Wait() {}

// AddHeader implements stack.LinkEndpoint: an Ethernet header from the packet's egress
// route (the source defaults to the Endpoint's address).
func (e *Endpoint) AddHeader(pkt *stack.PacketBuffer) {
	if e.medium != link.MediumEthernet {
		return
	}
	src := pkt.EgressRoute.LocalLinkAddress
	if src == "" {
		src = e.LinkAddress()
	}
	h := pkt.LinkHeader().Push(ethHeaderLen)
	copy(h[0:6], pkt.EgressRoute.RemoteLinkAddress)
	copy(h[6:12], src)
	binary.BigEndian.PutUint16(h[12:14], uint16(pkt.NetworkProtocolNumber))
}

// ParseHeader implements stack.LinkEndpoint: it consumes the Ethernet header.
func (e *Endpoint) ParseHeader(pkt *stack.PacketBuffer) bool {
	if e.medium != link.MediumEthernet {
		return true
	}
	h, ok := pkt.LinkHeader().Consume(ethHeaderLen)
	if ok {
		pkt.NetworkProtocolNumber = header.Ethernet(h).Type()
	}
	return ok
}

// SetOnCloseAction implements stack.LinkEndpoint: fn runs at the start of Close.
func (e *Endpoint) SetOnCloseAction(fn func()) {
	e.mu.Lock()
	e.onClose = fn
	e.mu.Unlock()
}

// Close implements stack.LinkEndpoint: it runs the close action, makes later writes fail and
// later deliveries drop, and closes the wisp link, which stops its goroutines and waits for
// the delivery in progress. It is idempotent and must not be called from inside a delivery.
func (e *Endpoint) Close() {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		fn := e.onClose
		e.mu.Unlock()
		if fn != nil {
			fn()
		}
		e.txMu.Lock()
		e.txClosed = true
		e.txMu.Unlock()
		e.gdisp.Store(nil)
		e.ep.Close()
	})
}

// WritePackets implements stack.LinkEndpoint. Each packet (link header included) is copied
// into a pbuf from the allocator and the wisp link gets them in batches of link.MaxBatch;
// with host GSO, a packet whose GSOOptions ask for a partial checksum gets
// pbuf.FlagChecksumPartial, and one longer than its MSS is a wisp GSO packet (pbuf.SetGSO);
// gVisor keeps its references to pkts. It returns how many the wisp link accepted; it stops
// at the first packet that finds no pbuf (ErrNoBufferSpace) or that the link refuses (its
// error mapped: ErrNoBufferSpace, ErrClosedForSend, ErrMessageTooLong).
func (e *Endpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	e.txMu.Lock()
	defer e.txMu.Unlock()
	if e.txClosed {
		e.cnt.txDropped.Add(uint64(pkts.Len()))
		return 0, &tcpip.ErrClosedForSend{}
	}
	sent := 0
	batch := e.txBatch[:0]
	var terr tcpip.Error
	all := pkts.AsSlice()
	for i, pkt := range all {
		p := e.pbufOf(pkt)
		if p == nil {
			e.cnt.txNoBuffer.Add(uint64(len(all) - i))
			terr = &tcpip.ErrNoBufferSpace{}
			break
		}
		batch = append(batch, p)
		if len(batch) == cap(batch) {
			n, err := e.flush(batch)
			sent += n
			batch = batch[:0]
			if err != nil {
				e.cnt.txDropped.Add(uint64(len(all) - i - 1))
				return sent, err
			}
		}
	}
	if len(batch) > 0 {
		n, err := e.flush(batch)
		sent += n
		if err != nil {
			return sent, err
		}
	}
	return sent, terr
}

// pbufOf copies pkt into a new pbuf chain (returned, owned by the caller) or returns nil
// when the allocator has no memory. gVisor's host GSO options become wisp's: gVisor's TCP
// sets them on each of its packets, with the checksum field holding the pseudo-header sum
// (its buildTCPHdr, for NeedsCsum), which is FlagChecksumPartial's; the packet is GSO when
// its payload (Data, the headers being pushed) exceeds the MSS.
func (e *Endpoint) pbufOf(pkt *stack.PacketBuffer) *pbuf.Pbuf {
	n := pkt.Size()
	p, err := e.alloc.Alloc(pbuf.LayerRaw, n, pbuf.RAM)
	if err != nil {
		if p, err = e.alloc.Alloc(pbuf.LayerRaw, n, pbuf.POOL); err != nil {
			return nil
		}
	}
	vl, off := pkt.AsViewList()
	copyFromViews(p, 0, &vl, off, n)
	if g := pkt.GSOOptions; e.gsoMax > 0 && g.NeedsCsum {
		if typ := gsoTypeOf(g.Type); typ != pbuf.GSONone {
			p.SetFlags(p.Flags() | pbuf.FlagChecksumPartial)
			if g.MSS > 0 && pkt.Data().Size() > int(g.MSS) {
				p.SetGSO(typ, int(g.MSS))
				e.cnt.txGSO.Add(1)
			}
		}
	}
	return p
}

// txWait bounds how long flush waits for a full transmit queue to drain.
const txWait = 20 * time.Millisecond

// flush hands batch to the wisp link (which takes every pbuf) and clears it. When the link
// reports its queue's room (link.TxRoomer), flush gives it what fits and waits for the rest,
// up to txWait without progress, as a write to gVisor's fdbased link blocks on a full
// socket: a frame the link refuses is lost to gVisor's TCP, which sends it again only after
// an RTO. After txWait the rest goes to the link, which drops and counts what it cannot take.
func (e *Endpoint) flush(batch []*pbuf.Pbuf) (int, tcpip.Error) {
	defer clear(batch)
	r, _ := e.ep.(link.TxRoomer)
	var deadline time.Time
	sent := 0
	for i := 0; i < len(batch); {
		chunk := batch[i:]
		if r != nil {
			if room := r.TxRoom(); room <= 0 {
				now := time.Now()
				if deadline.IsZero() {
					deadline = now.Add(txWait)
				}
				if now.Before(deadline) {
					time.Sleep(50 * time.Microsecond)
					continue
				}
			} else if room < len(chunk) {
				chunk = chunk[:room]
			}
		}
		n, err := e.ep.WritePackets(chunk)
		i += len(chunk)
		sent += n
		e.cnt.txPackets.Add(uint64(n))
		e.cnt.txDropped.Add(uint64(len(chunk) - n))
		if err != nil {
			for _, p := range batch[i:] {
				p.Free()
			}
			e.cnt.txDropped.Add(uint64(len(batch) - i))
			return sent, tcpipError(err)
		}
		deadline = time.Time{}
	}
	return sent, nil
}

// AllocRx implements link.Dispatcher: a POOL chain from the Endpoint's allocator, or nil
// (counted) when the pool is empty. The wisp link owns the chain until it delivers it.
func (r *endpointRx) AllocRx(n int) *pbuf.Pbuf {
	p, err := r.alloc.Alloc(pbuf.LayerRaw, n, pbuf.POOL)
	if err != nil {
		r.cnt.rxNoBuffer.Add(1)
		return nil
	}
	return p
}

// DeliverPackets implements link.Dispatcher: it takes ownership of every pbuf (the slice is
// borrowed). Each frame is copied into a PacketBuffer, its pbuf freed, and the packet handed
// to gVisor's dispatcher in this goroutine.
func (r *endpointRx) DeliverPackets(pkts []*pbuf.Pbuf) {
	e := (*Endpoint)(r)
	g := e.gdisp.Load()
	for _, p := range pkts {
		if g == nil {
			p.Free()
			e.cnt.rxDropped.Add(1)
			continue
		}
		e.deliver(g.d, p)
	}
}

// deliver takes ownership of frame p and hands it to d as a PacketBuffer. A partial
// checksum (FlagChecksumPartial: a local sender's, or a coalesced packet's) is completed
// first: gVisor's NIC sets RXChecksumValidated from the endpoint's capabilities alone,
// whatever the endpoint said of the packet, so gVisor checks every checksum of a link
// that does not claim CapabilityRXChecksumOffload for all its packets, as this one does not.
func (e *Endpoint) deliver(d stack.NetworkDispatcher, p *pbuf.Pbuf) {
	n := p.TotLen()
	first, _ := p.ByteAt(0)
	proto, ok := ipVersionProto(first)
	if e.medium == link.MediumEthernet {
		ok = n > ethHeaderLen
	}
	if !ok {
		p.Free()
		e.cnt.rxInvalid.Add(1)
		return
	}
	v := viewOf(p, 0, n)
	if p.Flags()&pbuf.FlagChecksumPartial != 0 {
		hl := e.medium.HeaderLen()
		if wire.CompleteChecksum(v.AsSlice()[hl:]) {
			e.cnt.rxCsum.Add(1)
		}
	}
	if typ, _ := p.GSO(); typ != pbuf.GSONone {
		e.cnt.rxGSO.Add(1)
	}
	p.Free()
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
	if e.medium == link.MediumEthernet {
		h, _ := pkt.LinkHeader().Consume(ethHeaderLen)
		proto = header.Ethernet(h).Type()
		pkt.NetworkProtocolNumber = proto
		pkt.PktType = e.classify(h[0:6])
	}
	d.DeliverNetworkPacket(proto, pkt)
	pkt.DecRef()
	e.cnt.rxPackets.Add(1)
}

// classify returns the packet type for an Ethernet destination address. "If it is zero,
// the MAC address is unicast. If it is a one, the address is groupcast" (RFC 9542 §2.1).
func (e *Endpoint) classify(dst []byte) tcpip.PacketType {
	switch {
	case [6]byte(dst) == [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}:
		return tcpip.PacketBroadcast
	case dst[0]&1 != 0:
		return tcpip.PacketMulticast
	case [6]byte(dst) == e.addr.Load().mac:
		return tcpip.PacketHost
	}
	return tcpip.PacketOtherHost
}

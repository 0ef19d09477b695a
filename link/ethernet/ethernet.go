package ethernet

import (
	"errors"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// HeaderLen is the Ethernet II header length.
const HeaderLen = wire.EthernetHeaderLen

// Config holds what an Iface needs from its stack.
type Config struct {
	Alloc *pbuf.Allocator // for ARP packets and headers of packets without header room
	// Timers is the stack's timer queue; the Iface's one Timeout lives on it.
	Timers *clock.Timeouts
	// Pools is the stack's pool table; the ARP_QUEUE pool is registered there. Several
	// Ifaces on one table share the pool (sized by the first). Nil is allowed (tests).
	Pools *memp.Table
	// TableSize is the number of ARP entries (opt.ARPTableSize).
	TableSize int
	// QueueLen is the number of packets queued while resolving, over all entries
	// (opt.MempNumARPQueue).
	QueueLen int
	// MaxAge is how long a resolved entry is used (opt.ARPMaxAge).
	MaxAge time.Duration
	// Transmit takes ownership of one complete frame; the netif batches and writes it.
	Transmit func(p *pbuf.Pbuf)
	// Quiet makes the Iface learn from every ARP message it is given and resolve its own
	// next hops, but never answer a request nor announce an address: another Iface on the
	// same link speaks for the addresses (a stack with several cores gives each core an
	// Iface of the link; core 0's answers).
	Quiet bool
}

// Upper is the IP layer above an Iface.
type Upper interface {
	// InputIP takes ownership of an IPv4 or IPv6 packet whose Ethernet header was removed;
	// pbuf.FlagLinkBroadcast or pbuf.FlagLinkMulticast is set when it was so received.
	InputIP(p *pbuf.Pbuf)
	// HasIPv4 reports whether addr is one of this interface's IPv4 addresses.
	HasIPv4(addr netip.Addr) bool
}

// Iface is Ethernet framing and ARP for one interface.
type Iface struct {
	hw     wire.MAC
	up     Upper
	cfg    Config
	st     stats.Proto
	table  []entry
	hint   int // index of the entry last used for output (lwIP's netif hint)
	queue  *memp.Pool[pbuf.QueueNode]
	timer  clock.Timeout
	lead   time.Duration // refresh this long before expiry
	closed bool

	// The RFC 5227 watch (Watch): fn hears the MAC of a station that uses or probes addr.
	watch   netip.Addr
	watchFn func(hw [6]byte)
}

// New returns an Iface with hardware address hw above which up sits.
func New(hw [6]byte, up Upper, cfg Config) (*Iface, error) {
	switch {
	case up == nil:
		return nil, errors.New("ethernet: nil Upper")
	case cfg.Alloc == nil:
		return nil, errors.New("ethernet: Config.Alloc is nil")
	case cfg.Timers == nil:
		return nil, errors.New("ethernet: Config.Timers is nil")
	case cfg.Transmit == nil:
		return nil, errors.New("ethernet: Config.Transmit is nil")
	case cfg.TableSize <= 0:
		return nil, errors.New("ethernet: Config.TableSize must be positive")
	case cfg.QueueLen < 0:
		return nil, errors.New("ethernet: Config.QueueLen is negative")
	case cfg.MaxAge <= 0:
		return nil, errors.New("ethernet: Config.MaxAge must be positive")
	case !wire.MAC(hw).IsUnicast():
		return nil, errors.New("ethernet: hardware address is not a unicast MAC")
	}
	e := &Iface{hw: hw, up: up, cfg: cfg, table: make([]entry, cfg.TableSize)}
	e.lead = min(refreshLead, cfg.MaxAge/2)
	if cfg.Pools != nil {
		if q, ok := cfg.Pools.Lookup(memp.ARPQueue).(*memp.Pool[pbuf.QueueNode]); ok {
			e.queue = q
		} else if cfg.Pools.Lookup(memp.ARPQueue) != nil {
			return nil, errors.New("ethernet: ARP_QUEUE pool registered by someone else")
		}
	}
	if e.queue == nil {
		e.queue = memp.New[pbuf.QueueNode](memp.ARPQueue, cfg.QueueLen, 0)
		if cfg.Pools != nil {
			cfg.Pools.Register(memp.ARPQueue, e.queue)
		}
	}
	e.timer.Init(e.tick)
	return e, nil
}

// HardwareAddr returns the interface's MAC address.
func (e *Iface) HardwareAddr() [6]byte { return e.hw }

// Stats returns the ETHARP record: ARP packets sent and received, and every frame dropped
// here under its reason (lwIP counts unknown EtherTypes as ETHARP protocol errors too).
func (e *Iface) Stats() *stats.Proto { return &e.st }

// Input handles one received frame, Ethernet header included; it takes ownership. ARP is
// handled here; IPv4 and IPv6 go to Upper.InputIP without the header; frames of other
// EtherTypes, and frames addressed to another station's MAC, are dropped and counted.
func (e *Iface) Input(p *pbuf.Pbuf) {
	if e.closed {
		p.Free()
		return
	}
	if e.Unframe(p) {
		e.up.InputIP(p)
		return
	}
	var hb [HeaderLen]byte
	if p.CopyOut(hb[:], 0) < HeaderLen {
		e.drop(p, &e.st.Lenerr)
		return
	}
	eth := wire.Ethernet(hb[:])
	dst := eth.Dst()
	var fl pbuf.Flags
	switch {
	case dst == e.hw:
	case dst.IsBroadcast():
		fl = pbuf.FlagLinkBroadcast
	case dst.IsMulticast():
		fl = pbuf.FlagLinkMulticast
	default:
		// Another station's unicast (a switch flooding, or promiscuous mode).
		e.drop(p, nil)
		return
	}
	if src := eth.Src(); src == e.hw || src.IsMulticast() {
		// Our own frame looped back, or a source no station may use (IEEE 802: the I/G bit
		// is never set in a source address).
		e.drop(p, &e.st.Proterr)
		return
	}
	switch eth.EtherType() {
	case wire.EtherTypeIPv4, wire.EtherTypeIPv6:
		if p.RemoveHeader(HeaderLen) != nil {
			// The header straddles pbufs; links never deliver such chains.
			e.drop(p, &e.st.Lenerr)
			return
		}
		p.SetFlags(p.Flags() | fl)
		e.up.InputIP(p)
	case wire.EtherTypeARP:
		e.arpInput(p)
		p.Free()
	default:
		e.drop(p, &e.st.Proterr)
	}
}

// Unframe removes the Ethernet header of p when p is an IPv4 or IPv6 packet unicast to the
// Iface's MAC from another station's unicast MAC, with its header in the first pbuf: the
// common frame, which Input hands up without further checks. It reports whether it did;
// otherwise p is untouched. It borrows p. The stack unframes a batch this way before
// software GRO.
func (e *Iface) Unframe(p *pbuf.Pbuf) bool {
	b := p.Payload()
	if len(b) < HeaderLen {
		return false
	}
	f := wire.Ethernet(b)
	typ, src := f.EtherType(), f.Src()
	return f.Dst() == e.hw && src != e.hw && !src.IsMulticast() &&
		(typ == wire.EtherTypeIPv4 || typ == wire.EtherTypeIPv6) && p.RemoveHeader(HeaderLen) == nil
}

// Output prepends an Ethernet header addressed to dst and hands the frame to Transmit. It
// takes ownership of p. When p's first pbuf lacks header room a header pbuf is chained in
// front; if none can be allocated the packet is dropped and errs.Mem returned.
func (e *Iface) Output(p *pbuf.Pbuf, dst [6]byte, etherType uint16) error {
	if e.closed {
		p.Free()
		return errs.Clsd
	}
	if p.AddHeader(HeaderLen) != nil {
		h, err := e.cfg.Alloc.Alloc(pbuf.LayerRaw, HeaderLen, pbuf.RAM)
		if err != nil {
			e.drop(p, &e.st.Memerr)
			return errs.Mem
		}
		h.SetFlags(p.Flags())
		h.SetIfIndex(p.IfIndex())
		pbuf.Cat(h, p)
		p = h
	}
	b, _ := p.Header(HeaderLen)
	eth := wire.Ethernet(b)
	eth.SetDst(dst)
	eth.SetSrc(e.hw)
	eth.SetEtherType(wire.EtherType(etherType))
	e.cfg.Transmit(p)
	return nil
}

// OutputIPv4 sends IPv4 packet p to nexthop, resolving its MAC address; it takes ownership
// of p, whose first pbuf should have HeaderLen bytes of header room. The limited broadcast
// 255.255.255.255 (the caller maps a subnet broadcast to it) and multicast groups map to MACs
// directly. An unresolved next hop gets an ARP request (src is its sender address) and p is
// queued until the reply; when the queue is full the packet is dropped, counted, and
// errs.Mem returned.
func (e *Iface) OutputIPv4(p *pbuf.Pbuf, nexthop, src netip.Addr) error {
	if e.closed {
		p.Free()
		return errs.Clsd
	}
	switch {
	case !nexthop.Is4() || nexthop.IsUnspecified():
		e.drop(p, &e.st.Rterr)
		return errs.Rte
	case nexthop == broadcast4:
		return e.Output(p, wire.BroadcastMAC, uint16(wire.EtherTypeIPv4))
	case nexthop.IsMulticast():
		// RFC 1112 §6.4: the group's low 23 bits in 01:00:5e:00:00:00.
		return e.Output(p, wire.IPv4MulticastMAC(nexthop), uint16(wire.EtherTypeIPv4))
	}
	if i := e.find(nexthop); i >= 0 {
		ent := &e.table[i]
		e.hint = i
		if ent.state == statePending {
			return e.enqueue(ent, p)
		}
		e.st.Cachehit++
		ent.used = true
		if ent.refreshDue && ent.state == stateStable {
			e.refresh(ent, e.cfg.Timers.Now())
		}
		return e.Output(p, ent.mac, uint16(wire.EtherTypeIPv4))
	}
	i := e.newEntry()
	if i < 0 {
		e.drop(p, &e.st.Memerr)
		return errs.Mem
	}
	ent := &e.table[i]
	now := e.cfg.Timers.Now()
	*ent = entry{state: statePending, addr: nexthop, src: src, ctime: now, lastReq: now, tries: 1}
	e.hint = i
	err := e.enqueue(ent, p)
	e.request(ent, wire.BroadcastMAC)
	e.rearm()
	return err
}

// Announce broadcasts a gratuitous ARP for addr in request form: RFC 5227 §3, "an ARP
// Request packet ... where the 'sender IP address' and 'target IP address' are both set to
// the host's newly selected IPv4 address", target hardware address zero.
func (e *Iface) Announce(addr netip.Addr) {
	if e.closed || !addr.Is4() || e.cfg.Quiet {
		return
	}
	e.sendARP(wire.ARPRequest, wire.BroadcastMAC, wire.MAC{}, addr, addr)
}

// Close cancels the timer and frees every queued packet; later calls drop what they are
// given. Close is idempotent.
func (e *Iface) Close() {
	if e.closed {
		return
	}
	e.Flush()
	e.closed = true
}

// drop frees p and counts it under reason (nil: Drop only).
func (e *Iface) drop(p *pbuf.Pbuf, reason *uint64) {
	p.Free()
	e.st.Drop++
	if reason != nil {
		*reason++
	}
}

var broadcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})

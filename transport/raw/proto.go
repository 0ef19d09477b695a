package raw

import (
	"math/rand/v2"
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// Proto is one stack's raw PCBs. It implements ip.Raw; the stack registers it with
// ip.Layer.SetRaw.
type Proto struct {
	ip     *ip.Layer
	alloc  *pbuf.Allocator
	pcbs   *memp.Pool[PCB]
	rng    *rand.Rand
	head   *PCB     // every PCB in use, newest first
	info   RecvInfo // handed to RecvFuncs (borrowed)
	mark   uint32
	closed bool
}

// New creates the raw PCBs of a stack and registers their pool (RAW_PCB) in c.Pools; c.Seed
// seeds the choice of echo identifiers, and c.Timers is not used. The stack then calls
// c.IP.SetRaw with it.
func New(c ip.TransportConfig) (*Proto, error) {
	if c.IP == nil || c.Alloc == nil {
		return nil, errs.Val
	}
	p := &Proto{
		ip:    c.IP,
		alloc: c.Alloc,
		pcbs:  memp.NewLazy[PCB](memp.RawPCB, max(c.Options.MempNumRawPCB, 0), 0),
		rng:   rand.New(rand.NewPCG(c.Seed, c.Seed^0x7261772d69646e74)),
	}
	if c.Pools != nil {
		c.Pools.Register(memp.RawPCB, p.pcbs)
	}
	return p, nil
}

// PoolDecls declares the pool New creates for options o, for the budget report.
func PoolDecls(o opt.Options) []memp.Decl {
	return []memp.Decl{memp.DeclFor[PCB](memp.RawPCB, max(o.MempNumRawPCB, 0), 0)}
}

// Close frees every PCB (no callback runs) and makes later calls fail with errs.Clsd.
func (p *Proto) Close() {
	p.ip.AssertCore()
	if p.closed {
		return
	}
	for p.head != nil {
		p.head.Close()
	}
	p.closed = true
}

// NumPCBs returns the PCBs in use.
func (p *Proto) NumPCBs() int { return p.pcbs.Stats().Used }

// NewPing returns an ICMP (v6: ICMPv6) echo PCB, like a Linux SOCK_DGRAM/IPPROTO_ICMP
// socket. Its identifier is chosen at Bind, BindIdent or the first send. errs.Mem when
// RAW_PCB is exhausted.
func (p *Proto) NewPing(v6 bool) (*PCB, error) {
	p.ip.AssertCore()
	proto := uint8(wire.ProtoICMP)
	if v6 {
		proto = wire.ProtoICMPv6
	}
	return p.newPCB(v6, proto, true)
}

// NewRaw returns a raw PCB of IP protocol proto. An ICMPv6 PCB has its checksum computed
// and verified at offset 2 (RFC 3542 §3.1); other PCBs have none until SetChecksumOffset.
// errs.Val for protocols that are IPv6 extension headers, errs.Mem when RAW_PCB is
// exhausted.
func (p *Proto) NewRaw(v6 bool, proto uint8) (*PCB, error) {
	p.ip.AssertCore()
	switch proto {
	case wire.ProtoHopByHop, wire.ProtoIPv6Route, wire.ProtoIPv6Frag, wire.ProtoIPv6DstOpts, wire.ProtoNoNextHdr:
		if v6 {
			return nil, errs.Val
		}
	}
	return p.newPCB(v6, proto, false)
}

func (p *Proto) newPCB(v6 bool, proto uint8, ping bool) (*PCB, error) {
	if p.closed {
		return nil, errs.Clsd
	}
	c := p.pcbs.Get()
	if c == nil {
		return nil, errs.Mem
	}
	c.p, c.v6, c.proto, c.ping = p, v6, proto, ping
	c.csum = -1
	if v6 && proto == wire.ProtoICMPv6 {
		c.csum = 2
	}
	c.SendOptions.Init(p.ip)
	c.next = p.head
	if p.head != nil {
		p.head.prev = c
	}
	p.head = c
	p.ip.RawListen(proto, true)
	return c, nil
}

// unlink takes c off the list.
func (p *Proto) unlink(c *PCB) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		p.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	c.next, c.prev = nil, nil
}

// identTaken reports whether a ping PCB of the family (other than c) has id.
func (p *Proto) identTaken(c *PCB, v6 bool, id uint16) bool {
	for o := p.head; o != nil; o = o.next {
		if o != c && o.ping && o.v6 == v6 && o.hasIdent && o.ident == id {
			return true
		}
	}
	return false
}

// pickIdent chooses a free identifier for c: random start, then the next ones in turn.
func (p *Proto) pickIdent(c *PCB) (uint16, bool) {
	start := uint16(p.rng.Uint32())
	for i := range 1 << 16 {
		id := start + uint16(i)
		if id != 0 && !p.identTaken(c, c.v6, id) {
			return id, true
		}
	}
	return 0, false
}

var _ ip.Raw = (*Proto)(nil)

// local reports whether a is usable as c's local address: unspecified or assigned here.
func (p *Proto) local(a netip.Addr) bool {
	return !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || p.ip.IsLocal(a)
}

package udp

import (
	"math/bits"
	"math/rand/v2"
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
)

// Proto is one stack's UDP: its PCB pool, demux table and counters. It implements
// ip.Transport; the stack registers it for protocol 17.
type Proto struct {
	opts  opt.Options
	ip    *ip.Layer
	alloc *pbuf.Allocator
	pcbs  *memp.Pool[PCB]
	rng   *rand.Rand

	buckets []*PCB // bound PCBs by local port, chained through PCB.hnext
	mask    uint32
	icept   *PCB // SetIntercept's receiver of intercepted datagrams (nil: none)

	st     stats.Proto
	info   RecvInfo // handed to RecvFuncs (borrowed): a local would escape and allocate
	mark   uint32   // delivery round of the broadcast/multicast datagram being delivered
	closes uint32   // PCBs closed so far: a callback that closed one ends a GSO delivery
	closed bool
}

// New creates the UDP of a stack and registers its pool (UDP_PCB) in c.Pools. c.Seed seeds
// the ephemeral port choice (RFC 6056); the stack draws it from crypto/rand unless a test
// fixed it. UDP has no timers: c.Timers is not used.
func New(c ip.TransportConfig) (*Proto, error) {
	if c.IP == nil || c.Alloc == nil {
		return nil, errs.Val
	}
	o := c.Options
	n := tableSize(o)
	p := &Proto{
		opts:    o,
		ip:      c.IP,
		alloc:   c.Alloc,
		pcbs:    memp.NewLazy[PCB](memp.UDPPCB, max(o.MempNumUDPPCB, 0), 0),
		rng:     rand.New(rand.NewPCG(c.Seed, c.Seed^0x7564702d706f7274)),
		buckets: make([]*PCB, n),
		mask:    uint32(n - 1),
	}
	if c.Pools != nil {
		c.Pools.Register(memp.UDPPCB, p.pcbs)
	}
	return p, nil
}

// tableSize is the number of demux buckets for o: a power of two, at least 16.
func tableSize(o opt.Options) int {
	n := max(o.MempNumUDPPCB, 16)
	return 1 << bits.Len(uint(n-1))
}

// PoolDecls declares the pool New creates for options o, for the budget report.
func PoolDecls(o opt.Options) []memp.Decl {
	return []memp.Decl{memp.DeclFor[PCB](memp.UDPPCB, max(o.MempNumUDPPCB, 0), 0)}
}

// TableDecls declares the fixed demux table New allocates beside its pool.
func TableDecls(o opt.Options) []memp.TableDecl {
	return []memp.TableDecl{memp.TableDeclFor[*PCB]("UDP_PORT_HASH", tableSize(o))}
}

// Close frees every PCB (no callback runs) and makes later calls fail with errs.Clsd. The
// stack calls it on Close.
func (p *Proto) Close() {
	p.ip.AssertCore()
	if p.closed {
		return
	}
	for i := range p.pcbs.Cap() {
		if p.pcbs.InUse(i) {
			p.pcbs.At(i).Close()
		}
	}
	p.closed = true
}

// Stats fills s.UDP.
func (p *Proto) Stats(s *stats.Snapshot) {
	p.ip.AssertCore()
	s.UDP = p.st
}

// NumPCBs returns the PCBs in use.
func (p *Proto) NumPCBs() int { return p.pcbs.Stats().Used }

// NewPCB returns a fresh unbound PCB with Linux's defaults: broadcast off, checksum on,
// dual stack, multicast loop on, multicast TTL 1. errs.Mem when UDP_PCB is exhausted,
// errs.Clsd after Close.
func (p *Proto) NewPCB() (*PCB, error) {
	p.ip.AssertCore()
	if p.closed {
		return nil, errs.Clsd
	}
	c := p.pcbs.Get()
	if c == nil {
		p.st.Memerr++
		return nil, errs.Mem
	}
	c.p = p
	c.SendOptions.Init(p.ip)
	return c, nil
}

// bucket returns the head of the demux chain of local port port.
func (p *Proto) bucket(port uint16) **PCB { return &p.buckets[uint32(port)&p.mask] }

func (p *Proto) insert(c *PCB) {
	b := p.bucket(c.lport)
	c.hnext = *b
	*b = c
}

func (p *Proto) remove(c *PCB) {
	for pp := p.bucket(c.lport); *pp != nil; pp = &(*pp).hnext {
		if *pp == c {
			*pp = c.hnext
			break
		}
	}
	c.hnext = nil
}

// pickPort chooses a free ephemeral port for c bound to addr with RFC 6056 §3.3.1
// Algorithm 1: "next_ephemeral = min_ephemeral + (random() % num_ephemeral)", then the
// following ports in turn until one is suitable.
func (p *Proto) pickPort(c *PCB, addr netip.Addr, v6only bool) (uint16, bool) {
	lo, hi := uint32(p.opts.TCPPortLow), uint32(p.opts.TCPPortHigh)
	if lo == 0 || hi < lo {
		lo, hi = 49152, 65535
	}
	num := hi - lo + 1
	start := p.rng.Uint32N(num)
	for count := range num {
		port := uint16(lo + (start+count)%num)
		if !p.portTaken(c, addr, v6only, port, false) {
			return port, true
		}
	}
	return 0, false
}

// portTaken reports whether binding addr:port conflicts with another bound PCB: their
// addresses overlap and not both set SO_REUSEADDR.
func (p *Proto) portTaken(c *PCB, addr netip.Addr, v6only bool, port uint16, reuse bool) bool {
	for o := *p.bucket(port); o != nil; o = o.hnext {
		if o == c || o.lport != port || reuse && o.flags&fReuseAddr != 0 {
			continue
		}
		if overlaps(addr, v6only, o.baddr, o.flags&fV6Only != 0) {
			return true
		}
	}
	return false
}

// families returns which families (bit 0 IPv4, bit 1 IPv6) a bound address receives.
func families(a netip.Addr, v6only bool) uint8 {
	switch {
	case !a.IsValid() || a == netip.IPv6Unspecified():
		if v6only {
			return 2
		}
		return 3
	case a.Is4():
		return 1
	}
	return 2
}

// overlaps reports whether two bound addresses can receive the same datagram.
func overlaps(a netip.Addr, av6only bool, b netip.Addr, bv6only bool) bool {
	if isWild(a) || isWild(b) {
		return families(a, av6only)&families(b, bv6only) != 0
	}
	return a == b
}

// isWild reports whether a bound address is a wildcard (invalid: any family).
func isWild(a netip.Addr) bool { return !a.IsValid() || a.IsUnspecified() }

package ip

import (
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
)

// Output sends a transport packet; it takes ownership of p, whatever it returns. p's first
// pbuf should have pbuf.LayerIP header room (else a RAM header pbuf is chained in front).
// An invalid src is chosen with SourceFor. A packet larger than the MTU is fragmented (IPv4
// unless DontFragment, which fails with errs.Val; IPv6 always, RFC 8200 §5). A local
// destination is looped back and delivered at Flush. errs.Rte without a route, errs.Mem on
// exhaustion.
func (l *Layer) Output(p *pbuf.Pbuf, src, dst netip.Addr, proto uint8, o OutputOptions) error {
	l.timers.AssertCore()
	if p == nil {
		return errs.Val
	}
	if l.closed {
		p.Free()
		return errs.Clsd
	}
	dst, src = dst.Unmap(), src.Unmap()
	switch {
	case dst.Is4():
		return l.output4(p, src, dst, proto, o)
	case dst.Is6():
		return l.output6(p, src, dst, proto, o)
	}
	p.Free()
	return errs.Val
}

// OutputOptions are the per-packet choices of Output.
type OutputOptions struct {
	TTL          uint8 // 0: Options.IPDefaultTTL (IPv6: the router-advertised hop limit)
	TOS          uint8 // IPv4 TOS / IPv6 traffic class
	DontFragment bool  // IPv4: set DF and fail rather than fragment
	// Netif forces the egress netif (SO_BINDTODEVICE, IP_MULTICAST_IF).
	Netif *Netif
	// FailIfFull makes Output fail with errs.Mem, dropping p and counting Memerr, when the
	// egress link's transmit queue has no room (link.TxRoomer): a datagram sender hears
	// ENOMEM, as esp-lwip's UDP does, instead of the frame being dropped at flush.
	FailIfFull bool
	// MulticastLoop delivers a copy of a multicast packet to this stack too when the
	// egress netif is a member of the group (IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP).
	MulticastLoop bool
	// LoopOnly keeps a multicast packet on this host: IP_MULTICAST_TTL 0 /
	// IPV6_MULTICAST_HOPS 0 on Linux. Nothing goes on the link; with MulticastLoop and
	// the egress netif a member, the packet (TTL / hop limit 0 in its header, TTL ignored,
	// never fragmented) is delivered locally at Flush; otherwise it is dropped without
	// error or counter, as Linux does. Unicast and broadcast destinations ignore it.
	LoopOnly bool
}

// prepend makes room for an hl-byte header in front of p (plus the link header of n): in
// p's header room, or in a new RAM pbuf chained in front. It takes ownership of p and
// returns the chain whose first pbuf starts with the hl header bytes.
func (l *Layer) prepend(p *pbuf.Pbuf, hl int, n *Netif) (*pbuf.Pbuf, error) {
	if p.HeaderRoom() >= hl+n.medium.HeaderLen() && p.Type() != pbuf.REF && p.AddHeader(hl) == nil {
		return p, nil
	}
	h, err := l.alloc.Alloc(pbuf.LayerLink, hl, pbuf.RAM)
	if err != nil {
		p.Free()
		return nil, errs.Mem
	}
	h.SetFlags(p.Flags())
	if p.TotLen() == 0 {
		p.Free()
	} else {
		pbuf.Cat(h, p)
	}
	return h, nil
}

package ip

import (
	"encoding/binary"
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// Intercept says which destinations a netif intercepts: unicast packets to addresses the
// stack does not own are delivered to the transports, after reassembly, as if the address
// were local (Header.Intercepted set), so a TUN proxy can answer any address (a TCP
// connection, a UDP session, an echo) from the address it was sent to. Broadcast, multicast,
// link-local (169.254.0.0/16, fe80::/10), unspecified and loopback destinations are never
// intercepted; they go where they would go without it.
type Intercept struct {
	Include []netip.Prefix // empty: every other address; else only destinations inside one
	Exclude []netip.Prefix // never these, even inside Include
}

// EchoMode says what becomes of an echo request (ping) to an intercepted destination.
type EchoMode uint8

// The echo modes.
const (
	EchoLocal EchoMode = iota // answered by the core, from the intercepted address
	EchoHost                  // handed to the hook of SetInterceptEcho (dropped without one)
	EchoDrop                  // dropped and counted
)

// SetIntercept turns interception on with ic's prefixes (copied), or off with nil. It fails
// with errs.Val for an invalid prefix. Core context.
func (n *Netif) SetIntercept(ic *Intercept) error {
	n.l.timers.AssertCore()
	if err := n.setIntercept(ic); err != nil {
		return err
	}
	n.l.changed() // the input caches remember which destinations were delivered
	return nil
}

func (n *Netif) setIntercept(ic *Intercept) error {
	if ic == nil {
		n.icept = nil
		return nil
	}
	c := &Intercept{Include: make([]netip.Prefix, 0, len(ic.Include)), Exclude: make([]netip.Prefix, 0, len(ic.Exclude))}
	for _, lists := range [2]struct{ from, to *[]netip.Prefix }{{&ic.Include, &c.Include}, {&ic.Exclude, &c.Exclude}} {
		for _, pfx := range *lists.from {
			if !pfx.IsValid() {
				return errs.Val
			}
			*lists.to = append(*lists.to, pfx.Masked())
		}
	}
	n.icept = c
	return nil
}

// Intercept returns a copy of the netif's interception, nil when off. Core context.
func (n *Netif) Intercept() *Intercept {
	if n.icept == nil {
		return nil
	}
	return &Intercept{Include: append([]netip.Prefix(nil), n.icept.Include...),
		Exclude: append([]netip.Prefix(nil), n.icept.Exclude...)}
}

// intercepts reports whether n delivers a unicast packet to dst, an address the stack does
// not own, to the transports. Only globally routable-looking unicast destinations are
// taken (netip's IsGlobalUnicast, which includes private ranges), never class E.
func (n *Netif) intercepts(dst netip.Addr) bool {
	ic := n.icept
	if ic == nil || !dst.IsGlobalUnicast() || dst.Is4() && isClassE(dst) || dst.Is4In6() {
		return false
	}
	if len(ic.Include) > 0 {
		in := false
		for _, p := range ic.Include {
			if p.Contains(dst) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	for _, p := range ic.Exclude {
		if p.Contains(dst) {
			return false
		}
	}
	return true
}

// SetInterceptEcho says what becomes of echo requests to intercepted destinations: answered
// here (EchoLocal, the default), handed to hook (EchoHost: hook runs in core context and takes
// ownership of p, positioned at the ICMP or ICMPv6 header; h is borrowed; without a hook
// they are dropped) or dropped (EchoDrop). Drops are counted in the ICMP record's Drop.
// Core context.
func (l *Layer) SetInterceptEcho(mode EchoMode, hook func(h *Header, p *pbuf.Pbuf)) {
	l.timers.AssertCore()
	l.echoMode, l.echoHook = mode, hook
}

// interceptEcho applies the echo mode to an echo request to an intercepted destination,
// p positioned at the IP header. It reports whether the caller answers it locally;
// otherwise p is gone (handed to the hook, or dropped and counted in st).
func (l *Layer) interceptEcho(h *Header, p *pbuf.Pbuf, st *stats.Proto) bool {
	switch {
	case l.echoMode == EchoLocal:
		return true
	case l.echoMode == EchoHost && l.echoHook != nil:
		_ = p.RemoveHeader(h.HeaderLen)
		l.echoHook(h, p)
	default:
		l.dropPkt(p, &st.Err)
	}
	return false
}

// SendEchoReply sends an echo reply (ICMP type 0, or ICMPv6 type 129) with identifier id,
// sequence seq and data from `from` — any address of the family, the destination the
// request was sent to — to `to`: the answer of a host that forwarded an intercepted echo
// request (EchoHost). Core context. Errors: errs.Val (addresses of two families or
// invalid), errs.MsgSize (data past 65,507 bytes), errs.Mem, a routing error.
func (l *Layer) SendEchoReply(from, to netip.Addr, id, seq uint16, data []byte) error {
	l.timers.AssertCore()
	from, to = from.Unmap(), to.Unmap()
	if !from.IsValid() || !to.IsValid() || from.Is4() != to.Is4() {
		return errs.Val
	}
	if len(data) > 0xffff-wire.IPv4MinHeaderLen-wire.ICMPv4HeaderLen {
		return errs.MsgSize
	}
	st := &l.icmp
	typ := uint8(wire.ICMPv4EchoReply)
	if to.Is6() {
		st, typ = &l.icmp6, wire.ICMPv6EchoReply
	}
	q, err := l.alloc.Alloc(pbuf.LayerIP, wire.ICMPv4HeaderLen+len(data), pbuf.RAM)
	if err != nil {
		st.Drop++
		st.Memerr++
		return errs.Mem
	}
	b := q.Payload()
	b[0], b[1], b[2], b[3] = typ, 0, 0, 0
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], data)
	st.Xmit++
	if to.Is4() {
		binary.BigEndian.PutUint16(b[2:], wire.Finish(wire.Checksum(b, 0)))
		return l.output4(q, from, to, wire.ProtoICMP, OutputOptions{})
	}
	sum := wire.PseudoHeaderChecksum(wire.ProtoICMPv6, from, to, uint32(len(b)))
	binary.BigEndian.PutUint16(b[2:], wire.Finish(wire.Checksum(b, sum)))
	return l.output6(q, from, to, wire.ProtoICMPv6, OutputOptions{})
}

// SendPortUnreachable sends ICMP port unreachable (type 3 code 3, or ICMPv6 type 1 code 4)
// from dst's address to client about a UDP datagram client sent to dst: how a host refuses
// an intercepted UDP flow it will not carry. The quoted datagram is rebuilt from the
// addresses and the first bytes of payload (RFC 792 asks for the IP header and 64 bits of
// data; a rebuilt header identifies the flow to the client as the original would). Rate
// limited and counted as every ICMP error. Core context. Errors: errs.Val (bad addresses),
// errs.Mem, errs.Rte (no route to the client).
func (l *Layer) SendPortUnreachable(client, dst netip.AddrPort, payload []byte) error {
	l.timers.AssertCore()
	c, d := client.Addr().Unmap(), dst.Addr().Unmap()
	if !c.IsValid() || !d.IsValid() || c.Is4() != d.Is4() {
		return errs.Val
	}
	n, _, ok := l.lookup(c, nil)
	if !ok {
		return errs.Rte
	}
	hl := wire.IPv4MinHeaderLen
	if c.Is6() {
		hl = wire.IPv6HeaderLen
	}
	payload = payload[:min(len(payload), 64)]
	ulen := wire.UDPHeaderLen + len(payload)
	p, err := l.alloc.Alloc(pbuf.LayerIP, hl+ulen, pbuf.RAM)
	if err != nil {
		return errs.Mem
	}
	b := p.Payload()
	if c.Is4() {
		r := wire.IPv4Repr{Src: c, Dst: d, Protocol: wire.ProtoUDP, TTL: 64, PayloadLen: ulen}
		_ = r.Emit(b)
	} else {
		r := wire.IPv6Repr{Src: c, Dst: d, NextHeader: wire.ProtoUDP, HopLimit: 64, PayloadLen: ulen}
		_ = r.Emit(b)
	}
	u := b[hl:]
	binary.BigEndian.PutUint16(u[0:], client.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(ulen))
	binary.BigEndian.PutUint16(u[6:], 0)
	copy(u[8:], payload)
	if c.Is4() {
		l.icmp4Error(n, p, wire.ICMPv4DestUnreach, wire.ICMPv4PortUnreach, 0)
	} else {
		l.icmp6Error(n, p, wire.ICMPv6DestUnreach, wire.ICMPv6PortUnreach, 0)
	}
	p.Free()
	return nil
}

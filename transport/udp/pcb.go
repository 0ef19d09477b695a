package udp

import (
	"net/netip"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/pbuf"
)

// RecvInfo describes a received datagram to a RecvFunc (IP_PKTINFO and friends).
type RecvInfo struct {
	Src                  netip.AddrPort // sender
	Dst                  netip.Addr     // the packet's destination (IP_PKTINFO / IPV6_PKTINFO)
	DstPort              uint16         // the datagram's destination port
	IfIndex              int            // netif it arrived on
	TTL, TOS             uint8          // IPv4 TTL and TOS, IPv6 hop limit and traffic class
	Broadcast, Multicast bool           // the destination was a broadcast or multicast address
	Intercepted          bool           // Dst is not ours: the netif intercepted it (Proto.SetIntercept)
}

// RecvFunc receives one datagram. It takes ownership of p: the payload only, UDP header
// removed (p may be empty). info is borrowed for the call.
type RecvFunc func(c *PCB, p *pbuf.Pbuf, info *RecvInfo)

// ErrFunc reports an ICMP error about a datagram a connected PCB sent: errs.Refused (port
// or protocol unreachable), errs.NetUnreach, errs.Rte (host unreachable, administratively
// prohibited), errs.MsgSize (packet too big). The PCB stays usable.
type ErrFunc func(c *PCB, err error)

type pcbFlags uint16

const (
	fBound      pcbFlags = 1 << iota // has a local port and sits in the demux table
	fConnected                       // raddr:rport set
	fReuseAddr                       // SO_REUSEADDR
	fBroadcast                       // SO_BROADCAST
	fNoChecksum                      // SO_NO_CHECK (IPv4 sends only)
	fV6Only                          // IPV6_V6ONLY
	fV6Sock                          // bound or connected with an IPv6 address: report IPv4 as mapped
)

// PCB is one UDP endpoint (lwIP struct udp_pcb). Its methods are core context. After
// Close the PCB goes back to the pool and may be handed out again: drop every reference.
type PCB struct {
	p     *Proto
	hnext *PCB // demux chain

	// Addresses are unmapped and zoneless for demultiplexing; rdst is the remote as the
	// application gave it (a link-local zone selects the netif).
	baddr netip.Addr // as bound; invalid: both families, no address
	laddr netip.Addr // baddr, or the source address Connect chose
	raddr netip.Addr
	rdst  netip.Addr
	lport uint16
	rport uint16
	flags pcbFlags
	seg   uint16 // UDP_SEGMENT: payload bytes per datagram of a large send (0: off)

	ip.SendOptions        // TTL, TOS, multicast TTL, netif and loop
	mark           uint32 // delivery round (Proto.mark) this PCB is still due a copy in

	recvFn RecvFunc
	errFn  ErrFunc
	arg    any
}

// usable reports whether c is a live PCB.
func (c *PCB) usable() bool { return c != nil && c.p != nil && !c.p.closed }

// Bind sets the local address and port (lwIP udp_bind). Port 0 picks an ephemeral port
// (Options.TCPPortLow..TCPPortHigh). An invalid or unspecified IPv6 address ("::") hears
// both families unless SetV6Only; "0.0.0.0" IPv4 only; an IPv4-mapped address is that
// IPv4 address. errs.Use if the address and port are taken (unless both PCBs set
// SetReuseAddr), errs.AddrNotAvail if the address is neither unspecified, local, multicast
// nor the IPv4 broadcast address, errs.Val if c is already bound, errs.Clsd after Close.
func (c *PCB) Bind(addr netip.AddrPort) error {
	c.assertCore()
	if !c.usable() {
		return errs.Clsd
	}
	if c.flags&fBound != 0 {
		return errs.Val
	}
	a := addr.Addr()
	v6sock := a.Is6()
	if a.Is4In6() && c.flags&fV6Only != 0 {
		return errs.Val // Linux: EINVAL for a v4-mapped address on a v6-only socket
	}
	a = a.Unmap().WithZone("")
	if a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && a != bcast4 &&
		!c.p.ip.IsLocal(a) && !c.p.isBroadcast(a, nil) {
		return errs.AddrNotAvail
	}
	if err := c.bind(a, addr.Port()); err != nil {
		return err
	}
	if v6sock {
		c.flags |= fV6Sock
	}
	return nil
}

// bind puts c in the demux table at a:port (0: ephemeral).
func (c *PCB) bind(a netip.Addr, port uint16) error {
	p := c.p
	v6only := c.flags&fV6Only != 0
	if port == 0 {
		var ok bool
		if port, ok = p.pickPort(c, a, v6only); !ok {
			return errs.Use
		}
	} else if p.portTaken(c, a, v6only, port, c.flags&fReuseAddr != 0) {
		return errs.Use
	}
	c.baddr, c.laddr, c.lport = a, a, port
	c.flags |= fBound
	p.insert(c)
	return nil
}

// Connect sets the remote address (lwIP udp_connect): sends without a destination go
// there and only datagrams from it are received. An unbound PCB is bound to an ephemeral
// port first; an unspecified local address becomes the route's source address (as Linux,
// LocalAddr then reports it). errs.Val for an unspecified address or port 0 or a family
// the PCB cannot reach, errs.Access for a broadcast address without SetBroadcast,
// errs.NetUnreach / errs.NetDown without a usable route, errs.Use if no port is free.
func (c *PCB) Connect(raddr netip.AddrPort) error {
	c.assertCore()
	if !c.usable() {
		return errs.Clsd
	}
	p := c.p
	dst := raddr.Addr()
	mapped := dst.Is4In6()
	dst = dst.Unmap()
	if !dst.IsValid() || dst.IsUnspecified() || raddr.Port() == 0 {
		return errs.Val
	}
	if err := c.familyOK(dst, mapped); err != nil {
		return err
	}
	if dst.Is4() && c.flags&fBroadcast == 0 && (dst == bcast4 || p.isBroadcast(dst, nil)) {
		return errs.Access
	}
	if c.flags&fBound == 0 {
		if err := c.bind(netip.Addr{}, 0); err != nil {
			return err
		}
	}
	local := c.baddr
	if isWild(local) || local.IsMulticast() || local == bcast4 {
		ifIndex := 0
		if dst.IsMulticast() || dst == bcast4 {
			ifIndex = c.MulticastNetif()
		}
		n, err := p.egress(dst, ifIndex)
		if err != nil {
			return err
		}
		src, err := p.ip.SourceFor(dst.WithZone(""), n)
		if err != nil {
			return p.ip.RouteErr(dst, nil)
		}
		local = src
	}
	c.laddr = local
	c.raddr, c.rdst, c.rport = dst.WithZone(""), dst, raddr.Port()
	c.flags |= fConnected
	if mapped {
		c.flags |= fV6Sock
	}
	return nil
}

// familyOK checks that c may exchange datagrams with dst (unmapped; mapped: it was given
// IPv4-mapped).
func (c *PCB) familyOK(dst netip.Addr, mapped bool) error {
	if dst.Is4() {
		if c.flags&fV6Only != 0 {
			return errs.NetUnreach // Linux: a v6-only socket cannot reach IPv4
		}
		if c.baddr.Is6() && c.baddr != netip.IPv6Unspecified() {
			return errs.Val
		}
		return nil
	}
	if c.baddr.Is4() || mapped {
		return errs.Val
	}
	return nil
}

// Disconnect forgets the remote address (lwIP udp_disconnect); the local address goes back
// to what Bind set, the port stays.
func (c *PCB) Disconnect() {
	c.assertCore()
	if !c.usable() {
		return
	}
	c.laddr = c.baddr
	c.raddr, c.rdst, c.rport = netip.Addr{}, netip.Addr{}, 0
	c.flags &^= fConnected
}

// Close removes c from the demux table and frees it (lwIP udp_remove). No callback runs
// after Close. Closing twice is harmless while the PCB has not been handed out again.
func (c *PCB) Close() {
	c.assertCore()
	if c == nil || c.p == nil {
		return
	}
	p := c.p
	if c.flags&fBound != 0 {
		p.remove(c)
	}
	if p.icept == c {
		p.icept = nil
	}
	p.closes++
	p.pcbs.Put(c)
}

// LocalAddr returns the bound address and port: invalid address and port 0 before Bind,
// an invalid address with the port when bound to both families without an address. See
// the package doc for IPv4-mapped reporting.
func (c *PCB) LocalAddr() netip.AddrPort {
	c.assertCore()
	if c.p == nil || c.flags&fBound == 0 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(c.report(c.laddr), c.lport)
}

// RemoteAddr returns the connected peer, invalid when not connected.
func (c *PCB) RemoteAddr() netip.AddrPort {
	c.assertCore()
	if c.p == nil || c.flags&fConnected == 0 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(c.report(c.raddr), c.rport)
}

// report maps IPv4 addresses for an IPv6 socket.
func (c *PCB) report(a netip.Addr) netip.Addr {
	if c.flags&fV6Sock != 0 && a.Is4() {
		return netip.AddrFrom16(a.As16())
	}
	return a
}

// OnRecv sets the receive callback (nil: datagrams are dropped).
func (c *PCB) OnRecv(fn RecvFunc) {
	c.assertCore()
	c.recvFn = fn
}

// OnErr sets the ICMP error callback of a connected PCB.
func (c *PCB) OnErr(fn ErrFunc) {
	c.assertCore()
	c.errFn = fn
}

// SetArg sets the value Arg returns.
func (c *PCB) SetArg(a any) {
	c.assertCore()
	c.arg = a
}

// Arg returns the value SetArg set.
func (c *PCB) Arg() any {
	c.assertCore()
	return c.arg
}

// setFlag and flag are the flag accessors' bodies: the core check, then the flag.
func (c *PCB) setFlag(f pcbFlags, on bool) {
	c.assertCore()
	c.set(f, on)
}

func (c *PCB) flag(f pcbFlags) bool {
	c.assertCore()
	return c.flags&f != 0
}

func (c *PCB) set(f pcbFlags, on bool) {
	if on {
		c.flags |= f
	} else {
		c.flags &^= f
	}
}

// SetReuseAddr sets SO_REUSEADDR: two PCBs that both set it may bind the same address and
// port (unicast goes to one of them, broadcast and multicast to both). Set it before Bind.
func (c *PCB) SetReuseAddr(on bool) { c.setFlag(fReuseAddr, on) }

// ReuseAddr reports SO_REUSEADDR.
func (c *PCB) ReuseAddr() bool { return c.flag(fReuseAddr) }

// SetBroadcast sets SO_BROADCAST: without it sends to a broadcast address fail with
// errs.Access. Receiving broadcasts does not need it.
func (c *PCB) SetBroadcast(on bool) { c.setFlag(fBroadcast, on) }

// Broadcast reports SO_BROADCAST.
func (c *PCB) Broadcast() bool { return c.flag(fBroadcast) }

// SetNoChecksum sets SO_NO_CHECK: IPv4 datagrams are sent with checksum 0 ("none", RFC
// 768). IPv6 always carries one (RFC 8200 §8.1); receive always checks one that is present.
func (c *PCB) SetNoChecksum(on bool) { c.setFlag(fNoChecksum, on) }

// NoChecksum reports SO_NO_CHECK.
func (c *PCB) NoChecksum() bool { return c.flag(fNoChecksum) }

// SetSegmentSize sets Linux's UDP_SEGMENT (UDP GSO): a send whose payload is larger than
// n bytes leaves as datagrams of n bytes of payload each (the last may be shorter), built
// as one packet that the link or ip cuts (gso.go). 0 turns it off. errs.Val outside
// 0..65535, as Linux's setsockopt.
func (c *PCB) SetSegmentSize(n int) error {
	c.assertCore()
	if n < 0 || n > 0xffff {
		return errs.Val
	}
	c.seg = uint16(n)
	return nil
}

// SegmentSize reports UDP_SEGMENT (0: off).
func (c *PCB) SegmentSize() int {
	c.assertCore()
	return int(c.seg)
}

// SetV6Only sets IPV6_V6ONLY: a PCB bound to "::" hears IPv6 only. Set it before Bind.
func (c *PCB) SetV6Only(on bool) { c.setFlag(fV6Only, on) }

// V6Only reports IPV6_V6ONLY.
func (c *PCB) V6Only() bool { return c.flag(fV6Only) }

// assertCore panics in wispcheck builds unless the core lock is held (ip.Layer.AssertCore):
// every exported method of a PCB starts with it. A freed PCB (c.p nil) is not checked.
func (c *PCB) assertCore() {
	if c != nil && c.p != nil {
		c.p.ip.AssertCore()
	}
}

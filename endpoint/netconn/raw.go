package netconn

import (
	"net/netip"

	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/raw"
)

// RawConn is a raw IP socket of one protocol (lwIP's netconn of type NETCONN_RAW, Linux's
// SOCK_RAW without IP_HDRINCL) over transport/raw's NewRaw: it sends protocol payloads (the
// stack builds the IP header) and receives a copy of every packet of its protocol and
// family addressed to the stack, from the transport header on, in both families (an IPv4
// raw socket does not see the IPv4 header, unlike Linux's). Copies wait in a mailbox of at
// most UDPRecvMboxSize packets (and SetReadBuffer bytes), as lwIP's raw netconns share the
// UDP mailbox size; beyond, they are dropped and counted (Drops). Sends never block: a full
// link fails them with errs.Mem. Every method is safe for concurrent use.
type RawConn struct {
	rawCore

	// Set at creation.
	v6    bool
	proto uint8
}

// ListenRaw opens a raw socket of IP protocol proto bound to laddr, whose family (an
// unspecified 0.0.0.0 or :: for any address) picks IPv4 or IPv6. Errors: errs.Val (no
// family, or an IPv6 extension header as proto), errs.AddrNotAvail, errs.Mem (no PCB, or
// MempNumNetconn reached), errs.Clsd (the stack is closed).
func ListenRaw(s *stack.Stack, proto uint8, laddr netip.Addr) (*RawConn, error) {
	return openRaw(s, proto, laddr, netip.Addr{})
}

// DialRaw opens a raw socket connected to raddr: Write sends there and only its packets
// are received. laddr may be invalid (any); the family is raddr's, else laddr's. Errors
// as ListenRaw.
func DialRaw(s *stack.Stack, proto uint8, laddr, raddr netip.Addr) (*RawConn, error) {
	return openRaw(s, proto, laddr, raddr)
}

func openRaw(s *stack.Stack, proto uint8, laddr, raddr netip.Addr) (*RawConn, error) {
	v6, err := rawFamily(laddr, raddr)
	if err != nil {
		return nil, err
	}
	c := &RawConn{v6: v6, proto: proto}
	c.maxLen = raw.MaxPayload4
	if v6 {
		c.maxLen = raw.MaxPayload6
	}
	newRaw := func() (*raw.PCB, error) { return s.Raw().NewRaw(v6, proto) }
	if err := c.open(s, laddr, raddr, newRaw); err != nil {
		return nil, err
	}
	return c, nil
}

// Proto returns the IP protocol of the socket.
func (c *RawConn) Proto() uint8 { return c.proto }

// V6 reports whether the socket is an IPv6 one.
func (c *RawConn) V6() bool { return c.v6 }

// Buffered returns the size of the next queued packet, 0 if none.
func (c *RawConn) Buffered() int { return c.buffered() }

// SetChecksumOffset sets IPV6_CHECKSUM (RFC 3542 §3.1): the offset in the payload of a
// 16-bit checksum the stack writes on send and verifies on receive; -1 turns it off.
// errs.Val on an IPv4 or ICMPv6 socket (ICMPv6's is always 2) or for an odd offset.
func (c *RawConn) SetChecksumOffset(off int) error {
	return c.withPCB(func(p *raw.PCB) error { return p.SetChecksumOffset(off) })
}

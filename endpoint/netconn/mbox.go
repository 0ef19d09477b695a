package netconn

import (
	"net/netip"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/ring"
)

// Meta describes a received datagram.
type Meta struct {
	Src       netip.AddrPort // the sender (port 0 for ping)
	Dst       netip.Addr     // the datagram's destination address (IP_PKTINFO)
	IfIndex   int            // the netif it arrived on
	Truncated bool           // ReadMsg's buffer was shorter than the datagram (MSG_TRUNC)
	TTL, TOS  uint8          // IPv4 TTL and TOS, IPv6 hop limit and traffic class
}

type dgram struct {
	p    *pbuf.Pbuf // owned
	meta Meta
}

// dgramBox is a datagram mailbox (lwIP's recvmbox of a UDP or raw netconn): a lazy ring of
// at most UDPRecvMboxSize datagrams, optionally bounded in bytes. Guarded by its
// connection's mutex.
type dgramBox struct {
	q     ring.Ring[dgram]
	bytes int
	maxB  int    // bytes (SO_RCVBUF); 0: no bound
	drops uint64 // datagrams dropped because the mailbox was full
}

// push queues p (taking ownership) or drops it when full; it reports whether it queued.
func (b *dgramBox) push(p *pbuf.Pbuf, m *Meta) bool {
	n := b.q.Len()
	if b.maxB > 0 && n > 0 && b.bytes+p.TotLen() > b.maxB || !b.q.Push(dgram{p: p, meta: *m}) {
		b.drops++
		p.Free()
		return false
	}
	b.bytes += p.TotLen()
	return true
}

// pop removes the oldest datagram (the mailbox not empty); the caller owns the chain.
func (b *dgramBox) pop() (*pbuf.Pbuf, Meta) {
	d, _ := b.q.Pop()
	b.bytes -= d.p.TotLen()
	return d.p, d.meta
}

// next returns the size of the oldest datagram (0 if none).
func (b *dgramBox) next() int {
	if d := b.q.Front(); d != nil {
		return d.p.TotLen()
	}
	return 0
}

// clear frees everything queued.
func (b *dgramBox) clear() {
	for d, ok := b.q.Pop(); ok; d, ok = b.q.Pop() {
		d.p.Free()
	}
	b.bytes = 0
}

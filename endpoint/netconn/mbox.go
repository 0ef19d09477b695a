package netconn

import (
	"net/netip"

	"github.com/wispstack/wisp/pbuf"
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

// dgramBox is a datagram mailbox (lwIP's recvmbox of a UDP or raw netconn): a ring that
// grows on demand up to max datagrams, and optionally bounded in bytes. Guarded by its
// connection's mutex.
type dgramBox struct {
	q       []dgram
	head, n int
	bytes   int
	max     int    // datagrams
	maxB    int    // bytes (SO_RCVBUF); 0: no bound
	drops   uint64 // datagrams dropped because the mailbox was full
}

// push queues p (taking ownership) or drops it when full; it reports whether it queued.
func (b *dgramBox) push(p *pbuf.Pbuf, m *Meta) bool {
	if b.n >= b.max || b.maxB > 0 && b.n > 0 && b.bytes+p.TotLen() > b.maxB {
		b.drops++
		p.Free()
		return false
	}
	if b.n == len(b.q) {
		q := make([]dgram, min(max(4, 2*len(b.q)), b.max))
		for i := range b.n {
			q[i] = b.q[(b.head+i)%len(b.q)]
		}
		b.q, b.head = q, 0
	}
	b.q[(b.head+b.n)%len(b.q)] = dgram{p: p, meta: *m}
	b.n++
	b.bytes += p.TotLen()
	return true
}

// pop removes the oldest datagram; the caller owns the chain.
func (b *dgramBox) pop() (*pbuf.Pbuf, Meta) {
	d := b.q[b.head]
	b.q[b.head] = dgram{}
	b.head = (b.head + 1) % len(b.q)
	b.n--
	b.bytes -= d.p.TotLen()
	return d.p, d.meta
}

// next returns the size of the oldest datagram (0 if none).
func (b *dgramBox) next() int {
	if b.n == 0 {
		return 0
	}
	return b.q[b.head].p.TotLen()
}

// clear frees everything queued.
func (b *dgramBox) clear() {
	for b.n > 0 {
		p, _ := b.pop()
		p.Free()
	}
}

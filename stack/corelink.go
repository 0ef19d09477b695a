package stack

import (
	"net/netip"
	"sync"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
)

// coreLinks returns the endpoint each of n cores writes to for link ep: ep itself on a
// stack with one core; on a stack with several, a coreLink per core that passes on what
// the link says of its queue and offloads (so each core's IP layer sees the link itself)
// and keeps cores from writing to one queue at once: core k writes to transmit queue k mod
// N of a link with N queues (link.MultiQueue), in parallel with the cores on other queues,
// and to the link's one queue otherwise. A link promises to take writes from one core
// while it delivers, not from several at once. The stack keeps the link's Attach and Close.
func coreLinks(ep link.Endpoint, n int) []link.Endpoint {
	outs := make([]link.Endpoint, n)
	if n == 1 {
		outs[0] = ep
		return outs
	}
	base := coreLink{ep: ep, q: -1}
	base.room, _ = ep.(link.TxRoomer)
	if tc, ok := ep.(link.TxCongester); ok {
		base.cong = tc.TxFullIsCongestion()
	}
	if o, ok := ep.(link.Offloader); ok {
		base.off = o.Offloads()
	}
	base.filter, _ = ep.(link.AddrFilter)
	mq, _ := ep.(link.MultiQueue)
	queues := 1
	if mq != nil {
		queues = max(mq.TxQueues(), 1)
		base.mq = mq
	}
	locks := make([]sync.Mutex, queues)
	for k := range outs {
		l := base
		l.mu = &locks[k%queues]
		if mq != nil {
			l.q = k % queues
		}
		outs[k] = &l
	}
	return outs
}

// coreLink is one core's way to the link of a stack with several cores (coreLinks).
type coreLink struct {
	ep     link.Endpoint
	mq     link.MultiQueue // ep, when it has several transmit queues
	q      int             // the queue this core writes to (mq), else -1
	mu     *sync.Mutex     // serializes the writes of the cores sharing the queue
	room   link.TxRoomer
	cong   bool
	off    link.Offloads
	filter link.AddrFilter
}

func (l *coreLink) Medium() link.Medium     { return l.ep.Medium() }
func (l *coreLink) MTU() int                { return l.ep.MTU() }
func (l *coreLink) HardwareAddr() [6]byte   { return l.ep.HardwareAddr() }
func (l *coreLink) Attach(link.Dispatcher)  {} // the stack attaches the link itself
func (l *coreLink) Close() error            { return nil }
func (l *coreLink) Offloads() link.Offloads { return l.off }

// TxFullIsCongestion implements link.TxCongester.
func (l *coreLink) TxFullIsCongestion() bool { return l.cong }

// TxRoom implements link.TxRoomer: the room of this core's queue, or a large number when
// the link does not say.
func (l *coreLink) TxRoom() int {
	if l.mq != nil {
		return l.mq.QueueRoom(l.q)
	}
	if l.room == nil {
		return 1 << 30
	}
	return l.room.TxRoom()
}

// SetAddrs implements link.AddrFilter for the link (core 0's netif calls it).
func (l *coreLink) SetAddrs(addrs []netip.Addr) error {
	if l.filter == nil {
		return nil
	}
	return l.filter.SetAddrs(addrs)
}

// WritePackets implements link.Endpoint; it takes ownership of every pbuf.
func (l *coreLink) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mq != nil {
		return l.mq.WriteQueue(l.q, pkts)
	}
	return l.ep.WritePackets(pkts)
}

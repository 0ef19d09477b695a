package stack

import (
	"sync"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
)

// coreLink is the link every core of a stack with several cores writes to: it serializes
// their WritePackets (a link promises to take writes from one core while it delivers, not
// from several at once) and passes on what the link says of its queue and offloads, so
// each core's IP layer sees the link itself. The stack keeps the link's Attach and Close.
type coreLink struct {
	ep   link.Endpoint
	mu   sync.Mutex // serializes WritePackets
	room link.TxRoomer
	cong bool
	off  link.Offloads
}

func newCoreLink(ep link.Endpoint) *coreLink {
	l := &coreLink{ep: ep}
	l.room, _ = ep.(link.TxRoomer)
	if tc, ok := ep.(link.TxCongester); ok {
		l.cong = tc.TxFullIsCongestion()
	}
	if o, ok := ep.(link.Offloader); ok {
		l.off = o.Offloads()
	}
	return l
}

func (l *coreLink) Medium() link.Medium     { return l.ep.Medium() }
func (l *coreLink) MTU() int                { return l.ep.MTU() }
func (l *coreLink) HardwareAddr() [6]byte   { return l.ep.HardwareAddr() }
func (l *coreLink) Attach(link.Dispatcher)  {} // the stack attaches the link itself
func (l *coreLink) Close() error            { return nil }
func (l *coreLink) Offloads() link.Offloads { return l.off }

// TxFullIsCongestion implements link.TxCongester.
func (l *coreLink) TxFullIsCongestion() bool { return l.cong }

// TxRoom implements link.TxRoomer: the link's room, or a large number when it does not say.
func (l *coreLink) TxRoom() int {
	if l.room == nil {
		return 1 << 30
	}
	return l.room.TxRoom()
}

// WritePackets implements link.Endpoint; it takes ownership of every pbuf.
func (l *coreLink) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ep.WritePackets(pkts)
}

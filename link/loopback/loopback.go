package loopback

import (
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/internal/fifo"
	"github.com/wispstack/wisp/pbuf"
)

// Config describes a loopback link.
type Config struct {
	// MTU is the largest packet (default 65535).
	MTU int
	// QueueLen bounds the queue (default 512).
	QueueLen int
	// Sync selects sync mode: no goroutine; frames come back only when Flush is called.
	Sync bool
}

// maxFlushRounds bounds Flush, so a dispatcher that answers every packet with another
// cannot spin the caller forever.
const maxFlushRounds = 1000

// Link is a loopback link; it implements link.Endpoint.
type Link struct {
	mtu int
	// q holds written frames until they come back. Its written pbufs belong to the writer's
	// layers (they may be REF pbufs of user memory), so delivery copies each into a receive
	// chain from the dispatcher, as a real link would.
	q *fifo.Queue
}

var _ link.Endpoint = (*Link)(nil)

// New returns a loopback link; in async mode it starts its delivery goroutine.
func New(cfg Config) *Link {
	if cfg.MTU <= 0 {
		cfg.MTU = 65535
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 512
	}
	l := &Link{mtu: cfg.MTU, q: fifo.New(cfg.QueueLen, cfg.MTU)}
	if !cfg.Sync {
		l.q.Start()
	}
	return l
}

// Medium implements link.Endpoint: bare IP packets.
func (l *Link) Medium() link.Medium { return link.MediumIP }

// MTU implements link.Endpoint.
func (l *Link) MTU() int { return l.mtu }

// HardwareAddr implements link.Endpoint; a loopback has none.
func (l *Link) HardwareAddr() [6]byte { return [6]byte{} }

// Attach implements link.Endpoint.
func (l *Link) Attach(d link.Dispatcher) { l.q.Attach(d) }

// Stats returns the frames delivered back and those dropped (queue full, too long, closed,
// no dispatcher, no rx buffer).
func (l *Link) Stats() (delivered, dropped uint64) { return l.q.Stats() }

// WritePackets implements link.Endpoint; it takes ownership of every pbuf in pkts. Frames
// are accepted in order until one fails (errs.Val: longer than the MTU, errs.WouldBlock:
// queue full, errs.Clsd); that one and the rest are dropped and counted.
func (l *Link) WritePackets(pkts []*pbuf.Pbuf) (int, error) { return l.q.Put(pkts) }

// TxRoom implements link.TxRoomer: the free slots of the loop queue.
func (l *Link) TxRoom() int { return l.q.Room() }

// Flush delivers queued frames in the caller's goroutine, again until the queue is empty or
// a bound on rounds is reached, and returns how many it took. Meant for sync mode; a Flush
// from inside DeliverPackets returns 0.
func (l *Link) Flush() int { return l.q.DrainRounds(maxFlushRounds) }

// Close implements link.Endpoint: it stops the goroutine, waits for a delivery in progress
// and frees every queued frame. Idempotent.
func (l *Link) Close() error {
	l.q.Close()
	return nil
}

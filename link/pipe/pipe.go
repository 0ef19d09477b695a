package pipe

import (
	"sync"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/internal/fifo"
	"github.com/wispstack/wisp/pbuf"
)

// Config describes a pipe.
type Config struct {
	// MTU is the largest IP packet a frame carries (default 1500).
	MTU int
	// Medium is the framing (default link.MediumEthernet).
	Medium link.Medium
	// MACs are the Ends' hardware addresses for Ethernet; a zero address becomes the locally
	// administered 02:00:00:00:00:01 (End a) or 02:00:00:00:00:02 (End b).
	MACs [2][6]byte
	// QueueLen bounds each direction's queue (default 512).
	QueueLen int
	// Sync selects sync mode: no goroutines, frames move only when Flush is called.
	Sync bool
	// Offloads is what both Ends offer the stacks (link.Offloader), as a virtio-net link
	// between two hosts' kernels does: GSO packets of up to GSOMax bytes cross whole and
	// partial checksums stay partial, and the receiver gets each as one coalesced segment
	// marked checksum-verified. The zero value offers nothing.
	Offloads link.Offloads
}

// DefaultQueueLen is the per-direction queue length when Config.QueueLen is zero.
const DefaultQueueLen = 512

// maxFlushRounds bounds Flush: two stacks answering each other forever (ping-pong) must not
// spin the caller forever.
const maxFlushRounds = 1000

// End is one side of a pipe; it implements link.Endpoint.
type End struct {
	cfg       Config
	mac       [6]byte
	tx        *fifo.Queue // frames written here, delivered to the peer's dispatcher
	rx        *fifo.Queue // frames written by the peer, delivered to this End's dispatcher
	peer      *End
	closeOnce *sync.Once // shared by both Ends
}

var _ link.Endpoint = (*End)(nil)

// New returns the two Ends of a new pipe. In async mode it starts one delivery goroutine per
// direction; Close on either End stops them.
func New(cfg Config) (a, b *End) {
	if cfg.MTU <= 0 {
		cfg.MTU = 1500
	}
	if cfg.Medium == 0 {
		cfg.Medium = link.MediumEthernet
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	once := new(sync.Once)
	a = &End{cfg: cfg, closeOnce: once}
	b = &End{cfg: cfg, closeOnce: once}
	a.peer, b.peer = b, a
	if cfg.Medium == link.MediumEthernet {
		a.mac, b.mac = cfg.MACs[0], cfg.MACs[1]
		if a.mac == ([6]byte{}) {
			a.mac = [6]byte{0x02, 0, 0, 0, 0, 1}
		}
		if b.mac == ([6]byte{}) {
			b.mac = [6]byte{0x02, 0, 0, 0, 0, 2}
		}
	}
	maxFrame := cfg.MTU + cfg.Medium.HeaderLen()
	a.tx = fifo.New(cfg.QueueLen, maxFrame)
	b.tx = fifo.New(cfg.QueueLen, maxFrame)
	a.rx, b.rx = b.tx, a.tx
	if g := cfg.Offloads.GSOMax; g > 0 {
		a.tx.SetGSOMax(g + cfg.Medium.HeaderLen())
		b.tx.SetGSOMax(g + cfg.Medium.HeaderLen())
	}
	if !cfg.Sync {
		a.tx.Start()
		b.tx.Start()
	}
	return a, b
}

// Medium implements link.Endpoint.
func (e *End) Medium() link.Medium { return e.cfg.Medium }

// MTU implements link.Endpoint.
func (e *End) MTU() int { return e.cfg.MTU }

// Offloads implements link.Offloader: Config.Offloads.
func (e *End) Offloads() link.Offloads { return e.cfg.Offloads }

// HardwareAddr implements link.Endpoint (zero for MediumIP).
func (e *End) HardwareAddr() [6]byte { return e.mac }

// Peer returns the other End.
func (e *End) Peer() *End { return e.peer }

// Attach implements link.Endpoint.
func (e *End) Attach(d link.Dispatcher) { e.rx.Attach(d) }

// WritePackets implements link.Endpoint: it takes ownership of every pbuf in pkts. Frames
// are accepted in order until one fails: a frame longer than MTU plus the link header
// (errs.Val), a full queue (errs.WouldBlock) or a closed pipe (errs.Clsd); that frame and the
// rest are dropped and counted.
func (e *End) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	return e.tx.Put(pkts)
}

// TxRoom implements link.TxRoomer: the free slots of this end's transmit queue.
func (e *End) TxRoom() int { return e.tx.Room() }

// Flush delivers, in the caller's goroutine, every frame queued in both directions, again
// and again until both queues are empty or a bound on rounds is reached (two peers answering
// each other forever must not spin). It returns how many frames it took off the queues. It
// is meant for sync mode; in async mode it races harmlessly with the delivery goroutines. A
// Flush called from inside DeliverPackets skips a direction already being delivered.
func (e *End) Flush() int {
	return e.FlushRounds(maxFlushRounds)
}

// FlushRounds is Flush with an explicit bound: each round delivers what both queues hold
// when it starts.
func (e *End) FlushRounds(rounds int) int {
	total := 0
	for r := 0; r < rounds; r++ {
		n := e.tx.Drain() + e.rx.Drain()
		total += n
		if n == 0 {
			break
		}
	}
	return total
}

// Queued returns how many frames wait in each direction: written here, and written by the
// peer.
func (e *End) Queued() (out, in int) { return e.tx.Len(), e.rx.Len() }

// Stats returns the frames written on this End that reached the peer's dispatcher, and
// those dropped on the way (queue full, too long, closed, no dispatcher, no rx buffer).
func (e *End) Stats() (delivered, dropped uint64) { return e.tx.Stats() }

// Close implements link.Endpoint; it closes both Ends. It stops the delivery goroutines,
// waits for a delivery in progress and frees every queued frame. It is idempotent.
func (e *End) Close() error {
	e.closeOnce.Do(func() {
		// Neither direction accepts frames once Close begins.
		e.tx.Shut()
		e.rx.Shut()
		e.tx.Close()
		e.rx.Close()
	})
	return nil
}

package linktest

import (
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
)

// Capture is a link endpoint that records a copy of every frame written to it (unless
// Discard) and frees the frames; it never delivers anything. Use it in core context, as
// the netif that writes to it.
type Capture struct {
	Med     link.Medium // zero: link.MediumIP
	Mtu     int         // zero: 1500
	HW      [6]byte
	Discard bool // count frames, keep no copies
	Frames  [][]byte
	Count   int
	// Clock, when set, stamps the frames kept: At[i] is when Frames[i] was written.
	Clock clock.Clock
	At    []time.Time
	// Off is what the capture offers the stack (link.Offloader); zero: nothing.
	Off link.Offloads
}

var _ link.Endpoint = (*Capture)(nil)

// Medium is Med, by default link.MediumIP.
func (c *Capture) Medium() link.Medium {
	if c.Med == 0 {
		return link.MediumIP
	}
	return c.Med
}

// MTU is Mtu, by default 1500.
func (c *Capture) MTU() int {
	if c.Mtu == 0 {
		return 1500
	}
	return c.Mtu
}

// Offloads is Off.
func (c *Capture) Offloads() link.Offloads { return c.Off }

// HardwareAddr is HW.
func (c *Capture) HardwareAddr() [6]byte { return c.HW }

// Attach does nothing: a Capture delivers nothing.
func (c *Capture) Attach(d link.Dispatcher) {}

// Close does nothing.
func (c *Capture) Close() error { return nil }

// WritePackets records and frees pkts.
func (c *Capture) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	for _, p := range pkts {
		if !c.Discard {
			c.Frames = append(c.Frames, p.Bytes(nil))
			if c.Clock != nil {
				c.At = append(c.At, c.Clock.Now())
			}
		}
		c.Count++
		p.Free()
	}
	return len(pkts), nil
}

// Take returns the frames recorded so far and forgets them (and their times).
func (c *Capture) Take() [][]byte {
	f := c.Frames
	c.Frames, c.At = nil, nil
	return f
}

package conformance

// Memory exhaustion must never wedge a connection: data already queued must still be able to
// leave (and be retransmitted), because only its acknowledgement frees memory. lwIP keeps
// the header room inside the data's own allocation for this reason.

import (
	"errors"
	"testing"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/transport/tcp"
)

// fillThenDrain queues writes of chunk bytes behind a zero window until one fails with
// errs.Mem, opens the window, and acknowledges whatever arrives until every queued byte has
// been received in order.
func fillThenDrain(t *testing.T, e *env, c *conn, chunk int, flags tcp.WriteFlags) {
	t.Helper()
	c.wnd = 0
	c.ack()
	e.drain()
	written := 0
	buf := pattern(chunk, 7)
	for {
		err := c.pcb.Write(buf, flags|tcp.WriteCopy)
		if errors.Is(err, errs.Mem) {
			break
		}
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
		written += chunk
		if written > 1<<24 {
			t.Fatal("16 MiB queued without errs.Mem: the limits under test never bit")
		}
	}
	if written == 0 {
		t.Fatal("the first Write already failed")
	}
	c.wnd = 0xffff
	c.ack()
	want := c.iss + 1 + uint32(written)
	for round := 0; round < 1000 && c.stackNxt != want; round++ {
		for _, s := range e.drain() {
			if s.SeqNum == c.stackNxt && len(s.data) > 0 {
				c.stackNxt += uint32(len(s.data))
			}
		}
		c.ack()
		if round%10 == 9 {
			e.advance(rtoWait)
		}
	}
	if c.stackNxt != want {
		t.Fatalf("%d bytes queued, only %d delivered: the connection is stuck (%v)",
			written, c.stackNxt-c.iss-1, e.statsString())
	}
}

// The send queue fills the RAM heap (Write copies into it): segment headers must still be
// found, or nothing is ever sent and acknowledged again.
func TestSendHeapExhaustedStillSends(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) {
		o.MemSize = 32 << 10
		o.TCPSndBuf = 256 << 10
		o.TCPSndQueueLen = 512
	})
	c := e.established(true, plain())
	fillThenDrain(t, e, c, 1000, 0)
}

// The send queue holds every TCP_SEG record: sending must not need another one.
func TestSendSegPoolExhaustedStillSends(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) {
		o.TCPSndBuf = 4 * 1460
		o.TCPSndQueueLen = 8
		o.MempNumTCPSeg = 8
	})
	c := e.established(true, plain())
	fillThenDrain(t, e, c, 100, tcp.WriteMore)
}

package conformance

// Findings from driving wisp syscall by syscall against what a Linux socket user expects
// (issue 12): each test failed before its fix.

import (
	"errors"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// When a zero window opens, the data it lets out is timed by the retransmission timer from
// the moment it leaves: no retransmission while its ACK is on the way, and the congestion
// window stays. Before the persist deadline had a field of its own, the data went out with
// the persist deadline still standing in for the RTO, and it fired about 11 ms later: a
// spurious timeout that collapsed cwnd to one segment.
func TestZeroWindowOpenNoSpuriousRTO(t *testing.T) {
	for _, po := range []func() peerOpts{plain, modern} {
		bothFamilies(t, func(t *testing.T, f family) {
			e := newEnv(t, f)
			const rtt = 20 * time.Millisecond
			c := e.activeOpenRTT(po(), rtt)
			// An RTT sample or two, so the RTO is its floor and the TLP near 2·RTT.
			for range 2 {
				c.flight(2)
				e.advance(rtt)
				c.ackTo(c.stackNxt)
				e.drain()
			}
			c.wnd = 0
			c.ackTo(c.stackNxt)
			mss := c.segSize()
			c.write(pattern(4*mss, 3))
			e.expectNothing("zero window")
			// Probes until the window opens, answered with the window still shut.
			var probeAt []time.Duration
			for len(probeAt) < 2 {
				e.advance(time.Millisecond)
				for _, s := range e.drain() {
					if !isProbe(s, c) {
						t.Fatalf("zero window: unexpected %v", s)
					}
					probeAt = append(probeAt, e.elapsed())
					c.ackTo(c.stackNxt)
				}
			}
			// The window opens 11 ms before the next probe is due (the probes back off:
			// twice the last interval).
			e.advance(2*(probeAt[1]-probeAt[0]) - 11*time.Millisecond)
			e.expectNothing("before the next probe")
			cwnd := c.pcb.Info().Cwnd
			before := e.ext()
			c.wnd = 0xffff >> c.peerShift()
			c.ackTo(c.stackNxt) // the window update
			var sent int
			for _, s := range e.drain() {
				if s.SeqNum != c.stackNxt+uint32(sent) || len(s.data) == 0 {
					t.Fatalf("after the window opened: %v", s)
				}
				sent += len(s.data)
			}
			if sent != 4*mss {
				t.Fatalf("the window opened on 4 segments of queued data; %d bytes sent", sent)
			}
			c.stackNxt += uint32(sent)
			// The ACK comes back 1.5 RTT later (a receiver's delayed ACK; still before a
			// tail loss probe's 2·SRTT): nothing may be sent again before it.
			for range 3 * rtt / 2 / time.Millisecond {
				e.advance(time.Millisecond)
				for _, s := range e.drain() {
					t.Errorf("%v after the window opened, before its ACK: %v\n%v", e.elapsed(), s, c.pcb.Info())
				}
			}
			c.ackTo(c.stackNxt)
			e.drain()
			x := e.ext()
			checkDelta(t, "RTOs", before.RTOs, x.RTOs, 0)
			checkDelta(t, "Retransmits", before.Retransmits, x.Retransmits, 0)
			if got := c.pcb.Info().Cwnd; got < cwnd {
				t.Errorf("cwnd %d after the window opened and everything was acknowledged, %d before", got, cwnd)
			}
		})
	}
}

// peerShift is the shift the stack applies to the peer's window field.
func (c *conn) peerShift() uint8 {
	if c.wsOK && c.po.ws > 0 {
		return uint8(c.po.ws)
	}
	return 0
}

// After a retransmission timeout, slow start grows the window from the acknowledgments of
// the retransmissions at once: the ACK that takes cwnd from 2 to 3 segments releases data
// in the same moment, not at a later timer (the finding: about 200 ms late). The receiver
// here acknowledges every second segment, as Linux does, and the application keeps
// writing, with Nagle on and off.
func TestAfterRTOWindowGrowsOnEachAck(t *testing.T) {
	for _, po := range []func() peerOpts{plain, modern} {
		for _, cc := range []string{"newreno", "cubic"} {
			for _, nagle := range []bool{false, true} {
				bothFamilies(t, func(t *testing.T, f family) {
					e := newEnv(t, f, func(o *opt.Options) { o.TCPCongestion = cc })
					const rtt = 20 * time.Millisecond
					c := e.activeOpenRTT(po(), rtt)
					c.pcb.SetNoDelay(!nagle)
					mss := c.segSize()
					segs := c.flight(8)
					base := segs[0].SeqNum
					c.write(pattern(20*mss+100, 9)) // queued behind the window
					e.drain()
					// Nothing is acknowledged: the RTO (perhaps after a TLP) resends the head.
					var held []*rxSeg
					for start := e.elapsed(); e.ext().RTOs == 0; {
						if e.elapsed()-start > 3*time.Second {
							t.Fatalf("no RTO in 3 s\n%v", c.pcb.Info())
						}
						e.advance(5 * time.Millisecond)
						for _, s := range e.drain() {
							if e.ext().RTOs > 0 && len(s.data) > 0 {
								held = append(held, s)
							}
						}
					}
					end := base + uint32(28*mss+100)
					// The receiver acknowledges the highest in-order byte it holds, after every
					// second segment or after one RTT when only one came.
					acked := base
					for rounds := 0; acked != end; rounds++ {
						if rounds > 200 {
							t.Fatalf("no progress\n%v", c.pcb.Info())
						}
						e.advance(time.Millisecond)
						for _, s := range e.drain() {
							if len(s.data) > 0 {
								held = append(held, s)
							}
						}
						top := acked
						for _, s := range held {
							if s.SeqNum == top || seqLT(s.SeqNum, top) && seqGT(s.SeqNum+uint32(len(s.data)), top) {
								top = s.SeqNum + uint32(len(s.data))
							}
						}
						if top == acked {
							continue
						}
						if len(held) < 2 && top != end {
							// One segment: a delayed ACK, after one RTT at most.
							since := e.elapsed() - held[0].at
							if since < rtt {
								continue
							}
						}
						e.advance(rtt / 2)
						c.stackNxt = seqMax(c.stackNxt, top)
						c.ackTo(top)
						acked, held = top, nil
						if in := c.pcb.Info(); in.Unsent >= mss && in.Unacked+mss <= in.Cwnd && in.Unacked+mss <= in.SndWnd {
							t.Fatalf("%s: after the ACK of %d bytes the windows allow a segment and data waits, but nothing was sent\n%v", cc, acked-base, in)
						}
						// What the ACK lets out leaves now, or after another RTT of silence
						// that a delayed ACK must not meet.
						if acked != end {
							e.advance(rtt)
							got := e.drain()
							if len(got) == 0 {
								t.Fatalf("the ACK of %d bytes released nothing within an RTT\n%v", acked-base, c.pcb.Info())
							}
							for _, s := range got {
								if len(s.data) > 0 {
									held = append(held, s)
								}
							}
						}
					}
					c.stackNxt = end
					c.ackTo(end)
					e.drain()
				})
			}
		}
	}
}

func seqMax(a, b uint32) uint32 {
	if seqGT(a, b) {
		return a
	}
	return b
}

var _ = wire.TCPFlagACK

// A send that fails for memory with nothing in flight is retried by a timer (TCPMinRTO
// later), without the application or the peer doing anything. Data that leaves before the
// retry is due is timed from its own departure (RFC 6298 §5.1), never by the retry's
// deadline. (The retry used to live in the retransmission timer's deadline, which output
// cleared; it survived only because the scheduled Timeout is cancelled lazily.)
func TestMemoryRetry(t *testing.T) {
	for _, early := range []bool{false, true} {
		bothFamilies(t, func(t *testing.T, f family) {
			e := newEnv(t, f)
			const rtt = 20 * time.Millisecond
			c := e.activeOpenRTT(plain(), rtt)
			hog := hogMemory(e)
			// A zero-copy write needs no buffer memory to be queued, but its segment
			// needs a header, and none can be had.
			if err := c.pcb.Write(pattern(1000, 4), 0); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if err := c.pcb.Output(); !errors.Is(err, errs.Mem) {
				t.Fatalf("Output with every buffer taken: %v, want errs.Mem", err)
			}
			if segs := e.drain(); len(segs) != 0 {
				t.Fatalf("sent with every buffer taken: %v", segs)
			}
			e.advance(e.o.TCPMinRTO - 10*time.Millisecond)
			for _, p := range hog {
				p.Free()
			}
			if early {
				c.pcb.Output() // the application writes again
			}
			before := e.ext()
			var got int
			for range 100 {
				e.advance(time.Millisecond)
				for _, s := range e.drain() {
					if len(s.data) == 0 {
						continue
					}
					if got > 0 || s.SeqNum != c.stackNxt {
						t.Fatalf("%v: sent again before its ACK could come: %v\n%v", e.elapsed(), s, c.pcb.Info())
					}
					got = len(s.data)
				}
			}
			if got != 1000 {
				t.Fatalf("memory came back %v ago; the data has not been sent\n%v", 90*time.Millisecond, c.pcb.Info())
			}
			c.stackNxt += uint32(got)
			c.ackTo(c.stackNxt)
			e.drain()
			checkDelta(t, "RTOs", before.RTOs, e.ext().RTOs, 0)
		})
	}
}

// hogMemory takes every heap block and POOL pbuf and returns them.
func hogMemory(e *env) []*pbuf.Pbuf {
	var hog []*pbuf.Pbuf
	for _, typ := range []pbuf.Type{pbuf.RAM, pbuf.POOL} {
		for size := 1 << 16; size >= 1; {
			p, err := e.alloc.Alloc(pbuf.LayerRaw, size, typ)
			if err != nil {
				size /= 2
				continue
			}
			hog = append(hog, p)
		}
	}
	return hog
}

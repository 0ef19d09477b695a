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
	"github.com/wispstack/wisp/transport/tcp"
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
					dupAcked := map[uint32]bool{}
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
							// Out-of-order data (F-RTO sends new data after the RTO): a
							// duplicate ACK at once, with a SACK block when negotiated.
							for _, s := range held {
								if !seqGT(s.SeqNum, acked) || dupAcked[s.SeqNum] {
									continue
								}
								dupAcked[s.SeqNum] = true
								d := c.seg(wire.TCPFlagACK, nil)
								d.ack = acked
								if c.sackOK {
									d.opts.SACKBlocks[0] = wire.SACKBlock{Left: s.SeqNum, Right: s.SeqNum + uint32(len(s.data))}
									d.opts.NumSACK = 1
								}
								c.e.inject(d)
							}
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
						acked = top
						// The receiver keeps what it holds above the hole (no reneging).
						keep := held[:0]
						for _, s := range held {
							if seqGT(s.SeqNum+uint32(len(s.data)), top) {
								keep = append(keep, s)
							}
						}
						held = keep
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
			p, err := e.Alloc.Alloc(pbuf.LayerRaw, size, typ)
			if err != nil {
				size /= 2
				continue
			}
			hog = append(hog, p)
		}
	}
	return hog
}

// RFC 7323 §3.2: "TCPs SHOULD send a Timestamps option ... in <RST> segments" of a
// connection that negotiated timestamps (Linux does).
func TestRSTCarriesTimestamps(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c := e.established(false, modern())
		c.pcb.Abort()
		s := e.expectFlags("abort", wire.TCPFlagRST|wire.TCPFlagACK)
		if !s.Options.HasTimestamps {
			t.Fatalf("RST of a connection with timestamps has none: %v", s)
		}
		if s.Options.TSEcr != e.peerTS-1 {
			t.Errorf("RST echoes TSecr %d, want the peer's last TSval %d", s.Options.TSEcr, e.peerTS-1)
		}
	})
}

// A segment whose ACK acknowledges data never sent is not acceptable (RFC 5961 §5.2), and
// its TSval is not taken into TS.Recent: Linux ignores it, because a forged high TSval
// would make every later good segment fail PAWS (RFC 7323 allows the update; do as Linux).
func TestTSvalIgnoredFromUnacceptableACK(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c := e.established(true, modern())
		forged := c.seg(wire.TCPFlagACK, nil)
		forged.ack = c.stackNxt + 100_000 // acknowledges data never sent
		forged.opts.TSVal = e.peerTS + 1<<30
		c.inject(forged)
		e.expectFlags("challenge ACK for the unacceptable ACK", wire.TCPFlagACK)
		// The next good segment carries the peer's real, lower TSval: it must be accepted.
		before := e.ext()
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, pattern(100, 1))
		e.advance(e.o.TCPDelAckTimeout)
		s := c.expectAck("data after the forged segment")
		if s.Options.TSEcr >= 1<<30 {
			t.Errorf("TSecr %d: the forged TSval became TS.Recent", s.Options.TSEcr)
		}
		if x := e.ext(); x.DropPAWS != before.DropPAWS {
			t.Errorf("a good segment failed PAWS after a forged unacceptable ACK (DropPAWS %d -> %d)", before.DropPAWS, x.DropPAWS)
		}
		if got := len(c.rec.data); got != 100 {
			t.Errorf("%d bytes delivered, want 100", got)
		}
	})
}

// TCP_MAXSEG set before connect lowers the MSS in the SYN and caps what is sent; MSS()
// reads it back, then the settled segment size.
func TestUserMSS(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		var pcb *tcp.PCB
		c, _ := e.connect(func(p *tcp.PCB) {
			pcb = p
			if err := p.SetMSS(10); !errors.Is(err, errs.Val) {
				t.Errorf("SetMSS(10): %v, want errs.Val", err)
			}
			if err := p.SetMSS(600); err != nil {
				t.Fatalf("SetMSS(600): %v", err)
			}
			if got := p.MSS(); got != 600 {
				t.Errorf("MSS() before connect = %d, want 600", got)
			}
		})
		syn := c.synack
		if syn == nil || !syn.Options.HasMSS || syn.Options.MSS != 600 {
			t.Fatalf("SYN %v: want MSS option 600", syn)
		}
		e.synAck(c, plain())
		c.expectAck("handshake ACK")
		if got := pcb.MSS(); got != 600 {
			t.Errorf("MSS() established = %d, want 600 (peer offered 1460)", got)
		}
		c.write(pattern(1200, 2))
		c.expectData("first segment", 600)
		c.expectData("second segment", 600)
		if err := pcb.SetMSS(500); err != nil {
			t.Fatal(err)
		}
		c.write(pattern(1000, 3))
		c.expectData("after SetMSS(500)", 500)
		c.expectData("after SetMSS(500)", 500)
		c.ackTo(c.stackNxt)
	})
}

// TCP_USER_TIMEOUT: data unacknowledged that long ends the connection with errs.Timeout,
// whatever TCPMaxRtx allows, at about the timeout rather than at the next backed-off RTO;
// so does data held behind a zero window whose probes the peer answers; keepalive gives up
// that long after the last segment received.
func TestUserTimeout(t *testing.T) {
	const uto = 3 * time.Second
	cases := []struct {
		name string
		run  func(e *env, c *conn)
	}{
		{"unacked", func(e *env, c *conn) { c.write(pattern(1000, 1)) }},
		{"zero-window", func(e *env, c *conn) {
			c.wnd = 0
			c.ackTo(c.stackNxt)
			c.write(pattern(1000, 1))
		}},
		{"keepalive", func(e *env, c *conn) { c.pcb.SetKeepAlive(true, time.Second, 500*time.Millisecond, 100) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, v4, func(o *opt.Options) { o.TCPMaxRtx = 100 })
			c := e.activeOpenRTT(plain(), 20*time.Millisecond)
			c.pcb.SetUserTimeout(uto)
			if got := c.pcb.UserTimeout(); got != uto {
				t.Fatalf("UserTimeout() = %v", got)
			}
			start := e.elapsed()
			tc.run(e, c)
			for e.elapsed()-start < 2*uto && c.rec.err() == nil {
				e.advance(10 * time.Millisecond)
				if segs := e.drain(); len(segs) > 0 && tc.name == "zero-window" {
					c.ackTo(c.stackNxt) // a receiver that does not read answers each probe
				}
			}
			took := e.elapsed() - start
			if !errors.Is(c.rec.err(), errs.Timeout) {
				t.Fatalf("after %v: error %v, want errs.Timeout\n%v", took, c.rec.err(), c.pcb.Info())
			}
			lo, hi := uto, uto+uto/2
			if tc.name == "keepalive" {
				// Counted from the last segment received (the handshake), checked
				// when a probe is due.
				hi = uto + 500*time.Millisecond
			}
			if took < lo-50*time.Millisecond || took > hi {
				t.Errorf("timed out after %v, want within [%v, %v]", took, lo, hi)
			}
		})
	}
}

// TCP_CORK holds a partial segment until the cork is removed, or for at most 200 ms;
// full segments leave at once.
func TestCork(t *testing.T) {
	e := newEnv(t, v4)
	c := e.activeOpenRTT(plain(), 20*time.Millisecond)
	mss := c.segSize()
	c.pcb.SetCork(true)
	if !c.pcb.Cork() {
		t.Fatal("Cork() false after SetCork(true)")
	}
	c.write(pattern(100, 1))
	e.advance(100 * time.Millisecond)
	e.expectNothing("a corked partial segment")
	c.pcb.SetCork(false)
	c.expectData("uncorked", 100)
	c.ackTo(c.stackNxt)
	c.pcb.SetCork(true)
	c.write(pattern(mss+10, 2))
	c.expectData("a full segment under the cork", mss)
	c.ackTo(c.stackNxt)
	e.advance(190 * time.Millisecond)
	e.expectNothing("a corked partial segment before 200 ms")
	e.advance(20 * time.Millisecond)
	c.expectData("the corked tail after 200 ms", 10)
	c.ackTo(c.stackNxt)
}

// TCP_NOTSENT_LOWAT: SndBuf is 0 while the unsent bytes reach the mark, and the SentFunc
// tells the writer as soon as they fall below it (when they leave, before any ACK).
func TestNotSentLowat(t *testing.T) {
	e := newEnv(t, v4)
	c := e.activeOpenRTT(plain(), 20*time.Millisecond)
	mss := c.segSize()
	c.pcb.SetNotSentLowat(2 * mss)
	if got := c.pcb.NotSentLowat(); got != 2*mss {
		t.Fatalf("NotSentLowat() = %d", got)
	}
	c.wnd = 0
	c.ackTo(c.stackNxt)
	e.drain()
	if got := c.pcb.SndBuf(); got == 0 {
		t.Fatal("SndBuf 0 with nothing queued")
	}
	c.write(pattern(3*mss, 1))
	if got := c.pcb.SndBuf(); got != 0 {
		t.Fatalf("SndBuf %d with %d bytes unsent and a low-water mark of %d", got, 3*mss, 2*mss)
	}
	calls := c.rec.sentCalls
	c.wnd = 0xffff
	c.ackTo(c.stackNxt) // the window opens: all three segments leave, none is acknowledged
	if got := len(e.drain()); got != 3 {
		t.Fatalf("%d segments after the window opened, want 3", got)
	}
	if c.rec.sentCalls == calls {
		t.Fatal("the SentFunc did not run when the unsent bytes fell below the low-water mark")
	}
	if got := c.pcb.SndBuf(); got == 0 {
		t.Fatal("SndBuf still 0 with nothing unsent")
	}
	c.stackNxt += uint32(3 * mss)
	c.ackTo(c.stackNxt)
}

// Nagle as Linux runs it (Minshall's variant, tcp_minshall_check): a partial segment waits
// only while an earlier partial one is unacknowledged, not while any data is. With the
// classic rule a write's tail waited for every full segment before it to be acknowledged,
// and after an odd number of them for the receiver's delayed ACK (up to 200 ms on Linux):
// how, after a retransmission timeout, the ACK that grew cwnd from 2 to 3 segments
// released the write's tail late.
func TestNagleMinshall(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c := e.activeOpenRTT(plain(), 20*time.Millisecond)
		c.pcb.SetNoDelay(false)
		mss := c.segSize()
		c.write(pattern(3*mss+100, 1))
		for i := range 3 {
			c.expectData("full segment "+string(rune('1'+i)), mss)
		}
		c.expectData("the tail: no partial segment is unacknowledged", 100)
		c.write(pattern(50, 2))
		e.expectNothing("a second partial segment while the first is unacknowledged")
		c.ackTo(c.stackNxt - 100) // the full segments only
		e.expectNothing("the first partial segment still unacknowledged")
		c.ackTo(c.stackNxt)
		c.expectData("the first partial segment acknowledged", 50)
		c.ackTo(c.stackNxt)
	})
}

// TCP_USER_TIMEOUT counts each wait on its own: the handshake's retransmitted SYN does not
// start the clock of data sent later.
func TestUserTimeoutRestartsAfterHandshake(t *testing.T) {
	const uto = 3 * time.Second
	e := newEnv(t, v4, func(o *opt.Options) { o.TCPMaxRtx = 100 })
	c, _ := e.connect(func(p *tcp.PCB) { p.SetUserTimeout(uto) })
	e.advance(1500 * time.Millisecond) // the SYN is lost once
	e.drain()
	e.synAck(c, plain())
	c.expectAck("handshake ACK")
	c.pcb.SetNoDelay(true)
	e.advance(2 * time.Second)
	start := e.elapsed()
	c.write(pattern(1000, 1))
	for e.elapsed()-start < 2*uto && c.rec.err() == nil {
		e.advance(10 * time.Millisecond)
		e.drain()
	}
	took := e.elapsed() - start
	if !errors.Is(c.rec.err(), errs.Timeout) {
		t.Fatalf("after %v: %v, want errs.Timeout", took, c.rec.err())
	}
	if took < uto-50*time.Millisecond || took > uto+uto/2 {
		t.Errorf("data timed out %v after it was sent, want about %v (the SYN's retransmission must not count)", took, uto)
	}
}

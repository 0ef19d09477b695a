package conformance

// Closing: RFC 9293 §3.6 (FIN-WAIT-1/2, CLOSING, TIME-WAIT, CLOSE-WAIT, LAST-ACK), §3.10.4
// and RFC 2525 §2.17 (RST on close with unread data), half-close, Shutdown, Abort.

import (
	"errors"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

// conns returns the number of connections (TIME-WAIT included).
func (e *env) conns() int { n, _ := e.tcp.NumPCBs(); return n }

// closeFIN calls Close and expects the FIN at stackNxt.
func (c *conn) closeFIN() {
	c.e.t.Helper()
	if err := c.pcb.Close(); err != nil {
		c.e.t.Fatalf("Close: %v", err)
	}
	c.e.expectSeg("FIN after Close", wire.TCPFlagFIN|wire.TCPFlagACK, c.stackNxt, c.peerNxt)
	c.stackNxt++
}

// expectAckOfFIN expects the ACK of the peer's FIN, allowing it to be delayed.
func (c *conn) expectAckOfFIN(why string) *rxSeg {
	c.e.t.Helper()
	if c.e.pending() == 0 {
		c.e.advance(c.e.o.TCPDelAckTimeout)
	}
	return c.expectAck(why)
}

// timeWait closes c actively and completes the close into TIME-WAIT.
func (c *conn) timeWait() {
	c.e.t.Helper()
	c.closeFIN()
	c.send(wire.TCPFlagFIN|wire.TCPFlagACK, nil) // acks our FIN and carries the peer's
	c.expectAckOfFIN("ACK of the peer's FIN (entering TIME-WAIT)")
}

// Close → FIN-WAIT-1 → (ACK) FIN-WAIT-2 → (FIN) TIME-WAIT → 2·MSL → freed.
func TestActiveClose(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		n0 := e.conns()
		c.closeFIN()
		c.ack()
		e.expectNothing("ACK of our FIN in FIN-WAIT-1")
		if e.conns() != n0 {
			t.Fatal("connection gone in FIN-WAIT-2")
		}
		c.send(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
		c.expectAckOfFIN("ACK of the peer's FIN in FIN-WAIT-2")
		tw := e.elapsed()
		e.advance(2*e.o.TCPMSL - 100*time.Millisecond)
		e.expectNothing("TIME-WAIT")
		if e.conns() != n0 {
			t.Fatalf("TIME-WAIT ended after %v, before 2·MSL = %v", e.elapsed()-tw, 2*e.o.TCPMSL)
		}
		e.advance(200 * time.Millisecond)
		if e.conns() != n0-1 {
			t.Fatalf("TIME-WAIT still there %v after it began (2·MSL = %v)", e.elapsed()-tw, 2*e.o.TCPMSL)
		}
		if c.rec.fins != 0 {
			t.Errorf("RecvFunc(nil) called %d times for a FIN that arrived after Close (pcbapi.go: no callback fires after Close)", c.rec.fins)
		}
		if len(c.rec.errs) != 0 {
			t.Errorf("ErrFunc called after Close: %v", c.rec.errs)
		}
		e.expectNothing("after TIME-WAIT")
	})
}

// TIME-WAIT: "The only thing that can arrive in this state is a retransmission of the remote
// FIN. Acknowledge it, and restart the 2 MSL timeout." (RFC 9293 §3.10.7.4)
func TestTimeWaitReACKsRetransmittedFIN(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		n0 := e.conns()
		c.timeWait()
		e.advance(e.o.TCPMSL) // half way
		fin := c.seg(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
		fin.seq = c.peerNxt - 1
		e.inject(fin)
		c.expectAck("ACK of a retransmitted FIN in TIME-WAIT")
		restart := e.elapsed()
		e.advance(2*e.o.TCPMSL - 100*time.Millisecond)
		if e.conns() != n0 {
			t.Fatalf("TIME-WAIT ended less than %v after the re-ACK of a retransmitted FIN: the 2·MSL timer was not restarted", e.elapsed()-restart)
		}
		e.advance(200 * time.Millisecond)
		if e.conns() != n0-1 {
			t.Errorf("TIME-WAIT still there %v after the restart", e.elapsed()-restart)
		}
	})
}

// FIN-WAIT-1 receiving FIN+ACK of our FIN goes straight to TIME-WAIT.
func TestFinWait1FinAckToTimeWait(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	if err := c.pcb.Shutdown(false, true); err != nil {
		t.Fatal(err)
	}
	e.expectSeg("FIN after Shutdown(tx)", wire.TCPFlagFIN|wire.TCPFlagACK, c.stackNxt, c.peerNxt)
	c.stackNxt++
	c.state("after Shutdown(tx)", tcp.StateFinWait1)
	c.send(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
	c.expectAckOfFIN("ACK of FIN")
	c.state("FIN+ACK in FIN-WAIT-1", tcp.StateTimeWait)
	if c.rec.fins != 1 {
		t.Errorf("RecvFunc(nil) called %d times, want 1", c.rec.fins)
	}
	c.pcb.Close()
}

// Simultaneous close (RFC 9293 §3.6 Figure 13): FIN-WAIT-1 → (FIN) CLOSING → (ACK)
// TIME-WAIT.
func TestSimultaneousCloseClosing(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c := e.established(false, plain())
		if err := c.pcb.Shutdown(false, true); err != nil {
			t.Fatal(err)
		}
		e.expectSeg("FIN", wire.TCPFlagFIN|wire.TCPFlagACK, c.stackNxt, c.peerNxt)
		c.stackNxt++
		c.state("after Shutdown(tx)", tcp.StateFinWait1)
		// The peer's FIN crosses ours: it does not acknowledge our FIN.
		fin := c.seg(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
		fin.ack = c.stackNxt - 1
		e.inject(fin)
		c.peerNxt++
		c.expectAckOfFIN("ACK of the crossing FIN")
		c.state("FIN in FIN-WAIT-1", tcp.StateClosing)
		if c.rec.fins != 1 {
			t.Errorf("RecvFunc(nil) called %d times, want 1", c.rec.fins)
		}
		c.ack()
		e.expectNothing("ACK of our FIN in CLOSING")
		c.state("ACK in CLOSING", tcp.StateTimeWait)
		n0 := e.conns()
		if err := c.pcb.Close(); err != nil {
			t.Errorf("Close in TIME-WAIT: %v", err)
		}
		e.expectNothing("Close in TIME-WAIT")
		e.advance(2*e.o.TCPMSL + 100*time.Millisecond)
		if e.conns() != n0-1 {
			t.Errorf("TIME-WAIT did not end after 2·MSL")
		}
	})
}

// The same with Close: the connection is freed after TIME-WAIT.
func TestSimultaneousCloseWithClose(t *testing.T) {
	e := newEnv(t, v6)
	c := e.established(true, plain())
	n0 := e.conns()
	c.closeFIN()
	fin := c.seg(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
	fin.ack = c.stackNxt - 1
	e.inject(fin)
	c.peerNxt++
	c.expectAckOfFIN("ACK of the crossing FIN (CLOSING)")
	c.ack()
	e.expectNothing("ACK in CLOSING")
	if e.conns() != n0 {
		t.Fatal("connection freed without TIME-WAIT")
	}
	e.advance(2*e.o.TCPMSL + 100*time.Millisecond)
	if e.conns() != n0-1 {
		t.Error("not freed after TIME-WAIT")
	}
}

// The peer closes first: CLOSE-WAIT (we may still send) → Close → LAST-ACK → ACK → freed at
// once, without TIME-WAIT.
func TestPassiveCloseCloseWaitLastAck(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		n0 := e.conns()
		c.send(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
		if c.rec.fins != 1 {
			t.Fatalf("RecvFunc(nil) called %d times on FIN, want 1", c.rec.fins)
		}
		c.expectAckOfFIN("ACK of the peer's FIN")
		c.state("after the peer's FIN", tcp.StateCloseWait)
		c.write([]byte("last words"))
		c.expectData("data in CLOSE-WAIT", 10)
		c.ack()
		c.closeFIN()
		e.expectNothing("after FIN in LAST-ACK")
		c.ack()
		e.expectNothing("ACK of FIN in LAST-ACK")
		if e.conns() != n0-1 {
			t.Fatalf("connection not freed on the ACK in LAST-ACK (%d connections)", e.conns())
		}
		if len(c.rec.errs) != 0 {
			t.Errorf("ErrFunc called: %v", c.rec.errs)
		}
	})
}

// In LAST-ACK the FIN is retransmitted until acknowledged.
func TestLastAckRetransmitsFIN(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	c.send(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
	c.expectAckOfFIN("ACK of FIN")
	c.closeFIN()
	e.advanceUntil(rtoWait, 10*time.Millisecond)
	e.expectSeg("FIN retransmission in LAST-ACK", wire.TCPFlagFIN|wire.TCPFlagACK, c.stackNxt-1, c.peerNxt)
	c.ack()
	if e.conns() != 0 {
		t.Errorf("%d connections after the final ACK in LAST-ACK", e.conns())
	}
}

// In FIN-WAIT-1 the FIN is retransmitted until acknowledged.
func TestFinWait1RetransmitsFIN(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(false, plain())
	c.closeFIN()
	e.advanceUntil(rtoWait, 10*time.Millisecond)
	e.expectSeg("FIN retransmission in FIN-WAIT-1", wire.TCPFlagFIN|wire.TCPFlagACK, c.stackNxt-1, c.peerNxt)
}

// Half-close: after Shutdown(tx) the connection keeps receiving; Write fails with errs.Conn.
func TestHalfCloseKeepsReceiving(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		if err := c.pcb.Shutdown(false, true); err != nil {
			t.Fatal(err)
		}
		e.expectSeg("FIN", wire.TCPFlagFIN|wire.TCPFlagACK, c.stackNxt, c.peerNxt)
		c.stackNxt++
		c.ack()
		c.state("our FIN acknowledged", tcp.StateFinWait2)
		if err := c.pcb.Write([]byte("x"), tcp.WriteCopy); !errors.Is(err, errs.Conn) {
			t.Errorf("Write after Shutdown(tx): %v, want errs.Conn", err)
		}
		for i := range 3 {
			c.send(wire.TCPFlagACK|wire.TCPFlagPSH, pattern(1000, byte(i)))
		}
		if len(c.rec.data) != 3000 {
			t.Fatalf("half-closed connection delivered %d bytes, want 3000", len(c.rec.data))
		}
		e.advance(e.o.TCPDelAckTimeout)
		var last *rxSeg
		for _, s := range e.drain() {
			last = s
		}
		if last == nil || last.AckNum != c.peerNxt {
			t.Fatalf("data in FIN-WAIT-2 not acknowledged: %v", last)
		}
		c.send(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
		c.expectAckOfFIN("ACK of FIN in FIN-WAIT-2")
		c.state("FIN in FIN-WAIT-2", tcp.StateTimeWait)
		if c.rec.fins != 1 {
			t.Errorf("RecvFunc(nil) %d times", c.rec.fins)
		}
		c.pcb.Close()
	})
}

// Shutdown(rx): data arriving afterwards is answered with RST (lwIP tcp_shutdown; pcbapi.go)
// and counted as DropClosed.
func TestShutdownRxDataGetsRST(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		if err := c.pcb.Shutdown(true, false); err != nil {
			t.Fatal(err)
		}
		e.expectNothing("Shutdown(rx) sends nothing")
		// Sending still works.
		c.write([]byte("still sending"))
		c.expectData("data after Shutdown(rx)", 13)
		c.ack()
		before := e.ext()
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("unwanted"))
		s := e.next()
		if !s.Flags.Has(wire.TCPFlagRST) || s.SeqNum != c.stackNxt {
			t.Fatalf("data after Shutdown(rx): got %v, want RST seq=%d", s, c.stackNxt)
		}
		if len(c.rec.data) != 0 {
			t.Error("data delivered after Shutdown(rx)")
		}
		checkDelta(t, "DropClosed", before.DropClosed, e.ext().DropClosed, 1)
		if !c.rec.dead {
			c.pcb.Close()
		}
	})
}

// Abort sends RST and frees the PCB; ErrFunc gets errs.Abrt.
func TestAbortSendsRST(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		n0 := e.conns()
		before := e.ext()
		c.pcb.Abort()
		s := e.next()
		if !s.Flags.Has(wire.TCPFlagRST) || s.SeqNum != c.stackNxt ||
			s.Flags.Has(wire.TCPFlagACK) && s.AckNum != c.peerNxt {
			t.Fatalf("Abort: got %v, want RST seq=%d", s, c.stackNxt)
		}
		e.expectNothing("after the RST")
		if !errors.Is(c.rec.err(), errs.Abrt) || len(c.rec.errs) != 1 {
			t.Errorf("ErrFunc got %v, want one errs.Abrt", c.rec.errs)
		}
		if e.conns() != n0-1 {
			t.Errorf("PCB not freed by Abort")
		}
		checkDelta(t, "ResetsSent", before.ResetsSent, e.ext().ResetsSent, 1)
		// The peer's next segment finds no connection: RST <SEQ=SEG.ACK>.
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("late"))
		e.expectSeg("data after Abort", wire.TCPFlagRST, c.stackNxt, 0)
	})
}

// RFC 2525 §2.17 / RFC 9293 §3.10.4: Close with received data the application has not read
// resets the connection instead of closing it gracefully.
func TestCloseWithUnreadDataSendsRST(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		c.rec.manualRecved = true
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, pattern(100, 1))
		e.advance(e.o.TCPDelAckTimeout)
		e.drain()
		n0 := e.conns()
		if err := c.pcb.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s := e.next()
		if !s.Flags.Has(wire.TCPFlagRST) || s.Flags.Has(wire.TCPFlagFIN) || s.SeqNum != c.stackNxt {
			t.Fatalf("Close with 100 unread bytes: got %v, want RST seq=%d", s, c.stackNxt)
		}
		e.expectNothing("after the RST")
		if e.conns() != n0-1 {
			t.Error("PCB not freed")
		}
		if len(c.rec.errs) != 0 {
			t.Errorf("ErrFunc called after Close: %v", c.rec.errs)
		}
	})
}

// After Close, data from the peer is answered with RST (pcbapi.go: "data arriving afterwards is
// answered with RST").
func TestDataAfterCloseGetsRST(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		n0 := e.conns()
		c.closeFIN()
		c.ack() // FIN-WAIT-2
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("too late"))
		s := e.next()
		if !s.Flags.Has(wire.TCPFlagRST) || s.SeqNum != c.stackNxt {
			t.Fatalf("data after Close: got %v, want RST seq=%d", s, c.stackNxt)
		}
		if e.conns() != n0-1 {
			t.Error("connection not freed after the RST")
		}
		if len(c.rec.data) != 0 || len(c.rec.errs) != 0 {
			t.Errorf("callbacks after Close: data %q errs %v", c.rec.data, c.rec.errs)
		}
	})
}

// Close flushes queued data before the FIN (the FIN follows the data in sequence space).
func TestCloseSendsQueuedDataThenFIN(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	c.wnd = 1000 // only part of the data fits
	c.ack()
	if err := c.pcb.Write(pattern(3000, 2), tcp.WriteCopy); err != nil {
		t.Fatal(err)
	}
	if err := c.pcb.Close(); err != nil {
		t.Fatal(err)
	}
	got := 0
	var fin *rxSeg
	c.wnd = 0xffff
	for range 20 {
		for _, s := range e.drain() {
			if s.SeqNum == c.iss+1+uint32(got) {
				got += len(s.data)
			}
			if s.Flags.Has(wire.TCPFlagFIN) {
				fin = s
			}
		}
		if fin != nil {
			break
		}
		c.stackNxt = c.iss + 1 + uint32(got)
		c.ack()
		e.advance(10 * time.Millisecond)
	}
	if got != 3000 || fin == nil || fin.end()-1 != c.iss+1+3000 {
		t.Fatalf("Close with 3000 queued bytes: sent %d bytes, FIN %v", got, fin)
	}
}

// An acceptable RST (exactly RCV.NXT) ends the connection in every synchronized state (RFC
// 9293 §3.10.7.4, second: "enter the CLOSED state, delete the TCB"); an application that
// still owns the PCB hears errs.Rst.
func TestRSTInClosingStates(t *testing.T) {
	type setup func(e *env, c *conn) (owned bool)
	shutTx := func(e *env, c *conn) {
		if err := c.pcb.Shutdown(false, true); err != nil {
			e.t.Fatal(err)
		}
		e.expectFlags("FIN", wire.TCPFlagFIN|wire.TCPFlagACK)
		c.stackNxt++
	}
	for _, tc := range []struct {
		name  string
		setup setup
	}{
		{"FIN-WAIT-1", func(e *env, c *conn) bool { shutTx(e, c); return true }},
		{"FIN-WAIT-2", func(e *env, c *conn) bool { shutTx(e, c); c.ack(); return true }},
		{"CLOSING", func(e *env, c *conn) bool {
			shutTx(e, c)
			fin := c.seg(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
			fin.ack = c.stackNxt - 1
			e.inject(fin)
			c.peerNxt++
			e.advance(e.o.TCPDelAckTimeout)
			e.drain()
			return true
		}},
		{"CLOSE-WAIT", func(e *env, c *conn) bool {
			c.send(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
			e.advance(e.o.TCPDelAckTimeout)
			e.drain()
			return true
		}},
		{"LAST-ACK", func(e *env, c *conn) bool {
			c.send(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
			e.advance(e.o.TCPDelAckTimeout)
			e.drain()
			c.closeFIN()
			return false
		}},
		{"LAST-ACK-by-Shutdown", func(e *env, c *conn) bool {
			c.send(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
			e.advance(e.o.TCPDelAckTimeout)
			e.drain()
			shutTx(e, c)
			return true
		}},
		{"TIME-WAIT-by-Shutdown", func(e *env, c *conn) bool {
			shutTx(e, c)
			c.send(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
			e.advance(e.o.TCPDelAckTimeout)
			e.drain()
			return true
		}},
		{"FIN-WAIT-1-closed", func(e *env, c *conn) bool { c.closeFIN(); return false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, v4)
			c := e.established(true, plain())
			n0 := e.conns()
			owned := tc.setup(e, c)
			e.inject(c.seg(wire.TCPFlagRST, nil))
			e.expectNothing("RST in " + tc.name)
			if tc.name == "TIME-WAIT-by-Shutdown" && e.conns() == n0 && len(c.rec.errs) == 0 {
				c.pcb.Close() // RFC 1337: ignoring a RST in TIME-WAIT is fine too
				return
			}
			if e.conns() != n0-1 {
				t.Errorf("RST in %s did not free the connection", tc.name)
			}
			if owned && !errors.Is(c.rec.err(), errs.Rst) {
				t.Errorf("RST in %s: ErrFunc %v, want errs.Rst", tc.name, c.rec.errs)
			}
			if !owned && len(c.rec.errs) != 0 {
				t.Errorf("ErrFunc called after Close: %v", c.rec.errs)
			}
		})
	}
}

// A SYN for the 4-tuple of a TIME-WAIT connection is never answered with RST: either a new
// connection starts (RFC 6191, RFC 1122 §4.2.2.13) or it is challenged (RFC 5961 §4).
func TestSynInTimeWait(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	c.timeWait()
	c.synAt(100000)
	s := e.next()
	switch {
	case flagsEq(s.Flags, wire.TCPFlagSYN|wire.TCPFlagACK) && s.AckNum == c.peerNxt+100001:
	case flagsEq(s.Flags, wire.TCPFlagACK) && s.SeqNum == c.stackNxt && s.AckNum == c.peerNxt:
	default:
		t.Errorf("SYN in TIME-WAIT answered with %v, want a SYN-ACK (new connection) or an ACK", s)
	}
	e.drain()
}

// An orphaned connection (closed by the application) whose peer never sends its FIN does not
// hold its PCB forever in FIN-WAIT-2 (lwIP TCP_FIN_WAIT_TIMEOUT, Linux tcp_fin_timeout).
func TestFinWait2OrphanTimesOut(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	n0 := e.conns()
	c.closeFIN()
	c.ack()
	e.advance(10 * time.Minute)
	e.drain()
	if e.conns() != n0-1 {
		t.Errorf("closed connection still in FIN-WAIT-2 after 10 minutes without the peer's FIN")
	}
}

// A PCB the application still owns (Shutdown, no Close) is never freed behind its back: when
// TIME-WAIT ends, either the PCB stays until Close or ErrFunc tells the application
// (types.go: "The PCB is freed when the function returns").
func TestTimeWaitOfOwnedPCBNotFreedSilently(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(false, plain())
	if err := c.pcb.Shutdown(false, true); err != nil {
		t.Fatal(err)
	}
	e.expectFlags("FIN", wire.TCPFlagFIN|wire.TCPFlagACK)
	c.stackNxt++
	c.send(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
	c.expectAckOfFIN("ACK of FIN")
	c.state("FIN+ACK in FIN-WAIT-1", tcp.StateTimeWait)
	n0 := e.conns()
	e.advance(2*e.o.TCPMSL + time.Second)
	if e.conns() == n0-1 && len(c.rec.errs) == 0 {
		t.Fatal("TIME-WAIT PCB still owned by the application (no Close) was freed without ErrFunc: the application holds a dangling *PCB")
	}
	if len(c.rec.errs) == 0 {
		c.pcb.Close()
	}
}

// An abort after the peer shrank its window to zero with data in flight: SND.NXT lies past
// the window's end, and a RST there is outside the peer's window (RFC 9293 §3.10.7.4 drops
// it, and so does Linux), so the peer would hold a connection that is gone. The RST carries
// the window's end instead, as Linux's tcp_acceptable_seq.
func TestAbortAfterShrunkWindowRSTInWindow(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		c.wnd = 2000
		c.ack()
		c.write(pattern(5000, 5))
		sent := 0
		for _, s := range e.drain() {
			sent += len(s.data)
		}
		if sent == 0 {
			t.Fatal("nothing sent into a 2000-byte window")
		}
		c.wnd = 0
		c.ackTo(c.stackNxt) // nothing acknowledged, the window shut
		e.drain()
		c.pcb.Abort()
		s := e.next()
		if !s.Flags.Has(wire.TCPFlagRST) || s.SeqNum != c.stackNxt {
			t.Fatalf("Abort after %d bytes in flight behind a shrunk window: got %v, want RST seq=%d (the window's end)", sent, s, c.stackNxt)
		}
	})
}

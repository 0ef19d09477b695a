package tcp

import (
	"testing"
	"time"

	"github.com/wispstack/wisp/wire"
)

// Bugs the invariant checker and FuzzConnection found (issue 12), each reproduced; every
// one failed (or, for the keepalive spin, hung) before its fix.

// A duplicate ACK counts a segment in renoSacked; the next ACK acknowledges that segment
// outside fast recovery and renoSacked stays, counting a segment no longer outstanding: pipe
// is understated (here negative) and windowAllows lets data out whatever cwnd says.
func TestRenoSackedFollowsACKs(t *testing.T) {
	f := newFuzzConn(t, 16) // no SACK, no timestamps, Nagle off
	defer f.finish()
	c := f.c
	f.n.Do(func() {
		f.appWrite(3000)
	})
	una := c.sndUna
	ack := func(a uint32) {
		f.n.Do(func() {
			f.inject(wire.TCPRepr{SeqNum: c.rcvNxt, AckNum: a, Flags: wire.TCPFlagACK, Window: 0xffff}, nil)
		})
	}
	ack(una) // a duplicate ACK: renoSacked 1
	ack(una + uint32(c.mss))
	ack(una + 2*uint32(c.mss)) // one segment (104 bytes) left, renoSacked still 1: pipe < 0
	f.check()
}

// Close after Shutdown(tx) in FIN-WAIT-2 orphans the connection without the FIN-WAIT-2
// timeout that finWasAcked arms when Close came before the FIN's acknowledgment: a peer
// that never sends its FIN keeps the PCB forever (until the pool runs out).
func TestFinWait2CloseArmsTimeout(t *testing.T) {
	f := newFuzzConn(t, 2|4|8)
	defer f.finish()
	c := f.c
	f.n.Do(func() { _ = c.Shutdown(false, true) })
	f.n.Do(func() {
		f.tsval++
		f.inject(wire.TCPRepr{SeqNum: c.rcvNxt, AckNum: c.sndNxt, Flags: wire.TCPFlagACK, Window: 0xffff,
			Options: wire.TCPOptions{HasTimestamps: true, TSVal: f.tsval, TSEcr: f.lastTS}}, nil)
	})
	if c.state != StateFinWait2 {
		t.Fatalf("state %v, want FIN-WAIT-2", c.state)
	}
	f.n.Do(func() { _ = c.Close() })
	f.check()
	f.clk.Advance(10 * f.n.Opts.TCPMSL)
	if f.alive() {
		t.Errorf("an orphaned FIN-WAIT-2 connection still lives 10 MSL after Close: %v", f.info())
	}
}

// keepalive with data in flight sets lastRecv to now - keepIdle "so the retransmission
// timer watches the peer", which makes armKeepalive put keepAt at now: the Timeout fires
// again at once, keepalive does the same, and the core spins for ever (a hang of the whole
// stack, core lock held). The checker's timer rule turns the hang into a panic. Found by
// FuzzConnection (its input: keepaliveSpinInput).
func TestKeepaliveNoSpin(t *testing.T) {
	f := newFuzzConn(t, 2|4|8)
	defer f.finish()
	c := f.c
	f.n.Do(func() {
		c.SetKeepAlive(true, 2*time.Second, time.Second, 3)
		f.appWrite(1000)
	})
	f.clk.Advance(3 * time.Second) // the peer is silent: RTOs, then keepalive is due with data in flight
	f.check()
}

// keepaliveSpinInput is the program FuzzConnection found the keepalive spin with.
var keepaliveSpinInput = []byte("\x1ea.\xe0,000000000070000010000700EB00100009Y70000000021SSSSS0")

func TestKeepaliveNoSpinFuzzInput(t *testing.T) {
	runConnProgram(t, keepaliveSpinInput)
}

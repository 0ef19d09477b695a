package tcp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/pbuf"
)

// TCP's time is the core's (Proto.nowNs), never the time the last segment arrived: these
// tests run work outside input on a stack whose last segment is long past.

// TestConnectNoSegIdleBacksOff connects with TCP_SEG exhausted on a stack idle for an hour:
// the SYN cannot be queued, and the retransmission timer must back off from now, not from
// the stack's last input (then the deadline would be long past and the connect would fail
// at once, TCPSynMaxRtx retries in as many wakeups).
func TestConnectNoSegIdleBacksOff(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	n := newNode(t, clk, testOpts(), 3)
	ep := &capEP{}
	n.Attach(ep, netip.PrefixFrom(addrA, 24))
	defer n.Close()
	clk.Advance(time.Hour)

	var held []*seg
	var c *PCB
	var failed error
	connected := false
	n.Do(func() {
		for s := n.tcp.segs.Get(); s != nil; s = n.tcp.segs.Get() {
			held = append(held, s)
		}
		var err error
		if c, err = n.tcp.NewPCB(); err != nil {
			t.Fatal(err)
		}
		c.OnErr(func(_ *PCB, err error) { failed = err })
		if err := c.Connect(netip.AddrPortFrom(addrB, 80), func(*PCB) { connected = true }); err != nil {
			t.Fatal(err)
		}
	})
	// Less than the initial RTO: not one retry yet, and certainly no failure.
	for range 50 {
		clk.Advance(10 * time.Millisecond)
	}
	n.Do(func() {
		if failed != nil {
			t.Fatalf("connect failed after 500 ms: %v", failed)
		}
		if c.nrtx != 0 {
			t.Fatalf("%d SYN retries within 500 ms of the connect (want 0: the RTO counts from now)", c.nrtx)
		}
	})
	// The records come back; the retry sends the SYN after the backed-off RTO.
	n.Do(func() {
		for _, s := range held {
			n.tcp.segs.Put(s)
		}
	})
	sent := ep.n
	for range 300 {
		clk.Advance(10 * time.Millisecond)
	}
	n.Do(func() {
		if failed != nil || connected {
			t.Fatalf("after 3.5 s: failed %v, connected %v", failed, connected)
		}
		if ep.n == sent || c.nrtx == 0 || c.nrtx > 2 {
			t.Fatalf("after 3.5 s: %d frames sent (%d before), %d retries: want a SYN sent by a backed-off retry", ep.n, sent, c.nrtx)
		}
		c.Abort()
	})
}

// TestChallengeACKLimitRealSecond sends challenge ACKs outside input on a connection whose
// last segment arrived ten seconds earlier: the per-second limit (RFC 5961 §7) counts real
// seconds, so it resets when the clock enters the next one and not before.
func TestChallengeACKLimitRealSecond(t *testing.T) {
	pr := newPeer(t)
	n := pr.n
	limit := n.Opts.TCPChallengeAckLimit
	if limit <= 0 {
		t.Fatalf("TCPChallengeAckLimit = %d", limit)
	}
	clk := n.Timers.Clock().(*clock.Fake)
	clk.Advance(10*time.Second + 100*time.Millisecond)
	burst := func() (sent, limited uint64) {
		n.Do(func() {
			s0, l0 := n.tcp.ext.ChallengeACKs, n.tcp.ext.ChallengeACKsLimited
			pr.c.ensureCold() // challengeACK runs inside an entry point
			for range limit + 1 {
				pr.c.challengeACK()
			}
			sent, limited = n.tcp.ext.ChallengeACKs-s0, n.tcp.ext.ChallengeACKsLimited-l0
		})
		return sent, limited
	}
	if s, l := burst(); s != uint64(limit) || l != 1 {
		t.Fatalf("first burst: %d sent, %d limited; want %d, 1", s, l, limit)
	}
	clk.Advance(500 * time.Millisecond) // same second
	if s, l := burst(); s != 0 || l != uint64(limit)+1 {
		t.Fatalf("same second: %d sent, %d limited; want 0, %d", s, l, limit+1)
	}
	clk.Advance(500 * time.Millisecond) // the next second
	if s, l := burst(); s != uint64(limit) || l != 1 {
		t.Fatalf("next second: %d sent, %d limited; want %d, 1", s, l, limit)
	}
}

// TestDelayedACKDeadlineFromNow delivers data outside input on a connection whose last
// segment arrived ten seconds earlier: the delayed ACK is due TCPDelAckTimeout from now,
// not from that segment (then it would be long past and go at once).
func TestDelayedACKDeadlineFromNow(t *testing.T) {
	pr := newPeer(t)
	n := pr.n
	clk := n.Timers.Clock().(*clock.Fake)
	clk.Advance(10 * time.Second)
	n.Do(func() {
		c := pr.c
		if c.delackAt != 0 || c.flags&fAckNow != 0 {
			t.Fatalf("ACK already owed: delackAt %d, flags %#x", c.delackAt, c.flags)
		}
		p, err := n.Alloc.Alloc(pbuf.LayerRaw, 100, pbuf.RAM)
		if err != nil {
			t.Fatal(err)
		}
		// A reader that does not consume: Recved could send a window update, and with it the ACK.
		c.OnRecv(func(_ *PCB, p *pbuf.Pbuf) {
			if p != nil {
				p.Free()
			}
		})
		c.ensureCold() // deliver runs inside an entry point
		c.deliver(&segIn{}, p, 100, false, c.gen())
		if want := n.tcp.nowNs() + int64(n.Opts.TCPDelAckTimeout); c.delackAt != want {
			t.Fatalf("delackAt = %v from now, want %v", time.Duration(c.delackAt-n.tcp.nowNs()), n.Opts.TCPDelAckTimeout)
		}
	})
	acks := pr.ep.n
	clk.Advance(n.Opts.TCPDelAckTimeout / 2)
	if pr.ep.n != acks {
		t.Fatalf("the delayed ACK went after %v", n.Opts.TCPDelAckTimeout/2)
	}
	clk.Advance(n.Opts.TCPDelAckTimeout)
	if pr.ep.n != acks+1 {
		t.Fatalf("%d frames after the delayed-ACK timeout, want 1", pr.ep.n-acks)
	}
}

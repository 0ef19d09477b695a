package sntp_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/apps/sntp"
	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/transport/udp"
	"github.com/wispstack/wisp/wire/ntp"
)

// responder is an NTP server written for the tests, on stack B's UDP port 123: its clock is
// the fake clock plus skew, and mode says how it answers.
type responder struct {
	s      *stack.Stack
	clk    *clock.Fake
	skew   time.Duration
	mode   string // "": answer; "silent"; "kiss": kiss code; "origin": wrong origin; "alarm": LI 3
	kiss   ntp.KissCode
	kissTo netip.Addr   // when valid, mode "kiss" applies to requests to this address only
	asked  []netip.Addr // the destination of each request
	pcb    *udp.PCB
	silent map[netip.Addr]bool // destinations that stay silent
}

func newResponder(t *testing.T, s *stack.Stack, clk *clock.Fake) *responder {
	r := &responder{s: s, clk: clk, silent: map[netip.Addr]bool{}}
	s.Lock()
	defer s.Unlock()
	pcb, err := s.UDP().NewPCB()
	if err != nil {
		t.Fatal(err)
	}
	if err := pcb.Bind(netip.AddrPortFrom(netip.Addr{}, ntp.Port)); err != nil {
		t.Fatal(err)
	}
	pcb.OnRecv(r.recv)
	r.pcb = pcb
	return r
}

func (r *responder) recv(c *udp.PCB, pb *pbuf.Pbuf, info *udp.RecvInfo) {
	var b [ntp.HeaderLen]byte
	n := pb.CopyOut(b[:], 0)
	pb.Free()
	r.asked = append(r.asked, info.Dst)
	if n < ntp.HeaderLen || ntp.Header(b[:]).Mode() != ntp.ModeClient || r.mode == "silent" || r.silent[info.Dst] {
		return
	}
	now := ntp.FromTime(r.clk.Now().Add(r.skew))
	rep := ntp.Repr{Mode: ntp.ModeServer, Stratum: 8, Poll: 6, Precision: -20,
		ReferenceID: [4]byte{'L', 'O', 'C', 'L'}, ReferenceTime: now,
		OriginTime: ntp.Header(b[:]).TransmitTime(), ReceiveTime: now, TransmitTime: now}
	switch r.mode {
	case "kiss":
		if r.kissTo.IsValid() && r.kissTo != info.Dst {
			break
		}
		rep.Stratum = 0
		rep.ReferenceID = [4]byte{byte(r.kiss >> 24), byte(r.kiss >> 16), byte(r.kiss >> 8), byte(r.kiss)}
	case "origin":
		rep.OriginTime++
	case "alarm":
		rep.Leap = ntp.LeapAlarm
	}
	out, err := r.s.Allocator().Alloc(pbuf.LayerTransport, ntp.HeaderLen, pbuf.RAM)
	if err != nil {
		return
	}
	_ = rep.Emit(out.Payload())
	_ = c.SendToFrom(out, info.Src, info.Dst, 0)
}

type rig struct {
	t   *testing.T
	p   *stacktest.Pair
	clk *clock.Fake
	srv *responder
}

func newRig(t *testing.T) *rig { return newRigAt(t, time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)) }

// newRigAt is newRig with the fake clock starting at start.
func newRigAt(t *testing.T, start time.Time) *rig {
	clk := clock.NewFake(start)
	p := stacktest.NewPair(t, stacktest.PairConfig{Clock: clk})
	g := &rig{t: t, p: p, clk: clk}
	// Duplicate address detection first, so that the IPv6 addresses answer.
	g.drive(func() bool {
		for _, n := range []*stack.Netif{p.NetifA, p.NetifB} {
			for _, a := range n.Addrs() {
				if a.State == ip.Tentative {
					return false
				}
			}
		}
		return true
	}, 10*time.Second)
	g.srv = newResponder(t, p.B, clk)
	t.Cleanup(func() {
		p.B.Lock()
		g.srv.pcb.Close()
		p.B.Unlock()
	})
	return g
}

// drive moves frames and time in 10 ms steps until done or d has passed.
func (g *rig) drive(done func() bool, d time.Duration) {
	end := g.clk.Now().Add(d)
	for g.clk.Now().Before(end) && (done == nil || !done()) {
		g.p.PipeA.Flush()
		g.clk.Advance(10 * time.Millisecond)
		g.p.PipeA.Flush()
	}
}

func (g *rig) start(cfg sntp.Config) *sntp.Client {
	c, err := g.p.A.StartSNTP(cfg)
	if err != nil {
		g.t.Fatal(err)
	}
	return c
}

var (
	srv4 = netip.AddrPortFrom(stacktest.AddrB[0], 0)
	srv6 = netip.AddrPortFrom(stacktest.AddrB[1], 123)
)

func TestSyncOffset(t *testing.T) {
	for _, srv := range []netip.AddrPort{srv4, srv6} {
		t.Run(srv.Addr().String(), func(t *testing.T) {
			g := newRig(t)
			g.srv.skew = 1500*time.Millisecond + 250*time.Microsecond
			var samples []sntp.Sample
			c := g.start(sntp.Config{Servers: []netip.AddrPort{srv}, Interval: time.Minute,
				OnSync: func(s sntp.Sample) { samples = append(samples, s) }})
			if _, ok := c.Offset(); ok {
				t.Fatal("offset before any reply")
			}
			g.drive(func() bool { return len(samples) > 0 }, time.Second)
			off, ok := c.Offset()
			if !ok || absDiff(off, g.srv.skew) > 2*time.Nanosecond {
				t.Fatalf("offset %v %v, want %v; stats %+v", off, ok, g.srv.skew, c.Stats())
			}
			if s := samples[0]; s.Delay < 0 || s.Delay > 20*time.Millisecond || s.Stratum != 8 || s.Server.Port() != 123 {
				t.Errorf("sample %+v", s)
			}
			if now := c.Now(); absDiff(now.Sub(g.clk.Now()), g.srv.skew) > 2*time.Nanosecond {
				t.Errorf("Now %v, clock %v", now, g.clk.Now())
			}
			// Zero wakeups between polls: the stack's timer queue does not fire until the
			// next poll is due, and then one request goes out.
			w := g.p.A.Timers().Wakeups()
			g.clk.Advance(time.Minute - 100*time.Millisecond)
			if d := g.p.A.Timers().Wakeups() - w; d != 0 {
				t.Errorf("%d wakeups between polls", d)
			}
			g.drive(func() bool { return len(samples) > 1 }, time.Second)
			if st := c.Stats(); st.Requests != 2 || st.Replies != 2 || st.Timeouts != 0 || st.Bogus != 0 {
				t.Errorf("stats %+v", st)
			}
			c.Stop()
			c.Stop()
			g.drive(nil, 2*time.Minute)
			if st := c.Stats(); st.Requests != 2 {
				t.Errorf("requests after Stop: %+v", st)
			}
		})
	}
}

func absDiff(a, b time.Duration) time.Duration {
	if a > b {
		return a - b
	}
	return b - a
}

// A silent server: the client times out, tries the next server, and backs off doubling its
// delay up to Interval; when an answer comes the backoff resets.
func TestSilenceBackoff(t *testing.T) {
	g := newRig(t)
	g.srv.mode = "silent"
	c := g.start(sntp.Config{Servers: []netip.AddrPort{srv4, srv6}, Interval: 2 * time.Minute,
		MinInterval: 15 * time.Second, Timeout: 3 * time.Second})
	// Requests at 0, 3+15, 21+30, 54+60, 117+120, 240+120: a request every backoff.
	var backoffs []time.Duration
	for i := 0; i < 5; i++ {
		n := c.Stats().Timeouts
		g.drive(func() bool { return c.Stats().Timeouts > n }, 5*time.Minute)
		backoffs = append(backoffs, c.Stats().Backoff)
	}
	want := []time.Duration{15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 2 * time.Minute}
	for i := range want {
		if backoffs[i] != want[i] {
			t.Fatalf("backoffs %v, want %v", backoffs, want)
		}
	}
	// The servers alternate.
	for i, a := range g.srv.asked {
		if want := []netip.Addr{srv4.Addr(), srv6.Addr()}[i%2]; a != want {
			t.Fatalf("request %d went to %v: %v", i, a, g.srv.asked)
		}
	}
	if _, ok := c.Offset(); ok {
		t.Error("offset from silence")
	}
	// The first server answers again: the next round syncs and the backoff resets.
	g.srv.mode = ""
	g.srv.silent[srv6.Addr()] = true
	g.drive(func() bool { _, ok := c.Offset(); return ok }, 10*time.Minute)
	st := c.Stats()
	if _, ok := c.Offset(); !ok || st.Backoff != 0 || st.Replies != 1 {
		t.Fatalf("after the server came back: %+v", st)
	}
}

// KoD RATE doubles that server's interval; DENY and RSTR drop the server (the next one is
// asked at once); other codes are ignored until the request times out.
func TestKissOfDeath(t *testing.T) {
	t.Run("RATE", func(t *testing.T) {
		g := newRig(t)
		g.srv.mode, g.srv.kiss = "kiss", ntp.KissRATE
		c := g.start(sntp.Config{Servers: []netip.AddrPort{srv4}, Interval: time.Minute})
		g.drive(func() bool { return c.Stats().KoDRate == 1 }, time.Second)
		if st := c.Stats(); st.KoDRate != 1 || st.Backoff != 2*time.Minute {
			t.Fatalf("stats %+v", st)
		}
		g.drive(nil, 2*time.Minute-time.Second)
		if st := c.Stats(); st.Requests != 1 {
			t.Fatalf("asked again before twice the interval: %+v", st)
		}
		g.drive(func() bool { return c.Stats().KoDRate == 2 }, 2*time.Second)
		if st := c.Stats(); st.KoDRate != 2 || st.Backoff != 4*time.Minute {
			t.Fatalf("second RATE: %+v", st)
		}
		if _, ok := c.Offset(); ok {
			t.Error("offset from a kiss")
		}
	})
	for _, code := range []ntp.KissCode{ntp.KissDENY, ntp.KissRSTR} {
		t.Run(code.String(), func(t *testing.T) {
			g := newRig(t)
			g.srv.mode, g.srv.kiss = "kiss", code
			c := g.start(sntp.Config{Servers: []netip.AddrPort{srv4, srv6}, Interval: time.Minute})
			g.drive(func() bool { return c.Stats().KoDDeny == 2 }, time.Second)
			st := c.Stats()
			if st.KoDDeny != 2 || st.Servers != 0 || st.Requests != 2 {
				t.Fatalf("stats %+v", st)
			}
			g.drive(nil, 10*time.Minute)
			if st := c.Stats(); st.Requests != 2 {
				t.Fatalf("asked a denying server again: %+v", st)
			}
			if n := g.p.A.Timers().Len(); n != 0 {
				t.Errorf("%d timers pending with no server", n)
			}
		})
	}
	t.Run("DENY then answer", func(t *testing.T) {
		g := newRig(t)
		g.srv.mode, g.srv.kiss, g.srv.kissTo = "kiss", ntp.KissDENY, srv4.Addr()
		c := g.start(sntp.Config{Servers: []netip.AddrPort{srv4, srv6}, Interval: time.Minute})
		g.drive(func() bool { _, ok := c.Offset(); return ok }, time.Second)
		g.drive(nil, 5*time.Minute)
		for _, a := range g.srv.asked[1:] {
			if a != srv6.Addr() {
				t.Fatalf("asked %v after its DENY: %v", a, g.srv.asked)
			}
		}
		if st := c.Stats(); st.KoDDeny != 1 || st.Servers != 1 || st.Replies < 5 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("other code", func(t *testing.T) {
		g := newRig(t)
		g.srv.mode, g.srv.kiss = "kiss", ntp.KissCode('X'<<24|'F'<<16|'O'<<8|'O')
		c := g.start(sntp.Config{Servers: []netip.AddrPort{srv4}, Interval: time.Minute, Timeout: time.Second})
		g.drive(func() bool { return c.Stats().Timeouts == 1 }, 2*time.Second)
		if st := c.Stats(); st.KoDOther != 1 || st.Timeouts != 1 || st.Servers != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// Replies that fail the checks are counted and leave the request waiting.
func TestBogusReplies(t *testing.T) {
	for _, mode := range []string{"origin", "alarm"} {
		t.Run(mode, func(t *testing.T) {
			g := newRig(t)
			g.srv.mode = mode
			c := g.start(sntp.Config{Servers: []netip.AddrPort{srv4}, Interval: time.Minute, Timeout: time.Second})
			g.drive(func() bool { return c.Stats().Timeouts == 1 }, 2*time.Second)
			if st := c.Stats(); st.Bogus != 1 || st.Replies != 0 || st.Timeouts != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// Close stops a running client: its PCB and timer go with the stack (pools checked by the
// pair's cleanup).
func TestCloseStops(t *testing.T) {
	g := newRig(t)
	if _, err := g.p.A.StartSNTP(sntp.Config{}); !errors.Is(err, errs.Val) {
		t.Errorf("no servers: %v", err)
	}
	c := g.start(sntp.Config{Servers: []netip.AddrPort{srv4}})
	g.drive(func() bool { _, ok := c.Offset(); return ok }, time.Second)
	if err := g.p.A.Close(); err != nil {
		t.Fatal(err)
	}
	c.Stop() // after Close: harmless
	if _, err := g.p.A.StartSNTP(sntp.Config{Servers: []netip.AddrPort{srv4}}); err == nil {
		t.Error("StartSNTP on a closed stack")
	}
}

// Across the NTP era rollover (2036-02-07T06:28:16Z): the client's clock is still in era 0,
// the server's already in era 1; the offset comes out right.
func TestEraRollover(t *testing.T) {
	g := newRigAt(t, time.Date(2036, 2, 7, 6, 28, 10, 0, time.UTC))
	g.srv.skew = 30 * time.Second
	c := g.start(sntp.Config{Servers: []netip.AddrPort{srv4}})
	g.drive(func() bool { _, ok := c.Offset(); return ok }, time.Second)
	if off, ok := c.Offset(); !ok || absDiff(off, g.srv.skew) > 2*time.Nanosecond {
		t.Fatalf("offset %v %v; stats %+v", off, ok, c.Stats())
	}
}

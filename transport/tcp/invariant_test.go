package tcp

import (
	"os"
	"strings"
	"testing"
	"time"
)

// Every test of the package runs with the invariant checker (invariant.go): a violation
// panics with the rule and the connection. Benchmarks run without it, so that they measure
// the stack alone.
func init() {
	for _, a := range os.Args[1:] {
		if v, ok := strings.CutPrefix(a, "-test.bench="); ok && v != "" {
			return
		}
	}
	if os.Getenv("WISP_INVARIANTS") == "log" {
		seen := map[string]bool{}
		SetInvariantCheck(func(msg string) {
			rule, _, _ := strings.Cut(msg, "\n")
			if !seen[rule] {
				seen[rule] = true
				println(msg)
			}
		})
		return
	}
	SetInvariantCheck(func(msg string) { panic(msg) })
}

// The checker finds each kind of corruption, and the hooks after a timer run report it
// with the rule and the connection.
func TestInvariantChecker(t *testing.T) {
	w := newWorld(t, worldCfg{})
	_, cli := w.connect()
	c := cli.c
	if c == nil {
		t.Fatal("no connection")
	}
	w.a.Do(func() {
		if err := c.Write(make([]byte, 5000), WriteCopy); err != nil {
			t.Fatal(err)
		}
		_ = c.Output()
		if r := c.violation(); r != "" {
			t.Fatalf("a sound connection breaks %q", r)
		}
		if r := w.a.tcp.violation(); r != "" {
			t.Fatalf("a sound Proto breaks %q", r)
		}
		// Each corruption, undone after the check.
		for _, tc := range []struct {
			rule string
			bad  func() func()
		}{
			{"sndEnd - SND.UNA != sndBufUsed", func() func() { c.sndBufUsed++; return func() { c.sndBufUsed-- } }},
			{"lostBytes != bytes of the records marked lost", func() func() { c.lostBytes++; return func() { c.lostBytes-- } }},
			{"retransmission queue does not end at SND.NXT", func() func() {
				c.rtxq.tail.len--
				return func() { c.rtxq.tail.len++ }
			}},
			{"pos is not the send queue record holding SND.NXT", func() func() {
				p := c.pos
				if c.pos = nil; p == nil {
					c.pos = c.sndq.head
				}
				return func() { c.pos = p }
			}},
			{"data outstanding (SND.NXT != SND.UNA) without the retransmission timer or a TLP", func() func() {
				rto, tlp := c.rtoAt, c.tlpAt
				c.rtoAt, c.tlpAt = 0, 0
				return func() { c.rtoAt, c.tlpAt = rto, tlp }
			}},
			{"persist timer armed while data is outstanding", func() func() {
				c.persistAt = c.rtoAt
				return func() { c.persistAt = 0 }
			}},
			{"the Timeout is not scheduled by the earliest deadline", func() func() {
				c.delackAt = 1
				return func() { c.delackAt = 0 }
			}},
		} {
			undo := tc.bad()
			if r := c.violation(); r != tc.rule {
				t.Errorf("broke %q, the checker says %q", tc.rule, r)
			}
			undo()
		}
		w.a.tcp.sndHolders++
		if r := w.a.tcp.violation(); r != "sndHolders is not the number of PCBs with sndBufUsed > 0" {
			t.Errorf("sndHolders off by one: the checker says %q", r)
		}
		w.a.tcp.sndHolders--
	})
	// Through the hook: a corrupted scoreboard is reported when the timer runs.
	var msgs []string
	defer SetInvariantCheck(invariantFail)
	SetInvariantCheck(func(msg string) { msgs = append(msgs, msg) })
	w.a.Do(func() { c.retransOut += 7 })
	w.Clock.Advance(c.rto)
	w.a.Do(func() { c.retransOut -= 7 })
	SetInvariantCheck(func(msg string) { panic(msg) })
	if len(msgs) == 0 {
		t.Fatal("a corrupted retransOut went unreported through a timer run")
	}
	if m := msgs[0]; !strings.Contains(m, "retransOut != bytes of the records marked retransmitted") ||
		!strings.Contains(m, "ESTABLISHED 198.18.0.1:") || !strings.Contains(m, "rtxq (n=") {
		t.Errorf("the report lacks the rule or the connection:\n%s", m)
	}
	w.Run(time.Second)
}

// The checker costs no allocation while every rule holds.
func TestInvariantCheckerNoAllocs(t *testing.T) {
	pr := newPeer(t)
	var n float64
	pr.n.Do(func() {
		_ = pr.c.Write(make([]byte, 3000), WriteCopy)
		_ = pr.c.Output()
		n = testing.AllocsPerRun(100, func() { pr.n.tcp.checkTouched(pr.c) })
	})
	if n != 0 {
		t.Errorf("the checker allocates %v times per run", n)
	}
}

package main

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wispstack/wisp/link/impair"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/stats"
)

// soak is one run: the two sides, the link, the load's counters and the verdict.
type soak struct {
	cfg    Config
	a, b   *side
	pa, pb *pipe.End
	imp    *impair.Link
	linked bool // the pipe belongs to the stacks (closed with them)
	closed bool // closeAll ran

	stop     chan struct{}  // closed when the duration is over
	load     sync.WaitGroup // clients (churn, streams, UDP)
	handlers sync.WaitGroup // server-side connection handlers
	servers  sync.WaitGroup // accept loops and echo servers

	start      time.Time
	elapsed    time.Duration
	ctr        counters
	fails      failures
	windows    int
	windowsOK  int
	dumps      atomic.Int32
	hangDumped atomic.Bool // the first hang printed the connections

	idle struct {
		goHeap uint64
	}
	endHeap    uint64
	stopTook   time.Duration
	idleTook   time.Duration
	goroutines [2]int
	final      [2]stats.Snapshot // both stacks when the load had stopped

	udpExpect atomic.Uint64 // expected UDP exchange losses, in millionths

	mu        sync.Mutex // serializes the report's lines
	closeOnce sync.Once
}

// counters is the load's progress, updated by every worker.
type counters struct {
	churnConns   atomic.Uint64 // churn connections completed, every byte checked
	churnBytes   atomic.Uint64 // bytes checked on churn connections (both directions)
	bulkBytes    atomic.Uint64 // bytes checked on bulk streams
	stalledBytes atomic.Uint64 // bytes checked on stalled streams
	stalls       atomic.Uint64 // stalls begun
	stalledNow   atomic.Int64  // readers stalled right now
	streamsDone  atomic.Uint64 // streams ended with their totals matching

	udpSent        atomic.Uint64 // requests the sender's stack accepted
	udpRecv        atomic.Uint64 // replies received in time, checked
	udpLate        atomic.Uint64 // replies received after their client stopped waiting (or twice)
	udpRefused     atomic.Uint64 // requests the client's stack refused (ENOMEM: link queue full)
	udpEchoRefused atomic.Uint64 // replies the echo server's stack refused
}

// progress is what the window check compares.
type progress struct {
	churn, bulk, udp uint64
}

func (c *counters) progress() progress {
	return progress{churn: c.churnConns.Load(), bulk: c.bulkBytes.Load(), udp: c.udpRecv.Load() + c.udpLate.Load()}
}

func (s *soak) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// monitor runs until end: every window it checks that each kind of unstalled traffic moved,
// every progressEvery it prints a progress line.
func (s *soak) monitor(end time.Time) {
	tick := time.NewTicker(window)
	defer tick.Stop()
	last := s.ctr.progress()
	lastLine := s.start
	lastConns := uint64(0)
	for {
		var now time.Time
		select {
		case now = <-tick.C:
		case <-time.After(time.Until(end)):
			s.elapsed = time.Since(s.start)
			return
		}
		cur := s.ctr.progress()
		s.checkWindow(last, cur)
		last = cur
		if now.Sub(lastLine) >= progressEvery-window/2 {
			conns := s.ctr.churnConns.Load()
			s.logf("%7s conns %d (+%d) verified %s (bulk %s churn %s stalled %s MiB) udp %d/%d stalled %d/%d | %s | %s\n",
				time.Since(s.start).Round(time.Second), conns, conns-lastConns,
				mib(s.ctr.churnBytes.Load()+s.ctr.bulkBytes.Load()+s.ctr.stalledBytes.Load()),
				mibShort(s.ctr.bulkBytes.Load()), mibShort(s.ctr.churnBytes.Load()), mibShort(s.ctr.stalledBytes.Load()),
				s.ctr.udpSent.Load(), s.ctr.udpRecv.Load(), s.ctr.stalledNow.Load(), s.cfg.Stalled,
				s.a.poolLine(), s.b.poolLine())
			lastLine, lastConns = now, conns
		}
	}
}

func mibShort(n uint64) string { return fmt.Sprintf("%.0f", float64(n)/(1<<20)) }

// checkWindow fails the window if a kind of traffic that runs made no progress in it.
func (s *soak) checkWindow(last, cur progress) {
	s.windows++
	var idle []string
	enabled := 0
	for _, n := range []int{s.cfg.Conns, s.cfg.Bulk, s.cfg.UDP} {
		if n > 0 {
			enabled++
		}
	}
	if s.cfg.Conns > 0 && cur.churn == last.churn {
		idle = append(idle, "churn")
	}
	if s.cfg.Bulk > 0 && cur.bulk == last.bulk {
		idle = append(idle, "bulk")
	}
	if s.cfg.UDP > 0 && cur.udp == last.udp {
		idle = append(idle, "udp")
	}
	if len(idle) == 0 {
		s.windowsOK++
		return
	}
	what := "no progress at all"
	if len(idle) < enabled {
		what = "no progress of " + strings.Join(idle, ", ")
	}
	s.fail("progress", "%s in %v while %d readers were stalled (churn +%d conns, bulk +%d B, udp +%d)",
		what, window, s.ctr.stalledNow.Load(), cur.churn-last.churn, cur.bulk-last.bulk, cur.udp-last.udp)
	s.dumpStats(what)
}

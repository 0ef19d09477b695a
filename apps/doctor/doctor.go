package doctor

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stats"
)

// Input is one moment of a stack: what Diagnose reads, what /snapshot.json serves and what
// `wisp doctor --file` loads. It marshals to JSON and back without loss (durations as
// nanoseconds).
type Input struct {
	At      time.Time      // when it was taken
	Cores   int            // stack.Config.Cores
	Options opt.Options    // what the stack was created with
	Stats   stats.Snapshot // every counter
	Conns   []stats.Conn   // every PCB (stack.Conns)
}

// Severities of a Finding.
const (
	Error = "error" // something was refused: connections, packets, writes, names
	Warn  = "warn"  // it works, slower than it could
	Info  = "info"  // worth knowing
)

// Finding is one diagnosis.
type Finding struct {
	Severity string // Error, Warn or Info
	Title    string // one line, plain words
	Detail   string // the evidence and the reasoning
	// Option is the opt.Options field to change, and Value what to set it to. Three
	// variations: "Cores" is stack.Config.Cores; a field the peer must change carries the
	// suffix " (the peer's)", e.g. "TCPMaxWnd (the peer's)"; empty when no setting is the
	// cure (a path that loses packets), which Detail then explains.
	Option string
	Value  string
}

// String prints the finding in one or two lines.
func (f Finding) String() string {
	s := fmt.Sprintf("%-5s %s", f.Severity, f.Title)
	if f.Option != "" {
		s += fmt.Sprintf(" → %s = %s", f.Option, f.Value)
	}
	if f.Detail != "" {
		s += "\n      " + f.Detail
	}
	return s
}

// Diagnose returns the findings about cur, errors first; a healthy stack has none. prev,
// when not nil, is an earlier Input of the same stack: counters are then read as what
// happened between the two, and the rates of connections (which need two samples) are
// judged too. With prev nil, counters count since the stack started.
func Diagnose(prev, cur *Input) []Finding {
	if cur == nil {
		return nil
	}
	d := newDelta(prev, cur)
	var fs []Finding
	for _, rule := range rules {
		fs = append(fs, rule(d)...)
	}
	rank := map[string]int{Error: 0, Warn: 1, Info: 2}
	slices.SortStableFunc(fs, func(a, b Finding) int { return cmp.Compare(rank[a.Severity], rank[b.Severity]) })
	return fs
}

var rules = []func(*delta) []Finding{
	pcbExhaustion, pbufStarvation, poolExhaustion, heapMem, mailboxes, windowLimits,
	lateTimers, retransmissions, dnsServers,
}

// delta is what happened between two inputs (or since the start).
type delta struct {
	prev, cur *Input
	o         opt.Options
	dt        time.Duration // between the inputs; 0 with one
	since     string        // "in the last 1s" or "since the stack started"
	ps        *stats.Snapshot
	s         *stats.Snapshot
	zero      stats.Snapshot
}

func newDelta(prev, cur *Input) *delta {
	d := &delta{prev: prev, cur: cur, o: cur.Options, s: &cur.Stats, since: "since the stack started"}
	d.ps = &d.zero
	if prev != nil && cur.At.After(prev.At) {
		d.ps = &prev.Stats
		d.dt = cur.At.Sub(prev.At)
		d.since = "in the last " + d.dt.Round(time.Millisecond).String()
	} else {
		d.prev = nil
	}
	return d
}

// diff is a counter's growth between the inputs (a counter that went back: the stack was
// restarted, so all of cur).
func diff(cur, prev uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// pool returns the current record of a pool and its refusals between the inputs.
func (d *delta) pool(name string) (stats.Pool, uint64, bool) {
	p, ok := d.s.Pool(name)
	if !ok {
		return p, 0, false
	}
	pp, _ := d.ps.Pool(name)
	return p, diff(p.Err, pp.Err), true
}

// prevConn finds c in the earlier input.
func (d *delta) prevConn(c *stats.Conn) *stats.Conn {
	if d.prev == nil {
		return nil
	}
	for i := range d.prev.Conns {
		p := &d.prev.Conns[i]
		if p.Proto == c.Proto && p.Local == c.Local && p.Remote == c.Remote && p.BytesAcked <= c.BytesAcked && p.BytesReceived <= c.BytesReceived {
			return p
		}
	}
	return nil
}

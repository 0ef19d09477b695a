package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The sweep families show how cost grows with the work: each family is one scenario per
// point (ids sweep/<family>/<x>), run by the ordinary runners (runIdle, runBulk) on every
// engine, and -plot draws each family as one chart (plot.go). They are not in the default
// run (-run '^sweep/' selects them): 18 points on four engines take 4-10 minutes, and
// the default run's rows already hold the single points the curves pass through.
//
//	sweep/conns/N    N established idle connections (1 … 10,000): Go heap per connection
//	                 per stack (runIdle) and the process's peak resident set growth
//	sweep/streams/N  N parallel bulk streams (1 … 64), MTU 1500: aggregate throughput and
//	                 CPU per GB (runBulk)
//	sweep/rtt/Dms    one bulk stream through the impairment link at RTT D (0 … 50 ms), no
//	                 loss: throughput and CPU per GB (runBulk)

// sweepFamily is one swept variable.
type sweepFamily struct {
	name   string // the id's second part
	unit   string // the x value's suffix in the id ("ms" for rtt)
	title  string // the chart's
	xLabel string
	xs     []int
	logX   bool
	// charts are the metrics drawn, one panel each (keys of the family's metrics).
	charts []string
	// logY draws the panels of these metric keys on a log scale (engines differ by 10×
	// and more); a point ≤ 0 (a stalled transfer) is then left out.
	logY map[string]bool
}

var sweepFamilies = []sweepFamily{
	{name: "conns", title: "Idle established connections", xLabel: "established connections",
		xs: []int{1, 10, 100, 1000, 10000}, logX: true, charts: []string{"heap", "rss"}, logY: map[string]bool{"heap": true, "rss": true}},
	{name: "streams", title: "Parallel TCP bulk streams, MTU 1500", xLabel: "streams",
		xs: []int{1, 2, 4, 8, 16, 32, 64}, logX: true, charts: []string{"gbps", "cpu"}, logY: map[string]bool{"gbps": true, "cpu": true}},
	{name: "rtt", unit: "ms", title: "One TCP bulk stream through a delay, no loss, MTU 1500", xLabel: "round-trip time (ms)",
		xs: []int{0, 1, 5, 10, 20, 50}, charts: []string{"mbps", "cpu"}, logY: map[string]bool{"mbps": true, "cpu": true}},
}

// sweepSize is what each point of a sweep takes, by the run's size. Each point runs once
// per engine (reps in main.go), again when other work took the machine (measure): a curve
// of 5-7 points shows a bad point, and the families stay near ten minutes on two cores.
type sweepSize struct {
	bulkWarm, bulkDur time.Duration // sweep/streams points
	rttWarm, rttDur   time.Duration // sweep/rtt points (slow start at 50 ms wants the longer warm-up)
	maxConns          int           // sweep/conns points above this are not run (n/a)
}

func sweepSizeOf(name string) sweepSize {
	switch name {
	case "smoke":
		return sweepSize{20 * time.Millisecond, 80 * time.Millisecond, 50 * time.Millisecond, 150 * time.Millisecond, 10}
	case "quick":
		return sweepSize{50 * time.Millisecond, 200 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond, 100}
	}
	return sweepSize{300 * time.Millisecond, 1500 * time.Millisecond, time.Second, 2 * time.Second, 10000}
}

// caption says what one point of each family measured, for the charts.
func (s sweepSize) caption(family string) string {
	switch family {
	case "conns":
		return fmt.Sprintf("up to %d connections, one run per point", s.maxConns)
	case "rtt":
		return fmt.Sprintf("%v warm-up + %v measured per point", s.rttWarm, s.rttDur)
	}
	return fmt.Sprintf("%v warm-up + %v measured per point", s.bulkWarm, s.bulkDur)
}

func sweepID(f sweepFamily, x int) string {
	return fmt.Sprintf("sweep/%s/%d%s", f.name, x, f.unit)
}

// parseSweepID returns the family and x of a sweep scenario's id.
func parseSweepID(id string) (sweepFamily, int, bool) {
	rest, ok := strings.CutPrefix(id, "sweep/")
	if !ok {
		return sweepFamily{}, 0, false
	}
	name, xs, ok := strings.Cut(rest, "/")
	if !ok {
		return sweepFamily{}, 0, false
	}
	for _, f := range sweepFamilies {
		if f.name != name {
			continue
		}
		num, ok := strings.CutSuffix(xs, f.unit)
		if !ok {
			return sweepFamily{}, 0, false
		}
		x, err := strconv.Atoi(num)
		if err != nil || x < 0 || strconv.Itoa(x) != num {
			return sweepFamily{}, 0, false
		}
		return f, x, true
	}
	return sweepFamily{}, 0, false
}

// isSweep says whether a scenario belongs to a sweep family (left out unless -run asks).
func isSweep(id string) bool { return strings.HasPrefix(id, "sweep/") }

var (
	mSweepHeap = metric{key: "heap", label: "Go heap per connection per stack", unit: "B", prec: 0}
	mSweepRSS  = metric{key: "rss", label: "resident set growth, peak, to N established", unit: "MiB", prec: 1}
	mSweepPool = metric{key: "pool", label: "wisp pool bytes in use per connection per stack", unit: "B", prec: 0}
	mSweepMbps = metric{key: "mbps", label: "throughput", unit: "Mbit/s", higher: true, prec: 1}
)

// sweepScenarios are the families' points.
func sweepScenarios() []scenario {
	var out []scenario
	for _, f := range sweepFamilies {
		for _, x := range f.xs {
			sc := scenario{id: sweepID(f, x)}
			switch f.name {
			case "conns":
				sc.title = fmt.Sprintf("SWEEP %d idle established connection%s", x, plural(x))
				sc.metrics = []metric{mSweepHeap, mSweepRSS, mSweepPool}
				sc.cfg = func(sz sizes) netConfig {
					return netConfig{MTU: 1500, Conns: min(x, sweepSizeOf(sz.name).maxConns)}
				}
				sc.run = func(n network, sz sizes) (map[string]float64, []string, error) {
					return runSweepConns(n, x, sweepSizeOf(sz.name).maxConns)
				}
				sc.skip = noKernelMemory
				sc.once = true
			case "streams":
				sc.title = fmt.Sprintf("SWEEP TCP bulk, %d stream%s, MTU 1500", x, plural(x))
				sc.metrics = []metric{mThroughput(goal{}), mCPU}
				sc.cfg = func(sizes) netConfig { return netConfig{MTU: 1500, Conns: x} }
				sc.run = func(n network, sz sizes) (map[string]float64, []string, error) {
					ss := sweepSizeOf(sz.name)
					r, err := runBulk(n, x, ss.bulkWarm, ss.bulkDur)
					return r.values(), stalledNote(r), err
				}
			case "rtt":
				rtt := time.Duration(x) * time.Millisecond
				sc.title = fmt.Sprintf("SWEEP TCP bulk, 1 stream, RTT %v, no loss, MTU 1500", rtt)
				sc.metrics = []metric{mSweepMbps, mCPU}
				sc.cfg = func(sizes) netConfig {
					return netConfig{MTU: 1500, Conns: 1, Impair: impairment{Delay: rtt / 2, Seed: 42}}
				}
				sc.run = func(n network, sz sizes) (map[string]float64, []string, error) {
					ss := sweepSizeOf(sz.name)
					r, err := runBulk(n, 1, ss.rttWarm, ss.rttDur)
					return r.values(), stalledNote(r), err
				}
			}
			out = append(out, sc)
		}
	}
	return out
}

// runSweepConns is runIdle at total connections plus the process's resident set: its growth
// from before the connections to its peak while they were held (the kernel's peak counter,
// reset first). A point above max (a small run's) is not run.
func runSweepConns(n network, total, max int) (map[string]float64, []string, error) {
	if total > max {
		return nil, nil, notAvailable(fmt.Sprintf("this run size goes up to %d connections", max))
	}
	r0 := rss()
	reset := resetPeakRSS()
	v, notes, err := runIdle(n, total)
	if err != nil {
		return nil, notes, err
	}
	if peak := peakRSS(); reset && peak > 0 && r0 > 0 {
		v["rss"] = float64(peak-r0) / (1 << 20)
	}
	return v, notes, nil
}

// resetPeakRSS sets the kernel's peak resident set of this process (VmHWM) to the current
// one; false when the kernel cannot (no CONFIG_PROC_PAGE_MONITOR).
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSS returns the process's peak resident set in bytes since the last reset (0 if
// unknown).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

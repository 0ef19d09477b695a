package main

import (
	"fmt"
	"time"
)

// sizes scales every scenario: full (the record in RESULTS.md), quick (CI: proves the
// harness works) and smoke (the unit test).
type sizes struct {
	name         string
	bulkWarm     time.Duration
	bulkDur      time.Duration
	rrRounds     int
	rateConns    int
	idleConns    int
	stalledConns int
	stalledBytes int
	stalledWait  time.Duration
	freshReqs    int           // fresh requests timed idle and during the stall (the table shows the median)
	freshWait    time.Duration // deadline of one fresh request
	lossDur      time.Duration
	lossWarm     time.Duration
	udpDur       time.Duration
	timeout      time.Duration // per engine per scenario
	reps         int           // repetitions of each timing scenario (the table shows the median)
}

var (
	full = sizes{name: "full", bulkWarm: 500 * time.Millisecond, bulkDur: 3 * time.Second,
		rrRounds: 20000, rateConns: 10000, idleConns: 10000, stalledConns: 1000,
		stalledBytes: 4 << 20, stalledWait: 30 * time.Second, freshReqs: 5, freshWait: 10 * time.Second, lossWarm: time.Second,
		lossDur: 5 * time.Second, udpDur: 2 * time.Second, timeout: 3 * time.Minute, reps: 3}
	quick = sizes{name: "quick", bulkWarm: 50 * time.Millisecond, bulkDur: 200 * time.Millisecond,
		rrRounds: 500, rateConns: 200, idleConns: 200, stalledConns: 20,
		stalledBytes: 1 << 20, stalledWait: 1500 * time.Millisecond, freshReqs: 3, freshWait: 3 * time.Second, lossWarm: 100 * time.Millisecond,
		lossDur: 300 * time.Millisecond, udpDur: 150 * time.Millisecond, timeout: 30 * time.Second, reps: 1}
	smoke = sizes{name: "smoke", bulkWarm: 20 * time.Millisecond, bulkDur: 80 * time.Millisecond,
		rrRounds: 50, rateConns: 30, idleConns: 30, stalledConns: 4,
		stalledBytes: 256 << 10, stalledWait: 400 * time.Millisecond, freshReqs: 2, freshWait: 3 * time.Second, lossWarm: 50 * time.Millisecond,
		lossDur: 150 * time.Millisecond, udpDur: 50 * time.Millisecond, timeout: 15 * time.Second, reps: 1}
)

// metric is one row of the table.
type metric struct {
	key    string // the key a scenario's run returns
	label  string
	unit   string
	higher bool // higher is better
	goal   goal
	prec   int // decimals
	// derive, when set, computes the row from other rows of the same run instead of from
	// the runs' values: the engine's figure, or why there is none. Such a row gets no
	// wisp/netstack quotient columns (it is a quotient itself); its goal is wisp's own
	// figure (goalAbs).
	derive func(r *report, engine string) (float64, string)
}

// goal is the figure for wisp on a metric.
type goal struct {
	kind int     // goalNone, goalRatio (wisp/netstack), goalAbs (wisp's own value)
	v    float64 // higher is better: ≥ v; lower is better: ≤ v
}

const (
	goalNone = iota
	goalRatio
	goalAbs
)

func ratio(v float64) goal { return goal{goalRatio, v} }
func abs(v float64) goal   { return goal{goalAbs, v} }

// scenario is one measurement run per engine.
type scenario struct {
	id      string // matched by -run
	title   string
	metrics []metric
	cfg     func(sz sizes) netConfig
	// run measures one network; it returns values by metric key and notes.
	run func(n network, sz sizes) (map[string]float64, []string, error)
	// skip says why an engine does not run this scenario ("" when it does).
	skip func(e engine) string
	// once: run a single time even when timing scenarios are repeated (memory scenarios:
	// deterministic enough, and expensive).
	once bool
	// open, when set, builds the network for engine e instead of e.open: a family whose
	// networks are its own kind (xdp.go).
	open func(e engine, cfg netConfig) (network, error)
}

var (
	mThroughput = func(g goal) metric {
		return metric{key: "gbps", label: "throughput", unit: "Gbit/s", higher: true, goal: g, prec: 2}
	}
	mCPU     = metric{key: "cpu", label: "CPU per GB", unit: "s/GB", prec: 2}
	mAllocs  = metric{key: "allocs", label: "allocations per packet on the link", unit: "allocs", goal: abs(0), prec: 4}
	mMallocs = metric{key: "mallocs", label: "allocations in the measured interval (whole process)", unit: "allocs", prec: 0}
	mGC      = metric{key: "gc", label: "GC cycles per GB", unit: "cycles/GB", prec: 1}
	// mFresh are the stalled scenarios' fresh-request rows (runStalled): a new connection's
	// 100-byte request and 100,000-byte answer, dial to last byte, while the stalled
	// connections are held and, for reference, on the idle network before them.
	mFresh = []metric{
		{key: "fresh_ms", label: "new connection during the stall: dial to 100 kB, median", unit: "ms", prec: 1},
		{key: "fresh_idle_ms", label: "new connection on the idle network, median", unit: "ms", prec: 1},
		{key: "fresh_slowdown", label: "new connection: during the stall / idle", unit: "×", prec: 1},
		{key: "fresh_timeouts", label: "new connections timed out or failed during the stall", unit: "", prec: 0},
	}
)

func noKernelMemory(e engine) string {
	if e.name() == "kernel" {
		return "n/a (kernel memory is not in the Go heap)"
	}
	return ""
}

func scenarios() []scenario {
	var out []scenario
	goals := map[int]goal{1500: ratio(4), 65535: ratio(1.5)}
	for _, streams := range []int{1, 8} {
		for _, mtu := range []int{1420, 1500, 9000, 65535} {
			metrics := []metric{mThroughput(goals[mtu]), mCPU}
			if mtu == 1500 || mtu == 65535 {
				metrics = append(metrics, mAllocs, mMallocs, mGC)
			}
			out = append(out, scenario{
				id:      fmt.Sprintf("bulk/%dx%d", streams, mtu),
				title:   fmt.Sprintf("TCP bulk, %d stream%s, MTU %d", streams, plural(streams), mtu),
				metrics: metrics,
				cfg:     func(sizes) netConfig { return netConfig{MTU: mtu, Conns: streams} },
				run: func(n network, sz sizes) (map[string]float64, []string, error) {
					r, err := runBulk(n, streams, sz.bulkWarm, sz.bulkDur)
					return r.values(), stalledNote(r), err
				},
			})
		}
	}
	out = append(out,
		scenario{
			id:    "rr",
			title: "TCP 1-byte request/response, MTU 1500",
			metrics: []metric{
				{key: "p50", label: "round trip median", unit: "µs", goal: ratio(1.0 / 3), prec: 1},
				{key: "p99", label: "round trip p99", unit: "µs", prec: 1},
			},
			cfg: func(sizes) netConfig { return netConfig{MTU: 1500, Conns: 1} },
			run: func(n network, sz sizes) (map[string]float64, []string, error) {
				v, err := runRR(n, sz.rrRounds)
				return v, nil, err
			},
		},
		scenario{
			id:      "connrate",
			title:   "TCP connection rate (dial+accept+close, 8 dialers)",
			metrics: []metric{{key: "rate", label: "connections", unit: "conn/s", higher: true, goal: ratio(5)}},
			cfg:     func(sz sizes) netConfig { return netConfig{MTU: 1500, Conns: 64} },
			run: func(n network, sz sizes) (map[string]float64, []string, error) {
				v, err := runConnRate(n, sz.rateConns, 8)
				return v, nil, err
			},
		},
		scenario{
			id:    "idle",
			title: "Idle memory, established connections",
			metrics: []metric{
				{key: "heap", label: "Go heap per connection per stack", unit: "B", goal: abs(1024), prec: 0},
				{key: "goroutines", label: "goroutines per connection per stack", unit: "", prec: 3},
				{key: "pool", label: "wisp pool bytes in use per connection per stack", unit: "B", prec: 0},
				{key: "pcbslot", label: "wisp TCP_PCB element (made on demand, in the heap row)", unit: "B", prec: 0},
				{key: "reserve", label: "wisp whole reservation per PCB slot", unit: "B", prec: 0},
			},
			cfg:  func(sz sizes) netConfig { return netConfig{MTU: 1500, Conns: sz.idleConns} },
			run:  func(n network, sz sizes) (map[string]float64, []string, error) { return runIdle(n, sz.idleConns) },
			skip: noKernelMemory,
			once: true,
		},
		scenario{
			id:      "stalled",
			title:   "Stalled readers (each sender offers its bytes, the reader never reads)",
			metrics: stalledMetrics(1.0 / 20),
			cfg:     func(sz sizes) netConfig { return netConfig{MTU: 1500, Conns: sz.stalledConns} },
			run: func(n network, sz sizes) (map[string]float64, []string, error) {
				return runStalled(n, sz.stalledConns, sz.stalledBytes, sz.stalledWait, sz.freshReqs, sz.freshWait)
			},
			skip: noKernelMemory,
			once: true,
		},
	)
	for _, loss := range []float64{0, 0.01} {
		for _, rtt := range []time.Duration{0, 50 * time.Millisecond} {
			imp := impairment{Loss: loss, Delay: rtt / 2, Seed: 42}
			out = append(out, scenario{
				id:      fmt.Sprintf("loss/%g%%-%dms", loss*100, rtt.Milliseconds()),
				title:   fmt.Sprintf("TCP bulk through impairment: loss %g%%, RTT %v, MTU 1500", loss*100, rtt),
				metrics: []metric{{key: "mbps", label: "throughput", unit: "Mbit/s", higher: true, goal: ratio(1), prec: 1}},
				cfg:     func(sizes) netConfig { return netConfig{MTU: 1500, Conns: 1, Impair: imp} },
				run: func(n network, sz sizes) (map[string]float64, []string, error) {
					r, err := runBulk(n, 1, sz.lossWarm, sz.lossDur)
					return r.values(), stalledNote(r), err
				},
			})
		}
	}
	for _, size := range []int{64, 1400} {
		out = append(out, scenario{
			id:      fmt.Sprintf("udp/%d", size),
			title:   fmt.Sprintf("UDP %d-byte datagrams, MTU 1500", size),
			metrics: []metric{{key: "pps", label: "datagrams received", unit: "dgram/s", higher: true}},
			cfg:     func(sizes) netConfig { return netConfig{MTU: 1500} },
			run: func(n network, sz sizes) (map[string]float64, []string, error) {
				v, err := runUDP(n, size, sz.bulkWarm, sz.udpDur)
				return v, nil, err
			},
		})
	}
	// The labelled large-segment variant.
	for _, streams := range []int{1, 8} {
		out = append(out, scenario{
			id:      fmt.Sprintf("large/%dx1500", streams),
			title:   fmt.Sprintf("VARIANT large segments: TCP bulk, %d stream%s, MTU 1500 path", streams, plural(streams)),
			metrics: []metric{mThroughput(goal{}), mCPU, mAllocs, mMallocs, mGC},
			cfg:     func(sizes) netConfig { return netConfig{MTU: 1500, Conns: streams, LargeSegments: true} },
			run: func(n network, sz sizes) (map[string]float64, []string, error) {
				r, err := runBulk(n, streams, sz.bulkWarm, sz.bulkDur)
				return r.values(), nil, err
			},
		})
	}
	out = append(out, wgScenarios()...)
	out = append(out, tunScenarios()...)
	out = append(out, xdpScenarios()...)
	out = append(out, proxyScenarios()...)
	return append(out, sweepScenarios()...) // only when -run selects them (sweep.go)
}

// stalledNote flags a transfer that moved nothing during the measurement (the figure is a
// real 0, not a harness failure).
func stalledNote(r bulkResult) []string {
	if r.bytes == 0 && r.elapsed > 0 {
		return []string{"stalled: no byte arrived during the measured interval"}
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// stalledMetrics are the metrics of a stalled-readers scenario: the memory held, whose goal
// is heldGoal of the baseline's, per connection, whether wisp stayed inside its budget, and
// the fresh requests' (mFresh).
func stalledMetrics(heldGoal float64) []metric {
	return append([]metric{
		{key: "held", label: "memory held (Go heap + wisp pools in use)", unit: "MiB", goal: ratio(heldGoal), prec: 1},
		{key: "perconn", label: "memory held per connection", unit: "KiB", prec: 0},
		{key: "inside", label: "wisp inside its budget (1 = yes)", unit: "", higher: true, goal: abs(1), prec: 0},
	}, mFresh...)
}

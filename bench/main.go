package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// options are the command line.
type options struct {
	quick      bool
	smoke      bool // the unit test's size; not a flag
	jsonFile   string
	run        string
	cpuProfile string
	memProfile string
	engines    string
	plotDir    string // -plot: draw the sweep families there (plot.go)
	plotFrom   string // -from: draw from this -json file instead of running
	out        io.Writer
	progress   io.Writer
}

var verbose = flag.Bool("v", false, "log what the link did in every run")

// wispCores is stack.Config.Cores of the wisp engine's stacks: 1, wisp's default, unless
// asked (0: GOMAXPROCS). On this 2-vCPU VM two cores per stack were slower (bench/RESULTS.md).
var wispCores = flag.Int("wisp-cores", 1, "cores of each wisp stack (stack.Config.Cores; 0: GOMAXPROCS)")

// coresOf is the wisp engine's core count.
func coresOf() int {
	if *wispCores > 0 {
		return *wispCores
	}
	return runtime.GOMAXPROCS(0)
}

func main() {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "a short pass with tiny sizes (CI: proves the harness works, not a speed judgement)")
	flag.StringVar(&o.jsonFile, "json", "", "also write the results as JSON to `FILE`")
	flag.StringVar(&o.run, "run", "", "run only the scenarios whose id matches `REGEXP` (ids: bulk/1x1500, rr, connrate, idle, stalled, loss/1%-50ms, udp/64, large/8x1500, ...)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the wisp engine's runs to `FILE` (wisp runs first, as one block)")
	flag.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile taken after the wisp engine's runs to `FILE`")
	flag.StringVar(&o.engines, "engines", "", "run only the engines whose name matches `REGEXP` (wisp, netstack, netstack-tuned, kernel)")
	flag.StringVar(&o.plotDir, "plot", "", "draw each sweep family (-run '^sweep/') as a chart in `DIR` (PNG and SVG)")
	flag.StringVar(&o.plotFrom, "from", "", "with -plot: draw from the -json `FILE` of an earlier run instead of running")
	flag.Parse()
	o.out, o.progress = os.Stdout, os.Stderr

	// Whatever happens, the kernel engine's namespaces go away.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		cleanupKernel()
		os.Exit(130)
	}()
	defer cleanupKernel() // also when run panics in this goroutine
	err := run(o)
	cleanupKernel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func allEngines() []engine {
	return []engine{wispEngine{}, gvEngine{}, gvEngine{tuned: true}, kernelEngine{}}
}

// run runs the selected scenarios on every engine and prints the table.
func run(o options) error {
	if o.plotFrom != "" {
		return plotFrom(o)
	}
	sz := full
	switch {
	case o.smoke:
		sz = smoke
	case o.quick:
		sz = quick
	}
	var scRe, enRe *regexp.Regexp
	var err error
	if o.run != "" {
		if scRe, err = regexp.Compile(o.run); err != nil {
			return err
		}
	}
	if o.engines != "" {
		if enRe, err = regexp.Compile(o.engines); err != nil {
			return err
		}
	}
	var scs []scenario
	for _, s := range scenarios() {
		if scRe == nil && !isSweep(s.id) || scRe != nil && scRe.MatchString(s.id) {
			scs = append(scs, s)
		}
	}
	if len(scs) == 0 {
		return errors.New("no scenario matches -run")
	}
	if err := checkPlotSelection(o, scs); err != nil {
		return err
	}
	var engines []engine
	for _, e := range allEngines() {
		if enRe == nil || enRe.MatchString(e.name()) {
			engines = append(engines, e)
		}
	}
	rep := newReport(sz, engines, scs)
	rep.command = commandLine()
	start := time.Now()

	runOne := func(sc scenario, e engine) {
		fmt.Fprintf(o.progress, "%-18s %-14s ", sc.id, e.name())
		t := time.Now()
		res := measure(sc, e, sz)
		rep.add(sc, e, res)
		busy := ""
		if res.attempts > 1 || res.foreign > busyLimit {
			busy = fmt.Sprintf("  [attempt %d, foreign CPU %.0f%%]", res.attempts, res.foreign*100)
		}
		fmt.Fprintf(o.progress, "%6.1fs  %s%s\n", time.Since(t).Seconds(), res.summary(sc), busy)
		if *verbose && res.link != "" {
			fmt.Fprintf(o.progress, "    link: %s\n", res.link)
		}
	}
	if o.cpuProfile != "" || o.memProfile != "" {
		// Profiles cover the wisp engine alone: its runs go first, as one block.
		if o.memProfile != "" {
			runtime.MemProfileRate = 4096
		}
		var wisp []engine
		var rest []engine
		for _, e := range engines {
			if e.name() == "wisp" {
				wisp = append(wisp, e)
			} else {
				rest = append(rest, e)
			}
		}
		if o.cpuProfile != "" {
			f, err := os.Create(o.cpuProfile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			for _, sc := range scs {
				for r := 0; r < reps(sc, sz); r++ {
					for _, e := range wisp {
						runOne(sc, e)
					}
				}
			}
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				return err
			}
		} else {
			for _, sc := range scs {
				for r := 0; r < reps(sc, sz); r++ {
					for _, e := range wisp {
						runOne(sc, e)
					}
				}
			}
		}
		if o.memProfile != "" {
			f, err := os.Create(o.memProfile)
			if err != nil {
				return err
			}
			runtime.GC()
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		}
		for _, sc := range scs {
			for r := 0; r < reps(sc, sz); r++ {
				for _, e := range rest {
					runOne(sc, e)
				}
			}
		}
	} else {
		// Scenario by scenario, engines side by side (their order rotating between
		// repetitions), so drift on a shared machine hits every engine alike.
		for _, sc := range scs {
			for r := 0; r < reps(sc, sz); r++ {
				for i := range engines {
					runOne(sc, engines[(i+r)%len(engines)])
				}
			}
		}
	}
	rep.elapsed = time.Since(start)
	rep.loadEnd = loadavg()
	if err := rep.writeTable(o.out); err != nil {
		return err
	}
	if o.jsonFile != "" {
		if err := rep.writeJSON(o.jsonFile); err != nil {
			return err
		}
	}
	if o.plotDir != "" {
		files, err := plotSweeps(o.plotDir, plotInputOf(rep))
		if err != nil {
			return err
		}
		fmt.Fprintf(o.progress, "plots: %s\n", strings.Join(files, " "))
	}
	return nil
}

// reps is how many times a scenario runs per engine; the table shows the median. A sweep's
// point runs once (sweep.go).
func reps(sc scenario, sz sizes) int {
	if sc.once || sz.reps < 1 || isSweep(sc.id) {
		return 1
	}
	return sz.reps
}

func commandLine() string {
	s := "go run ./bench"
	for _, a := range os.Args[1:] {
		s += " " + a
	}
	return s
}

// outcome is one engine's run of one scenario.
type outcome struct {
	values map[string]float64
	notes  []string
	why    string // set when there are no values: n/a reason or failure
	failed bool
	link   string // what the link did
	// foreign is the share of the machine's CPU other work took during the run (other
	// processes, hypervisor steal); attempts counts the runs it took (see measure).
	foreign  float64
	attempts int
}

func (r outcome) summary(sc scenario) string {
	if r.why != "" {
		return r.why
	}
	s := ""
	for _, m := range sc.metrics {
		if v, ok := r.values[m.key]; ok {
			s += fmt.Sprintf("%s=%.*f%s ", m.key, m.prec, v, m.unit)
		}
	}
	return s
}

// measure runs one scenario on one engine, again when the machine was busy with other work.
func measure(sc scenario, e engine, sz sizes) outcome {
	if why := e.missing(); why != "" {
		return outcome{why: "n/a (" + why + ")"}
	}
	if sc.skip != nil {
		if why := sc.skip(e); why != "" {
			return outcome{why: why}
		}
	}
	// A run during which other work (other processes, or the hypervisor's steal) took more
	// than busyLimit of the machine measured the neighbours, not the engine: it is run
	// again, up to maxAttempts times, whatever the engine; the last attempt is kept and
	// flagged. The JSON records every run's foreign share.
	var o outcome
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		h0 := takeHost()
		o = measureOnce(sc, e, sz)
		o.foreign = foreignShare(h0, takeHost())
		o.attempts = attempt
		if o.foreign <= busyLimit || o.why != "" || sc.once {
			break
		}
	}
	if o.foreign > busyLimit && o.why == "" {
		o.notes = append(o.notes, fmt.Sprintf("%s %s: other work took %.0f%% of the machine during the run (kept after %d attempts)",
			e.name(), sc.id, o.foreign*100, o.attempts))
	}
	return o
}

const (
	busyLimit   = 0.25
	maxAttempts = 3
)

// measureOnce runs one scenario on one engine in a fresh network, with a time limit.
func measureOnce(sc scenario, e engine, sz sizes) outcome {
	quiesce()
	g0 := runtime.NumGoroutine()
	open := e.open
	if sc.open != nil {
		open = func(cfg netConfig) (network, error) { return sc.open(e, cfg) }
	}
	n, err := open(sc.cfg(sz))
	if err != nil {
		if errors.Is(err, errUnsupported) {
			return outcome{why: "n/a (" + err.Error() + ")"}
		}
		return outcome{why: "failed: " + err.Error(), failed: true}
	}
	type result struct {
		v     map[string]float64
		notes []string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("panic: %v", p)}
			}
		}()
		v, notes, err := sc.run(n, sz)
		done <- result{v, notes, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(sz.timeout):
		r.err = fmt.Errorf("timed out after %v", sz.timeout)
	}
	var notes []string
	for _, s := range n.notes() {
		notes = append(notes, e.name()+": "+s)
	}
	for _, s := range r.notes {
		notes = append(notes, e.name()+" "+sc.id+": "+s)
	}
	linkSum := n.linkSummary()
	if err := n.close(); err != nil && r.err == nil {
		r.err = fmt.Errorf("close: %w", err)
	}
	if g := waitGoroutines(g0); g > g0 {
		notes = append(notes, fmt.Sprintf("%s %s: %d goroutines left after close", e.name(), sc.id, g-g0))
	}
	if r.err != nil {
		if errors.Is(r.err, errUnsupported) {
			return outcome{why: "n/a (" + r.err.Error() + ")", notes: notes}
		}
		return outcome{why: "failed: " + r.err.Error(), failed: true, notes: notes, link: linkSum}
	}
	return outcome{values: r.v, notes: notes, link: linkSum}
}

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/wispstack/wisp/stats"
)

// Config is one soak run; the zero value of a field means its default (defaultConfig).
type Config struct {
	Duration time.Duration // how long the load runs
	Seed     uint64        // seeds the impairment, the stacks and every worker's choices
	Conns    int           // concurrent churn connections (workers)
	Bulk     int           // long bulk streams, alternating A→B and B→A
	Stalled  int           // streams whose reader stalls (negative: none)
	UDP      int           // UDP request/response clients (negative: none)
	Loss     float64       // frame loss per direction (negative: none)
	Reorder  float64       // frames held back ReorderDelay so later ones overtake them (negative: none)
	Delay    time.Duration // one-way delay added to every frame (negative: none)
	Pool     int           // PbufPoolSize of each stack (receive memory, in 2560-byte chunks)
	Mem      int           // MemSize of each stack (the send heap), bytes
	Verbose  bool          // print every failure, and both stacks' counters at the end
	Out      io.Writer     // where the report goes (default os.Stdout)
}

func defaultConfig() Config {
	return Config{
		Duration: time.Minute,
		Seed:     1,
		Conns:    32,
		Bulk:     2,
		Stalled:  4,
		UDP:      4,
		Loss:     0.01,
		Reorder:  0.01,
		Delay:    2 * time.Millisecond,
		Pool:     1024,
		Mem:      4 << 20,
	}
}

// withDefaults fills zero fields from defaultConfig; negative counts and rates mean none.
func (c Config) withDefaults() Config {
	d := defaultConfig()
	if c.Duration <= 0 {
		c.Duration = d.Duration
	}
	if c.Seed == 0 {
		c.Seed = d.Seed
	}
	pick := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
		*v = max(*v, 0)
	}
	pick(&c.Conns, d.Conns)
	pick(&c.Bulk, d.Bulk)
	pick(&c.Stalled, d.Stalled)
	pick(&c.UDP, d.UDP)
	pick(&c.Pool, d.Pool)
	pick(&c.Mem, d.Mem)
	if c.Loss == 0 {
		c.Loss = d.Loss
	}
	if c.Reorder == 0 {
		c.Reorder = d.Reorder
	}
	if c.Delay == 0 {
		c.Delay = d.Delay
	}
	c.Loss, c.Reorder, c.Delay = max(c.Loss, 0), max(c.Reorder, 0), max(c.Delay, 0)
	if c.Out == nil {
		c.Out = os.Stdout
	}
	return c
}

// Timing of the run.
const (
	window        = 5 * time.Second  // the unit of the progress check
	progressEvery = 10 * time.Second // a progress line
	// opTimeout bounds every dial, read and write of traffic that is not stalled on purpose:
	// a longer wait is a hang. Generous, because RTO backoff under loss is legitimate.
	opTimeout     = 20 * time.Second
	persistMax    = 60 * time.Second         // the tunnel preset's TCPMaxRTO: the longest zero-window probe interval
	stopTimeout   = 3*opTimeout + persistMax // the load's goroutines end after the stop (a drain may wait for a probe)
	idleTimeout   = 30 * time.Second         // pools back to idle once every socket is closed
	goroutineWait = 10 * time.Second         // goroutines back to the starting count
	heapSlack     = 8 << 20                  // Go heap at the end may exceed its idle size by this much
	maxPrinted    = 20                       // failures printed as they happen
	maxKept       = 3                        // failures of each kind listed in the summary
	maxStatDumps  = 3                        // failing windows that print both stacks' counters
)

// run runs one soak and returns nil only if every check held. It prints progress and the
// summary to cfg.Out.
func run(cfg Config) error {
	cfg = cfg.withDefaults()
	g0 := runtime.NumGoroutine()
	s := newSoak(cfg)
	if err := s.setup(); err != nil {
		s.closeAll()
		return err
	}
	s.printHeader()
	s.startServers()
	if err := s.measureIdle(); err != nil {
		s.closeAll()
		return err
	}
	s.logf("idle: go heap %s; %s | %s\n", mib(s.idle.goHeap), s.a.poolLine(), s.b.poolLine())

	s.start = time.Now()
	s.startLoad()
	s.monitor(s.start.Add(cfg.Duration))
	close(s.stop)
	s.stopLoad()
	s.checkIdle()
	s.closeAll()
	s.checkClosed()
	s.checkGoroutines(g0)
	s.checkUDPLoss()
	return s.report()
}

// stopLoad waits for every client and connection handler to finish after the stop; those
// still running after stopTimeout are a hang.
func (s *soak) stopLoad() {
	t0 := time.Now()
	done := make(chan struct{})
	go func() {
		s.load.Wait()
		s.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.stopTook = time.Since(t0)
		return
	case <-time.After(stopTimeout):
	}
	s.fail("hang", "the load did not stop within %v of the end; goroutines:\n%s", stopTimeout, goroutines())
	s.dumpStats("load did not stop")
	// Closing the stacks fails every socket call still waiting.
	s.closeAll()
	select {
	case <-done:
	case <-time.After(goroutineWait):
		s.fail("hang", "the load did not stop even after the stacks closed")
	}
	s.stopTook = time.Since(t0)
}

// checkGoroutines waits for the goroutine count to come back to where run started.
func (s *soak) checkGoroutines(g0 int) {
	deadline := time.Now().Add(goroutineWait)
	for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	s.goroutines = [2]int{g0, runtime.NumGoroutine()}
	if n := runtime.NumGoroutine(); n > g0 {
		s.fail("leak", "%d goroutines left (started with %d, now %d):\n%s", n-g0, g0, n, goroutines())
	}
}

func goroutines() string {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()
}

// goHeap is the live Go heap after collecting garbage.
func goHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// report prints the summary and returns the verdict.
func (s *soak) report() error {
	c := &s.ctr
	el := s.elapsed
	secs := max(el.Seconds(), 1e-9)
	s.logf("\nsummary after %v (seed %d):\n", el.Round(time.Millisecond), s.cfg.Seed)
	s.logf("  churn:    %d connections (%.0f/s), %s verified\n", c.churnConns.Load(),
		float64(c.churnConns.Load())/secs, mib(c.churnBytes.Load()))
	s.logf("  bulk:     %d streams, %s verified (%.1f MiB/s)\n", s.cfg.Bulk, mib(c.bulkBytes.Load()),
		float64(c.bulkBytes.Load())/(1<<20)/secs)
	s.logf("  stalled:  %d streams, %s verified, %d stalls\n", s.cfg.Stalled, mib(c.stalledBytes.Load()), c.stalls.Load())
	sent, recv, late := c.udpSent.Load(), c.udpRecv.Load(), c.udpLate.Load()
	s.logf("  udp:      %d sent, %d answered, %d late, %d lost (impairment explains ~%.0f), %d refused by the sender's stack, %d echoes refused\n",
		sent, recv, late, sent-min(sent, recv+late), s.udpExpectedLoss(), c.udpRefused.Load(), c.udpEchoRefused.Load())
	s.logf("  windows:  %d of %d moved (every %v: churn, bulk and UDP each made progress)\n",
		s.windowsOK, s.windows, window)
	tx, rx := s.imp.Stats()
	s.logf("  link A→B: %s\n  link B→A: %s\n", impairLine(tx), impairLine(rx))
	s.logf("  stop:     load ended %v after the stop; pools idle %v later\n",
		s.stopTook.Round(time.Millisecond), s.idleTook.Round(time.Millisecond))
	s.logf("  go heap:  idle %s, end %s (bound %s)\n", mib(s.idle.goHeap), mib(s.endHeap), mib(s.idle.goHeap+heapSlack))
	s.logf("  goroutines: %d at start, %d at the end\n", s.goroutines[0], s.goroutines[1])
	if s.final[0].Pools == nil { // the idle check did not run: the counters as they are now
		s.final = [2]stats.Snapshot{s.a.s.Stats(), s.b.s.Stats()}
	}
	kinds, n := s.fails.summary()
	if n == 0 {
		if s.cfg.Verbose {
			s.printStats(s.final)
		}
		s.logf("PASS\n")
		return nil
	}
	s.printStats(s.final)
	s.logf("FAIL: %d failures (%s)\n", n, kinds)
	for _, m := range s.fails.first() {
		s.logf("  - %s\n", firstLine(m))
	}
	return errors.New("soak failed: " + kinds)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// startServers starts each side's accept loops and echo server.
func (s *soak) startServers() {
	for _, sd := range []*side{s.a, s.b} {
		s.servers.Add(3)
		go s.acceptLoop(sd, sd.churnL, "churn", s.serveChurn)
		go s.acceptLoop(sd, sd.streamL, "stream", s.streamReader)
		go s.echoServer(sd)
	}
}

// startLoad starts every client; they run until s.stop closes.
func (s *soak) startLoad() {
	for i := range s.cfg.Conns {
		s.load.Add(1)
		go s.churnWorker(i)
	}
	for i := range s.cfg.Bulk {
		s.load.Add(1)
		go s.streamWriter(i, bulkStream)
	}
	for j := range s.cfg.Stalled {
		s.load.Add(1)
		go s.streamWriter(1000+j, stallKind(j))
	}
	for i := range s.cfg.UDP {
		s.load.Add(1)
		go s.udpWorker(i)
	}
}

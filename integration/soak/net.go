package main

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/impair"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/transport/tcp"
)

// Addresses only from the benchmarking ranges (RFC 2544's 198.18.0.0/15) and wisp's ULA.
var (
	addrsA = [2]netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fd42:5eed::1")}
	addrsB = [2]netip.Addr{netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("fd42:5eed::2")}
)

// Server ports, the same on both stacks.
const (
	portChurn  = 7000
	portStream = 7001
	portEcho   = 7100
)

// soakOptions is the tunnel preset with packet memory cut so that the load presses on it:
//
//   - PbufPoolSize 8192 → cfg.Pool (1024): 2.5 MiB of 2560-byte chunks hold every frame a
//     stack has received and not yet given to a reader, for all its connections — a
//     stalled reader's window alone (1 MiB to start, autotuned to 8 MiB) could take it all;
//   - MemSize 32 MiB → cfg.Mem (4 MiB): the heap all send buffers share, smaller than one
//     connection's TCPMaxSndBuf (8 MiB), so writers to stalled readers can exhaust it;
//   - TCPMSL 30 s → 1 s: TIME-WAIT lasts 2 s, so churn recycles PCBs and the end of the run
//     sees them gone without waiting a minute;
//   - IPReassMaxAge 15 s → 3 s: a UDP datagram that lost a fragment to the impairment waits
//     this long in reassembly (REASSDATA, POOL pbufs) before the end of the run sees it go.
//
// Everything else (windows, buffers, PCB counts, timers) is the preset's.
func soakOptions(cfg Config) opt.Options {
	o := opt.Tunnel()
	o.PbufPoolSize = cfg.Pool
	o.MemSize = cfg.Mem
	o.TCPMSL = time.Second
	o.IPReassMaxAge = 3 * time.Second
	return o
}

// impairDir is the impairment of one direction: cfg's loss, reordering and delay, plus a
// little duplication and corruption (which checksums must catch).
func impairDir(cfg Config, seed uint64) impair.Dir {
	return impair.Dir{
		Seed:         seed,
		Loss:         cfg.Loss,
		Reorder:      cfg.Reorder,
		ReorderDelay: 3 * time.Millisecond,
		Delay:        cfg.Delay,
		Duplicate:    0.001,
		Corrupt:      0.0005,
		QueueLen:     8192, // hold what a 2 ms delay holds at a few Gbit/s
	}
}

// side is one stack with its sockets API and servers.
type side struct {
	name    string
	s       *stack.Stack
	n       *endpoint.Net
	addrs   [2]netip.Addr
	churnL  *endpoint.TCPListener
	streamL *endpoint.TCPListener
	echo    *endpoint.UDPConn
	idle    idleState
}

// idleState is what a side's memory holds when no load runs: every pool's Used and the
// heap's.
type idleState struct {
	pools map[string]int
	heap  int
}

func idleOf(snap *stats.Snapshot) idleState {
	st := idleState{pools: make(map[string]int), heap: snap.Heap.Used}
	for _, p := range snap.Pools {
		st.pools[p.Name] = p.Used
	}
	return st
}

// differ lists how snap differs from st.
func (st idleState) differ(snap *stats.Snapshot) []string {
	var d []string
	for _, p := range snap.Pools {
		if p.Used != st.pools[p.Name] {
			d = append(d, fmt.Sprintf("%s %d (idle %d)", p.Name, p.Used, st.pools[p.Name]))
		}
	}
	if snap.Heap.Used != st.heap {
		d = append(d, fmt.Sprintf("MEM_HEAP %d bytes (idle %d)", snap.Heap.Used, st.heap))
	}
	return d
}

func newSoak(cfg Config) *soak {
	return &soak{cfg: cfg, stop: make(chan struct{})}
}

// setup makes the two stacks, the impaired pipe between them, and the servers' sockets.
func (s *soak) setup() error {
	o := soakOptions(s.cfg)
	s.a = &side{name: "A", addrs: addrsA}
	s.b = &side{name: "B", addrs: addrsB}
	var err error
	if s.a.s, err = stack.New(stack.Config{Options: o, Seed: s.cfg.Seed*2 + 1}); err != nil {
		return err
	}
	if s.b.s, err = stack.New(stack.Config{Options: o, Seed: s.cfg.Seed*2 + 2}); err != nil {
		return err
	}
	s.pa, s.pb = pipe.New(pipe.Config{MTU: 1500, Medium: link.MediumEthernet})
	s.imp = impair.New(s.pa, clock.Real, impair.Config{
		TX:    impairDir(s.cfg, s.cfg.Seed*4+1),
		RX:    impairDir(s.cfg, s.cfg.Seed*4+2),
		Alloc: s.a.s.Allocator(), // copies of shared frames to corrupt come from A's heap
	})
	for _, x := range []struct {
		sd *side
		ep link.Endpoint
	}{{s.a, s.imp}, {s.b, s.pb}} {
		if _, err := x.sd.s.AddNetif(x.ep, stack.NetifConfig{Name: strings.ToLower(x.sd.name) + "0", Addrs: []netip.Prefix{
			netip.PrefixFrom(x.sd.addrs[0], 24), netip.PrefixFrom(x.sd.addrs[1], 64)}}); err != nil {
			return err
		}
	}
	s.linked = true
	for _, sd := range []*side{s.a, s.b} {
		if err := waitUsable(sd.s, sd.addrs[1]); err != nil {
			return err
		}
		sd.n = endpoint.New(sd.s)
		if sd.churnL, err = sd.n.ListenTCPAddrPort(netip.AddrPortFrom(netip.Addr{}, portChurn)); err != nil {
			return err
		}
		if sd.streamL, err = sd.n.ListenTCPAddrPort(netip.AddrPortFrom(netip.Addr{}, portStream)); err != nil {
			return err
		}
		if sd.echo, err = sd.n.ListenUDPAddrPort(netip.AddrPortFrom(netip.Addr{}, portEcho)); err != nil {
			return err
		}
	}
	return nil
}

// waitUsable waits for duplicate address detection to finish for a.
func waitUsable(s *stack.Stack, a netip.Addr) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.Lock()
		ok := s.IP().IsLocal(a)
		s.Unlock()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%v never became usable (DAD)", a)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// measureIdle records the idle memory of both stacks once nothing moves between them: no
// frame in the pipe or held by the impairment, and two snapshots alike.
func (s *soak) measureIdle() error {
	deadline := time.Now().Add(10 * time.Second)
	var prev [2]idleState
	for {
		time.Sleep(100 * time.Millisecond)
		sa, sb := s.a.s.Stats(), s.b.s.Stats()
		cur := [2]idleState{idleOf(&sa), idleOf(&sb)}
		ht, hr := s.imp.Held()
		qo, qi := s.pa.Queued()
		if ht+hr+qo+qi == 0 && len(prev[0].differ(&sa)) == 0 && len(prev[1].differ(&sb)) == 0 && prev[0].pools != nil {
			s.a.idle, s.b.idle = cur[0], cur[1]
			break
		}
		prev = cur
		if time.Now().After(deadline) {
			return fmt.Errorf("the stacks never settled before the load")
		}
	}
	s.idle.goHeap = goHeap()
	return nil
}

// checkIdle waits until both stacks' pools and heaps are back to their idle use, then
// measures the Go heap. Sockets are all closed; only the servers' listeners remain, as they
// did when idle was measured.
func (s *soak) checkIdle() {
	if s.closed {
		return // a hang made stopLoad close the stacks; that failure is reported
	}
	t0 := time.Now()
	deadline := t0.Add(idleTimeout)
	var d []string
	lastNote := t0
	for {
		sa, sb := s.a.s.Stats(), s.b.s.Stats()
		d = d[:0]
		for _, x := range []struct {
			sd   *side
			snap *stats.Snapshot
		}{{s.a, &sa}, {s.b, &sb}} {
			for _, m := range x.sd.idle.differ(x.snap) {
				d = append(d, x.sd.name+": "+m)
			}
		}
		s.final = [2]stats.Snapshot{sa, sb}
		if len(d) == 0 || time.Now().After(deadline) {
			break
		}
		if s.cfg.Verbose && time.Since(lastNote) >= 2*time.Second {
			s.logf("  waiting %v for idle: %s\n", time.Since(t0).Round(time.Second), strings.Join(d, ", "))
			lastNote = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.idleTook = time.Since(t0)
	if len(d) > 0 {
		s.fail("idle", "pools not back to idle %v after the load stopped: %s", idleTimeout, strings.Join(d, ", "))
	}
	s.endHeap = goHeap()
	if s.endHeap > s.idle.goHeap+heapSlack {
		s.fail("heap", "Go heap %s after the run, idle was %s (bound %s)", mib(s.endHeap), mib(s.idle.goHeap), mib(s.idle.goHeap+heapSlack))
	}
}

// closeAll closes the servers' sockets and both stacks (which closes the link). Idempotent.
func (s *soak) closeAll() {
	s.closeOnce.Do(func() {
		s.closed = true
		for _, sd := range []*side{s.a, s.b} {
			if sd == nil {
				continue
			}
			for _, l := range []*endpoint.TCPListener{sd.churnL, sd.streamL} {
				if l != nil {
					l.Close()
				}
			}
			if sd.echo != nil {
				sd.echo.Close()
			}
		}
		s.servers.Wait()
		for _, sd := range []*side{s.a, s.b} {
			if sd != nil && sd.s != nil {
				sd.s.Close()
			}
		}
		if !s.linked && s.pa != nil {
			s.pa.Close()
		}
	})
}

// checkClosed checks, as stacktest.PoolsZero does in tests, that closed stacks hold nothing.
func (s *soak) checkClosed() {
	for _, sd := range []*side{s.a, s.b} {
		snap := sd.s.Stats()
		for _, p := range snap.PoolsInUse() {
			s.fail("leak", "%s after Close: pool %s has %d elements in use", sd.name, p.Name, p.Used)
		}
		if snap.Heap.Used != 0 {
			s.fail("leak", "%s after Close: heap has %d bytes in use", sd.name, snap.Heap.Used)
		}
	}
}

func (s *soak) printHeader() {
	c := s.cfg
	o := soakOptions(c)
	s.logf("soak: %v, seed %d; load: %d churn workers, %d bulk, %d stalled, %d udp clients\n",
		c.Duration, c.Seed, c.Conns, c.Bulk, c.Stalled, c.UDP)
	s.logf("link: Ethernet pipe, MTU 1500; each way: loss %.2g%%, reorder %.2g%% (3 ms), delay %v, duplicate 0.1%%, corrupt 0.05%%\n",
		c.Loss*100, c.Reorder*100, c.Delay)
	s.logf("stacks: tunnel preset with PbufPoolSize %d (%s), MemSize %s, TCPMSL %v, IPReassMaxAge %v; TCPWnd %d..%d, TCPSndBuf %d..%d\n",
		o.PbufPoolSize, mib(uint64(o.PbufPoolSize*o.PbufPoolBufSize)), mib(uint64(o.MemSize)), o.TCPMSL, o.IPReassMaxAge,
		o.TCPWnd, o.TCPMaxWnd, o.TCPSndBuf, o.TCPMaxSndBuf)
}

// poolLine is the pool use of a side in one line.
func (sd *side) poolLine() string {
	snap := sd.s.Stats()
	used := func(name string) string {
		p, _ := snap.Pool(name)
		return fmt.Sprintf("%d/%d", p.Used, p.Avail)
	}
	return fmt.Sprintf("%s pool %s heap %s/%s pcb %s seg %s", sd.name, used("PBUF_POOL"),
		mib(uint64(snap.Heap.Used)), mib(uint64(snap.Heap.Avail)), used("TCP_PCB"), used("TCP_SEG"))
}

// printStats prints both stacks' counters (lwIP's stats_display) and the link's.
func (s *soak) printStats(snaps [2]stats.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, name := range []string{"A", "B"} {
		fmt.Fprintf(s.cfg.Out, "\n--- stack %s counters ---\n", name)
		snaps[i].WriteTable(s.cfg.Out)
	}
	fmt.Fprintln(s.cfg.Out)
}

// dumpStats prints both stacks' live counters, at most maxStatDumps times a run.
func (s *soak) dumpStats(why string) {
	if s.dumps.Add(1) > maxStatDumps {
		return
	}
	s.logf("--- counters at failure: %s ---\n", why)
	s.printStats([2]stats.Snapshot{s.a.s.Stats(), s.b.s.Stats()})
	s.printConns()
}

// printConns prints, for both stacks, every connection that holds or waits for something
// (data unacknowledged, unsent or unread, a window under a segment): the state a hang
// leaves.
func (s *soak) printConns() {
	for _, sd := range []*side{s.a, s.b} {
		var lines []string
		sd.s.Lock()
		sd.s.TCP().Conns(func(i tcp.Info) {
			if i.Unacked > 0 || i.Unsent > 0 || i.RcvUnread > 0 || i.State == tcp.StateEstablished && (i.SndWnd < i.MSS || i.RcvWnd < i.MSS) {
				lines = append(lines, i.String())
			}
		})
		sd.s.Unlock()
		s.mu.Lock()
		fmt.Fprintf(s.cfg.Out, "--- stack %s: %d connections holding or waiting ---\n", sd.name, len(lines))
		for _, l := range lines {
			fmt.Fprintln(s.cfg.Out, l)
		}
		s.mu.Unlock()
	}
}

func impairLine(c impair.Counters) string {
	return fmt.Sprintf("%d frames, %d lost, %d reordered, %d duplicated, %d corrupted, %d dropped (queue full)",
		c.Frames, c.Lost, c.Reordered, c.Duplicated, c.Corrupted, c.QueueDropped)
}

// failures collects what went wrong, by kind.
type failures struct {
	mu    sync.Mutex
	kinds map[string]int
	msgs  []string // the first few of each kind
}

func (f *failures) add(kind, msg string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.kinds == nil {
		f.kinds = make(map[string]int)
	}
	f.kinds[kind]++
	if f.kinds[kind] <= maxKept {
		f.msgs = append(f.msgs, kind+": "+msg)
	}
	n := 0
	for _, v := range f.kinds {
		n += v
	}
	return n
}

// summary returns "kind N, kind N" and the total.
func (f *failures) summary() (string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var parts []string
	n := 0
	for k, v := range f.kinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
		n += v
	}
	slices.Sort(parts)
	return strings.Join(parts, ", "), n
}

func (f *failures) first() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.msgs)
}

// fail records a failure and prints it (all of them with -v, the first maxPrinted without).
func (s *soak) fail(kind, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	n := s.fails.add(kind, msg)
	if s.cfg.Verbose || n <= maxPrinted {
		s.logf("%7s FAIL %s: %s\n", s.since(), kind, msg)
	}
	if strings.Contains(kind, "hang") && s.hangDumped.CompareAndSwap(false, true) {
		// The first hang: what both stacks hold while the hung connection still exists.
		s.printConns()
	}
}

// logf prints one report line; safe for concurrent use.
func (s *soak) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.cfg.Out, format, args...)
}

// since is the time since the load started, for log lines.
func (s *soak) since() string {
	if s.start.IsZero() {
		return "-"
	}
	return time.Since(s.start).Round(time.Second).String()
}

// acceptLoop accepts connections on l (sd's listener for what) until it closes, and runs
// handle on each in its own goroutine (counted in s.handlers; handle calls Done).
func (s *soak) acceptLoop(sd *side, l *endpoint.TCPListener, what string, handle func(*side, *endpoint.TCPConn)) {
	defer s.servers.Done()
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			if !s.stopped() {
				s.fail("accept", "%s %s listener: %v", sd.name, what, err)
			}
			return
		}
		s.handlers.Add(1)
		go handle(sd, c)
	}
}

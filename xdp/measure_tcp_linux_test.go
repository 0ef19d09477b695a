//go:build linux

package xdp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/stack"
)

// TestMeasureTCP measures TCP bulk transfers between the kernel and a wisp stack on the
// link over the veth, in both directions, with Q queues and Q stack cores, S streams. Only
// with WISP_XDP_MEASURE=1. It prints, per case, the median rate over the repetitions, the
// test process's CPU (user and system: the kernel's sender, veth, XDP and the kernel's
// receiver mostly run in this process's threads too, in softirq after a write or a kick)
// and the machine's (/proc/stat: user, system, softirq, idle), per GB moved.
//
// Knobs (environment):
//
//	WISP_XDP_CASES  dir/queues/streams,... (default in/1/1,out/1/1,in/2/4,out/2/4); dir is
//	                in (kernel→wisp), out (wisp→kernel) or kk (kernel→kernel, the reference)
//	WISP_XDP_REPS   repetitions, cases interleaved (default 3)
//	WISP_XDP_MB     MiB per transfer (default 512)
//	WISP_XDP_PROF   directory: one pprof CPU profile per case (all repetitions of the case)
//	WISP_XDP_PERF   directory: perf record -g of this process, one file per case and rep
//	WISP_XDP_MODE   driver or generic (default auto)
//	WISP_XDP_BUSY   1: Config.BusyPoll
//	WISP_XDP_RXZC   1: Config.RxZeroCopy
//	WISP_XDP_BATCH, WISP_XDP_RING, WISP_XDP_FRAMES: Config.Batch, RingSize, Rx/TxFrames
//	WISP_XDP_GSO    GSOMax offered to the stack (default 65535; 0: MTU-sized segments)
//	WISP_XDP_AB     a knob of knobs below: every case runs with it off and on, interleaved
func TestMeasureTCP(t *testing.T) {
	if os.Getenv("WISP_XDP_MEASURE") != "1" {
		t.Skip("set WISP_XDP_MEASURE=1 to measure")
	}
	needKernel(t)
	cases := parseCases(t, envOr("WISP_XDP_CASES", "in/1/1,out/1/1,in/2/4,out/2/4"))
	if ab := os.Getenv("WISP_XDP_AB"); ab != "" {
		if knobs[ab] == nil {
			t.Fatalf("no knob %q", ab)
		}
		var both []bulkCase
		for _, c := range cases {
			off, on := c, c
			on.knob = ab
			both = append(both, off, on)
		}
		cases = both
	}
	reps := envInt("WISP_XDP_REPS", 3)
	total := int64(envInt("WISP_XDP_MB", 512)) << 20
	defer func(v int) { gsoMax = v }(gsoMax)
	gsoMax = envInt("WISP_XDP_GSO", 65535)
	c := Config{
		BusyPoll: os.Getenv("WISP_XDP_BUSY") == "1", RxZeroCopy: os.Getenv("WISP_XDP_RXZC") == "1",
		Batch: envInt("WISP_XDP_BATCH", 0), RingSize: envInt("WISP_XDP_RING", 0),
		RxFrames: envInt("WISP_XDP_FRAMES", 0), TxFrames: envInt("WISP_XDP_FRAMES", 0),
	}
	switch os.Getenv("WISP_XDP_MODE") {
	case "driver":
		c.Mode = AttachDriver
	case "generic":
		c.Mode = AttachGeneric
	}
	results := make([][]bulkResult, len(cases))
	profs := make([]*bytesFile, len(cases))
	for rep := range reps {
		for i, bc := range cases {
			bc.cfg, bc.total = c, total
			if d := os.Getenv("WISP_XDP_PERF"); d != "" {
				bc.perf = filepath.Join(d, fmt.Sprintf("%s-%d.perf", bc.name(), rep))
			}
			if d := os.Getenv("WISP_XDP_PROF"); d != "" {
				if profs[i] == nil {
					profs[i] = &bytesFile{path: filepath.Join(d, bc.name()+".pprof")}
				}
				bc.prof = profs[i]
			}
			r := measureBulk(t, bc)
			results[i] = append(results[i], r)
			t.Logf("rep %d %-22s %s", rep, bc.name(), r)
		}
	}
	for _, pf := range profs {
		if pf != nil {
			pf.write(t)
		}
	}
	t.Logf("load: %s", loadavg())
	for i, bc := range cases {
		rs := results[i]
		slices.SortFunc(rs, func(a, b bulkResult) int { return int(a.mbps - b.mbps) })
		t.Logf("median %-22s %s   (all: %s)", bc.name(), rs[len(rs)/2], mbpsList(rs))
	}
}

type bulkCase struct {
	toWisp          bool
	kernel          bool // the reference: kernel to kernel over the same veth, the program attached
	queues, streams int
	cfg             Config
	total           int64
	perf            string
	prof            *bytesFile
	knob            string // a key of knobs, set for this case
	kgro            bool
}

// knobs are the A/B switches of WISP_XDP_AB: each sets one and returns its undo.
var knobs = map[string]func(*bulkCase) func(){
	"synckick":  func(*bulkCase) func() { asyncKick = false; return func() { asyncKick = true } },
	"asynckick": func(*bulkCase) func() { asyncKick = true; return func() { asyncKick = false } },
	"generic":   func(b *bulkCase) func() { b.cfg.Mode = AttachGeneric; return func() {} },
	"busypoll":  func(b *bulkCase) func() { b.cfg.BusyPoll = true; return func() {} },
	"rxzc":      func(b *bulkCase) func() { b.cfg.RxZeroCopy = true; return func() {} },
	"batch256":  func(b *bulkCase) func() { b.cfg.Batch = 256; return func() {} },
	// kgro turns GRO on at the kernel's end of the veth (NAPI and GRO on its receive).
	"kgro": func(b *bulkCase) func() { b.kgro = true; return func() {} },
}

func (b bulkCase) name() string {
	d := "out"
	if b.toWisp {
		d = "in"
	}
	if b.kernel {
		d = "kk"
	}
	n := fmt.Sprintf("%s-q%d-s%d", d, b.queues, b.streams)
	if b.knob != "" {
		n += "+" + b.knob
	}
	return n
}

func parseCases(t *testing.T, s string) []bulkCase {
	var cs []bulkCase
	for _, f := range strings.Split(s, ",") {
		p := strings.Split(f, "/")
		if len(p) != 3 || p[0] != "in" && p[0] != "out" && p[0] != "kk" {
			t.Fatalf("bad case %q: want dir/queues/streams", f)
		}
		q, _ := strconv.Atoi(p[1])
		n, _ := strconv.Atoi(p[2])
		cs = append(cs, bulkCase{toWisp: p[0] == "in", kernel: p[0] == "kk", queues: max(q, 1), streams: max(n, 1)})
	}
	return cs
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

type bulkResult struct {
	mbps             float64
	procUser, procSy float64 // CPU seconds of this process per GB
	sys              cpuTimes
	kicks, txPkts    uint64
	rxPkts, rxBatch  uint64
}

func (r bulkResult) String() string {
	s := r.sys
	tot := s.total()
	pct := func(v float64) float64 { return 100 * v / tot }
	return fmt.Sprintf("%6.0f Mbit/s  proc %.2f+%.2f s/GB (user+sys)  machine user %2.0f%% sys %2.0f%% softirq %2.0f%% idle %2.0f%%  tx %.1f frames/kick, rx %.1f frames/batch",
		r.mbps, r.procUser, r.procSy, pct(s.user), pct(s.sys), pct(s.softirq), pct(s.idle),
		float64(r.txPkts)/float64(max(r.kicks, 1)), float64(r.rxPkts)/float64(max(r.rxBatch, 1)))
}

func mbpsList(rs []bulkResult) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%.0f ", r.mbps)
	}
	return b.String()
}

// cpuTimes is the first line of /proc/stat, in ticks.
type cpuTimes struct{ user, sys, softirq, irq, idle, other float64 }

func (c cpuTimes) total() float64 { return c.user + c.sys + c.softirq + c.irq + c.idle + c.other }

func readCPU() cpuTimes {
	b, _ := os.ReadFile("/proc/stat")
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	v := func(i int) float64 {
		if i >= len(f) {
			return 0
		}
		x, _ := strconv.ParseFloat(f[i], 64)
		return x
	}
	// cpu user nice system idle iowait irq softirq steal
	return cpuTimes{user: v(1) + v(2), sys: v(3), idle: v(4) + v(5), irq: v(6), softirq: v(7), other: v(8)}
}

func (c cpuTimes) sub(d cpuTimes) cpuTimes {
	return cpuTimes{c.user - d.user, c.sys - d.sys, c.softirq - d.softirq, c.irq - d.irq, c.idle - d.idle, c.other - d.other}
}

// procCPU returns this process's user and system CPU seconds.
func procCPU() (user, sys float64) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()).Seconds(), time.Duration(ru.Stime.Nano()).Seconds()
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// bytesFile accumulates one case's CPU profile over its repetitions (pprof merges them).
type bytesFile struct {
	path  string
	parts [][]byte
}

type bufW struct{ b []byte }

func (w *bufW) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func (f *bytesFile) write(t *testing.T) {
	for i, p := range f.parts {
		path := strings.TrimSuffix(f.path, ".pprof") + fmt.Sprintf("-%d.pprof", i)
		if err := os.WriteFile(path, p, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// measureBulk moves bc.total bytes over bc.streams connections and reports the rate.
func measureBulk(t *testing.T, bc bulkCase) bulkResult {
	if bc.knob != "" {
		defer knobs[bc.knob](&bc)()
	}
	p := newPair(t, bc.queues)
	if bc.kgro {
		run(t, "ip", "netns", "exec", p.nsK, "ethtool", "-K", ifK, "gro", "on")
	}
	s, err := stack.New(stack.Config{Cores: bc.queues})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		s.Close()
		if in := s.Stats(); len(in.PoolsInUse()) > 0 {
			t.Errorf("pools in use after Close: %+v", in.PoolsInUse())
		}
	}()
	c := bc.cfg
	c.Queues = bc.queues
	if c.RxZeroCopy {
		c.Alloc = s.Allocator()
	}
	l := openIn(t, p, c)
	if _, err := s.AddNetif(l, stack.NetifConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/24")}}); err != nil {
		l.Close()
		t.Fatal(err)
	}
	p.neigh(t)
	per := bc.total / int64(bc.streams)
	got := make(chan int64, bc.streams)
	sink := func(c io.ReadCloser) {
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}
	var senders []func() error
	if bc.kernel {
		// The kernel of the link's namespace receives on an address of its own, which the
		// program passes: the same veth, the same XDP hook (and GSO cleared on the peer).
		run(t, "ip", "-n", p.nsX, "addr", "add", "198.18.0.3/24", "dev", ifX)
		var ln net.Listener
		if err := inNetns(p.nsX, func() error {
			var err error
			ln, err = net.Listen("tcp4", "198.18.0.3:5003")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for range bc.streams {
				c, err := ln.Accept()
				if err != nil {
					got <- -1
					return
				}
				go sink(c)
			}
		}()
		for range bc.streams {
			var kc net.Conn
			if err := inNetns(p.nsK, func() error {
				var err error
				kc, err = net.DialTimeout("tcp4", "198.18.0.3:5003", 5*time.Second)
				return err
			}); err != nil {
				t.Fatalf("dial: %v", err)
			}
			senders = append(senders, func() error {
				defer kc.Close()
				kc.SetWriteDeadline(time.Now().Add(60 * time.Second))
				_, err := io.CopyN(kc, zeroReader{}, per)
				return err
			})
		}
	} else if bc.toWisp {
		ln, err := netconn.ListenTCP(s, netip.MustParseAddrPort("198.18.0.2:5002"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for range bc.streams {
				c, err := ln.Accept()
				if err != nil {
					got <- -1
					return
				}
				go sink(c)
			}
		}()
		for range bc.streams {
			var kc net.Conn
			if err := inNetns(p.nsK, func() error {
				var err error
				kc, err = net.DialTimeout("tcp4", "198.18.0.2:5002", 5*time.Second)
				return err
			}); err != nil {
				t.Fatalf("dial: %v; link %+v", err, l.DeviceStats(nil))
			}
			senders = append(senders, func() error {
				defer kc.Close()
				kc.SetWriteDeadline(time.Now().Add(60 * time.Second))
				_, err := io.CopyN(kc, zeroReader{}, per)
				return err
			})
		}
	} else {
		var ln net.Listener
		if err := inNetns(p.nsK, func() error {
			var err error
			ln, err = net.Listen("tcp4", "198.18.0.1:5001")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for range bc.streams {
				c, err := ln.Accept()
				if err != nil {
					got <- -1
					return
				}
				go sink(c)
			}
		}()
		for range bc.streams {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := netconn.DialTCP(ctx, s, netip.AddrPort{}, netip.MustParseAddrPort("198.18.0.1:5001"), nil)
			cancel()
			if err != nil {
				t.Fatalf("dial: %v; link %+v", err, l.DeviceStats(nil))
			}
			senders = append(senders, func() error {
				defer c.Close()
				buf := make([]byte, 256<<10)
				c.SetWriteDeadline(time.Now().Add(60 * time.Second))
				for sent := int64(0); sent < per; {
					n, err := c.Write(buf[:min(int64(len(buf)), per-sent)])
					sent += int64(n)
					if err != nil {
						return fmt.Errorf("write after %d bytes: %w", sent, err)
					}
				}
				return nil
			})
		}
	}
	var perf *exec.Cmd
	if bc.perf != "" {
		perf = exec.Command("perf", "record", "-g", "-q", "-o", bc.perf, "-p", strconv.Itoa(os.Getpid()))
		if err := perf.Start(); err != nil {
			t.Fatalf("perf: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	var prof bufW
	if bc.prof != nil {
		pprof.StartCPUProfile(&prof)
	}
	before := l.DeviceStats(nil)
	rb := [2]uint64{}
	for _, q := range l.queues {
		rb[0] += q.rxBatches.Load()
	}
	u0, s0 := procCPU()
	c0 := readCPU()
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, len(senders))
	for _, f := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errc <- err
			}
		}()
	}
	var n int64
	for range bc.streams {
		select {
		case k := <-got:
			n += k
		case err := <-errc:
			t.Fatalf("sender: %v; link %+v", err, l.DeviceStats(nil))
		case <-time.After(90 * time.Second):
			t.Fatalf("receiver stuck after %d bytes; link %+v", n, l.DeviceStats(nil))
		}
	}
	el := time.Since(start)
	wg.Wait()
	u1, s1 := procCPU()
	c1 := readCPU()
	if bc.prof != nil {
		pprof.StopCPUProfile()
		bc.prof.parts = append(bc.prof.parts, prof.b)
	}
	if perf != nil {
		perf.Process.Signal(os.Interrupt)
		perf.Wait()
	}
	if n != per*int64(bc.streams) {
		t.Fatalf("received %d of %d bytes", n, per*int64(bc.streams))
	}
	after := l.DeviceStats(nil)
	for _, q := range l.queues {
		rb[1] += q.rxBatches.Load()
	}
	gb := float64(n) / 1e9
	r := bulkResult{
		mbps:     float64(n) * 8 / el.Seconds() / 1e6,
		procUser: (u1 - u0) / gb, procSy: (s1 - s0) / gb,
		sys:     c1.sub(c0),
		rxBatch: rb[1] - rb[0],
	}
	for i := range after {
		r.kicks += after[i].TxKicks - before[i].TxKicks
		r.txPkts += after[i].TxPackets - before[i].TxPackets
		r.rxPkts += after[i].RxPackets - before[i].RxPackets
	}
	if testing.Verbose() {
		t.Logf("link %+v", after)
	}
	return r
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

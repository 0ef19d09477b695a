package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sample is what the harness reads before and after a measured interval.
type sample struct {
	at      time.Time
	cpu     time.Duration // user + system time of the whole process (getrusage RUSAGE_SELF)
	mallocs uint64
	numGC   uint32
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func takeSample() sample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return sample{at: time.Now(), cpu: cpuTime(), mallocs: ms.Mallocs, numGC: ms.NumGC}
}

// settledHeap collects garbage until the live heap stops shrinking and returns it: the
// bytes the program holds (the wisp stacks' preallocated arenas included).
func settledHeap() uint64 {
	var ms runtime.MemStats
	var last uint64
	for i := 0; i < 5; i++ {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		if i > 0 && ms.HeapAlloc >= last {
			break
		}
		last = ms.HeapAlloc
	}
	return ms.HeapAlloc
}

// quiesce returns the process to a clean state between engines: no garbage, memory handed
// back, goroutines of the previous run given time to exit.
func quiesce() {
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(50 * time.Millisecond)
}

// waitGoroutines waits until at most n goroutines run (or a second passes) and returns the
// number.
func waitGoroutines(n int) int {
	deadline := time.Now().Add(time.Second)
	for {
		g := runtime.NumGoroutine()
		if g <= n || time.Now().After(deadline) {
			return g
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hostSample is what the whole machine did, to tell how much of it other work took: other
// processes, and the hypervisor's steal time (the CPU given to other guests).
type hostSample struct {
	at     time.Time
	busy   uint64 // jiffies of every CPU not idle, steal included (/proc/stat)
	kernel uint64 // jiffies of the ksoftirqd threads: packet work done for us
	// softirq jiffies: packet work the kernel did for us on return from our own system
	// calls (a veth's NAPI with XDP), not in our rusage with IRQ time accounting.
	softirq uint64
	ours    time.Duration // this process's CPU time
}

// jiffy is USER_HZ, the unit of /proc/stat (100 on every Linux architecture Go supports).
const jiffy = 10 * time.Millisecond

func takeHost() hostSample {
	h := hostSample{at: time.Now(), ours: cpuTime()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		// cpu user nice system idle iowait irq softirq steal ...
		for i, v := range f[1:] {
			if i == 3 || i == 4 || i > 7 { // idle, iowait, guest
				continue
			}
			n, _ := strconv.ParseUint(v, 10, 64)
			h.busy += n
			if i == 6 {
				h.softirq = n
			}
		}
	}
	h.kernel = ksoftirqdJiffies()
	return h
}

// ksoftirqdJiffies sums the CPU time of the ksoftirqd threads (veth and softirq work the
// kernel engine causes is done there in part).
func ksoftirqdJiffies() uint64 {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total uint64
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil || !strings.Contains(string(b), "(ksoftirqd/") {
			continue
		}
		// pid (comm) state ppid ... utime is field 14, stime 15 (1-based).
		_, rest, ok := strings.Cut(string(b), ") ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) > 12 {
			u, _ := strconv.ParseUint(f[11], 10, 64)
			s, _ := strconv.ParseUint(f[12], 10, 64)
			total += u + s
		}
	}
	return total
}

// foreignShare is the share of the machine's CPU (0..1) that work other than this run took
// between a and b: other processes and the hypervisor's steal.
func foreignShare(a, b hostSample) float64 {
	wall := b.at.Sub(a.at)
	if wall <= 0 || b.busy < a.busy {
		return 0
	}
	busy := time.Duration(b.busy-a.busy) * jiffy
	ours := b.ours - a.ours + time.Duration(b.kernel-a.kernel+b.softirq-a.softirq)*jiffy
	other := busy - ours
	if other < 0 {
		return 0
	}
	return other.Seconds() / (wall.Seconds() * float64(runtime.NumCPU()))
}

package doctor_test

import (
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/apps/doctor"
	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/impair"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/stats"
)

// options are the tunnel preset without IPv6 autoconfiguration (no DAD to wait for).
func options() opt.Options {
	o := opt.Tunnel()
	o.IPv6AutoConfig = false
	o.IPv6DupAddrDetectTransmits = 0
	return o
}

// delayed returns a PairConfig whose link delays each direction by half of rtt.
func delayed(o opt.Options, rtt time.Duration) stacktest.PairConfig {
	return stacktest.PairConfig{Options: o, WrapA: func(a *stack.Stack, ep link.Endpoint) link.Endpoint {
		return impair.New(ep, clock.Real, impair.Config{TX: impair.Dir{Delay: rtt / 2}, RX: impair.Dir{Delay: rtt / 2}, Alloc: a.Allocator()})
	}}
}

// stream runs a bulk transfer from p.A to p.B (a writer that never stops, a reader that
// reads everything) until the returned function is called.
func stream(t *testing.T, p *stacktest.Pair) (stop func()) {
	t.Helper()
	server := netip.AddrPortFrom(stacktest.AddrB[0], 5001)
	ln, err := netconn.ListenTCP(p.B, server, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Ev.Close(ln)
	w, r := stacktest.Connect(t, p.Ev, 30*time.Second,
		func() (*netconn.TCPConn, error) {
			return netconn.DialTCP(context.Background(), p.A, netip.AddrPort{}, server, nil)
		}, ln.Accept)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 16<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(io.Discard, r)
	}()
	return func() {
		_ = w.Close()
		_ = r.Close()
		wg.Wait()
	}
}

// find returns the findings that name option, failing the test (and printing them all)
// when there is none.
func find(t *testing.T, who string, fs []doctor.Finding, option string) doctor.Finding {
	t.Helper()
	for _, f := range fs {
		if f.Option == option {
			t.Logf("%s: %v", who, f)
			return f
		}
	}
	t.Fatalf("%s: no finding names %s; findings:\n%s", who, option, list(fs))
	return doctor.Finding{}
}

func list(fs []doctor.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

// A healthy stack after a normal transfer has nothing to say.
func TestHealthy(t *testing.T) {
	p := stacktest.NewPair(t, stacktest.PairConfig{Options: options()})
	prevA, prevB := p.A.DoctorInput(), p.B.DoctorInput()
	server := netip.AddrPortFrom(stacktest.AddrB[0], 5001)
	ln, err := netconn.ListenTCP(p.B, server, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Ev.Close(ln)
	w, r := stacktest.Connect(t, p.Ev, 10*time.Second,
		func() (*netconn.TCPConn, error) {
			return netconn.DialTCP(context.Background(), p.A, netip.AddrPort{}, server, nil)
		}, ln.Accept)
	stacktest.Transfer(t, w, r, 8<<20, 1, 10*time.Second)
	curA, curB := p.A.DoctorInput(), p.B.DoctorInput()
	if fs := doctor.Diagnose(&prevA, &curA); len(fs) != 0 {
		t.Errorf("A after a transfer:\n%s", list(fs))
	}
	if fs := doctor.Diagnose(&prevB, &curB); len(fs) != 0 {
		t.Errorf("B after a transfer:\n%s", list(fs))
	}
	if fs := doctor.Diagnose(nil, &curA); len(fs) != 0 {
		t.Errorf("A since its start:\n%s", list(fs))
	}
	if fs := p.B.Diagnose(); len(fs) != 0 {
		t.Errorf("B.Diagnose:\n%s", list(fs))
	}
}

// Connections closed first by A leave their PCBs in TIME-WAIT: a small TCP_PCB pool fills
// with them, and the doctor says TCPMSL.
func TestPCBExhaustionByTimeWait(t *testing.T) {
	o := options()
	o.MempNumTCPPCB = 8
	p := stacktest.NewPair(t, stacktest.PairConfig{Options: o})
	server := netip.AddrPortFrom(stacktest.AddrB[0], 80)
	ln, err := netconn.ListenTCP(p.B, server, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Ev.Close(ln)
	go func() { // B reads to EOF and closes: A closed first and keeps the TIME-WAIT
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, _ = io.Copy(io.Discard, c)
				_ = c.Close()
			}()
		}
	}()
	prev := p.A.DoctorInput()
	for i := range 12 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := netconn.DialTCP(ctx, p.A, netip.AddrPort{}, server, nil)
		cancel()
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		_ = c.Close()
		deadline := time.Now().Add(10 * time.Second)
		for !inTimeWait(p.A, i+1) {
			if time.Now().After(deadline) {
				t.Fatalf("connection %d did not reach TIME-WAIT: %v", i, p.A.Conns())
			}
			time.Sleep(time.Millisecond)
		}
	}
	cur := p.A.DoctorInput()
	f := find(t, "A", doctor.Diagnose(&prev, &cur), "TCPMSL")
	if f.Value != "7s" { // 30 s × 8 PCBs / (4 × 8 in TIME-WAIT), whole seconds
		t.Errorf("TCPMSL value %q, want 7s", f.Value)
	}
}

// inTimeWait reports whether s has min(n, 8) connections in TIME-WAIT (the pool holds 8).
func inTimeWait(s *stack.Stack, n int) bool {
	tw := 0
	for _, c := range s.Conns() {
		if c.State == "TIME-WAIT" {
			tw++
		}
	}
	return tw >= min(n, 8)
}

// A flood of datagrams to a socket nobody reads fills B's small pbuf pool: later frames
// find no POOL pbuf and the doctor says PbufPoolSize.
func TestPbufPoolStarvation(t *testing.T) {
	o := options()
	o.PbufPoolSize = 64
	o.MempNumPbuf = 64
	p := stacktest.NewPair(t, stacktest.PairConfig{Options: o})
	dst := netip.AddrPortFrom(stacktest.AddrB[0], 7000)
	sink, err := netconn.ListenUDP(p.B, dst, nil) // never read: its mailbox holds the pbufs
	if err != nil {
		t.Fatal(err)
	}
	p.Ev.Close(sink)
	src, err := netconn.DialUDP(p.A, netip.AddrPort{}, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Ev.Close(src)
	prev := p.B.DoctorInput()
	msg := make([]byte, 1000)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 1000; i++ { // bounded flood
		_, _ = src.Write(msg)
		if i%50 == 49 {
			if s := p.B.Stats(); s.Link.Memerr > 0 {
				break
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(t, func() bool { return p.B.Stats().Link.Memerr > 0 }, "B dropped no frame for want of pbufs")
	cur := p.B.DoctorInput()
	f := find(t, "B", doctor.Diagnose(&prev, &cur), "PbufPoolSize")
	drops := cur.Stats.Link.Memerr - prev.Stats.Link.Memerr
	if v, _ := strconv.Atoi(f.Value); uint64(v) < max(2*64, 64+drops) {
		t.Errorf("PbufPoolSize value %q, want at least the pool and the %d drops", f.Value, drops)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A window of 2 × MSS over a 50 ms round trip holds a bulk transfer to window / RTT: the
// receiver is told TCPMaxWnd, the sender that the peer's window limits it.
func TestWindowLimited(t *testing.T) {
	o := options()
	o.TCPWnd, o.TCPMaxWnd = 2*1460, 2*1460
	p := stacktest.NewPair(t, delayed(o, 50*time.Millisecond))
	stop := stream(t, p)
	defer stop()
	time.Sleep(300 * time.Millisecond) // past slow start
	var fa, fb []doctor.Finding
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); fa = p.A.Diagnose() }()
	go func() { defer wg.Done(); fb = p.B.Diagnose() }()
	wg.Wait()
	find(t, "A (sender)", fa, "TCPMaxWnd (the peer's)")
	f := find(t, "B (receiver)", fb, "TCPMaxWnd")
	if f.Value != "65536" { // 4 × 2920 rounded up to a power of two, at least 64 KiB
		t.Errorf("TCPMaxWnd value %q, want 65536", f.Value)
	}
}

// A writer into a send buffer of 3 × MSS over a 50 ms round trip sends one buffer per
// round trip while the windows allow more: TCPSndBuf.
func TestSmallSendBuffer(t *testing.T) {
	o := options()
	o.TCPSndBuf, o.TCPMaxSndBuf = 3*1460, 3*1460
	p := stacktest.NewPair(t, delayed(o, 50*time.Millisecond))
	stop := stream(t, p)
	defer stop()
	time.Sleep(300 * time.Millisecond)
	f := find(t, "A (sender)", p.A.Diagnose(), "TCPSndBuf")
	// Twice what the windows let fly (cwnd, the peer's window much larger), by 1 KiB.
	if v, _ := strconv.Atoi(f.Value); v < 2*4380 || v%1024 != 0 {
		t.Errorf("TCPSndBuf value %q: want at least twice the buffer it has, in KiB", f.Value)
	}
}

// The core held for a second while a timer is due: the wakeup runs a second late, and the
// doctor says the core was held.
func TestCoreHeld(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	s, err := stack.New(stack.Config{Options: options()})
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, s)
	prev := s.DoctorInput()
	ran := make(chan struct{})
	var tm clock.Timeout
	tm.Init(func() { close(ran) })
	s.Lock()
	s.Timers().Schedule(&tm, 10*time.Millisecond)
	time.Sleep(time.Second)
	s.Unlock()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("the timer never ran")
	}
	cur := s.DoctorInput()
	if cur.Stats.TimerLate != 1 || cur.Stats.TimerMaxLate < 900*time.Millisecond {
		t.Errorf("TimerLate %d, TimerMaxLate %v after a second held", cur.Stats.TimerLate, cur.Stats.TimerMaxLate)
	}
	find(t, "held core", doctor.Diagnose(&prev, &cur), "Cores")
	if stats.LateTimer != clock.LateWakeup {
		t.Errorf("stats.LateTimer %v != clock.LateWakeup %v", stats.LateTimer, clock.LateWakeup)
	}
}

// DNS names that fail with one server configured: DNSMaxServers and a second server. The
// resolver's counters are filled by hand (the resolver is another package's).
func TestDNSOneServer(t *testing.T) {
	s, err := stack.New(stack.Config{Options: options()})
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, s)
	prev := s.DoctorInput()
	cur := s.DoctorInput()
	cur.Stats.DNS = stats.DNS{Queries: 12, Retries: 9, Failures: 3, Servers: 1}
	f := find(t, "one server", doctor.Diagnose(&prev, &cur), "DNSMaxServers")
	if !strings.Contains(f.Value, "second server") {
		t.Errorf("value %q: DNSMaxServers is already 2, the advice is a second server", f.Value)
	}
	cur.Options.DNSMaxServers = 1
	if f := find(t, "one server allowed", doctor.Diagnose(&prev, &cur), "DNSMaxServers"); f.Value != "2" {
		t.Errorf("value %q, want 2", f.Value)
	}
	cur.Stats.DNS.Servers = 2
	if fs := doctor.Diagnose(&prev, &cur); len(fs) != 0 {
		t.Errorf("failures with two servers are the servers', not a setting:\n%s", list(fs))
	}
}

// An Input survives JSON: options, counters (durations included), connections.
func TestInputJSON(t *testing.T) {
	p := stacktest.NewPair(t, stacktest.PairConfig{Options: options()})
	stop := stream(t, p)
	time.Sleep(100 * time.Millisecond)
	in := p.A.DoctorInput()
	stop()
	in.Stats.TimerMaxLate = 1234567 * time.Nanosecond
	in.Stats.DNS = stats.DNS{Queries: 1, Servers: 2}
	in.Stats.Devices = append(in.Stats.Devices, stats.Device{Name: "x0"})
	if len(in.Conns) == 0 || in.Conns[0].RTT == 0 {
		t.Fatalf("no connection with an RTT to round-trip: %v", in.Conns)
	}
	b, err := json.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out doctor.Input
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !out.At.Equal(in.At) {
		t.Errorf("At %v, want %v", out.At, in.At)
	}
	out.At = in.At
	if !reflect.DeepEqual(out, in) {
		t.Errorf("the round trip changed the input:\n%s\nwant\n%+v\ngot\n%+v", b, in, out)
	}
	var bad doctor.Input
	if err := json.Unmarshal([]byte(`{"Cores":"x"}`), &bad); err == nil {
		t.Error("a malformed input unmarshalled")
	}
}

// A link that loses 15% of A's segments: the doctor sees a retransmission storm.
func TestRetransmissionStorm(t *testing.T) {
	o := options()
	p := stacktest.NewPair(t, stacktest.PairConfig{Options: o, WrapA: func(a *stack.Stack, ep link.Endpoint) link.Endpoint {
		return impair.New(ep, clock.Real, impair.Config{TX: impair.Dir{Seed: 7, Loss: 0.15, Delay: 5 * time.Millisecond}, RX: impair.Dir{Delay: 5 * time.Millisecond}, Alloc: a.Allocator()})
	}})
	stop := stream(t, p)
	defer stop()
	fs := p.A.Diagnose()
	for _, f := range fs {
		if strings.HasPrefix(f.Title, "retransmission storm") {
			t.Logf("A: %v", f)
			return
		}
	}
	t.Fatalf("no retransmission storm found at 15%% loss:\n%s", list(fs))
}

// A listener whose application does not accept: established connections overflow its
// accept mailbox, and the doctor says AcceptMboxSize.
func TestAcceptMailboxOverflow(t *testing.T) {
	o := options()
	o.AcceptMboxSize = 1
	p := stacktest.NewPair(t, stacktest.PairConfig{Options: o})
	server := netip.AddrPortFrom(stacktest.AddrB[0], 80)
	ln, err := netconn.ListenTCP(p.B, server, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Ev.Close(ln)
	prev := p.B.DoctorInput()
	for range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if c, err := netconn.DialTCP(ctx, p.A, netip.AddrPort{}, server, nil); err == nil {
			p.Ev.Close(c)
		}
		cancel()
	}
	waitFor(t, func() bool {
		s := p.B.Stats()
		return s.TCPExt.AcceptOverflows+s.TCPExt.ListenOverflows > 0
	}, "no overflow counted")
	cur := p.B.DoctorInput()
	fs := doctor.Diagnose(&prev, &cur)
	for _, f := range fs {
		if f.Option == "AcceptMboxSize" || f.Option == "TCPListenBacklog" {
			t.Logf("B: %v", f)
			return
		}
	}
	t.Fatalf("no mailbox finding:\n%s", list(fs))
}

// A writer on a stack whose heap is smaller than its send buffer: writes meet ERR_MEM,
// and the doctor says MemSize.
func TestHeapFull(t *testing.T) {
	o := options()
	o.MemSize = 64 << 10
	o.TCPSndBuf, o.TCPMaxSndBuf = 256<<10, 256<<10
	p := stacktest.NewPair(t, delayed(o, 20*time.Millisecond))
	prev := p.A.DoctorInput()
	stop := stream(t, p)
	defer stop()
	waitFor(t, func() bool { s := p.A.Stats(); return s.TCP.Memerr+s.Heap.Err > 0 }, "no ERR_MEM counted")
	cur := p.A.DoctorInput()
	find(t, "A", doctor.Diagnose(&prev, &cur), "MemSize")
}

// The rules that are hard to provoke on a live stack, on inputs made by hand: a heap that
// refuses while half free is fragmented; one that is full is too small.
func TestHeapRulesByHand(t *testing.T) {
	in := doctor.Input{At: time.Unix(100, 0), Cores: 1, Options: options()}
	in.Stats.Heap = stats.Heap{Avail: 1 << 20, Used: 1 << 18, Max: 1 << 19, Err: 5}
	fs := doctor.Diagnose(nil, &in)
	if f := find(t, "fragmented", fs, "MemSize"); !strings.Contains(f.Title, "fragmented") {
		t.Errorf("a heap that refused at half full: %v", f)
	}
	in.Stats.Heap.Max = 1<<20 - 128
	fs = doctor.Diagnose(nil, &in)
	if f := find(t, "full", fs, "MemSize"); strings.Contains(f.Title, "fragmented") || f.Value != strconv.Itoa(2<<20) {
		t.Errorf("a full heap: %v", f)
	}
	// Counters that did not move between two inputs say nothing.
	prev := in
	prev.At = in.At.Add(-time.Second)
	if fs := doctor.Diagnose(&prev, &in); len(fs) != 0 {
		t.Errorf("nothing happened between the inputs:\n%s", list(fs))
	}
}

// Connections refused for want of a PCB count in TCP's Memerr too: they are the PCB
// rule's, never a "heap is full" finding while the heap refused nothing.
func TestPCBRefusalsAreNotHeapErrors(t *testing.T) {
	o := opt.Embedded()
	in := doctor.Input{Cores: 1, Options: o}
	in.Stats.Heap = stats.Heap{Avail: o.MemSize, Used: 256, Max: 256}
	in.Stats.TCP.Memerr = 7
	in.Stats.TCPExt.PCBExhausted = 7
	in.Stats.Pools = []stats.Pool{{Name: "TCP_PCB", Avail: o.MempNumTCPPCB, Used: o.MempNumTCPPCB, Max: o.MempNumTCPPCB, Err: 7}}
	fs := doctor.Diagnose(nil, &in)
	for _, f := range fs {
		if f.Option == "MemSize" {
			t.Errorf("a heap finding from PCB refusals: %v", f)
		}
	}
	find(t, "PCB refusals", fs, "MempNumTCPPCB")
}

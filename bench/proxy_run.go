package main

// The proxy family's measurements (proxy.go has the network) and the targets they reach
// through the engine.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// proxySizes scales the family with the bench's sizes.
type proxySizes struct {
	iperfSec  int           // iperf3 -t
	rateConns int           // connections of the connection rate
	udpDur    time.Duration // the UDP echo run
	memConns  int           // open connections of the memory scenario
	refused   int           // connections to the refused port
	settle    time.Duration // before a resident-set reading
}

func proxySizesOf(sz sizes) proxySizes {
	switch sz.name {
	case "full":
		return proxySizes{iperfSec: 10, rateConns: 5000, udpDur: 5 * time.Second, memConns: 1000, refused: 2000, settle: time.Second}
	case "quick":
		return proxySizes{iperfSec: 2, rateConns: 500, udpDur: time.Second, memConns: 1000, refused: 500, settle: 500 * time.Millisecond}
	}
	return proxySizes{iperfSec: 1, rateConns: 60, udpDur: 300 * time.Millisecond, memConns: 50, refused: 100, settle: 200 * time.Millisecond}
}

const mib = 1 << 20

func (n *proxyNet) run(c proxyCase, sz sizes) (map[string]float64, []string, error) {
	ps := proxySizesOf(sz)
	var v map[string]float64
	var notes []string
	var err error
	h0, c0 := takeHost(), n.childCPU()
	switch c.test {
	case proxyIperf:
		v, notes, err = n.runIperf(c, ps)
	case proxyConnRate:
		v, notes, err = n.runConnRate(ps)
	case proxyUDPEcho:
		v, notes, err = n.runUDPEcho(ps)
	case proxyMem:
		v, notes, err = n.runMem(ps)
	case proxyRefused:
		v, notes, err = n.runRefused(ps)
	}
	// The bench's busy-machine check counts the family's own processes as other work; this
	// note leaves them out.
	if f := foreignShare(h0, takeHost()) - n.childShare(h0, c0); f > busyLimit {
		notes = append(notes, fmt.Sprintf("processes other than the family's (the engine, the SOCKS5 server, iperf3) took %.0f%% of the machine", f*100))
	}
	if n.eng.exited() {
		return nil, notes, fmt.Errorf("%s exited: %s", n.engine.label, n.eng.tail())
	}
	if err != nil {
		return nil, notes, fmt.Errorf("%w (%s: %s)", err, n.engine.label, n.eng.tail())
	}
	if _, ok := v["peak"]; ok || c.test == proxyMem {
		if m, err := n.eng.mem(); err == nil {
			v["peak"] = float64(m.hwm) / mib
		}
	}
	return v, notes, nil
}

// iperfResult is the part of iperf3's JSON the family reads.
type iperfResult struct {
	Error string `json:"error"`
	End   struct {
		SumReceived struct {
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
			Seconds       float64 `json:"seconds"`
		} `json:"sum_received"`
		SumSent struct {
			Retransmits float64 `json:"retransmits"`
		} `json:"sum_sent"`
	} `json:"end"`
}

func (n *proxyNet) runIperf(c proxyCase, ps proxySizes) (map[string]float64, []string, error) {
	args := []string{"netns", "exec", proxyNSC, "iperf3", "-c", proxyTarget.String(), "-p", fmt.Sprint(proxyIperfPort),
		"-t", fmt.Sprint(ps.iperfSec), "-P", fmt.Sprint(c.streams), "-J", "--connect-timeout", "5000"}
	if c.down {
		args = append(args, "-R")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(ps.iperfSec)*time.Second+30*time.Second)
	defer cancel()
	cpu0 := n.eng.cpu()
	cmd := exec.CommandContext(ctx, "ip", args...)
	out, err := cmd.Output()
	cpu := n.eng.cpu() - cpu0
	if st := cmd.ProcessState; st != nil {
		n.clientCPU += st.UserTime() + st.SystemTime()
	}
	var r iperfResult
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		if err == nil {
			err = jerr
		}
		return nil, nil, fmt.Errorf("iperf3: %v: %s", err, firstLine(string(out)))
	}
	if r.Error != "" {
		return nil, nil, fmt.Errorf("iperf3: %s", r.Error)
	}
	got := r.End.SumReceived
	if got.Bytes == 0 {
		return nil, nil, errors.New("iperf3: no byte received")
	}
	v := map[string]float64{
		"gbps": got.BitsPerSecond / 1e9,
		"cpu":  cpu.Seconds() / (got.Bytes / 1e9),
		"peak": 0,
	}
	var notes []string
	if r.End.SumSent.Retransmits > 0 {
		notes = append(notes, fmt.Sprintf("the sender retransmitted %.0f segments", r.End.SumSent.Retransmits))
	}
	return v, notes, nil
}

// childCPU is the CPU time the family's running processes and finished iperf3 clients took.
func (n *proxyNet) childCPU() time.Duration {
	t := n.clientCPU
	for _, p := range n.procs {
		if !p.exited() {
			t += p.cpu()
		}
	}
	return t
}

// childShare is the share of the machine the family's processes took since h0 (c0 then).
func (n *proxyNet) childShare(h0 hostSample, c0 time.Duration) float64 {
	wall := time.Since(h0.at)
	if wall <= 0 {
		return 0
	}
	return (n.childCPU() - c0).Seconds() / (wall.Seconds() * float64(runtime.NumCPU()))
}

// dialC connects from the client namespace to a target port, through the engine.
func (n *proxyNet) dialC(port uint16, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := n.nsC.in(func() (err error) {
		c, err = net.DialTimeout("tcp", netip.AddrPortFrom(proxyTarget, port).String(), timeout)
		return err
	})
	return c, err
}

// echoOnce sends one byte on c and reads it back.
func echoOnce(c net.Conn, timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte{'x'}); err != nil {
		return err
	}
	var b [1]byte
	_, err := io.ReadFull(c, b[:])
	return err
}

// probe waits (10 s at most) until a connection through the engine is echoed.
func (n *proxyNet) probe() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := n.dialC(proxyEchoPort, time.Second)
		if err == nil {
			err = echoOnce(c, 2*time.Second)
			c.Close()
			if err == nil {
				return nil
			}
		}
		if n.eng.exited() || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *proxyNet) runConnRate(ps proxySizes) (map[string]float64, []string, error) {
	const workers = 8
	payload := make([]byte, 64)
	base := n.srv.sunk.Load()
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	t0 := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(ps.rateConns) {
				c, err := n.dialC(proxySinkPort, 3*time.Second)
				if err == nil {
					_ = c.SetDeadline(time.Now().Add(3 * time.Second))
					_, err = c.Write(payload)
					c.Close()
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	wg.Wait()
	want := int64(ps.rateConns) - failed.Load()
	deadline := time.Now().Add(5 * time.Second)
	for n.srv.sunk.Load()-base < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	done := n.srv.sunk.Load() - base
	elapsed := n.srv.lastSunk().Sub(t0)
	if done == 0 || elapsed <= 0 {
		return nil, nil, fmt.Errorf("no connection reached the target (%d dials failed: %v)", failed.Load(), firstErr.Load())
	}
	var notes []string
	if f := failed.Load(); f > 0 {
		notes = append(notes, fmt.Sprintf("%d of %d dials or writes failed (first: %v)", f, ps.rateConns, firstErr.Load()))
	}
	return map[string]float64{
		"rate": float64(done) / elapsed.Seconds(),
		"lost": float64(int64(ps.rateConns) - done),
		"peak": 0,
	}, notes, nil
}

func (n *proxyNet) runUDPEcho(ps proxySizes) (map[string]float64, []string, error) {
	const clients = 4
	var ok, lost atomic.Int64
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	start := make(chan struct{})
	var ready sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			var c *net.UDPConn
			err := n.nsC.in(func() (err error) {
				c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(proxyTarget, proxyUDPEchoPrt)))
				return err
			})
			if err != nil {
				ready.Done()
				errs <- err
				return
			}
			defer c.Close()
			buf := make([]byte, 64)
			in := make([]byte, 256)
			seq := uint64(i) << 48
			// echo sends one datagram and waits for its echo (late echoes of earlier
			// ones are skipped).
			echo := func(wait time.Duration) bool {
				seq++
				binary.BigEndian.PutUint64(buf, seq)
				if _, err := c.Write(buf); err != nil {
					return false
				}
				_ = c.SetReadDeadline(time.Now().Add(wait))
				for {
					m, err := c.Read(in)
					if err != nil {
						return false
					}
					if m == len(buf) && binary.BigEndian.Uint64(in) == seq {
						return true
					}
				}
			}
			// The session (the engine's UDP ASSOCIATE) is set up untimed.
			warm := false
			for try := 0; try < 5 && !warm; try++ {
				warm = echo(time.Second)
			}
			ready.Done()
			if !warm {
				errs <- errors.New("no echo in 5 tries of 1 s (UDP ASSOCIATE through the engine?)")
				return
			}
			<-start
			deadline := time.Now().Add(ps.udpDur)
			for time.Now().Before(deadline) {
				if echo(200 * time.Millisecond) {
					ok.Add(1)
				} else {
					lost.Add(1)
				}
			}
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	close(errs)
	for err := range errs {
		return nil, nil, err
	}
	return map[string]float64{
		"pps":  float64(ok.Load()) / elapsed.Seconds(),
		"lost": float64(lost.Load()),
	}, nil, nil
}

// runRefused opens connections to a port nothing listens on, 100 at a time, and sorts how
// each ended: refused at connect (an engine that dials upstream before it answers the SYN),
// accepted and then closed (a phantom connection: the handshake was answered before the
// upstream refused), or no answer within 5 s.
func (n *proxyNet) runRefused(ps proxySizes) (map[string]float64, []string, error) {
	const workers = 100
	const wait = 5 * time.Second
	var next, reset, phantom, hung atomic.Int64
	var mu sync.Mutex
	var took []float64
	var odd []string
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(ps.refused) {
				t0 := time.Now()
				c, err := n.dialC(proxyClosedPort, wait)
				switch {
				case err == nil:
					_ = c.SetReadDeadline(time.Now().Add(wait))
					var b [1]byte
					_, err = c.Read(b[:])
					c.Close()
					if isTimeout(err) {
						hung.Add(1)
					} else {
						phantom.Add(1)
					}
				case errors.Is(err, syscall.ECONNREFUSED):
					reset.Add(1)
				case isTimeout(err):
					hung.Add(1)
				default: // unreachable, reset otherwise: an answer all the same
					reset.Add(1)
					mu.Lock()
					if len(odd) < 1 {
						odd = append(odd, err.Error())
					}
					mu.Unlock()
				}
				mu.Lock()
				took = append(took, float64(time.Since(t0).Microseconds())/1000)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total := float64(ps.refused)
	var notes []string
	if len(odd) > 0 {
		notes = append(notes, "counted as refused: "+odd[0])
	}
	return map[string]float64{
		"reset":   100 * float64(reset.Load()) / total,
		"phantom": 100 * float64(phantom.Load()) / total,
		"hung":    100 * float64(hung.Load()) / total,
		"p50":     median(took),
		"peak":    0,
	}, notes, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (n *proxyNet) runMem(ps proxySizes) (map[string]float64, []string, error) {
	time.Sleep(ps.settle)
	idle, err := n.eng.mem()
	if err != nil {
		return nil, nil, err
	}
	conns := make([]net.Conn, ps.memConns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	const workers = 16
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(conns)) {
					return
				}
				c, err := n.dialC(proxyEchoPort, 5*time.Second)
				if err == nil {
					if err = echoOnce(c, 5*time.Second); err != nil {
						c.Close()
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	open := int64(len(conns)) - failed.Load()
	if open == 0 {
		return nil, nil, fmt.Errorf("no connection opened: %v", firstErr.Load())
	}
	time.Sleep(ps.settle)
	held, err := n.eng.mem()
	if err != nil {
		return nil, nil, err
	}
	notes := []string{fmt.Sprintf("%d connections open through the engine (each echoed one byte)", open)}
	if n.engine.col == "wisp" {
		if floor, err := goFloor(); err == nil {
			notes = append(notes, fmt.Sprintf("Go's floor: a Go program that only sleeps holds %.1f MiB (VmRSS)", float64(floor)/mib))
		} else {
			notes = append(notes, "Go's floor not measured: "+err.Error())
		}
	}
	if f := failed.Load(); f > 0 {
		notes = append(notes, fmt.Sprintf("%d of %d connections failed (first: %v)", f, len(conns), firstErr.Load()))
	}
	for i, c := range conns {
		if c != nil {
			c.Close()
			conns[i] = nil
		}
	}
	time.Sleep(ps.settle)
	return map[string]float64{
		"idle":     float64(idle.rss) / mib,
		"open":     float64(held.rss) / mib,
		"perconn":  float64(held.rss-idle.rss) / float64(open) / 1024,
		"idleAnon": float64(idle.anon) / mib,
		"openAnon": float64(held.anon) / mib,
	}, notes, nil
}

var goFloorOnce struct {
	once sync.Once
	rss  int64
	err  error
}

// goFloor is the resident set of a Go program that does nothing but sleep, built by the
// same toolchain: the floor under any Go engine's idle figure.
func goFloor() (int64, error) {
	goFloorOnce.once.Do(func() {
		dir, err := os.MkdirTemp("", fmt.Sprintf("wispbench-%d-floor-", os.Getpid()))
		if err != nil {
			goFloorOnce.err = err
			return
		}
		defer os.RemoveAll(dir)
		src := filepath.Join(dir, "main.go")
		if err := os.WriteFile(src, []byte("package main\n\nimport \"time\"\n\nfunc main() { time.Sleep(time.Hour) }\n"), 0o644); err != nil {
			goFloorOnce.err = err
			return
		}
		bin := filepath.Join(dir, "floor")
		if out, err := exec.Command("go", "build", "-o", bin, src).CombinedOutput(); err != nil {
			goFloorOnce.err = fmt.Errorf("go build: %v: %s", err, firstLine(string(out)))
			return
		}
		p := &proxyProc{name: "floor", out: &tailBuffer{max: 256}, done: make(chan struct{})}
		p.cmd = exec.Command(bin)
		if err := p.cmd.Start(); err != nil {
			goFloorOnce.err = err
			return
		}
		go func() { p.err = p.cmd.Wait(); close(p.done) }()
		time.Sleep(300 * time.Millisecond)
		m, err := p.mem()
		p.stop()
		goFloorOnce.rss, goFloorOnce.err = m.rss, err
	})
	return goFloorOnce.rss, goFloorOnce.err
}

// proxyTargets are the bench's servers in the server namespace, on proxyTarget: a TCP echo,
// a TCP sink that counts connections that sent their bytes and closed, a UDP echo.
type proxyTargets struct {
	wg   sync.WaitGroup
	ln   []net.Listener
	udp  *net.UDPConn
	sunk atomic.Int64
	last atomic.Int64 // UnixNano of the last connection sunk

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func startTargets(ns *namespace) (*proxyTargets, error) {
	t := &proxyTargets{conns: map[net.Conn]struct{}{}}
	err := ns.in(func() error {
		for _, port := range []uint16{proxyEchoPort, proxySinkPort} {
			l, err := net.Listen("tcp4", netip.AddrPortFrom(proxyTarget, port).String())
			if err != nil {
				return err
			}
			t.ln = append(t.ln, l)
		}
		u, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(proxyTarget, proxyUDPEchoPrt)))
		if err != nil {
			return err
		}
		t.udp = u
		return nil
	})
	if err != nil {
		t.close()
		return nil, err
	}
	t.wg.Add(3)
	go t.serve(t.ln[0], func(c net.Conn) { _, _ = io.Copy(c, c) })
	go t.serve(t.ln[1], func(c net.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if k, err := io.Copy(io.Discard, c); err == nil && k > 0 {
			t.sunk.Add(1)
			t.last.Store(time.Now().UnixNano())
		}
	})
	go func() {
		defer t.wg.Done()
		b := make([]byte, 2048)
		for {
			k, from, err := t.udp.ReadFromUDPAddrPort(b)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			_, _ = t.udp.WriteToUDPAddrPort(b[:k], from)
		}
	}()
	return t, nil
}

func (t *proxyTargets) lastSunk() time.Time { return time.Unix(0, t.last.Load()) }

func (t *proxyTargets) serve(l net.Listener, handle func(net.Conn)) {
	defer t.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if strings.Contains(err.Error(), "too many open files") {
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			c.Close()
			continue
		}
		t.conns[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go func() {
			defer t.wg.Done()
			handle(c)
			c.Close()
			t.mu.Lock()
			delete(t.conns, c)
			t.mu.Unlock()
		}()
	}
}

// close stops the servers and closes every connection they hold.
func (t *proxyTargets) close() {
	for _, l := range t.ln {
		l.Close()
	}
	if t.udp != nil {
		t.udp.Close()
	}
	t.mu.Lock()
	t.closed = true
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	if len(t.ln) == 2 && t.udp != nil {
		t.wg.Wait()
	}
}

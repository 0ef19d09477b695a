package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// establish opens total connections from A to l's port with `workers` dialers and returns
// both ends of each (the slices were allocated by the caller, before its baseline).
func establish(n network, l listener, port uint16, total, workers int, cli, srv []conn) error {
	var accErr atomic.Value
	acc := make(chan struct{})
	go func() {
		defer close(acc)
		for i := 0; i < total; i++ {
			c, err := l.accept()
			if err != nil {
				accErr.Store(err)
				return
			}
			srv[i] = c
		}
	}()
	var next atomic.Int64
	var dialErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				c, err := n.dial(port)
				if err != nil {
					dialErr.CompareAndSwap(nil, fmt.Errorf("dial %d: %w", i, err))
					return
				}
				cli[i] = c
			}
		}()
	}
	wg.Wait()
	if err := firstErr(&dialErr); err != nil {
		l.close()
		<-acc
		return err
	}
	select {
	case <-acc:
	case <-time.After(30 * time.Second):
		l.close()
		<-acc
	}
	if e, ok := accErr.Load().(error); ok {
		return fmt.Errorf("accept: %w", e)
	}
	return nil
}

func closeAll(cs []conn) {
	for i, c := range cs {
		if c != nil {
			c.close()
			cs[i] = nil
		}
	}
}

// runIdle holds total established connections and measures the heap and goroutines they
// cost, per connection per stack (each connection has an end in A and one in B).
func runIdle(n network, total int) (map[string]float64, []string, error) {
	l, err := n.listen(portIdle)
	if err != nil {
		return nil, nil, err
	}
	defer l.close()
	cli, srv := make([]conn, total), make([]conn, total)
	g0 := runtime.NumGoroutine()
	h0 := settledHeap()
	m0 := n.memory()
	err = establish(n, l, portIdle, total, 8, cli, srv)
	defer closeAll(srv)
	defer closeAll(cli)
	if err != nil {
		return nil, nil, err
	}
	time.Sleep(100 * time.Millisecond) // let the last ACKs land
	h1 := settledHeap()
	g1 := runtime.NumGoroutine()
	m1 := n.memory()
	ends := float64(2 * total)
	v := map[string]float64{
		"heap":       (float64(h1) - float64(h0)) / ends,
		"goroutines": float64(g1-g0) / ends,
	}
	var notes []string
	if m1.Reserved > 0 {
		v["pool"] = float64(m1.InUse-m0.InUse) / ends
		v["pcbslot"] = float64(m1.PCBSize)
		v["reserve"] = float64(m1.Reserved) / float64(m1.PCBSlots)
		notes = append(notes, fmt.Sprintf("pools in use grew %d B over %d connections; reserved %.1f MiB for %d PCB slots (both stacks)",
			m1.InUse-m0.InUse, total, float64(m1.Reserved)/(1<<20), m1.PCBSlots))
	}
	return v, notes, nil
}

// runStalled opens total connections, offers `offer` bytes on each from A, never reads on B,
// waits until the transfer stalls and measures what is held. Then, the stalled connections
// still held, it times `fresh` new connections' requests (freshRequest), each given
// freshWait, against the same on the idle network before the stalled connections opened.
func runStalled(n network, total, offer int, settle time.Duration, fresh int, freshWait time.Duration) (map[string]float64, []string, error) {
	l, err := n.listen(portStalled)
	if err != nil {
		return nil, nil, err
	}
	defer l.close()
	fs, err := startFreshServer(n)
	if err != nil {
		return nil, nil, err
	}
	defer fs.stop()
	// The idle reference first, before the baseline: its connections are closed (and their
	// garbage collected) by the time the heap is read. One untimed request first: the
	// tunnel's handshake and whatever else a first connection sets up are not in the
	// reference (during the stall they are done).
	if fresh > 0 {
		_, _ = freshOnce(n, freshWait)
	}
	idle := freshRequests(n, fresh, freshWait)
	cli, srv := make([]conn, total), make([]conn, total)
	src := make([]byte, offer)
	h0 := settledHeap()
	m0 := n.memory()
	err = establish(n, l, portStalled, total, 8, cli, srv)
	if err != nil {
		closeAll(cli)
		closeAll(srv)
		return nil, nil, err
	}
	var wg sync.WaitGroup
	var written atomic.Int64
	for _, c := range cli {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, _ := c.Write(src)
			written.Add(int64(k))
		}()
	}
	// Wait until the link goes quiet (only probes) or the settle time passes.
	deadline := time.Now().Add(settle)
	var peak engineMemory
	last := n.packets()
	quiet := 0
	for time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		if m := n.memory(); m.InUse > peak.InUse {
			peak = m
		}
		p := n.packets()
		if p > 0 && p-last < uint64(total/2+10) {
			quiet++
			if quiet >= 4 {
				break
			}
		} else {
			quiet = 0
		}
		last = p
	}
	h1 := settledHeap()
	m1 := n.memory()
	if m1.InUse > peak.InUse {
		peak = m1
	}
	// The memory is read; now, the stalled connections still held, is the network usable?
	during := freshRequests(n, fresh, freshWait)
	closeAll(cli)
	wg.Wait()
	closeAll(srv)
	held := float64(h1) - float64(h0) + float64(m1.InUse-m0.InUse)
	v := map[string]float64{"held": held / (1 << 20), "perconn": held / float64(total) / 1024}
	var notes []string
	if m1.Reserved > 0 {
		inside := peak.InUse <= m1.Reserved
		v["inside"] = b2f(inside)
		notes = append(notes, fmt.Sprintf("pools+heap in use %.1f MiB (peak %.1f) of %.1f MiB reserved; Go heap %+.1f MiB; inside budget: %v",
			float64(m1.InUse)/(1<<20), float64(peak.InUse)/(1<<20), float64(m1.Reserved)/(1<<20), (float64(h1)-float64(h0))/(1<<20), inside))
	}
	if fresh > 0 {
		v["fresh_ms"] = during.median()
		v["fresh_idle_ms"] = idle.median()
		if idle.median() > 0 {
			v["fresh_slowdown"] = during.median() / idle.median()
		}
		v["fresh_timeouts"] = float64(during.timeouts + during.failures)
		notes = append(notes, fmt.Sprintf("new connections, dial to last byte of %d B (ms, a timeout counts %v): idle %s; during the stall %s",
			freshResponse, freshWait, idle, during))
		for _, x := range []struct {
			when string
			r    freshResult
		}{{"on the idle network", idle}, {"during the stall", during}} {
			if x.r.timeouts > 0 {
				notes = append(notes, fmt.Sprintf("fresh request timed out %s: %d of %d after %v (the last one %s)", x.when, x.r.timeouts, fresh, freshWait,
					strings.TrimPrefix(x.r.lastTimeout.Error(), "fresh request ")))
			}
			if x.r.failures > 0 {
				notes = append(notes, fmt.Sprintf("fresh request failed %s: %d of %d (first: %v)", x.when, x.r.failures, fresh, x.r.firstErr))
			}
		}
	}
	return v, notes, nil
}

// A fresh request: a new connection sends freshRequest bytes and reads the freshResponse
// bytes the server answers.
const (
	freshRequest  = 100
	freshResponse = 100_000
)

// freshAnswer is the response every fresh request expects, byte for byte.
var freshAnswer = func() []byte {
	b := make([]byte, freshResponse)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}()

// freshServer answers every connection on portStalledFresh: it reads the request, writes
// freshAnswer and waits for the client's close.
type freshServer struct {
	l        listener
	accepted chan struct{} // closed when the accept loop ends
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []conn // every accepted connection, closed again by stop
}

func startFreshServer(n network) (*freshServer, error) {
	l, err := n.listen(portStalledFresh)
	if err != nil {
		return nil, fmt.Errorf("listen fresh: %w", err)
	}
	fs := &freshServer{l: l, accepted: make(chan struct{})}
	go func() {
		defer close(fs.accepted)
		for {
			c, err := l.accept()
			if err != nil {
				return
			}
			fs.mu.Lock()
			fs.conns = append(fs.conns, c)
			fs.mu.Unlock()
			fs.wg.Add(1)
			go func() {
				defer fs.wg.Done()
				defer c.close()
				req := make([]byte, freshRequest)
				if _, err := io.ReadFull(c, req); err != nil {
					return
				}
				if _, err := c.Write(freshAnswer); err != nil {
					return
				}
				var b [1]byte
				_, _ = c.Read(b[:]) // until the client closes
			}()
		}
	}()
	return fs, nil
}

// stop closes the listener and every connection it accepted (unblocking their goroutines)
// and waits for them.
func (fs *freshServer) stop() {
	fs.l.close()
	<-fs.accepted
	fs.mu.Lock()
	cs := fs.conns
	fs.conns = nil
	fs.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
	fs.wg.Wait()
}

// freshResult is a series of fresh requests.
type freshResult struct {
	ms          []float64 // dial to last byte; a timeout or a failure counts as the deadline
	timeouts    int
	failures    int
	firstErr    error
	lastTimeout error // says where the last timed-out request stood
}

func (r freshResult) median() float64 {
	if len(r.ms) == 0 {
		return 0
	}
	return median(r.ms)
}

func (r freshResult) String() string {
	s := make([]string, len(r.ms))
	for i, v := range r.ms {
		s[i] = fmt.Sprintf("%.1f", v)
	}
	return strings.Join(s, " ")
}

// freshRequests times count fresh requests one after the other, each given wait.
func freshRequests(n network, count int, wait time.Duration) freshResult {
	var r freshResult
	for i := 0; i < count; i++ {
		d, err := freshOnce(n, wait)
		switch {
		case errors.Is(err, errFreshTimeout):
			r.timeouts++
			r.lastTimeout = err
			d = wait
		case err != nil:
			r.failures++
			if r.firstErr == nil {
				r.firstErr = err
			}
			d = wait
		}
		r.ms = append(r.ms, float64(d)/float64(time.Millisecond))
	}
	return r
}

var errFreshTimeout = errors.New("fresh request timed out")

// freshOnce dials portStalledFresh, sends the request and reads and checks the answer; it
// returns the time from the dial to the last byte. It never blocks beyond wait: then the
// connection is closed (which ends its reads and writes) and a dial still under way is
// closed by its goroutine when it completes; the network's close ends it at the latest.
func freshOnce(n network, wait time.Duration) (time.Duration, error) {
	type result struct {
		d   time.Duration
		err error
	}
	var mu sync.Mutex
	var c conn
	abandoned := false
	var stage atomic.Int32 // 0 dialing, 1 sending the request, 2 reading the answer
	var got atomic.Int64   // bytes of the answer read
	done := make(chan result, 1)
	t0 := time.Now()
	go func() {
		cc, err := n.dial(portStalledFresh)
		if err != nil {
			done <- result{err: fmt.Errorf("dial: %w", err)}
			return
		}
		mu.Lock()
		if abandoned {
			mu.Unlock()
			cc.close()
			return
		}
		c = cc
		mu.Unlock()
		defer cc.close()
		cc.setNoDelay(true)
		stage.Store(1)
		if _, err := cc.Write(make([]byte, freshRequest)); err != nil {
			done <- result{err: fmt.Errorf("write: %w", err)}
			return
		}
		stage.Store(2)
		buf := make([]byte, freshResponse)
		for k := 0; k < len(buf); {
			m, err := cc.Read(buf[k:])
			k += m
			got.Store(int64(k))
			if err != nil && k < len(buf) {
				done <- result{err: fmt.Errorf("read (%d of %d B): %w", k, len(buf), err)}
				return
			}
		}
		d := time.Since(t0)
		if !bytes.Equal(buf, freshAnswer) {
			done <- result{err: errors.New("the answer differs from what the server sent")}
			return
		}
		done <- result{d: d}
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case r := <-done:
		return r.d, r.err
	case <-t.C:
	}
	mu.Lock()
	abandoned = true
	if c != nil {
		c.close()
	}
	mu.Unlock()
	where := "dialing"
	switch stage.Load() {
	case 1:
		where = "sending the request"
	case 2:
		where = fmt.Sprintf("reading the answer, %d of %d B in", got.Load(), freshResponse)
	}
	return wait, fmt.Errorf("%w while %s", errFreshTimeout, where)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

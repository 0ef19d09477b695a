package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Ports the scenarios use on B.
const (
	portBulk = 5001 + iota
	portRR
	portRate
	portIdle
	portStalled
	portUDP
	portStalledFresh // the stalled scenario's fresh requests
)

const chunk = 64 << 10 // the bulk writer's and reader's buffer size (iperf3 uses 128 KiB)

// bulkResult is one bulk transfer's measurement.
type bulkResult struct {
	bytes   int64
	elapsed time.Duration
	s0, s1  sample
	packets uint64
}

func (r bulkResult) gbps() float64 { return float64(r.bytes) * 8 / r.elapsed.Seconds() / 1e9 }

func (r bulkResult) values() map[string]float64 {
	v := map[string]float64{"gbps": r.gbps(), "mbps": r.gbps() * 1000}
	if r.bytes > 0 {
		gb := float64(r.bytes) / 1e9
		v["cpu"] = (r.s1.cpu - r.s0.cpu).Seconds() / gb
		v["gc"] = float64(r.s1.numGC-r.s0.numGC) / gb
		v["mallocs"] = float64(r.s1.mallocs - r.s0.mallocs)
		if r.packets > 0 {
			v["allocs"] = float64(r.s1.mallocs-r.s0.mallocs) / float64(r.packets)
			v["packets"] = float64(r.packets)
		}
	}
	return v
}

// runBulk sends from A to B over streams connections for warm+dur and measures the bytes B
// received during dur.
func runBulk(n network, streams int, warm, dur time.Duration) (bulkResult, error) {
	return runBulkProbe(n, streams, warm, dur, nil)
}

// runBulkProbe is runBulk that calls probe (if not nil) after the measured interval, while
// the transfer still runs (the memory rows of the WireGuard scenario look there).
func runBulkProbe(n network, streams int, warm, dur time.Duration, probe func()) (bulkResult, error) {
	var res bulkResult
	l, err := n.listen(portBulk)
	if err != nil {
		return res, fmt.Errorf("listen: %w", err)
	}
	defer l.close()
	var received atomic.Int64
	var readErr atomic.Value
	var readers sync.WaitGroup
	servers := make(chan conn, streams)
	go func() {
		for i := 0; i < streams; i++ {
			c, err := l.accept()
			if err != nil {
				readErr.CompareAndSwap(nil, fmt.Errorf("accept: %w", err))
				close(servers)
				return
			}
			servers <- c
			readers.Add(1)
			go func() {
				defer readers.Done()
				buf := make([]byte, chunk)
				for {
					k, err := c.Read(buf)
					received.Add(int64(k))
					if err != nil {
						if !errors.Is(err, io.EOF) && !stopping(&readErr) {
							readErr.CompareAndSwap(nil, fmt.Errorf("read: %w", err))
						}
						return
					}
				}
			}()
		}
		close(servers)
	}()

	var stop atomic.Bool
	var writers sync.WaitGroup
	var clients []conn
	var writeErr atomic.Value
	src := make([]byte, chunk)
	for i := range src {
		src[i] = byte(i)
	}
	// Every connection is up before any writer starts: a SYN lost in a full queue would
	// cost a one-second retransmission timeout.
	for i := 0; i < streams; i++ {
		c, err := n.dial(portBulk)
		if err != nil {
			for _, c := range clients {
				c.close()
			}
			return res, fmt.Errorf("dial: %w", err)
		}
		clients = append(clients, c)
	}
	for _, c := range clients {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for !stop.Load() {
				if _, err := c.Write(src); err != nil {
					if !stop.Load() {
						writeErr.CompareAndSwap(nil, fmt.Errorf("write: %w", err))
					}
					return
				}
			}
		}()
	}
	var srv []conn
	for c := range servers {
		srv = append(srv, c)
	}
	finish := func() {
		stop.Store(true)
		readErr.CompareAndSwap(nil, errStopping)
		for _, c := range clients {
			c.close()
		}
		writers.Wait()
		for _, c := range srv {
			c.close()
		}
		readers.Wait()
	}
	if len(srv) != streams {
		finish()
		return res, fmt.Errorf("accepted %d of %d", len(srv), streams)
	}
	time.Sleep(warm)
	b0, p0 := received.Load(), n.packets()
	res.s0 = takeSample()
	time.Sleep(dur)
	res.s1 = takeSample()
	b1, p1 := received.Load(), n.packets()
	if probe != nil {
		probe()
	}
	err = firstErr(&readErr, &writeErr)
	finish()
	res.bytes = b1 - b0
	res.elapsed = res.s1.at.Sub(res.s0.at)
	res.packets = p1 - p0
	return res, err
}

var errStopping = errors.New("stopping")

func stopping(v *atomic.Value) bool {
	e, _ := v.Load().(error)
	return e == errStopping
}

func firstErr(vs ...*atomic.Value) error {
	for _, v := range vs {
		if e, ok := v.Load().(error); ok && e != errStopping {
			return e
		}
	}
	return nil
}

// runRR measures 1-byte request/response round trips on one connection.
func runRR(n network, rounds int) (map[string]float64, error) {
	l, err := n.listen(portRR)
	if err != nil {
		return nil, err
	}
	defer l.close()
	done := make(chan error, 1)
	var srv conn
	var srvMu sync.Mutex
	go func() {
		c, err := l.accept()
		if err != nil {
			done <- err
			return
		}
		srvMu.Lock()
		srv = c
		srvMu.Unlock()
		c.setNoDelay(true)
		b := make([]byte, 1)
		for {
			if _, err := io.ReadFull(c, b); err != nil {
				done <- nil
				return
			}
			if _, err := c.Write(b); err != nil {
				done <- err
				return
			}
		}
	}()
	c, err := n.dial(portRR)
	if err != nil {
		return nil, err
	}
	c.setNoDelay(true)
	b := []byte{'x'}
	warm := max(rounds/10, 10)
	lat := make([]time.Duration, 0, rounds)
	for i := 0; i < warm+rounds; i++ {
		t := time.Now()
		if _, err := c.Write(b); err != nil {
			c.close()
			return nil, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			c.close()
			return nil, err
		}
		if i >= warm {
			lat = append(lat, time.Since(t))
		}
	}
	c.close()
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		err = errors.New("server did not see EOF")
	}
	srvMu.Lock()
	if srv != nil {
		srv.close()
	}
	srvMu.Unlock()
	if err != nil {
		return nil, err
	}
	slices.Sort(lat)
	us := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e3 }
	return map[string]float64{"p50": us(0.5), "p99": us(0.99)}, nil
}

// runConnRate measures dial + accept + close per second with `workers` concurrent dialers.
// The client closes first (its side goes to TIME-WAIT); the server reads EOF and closes.
func runConnRate(n network, total, workers int) (map[string]float64, error) {
	l, err := n.listen(portRate)
	if err != nil {
		return nil, err
	}
	var closed atomic.Int64
	var srvWG sync.WaitGroup
	var open sync.Map // server conns not yet closed, for the error path
	allDone := make(chan struct{})
	go func() {
		for {
			c, err := l.accept()
			if err != nil {
				return
			}
			srvWG.Add(1)
			open.Store(c, nil)
			go func() {
				defer open.Delete(c)
				defer srvWG.Done()
				var b [1]byte
				_, _ = c.Read(b[:])
				c.close()
				if closed.Add(1) == int64(total) {
					close(allDone)
				}
			}()
		}
	}()
	var next atomic.Int64
	var dialErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				c, err := n.dial(portRate)
				if err != nil {
					dialErr.CompareAndSwap(nil, err)
					return
				}
				c.close()
			}
		}()
	}
	wg.Wait()
	err = firstErr(&dialErr)
	if err == nil {
		select {
		case <-allDone:
		case <-time.After(30 * time.Second):
			err = fmt.Errorf("server closed %d of %d", closed.Load(), total)
		}
	}
	elapsed := time.Since(start)
	l.close()
	if err != nil {
		open.Range(func(k, _ any) bool { k.(conn).close(); return true })
	}
	srvWG.Wait()
	if err != nil {
		return nil, err
	}
	return map[string]float64{"rate": float64(total) / elapsed.Seconds()}, nil
}

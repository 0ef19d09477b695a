package main

import (
	"fmt"
	"runtime"
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
// waits until the transfer stalls and measures what is held.
func runStalled(n network, total, offer int, settle time.Duration) (map[string]float64, []string, error) {
	l, err := n.listen(portStalled)
	if err != nil {
		return nil, nil, err
	}
	defer l.close()
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
	return v, notes, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

package pbuf

import (
	"sync"
	"testing"
)

// TestConcurrentSharedFree frees the two references of shared chains from two goroutines
// while others allocate, so the race detector sees the count-of-1 fast path of Free
// against the atomic decrement of the other holder.
func TestConcurrentSharedFree(t *testing.T) {
	a := newTestAlloc()
	var wg sync.WaitGroup
	ch := make(chan *Pbuf, 16)
	wg.Add(3)
	go func() {
		defer wg.Done()
		defer close(ch)
		for range 2000 {
			p, err := a.Alloc(LayerRaw, 700, POOL)
			if err != nil {
				continue
			}
			v, err := a.RefRange(nil, p, 10, 600)
			if err != nil {
				p.Free()
				continue
			}
			ch <- v
			p.Free()
		}
	}()
	go func() {
		defer wg.Done()
		for v := range ch {
			v.Free()
		}
	}()
	go func() {
		defer wg.Done()
		for range 2000 {
			if p, err := a.Alloc(LayerTransport, 300, RAM); err == nil {
				p.Free()
			}
		}
	}()
	wg.Wait()
	checkZero(t, a)
}

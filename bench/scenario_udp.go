package main

import (
	"errors"
	"sync/atomic"
	"time"
)

// runUDP blasts size-byte datagrams from A to B for warm+dur and counts what B receives
// during dur. The sender does not pace: the link's queue drops what it cannot carry, as a
// TUN's would.
func runUDP(n network, size int, warm, dur time.Duration) (map[string]float64, error) {
	rx, err := n.listenUDP(portUDP)
	if err != nil {
		return nil, err
	}
	tx, err := n.dialUDP(portUDP)
	if err != nil {
		rx.close()
		return nil, err
	}
	var got atomic.Int64
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for !stop.Load() {
			if _, err := rx.read(buf, time.Now().Add(100*time.Millisecond)); err == nil {
				got.Add(1)
			}
		}
	}()
	var sent atomic.Int64
	sdone := make(chan error, 1)
	go func() {
		b := make([]byte, size)
		for !stop.Load() {
			if err := tx.write(b); err != nil {
				// A full socket buffer or queue is the sender's backpressure: retry.
				tx.rearm()
				continue
			}
			sent.Add(1)
		}
		sdone <- nil
	}()
	time.Sleep(warm)
	g0, t0 := got.Load(), time.Now()
	time.Sleep(dur)
	g1, t1 := got.Load(), time.Now()
	stop.Store(true)
	<-sdone
	tx.close()
	rx.close()
	<-done
	if g1 == g0 {
		return nil, errors.New("no datagram received")
	}
	return map[string]float64{"pps": float64(g1-g0) / t1.Sub(t0).Seconds()}, nil
}

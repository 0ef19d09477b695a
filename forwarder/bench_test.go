package forwarder_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/forwarder"
)

// TestNewTwice: a second forwarder on a stack is refused (the stack has one intercept
// listener and one UDP receiver); a bad configuration too.
func TestNewTwice(t *testing.T) {
	r := newRig(t, forwarder.Config{TCP: forwarder.TCPConfig{Handler: func(*forwarder.TCPRequest) {}},
		UDP: forwarder.UDPConfig{Handler: func(s *forwarder.UDPSession) { s.Close() }}}, rigConfig{})
	for _, c := range []forwarder.Config{
		{TCP: forwarder.TCPConfig{Handler: func(*forwarder.TCPRequest) {}}},
		{UDP: forwarder.UDPConfig{Handler: func(*forwarder.UDPSession) {}}},
	} {
		if f, err := forwarder.New(r.B, c); !errors.Is(err, errs.Use) {
			t.Errorf("second forwarder: %v", err)
			if f != nil {
				f.Close()
			}
		}
	}
	if _, err := forwarder.New(r.B, forwarder.Config{UDP: forwarder.UDPConfig{QueueLen: -1}}); !errors.Is(err, errs.Val) {
		t.Errorf("QueueLen -1: %v", err)
	}
}

// BenchmarkTCPForward measures one intercepted flow carrying data from the client to a
// handler that discards it (bytes/s through the interception, both stacks in-process).
func BenchmarkTCPForward(b *testing.B) {
	done := make(chan int64, 1)
	h := func(r *forwarder.TCPRequest) {
		c, err := r.Accept(context.Background())
		if err != nil {
			b.Error(err)
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		done <- n
	}
	r := newRig(b, forwarder.Config{TCP: forwarder.TCPConfig{Handler: h}}, rigConfig{})
	c, err := r.cli.Dial("tcp", ap(far4, 5201).String())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		b.Fatal("the handler did not finish")
	}
}

// BenchmarkUDPSession measures datagrams from the client through one session to a
// handler that reads them (datagrams/s; drops are reported).
func BenchmarkUDPSession(b *testing.B) {
	got := make(chan *forwarder.UDPSession, 1)
	r := newRig(b, forwarder.Config{UDP: forwarder.UDPConfig{Handler: func(s *forwarder.UDPSession) { got <- s },
		QueueLen: 1024}}, rigConfig{})
	cl, err := r.cli.DialUDPAddrPort(netip.AddrPort{}, ap(far4, 9))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	buf := make([]byte, 1200)
	if _, err := cl.Write(buf); err != nil {
		b.Fatal(err)
	}
	s := <-got
	rbuf := make([]byte, 2000)
	if _, _, err := s.ReadFromUDPAddrPort(rbuf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	readDone := make(chan int)
	go func() {
		n := 0
		for {
			_ = s.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if _, _, err := s.ReadFromUDPAddrPort(rbuf); err != nil {
				readDone <- n
				return
			}
			n++
		}
	}()
	for range b.N {
		for {
			if _, err := cl.Write(buf); err == nil {
				break
			}
			time.Sleep(10 * time.Microsecond) // the pipe's queue is full
		}
	}
	n := <-readDone
	b.ReportMetric(float64(b.N-n)/float64(b.N), "drop/op")
}

// TestCloseAfterStack: the forwarder closes cleanly after its stack did.
func TestCloseAfterStack(t *testing.T) {
	r := newRig(t, forwarder.Config{TCP: forwarder.TCPConfig{Handler: func(*forwarder.TCPRequest) {}, Deferred: true},
		UDP: forwarder.UDPConfig{Handler: func(s *forwarder.UDPSession) { s.Close() }}}, rigConfig{cores: 2})
	if err := r.B.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStackCloseEndsSessions: closing the stack under a forwarder with a queued session
// and a waiting request frees the queue and wakes the waiters.
func TestStackCloseEndsSessions(t *testing.T) {
	sess := make(chan *forwarder.UDPSession, 1)
	reqs := make(chan *forwarder.TCPRequest, 1)
	r := newRig(t, forwarder.Config{TCP: forwarder.TCPConfig{Handler: func(q *forwarder.TCPRequest) { reqs <- q; time.Sleep(50 * time.Millisecond) }, Deferred: true},
		UDP: forwarder.UDPConfig{Handler: func(s *forwarder.UDPSession) { sess <- s }}}, rigConfig{})
	cl, err := r.cli.DialUDPAddrPort(netip.AddrPort{}, ap(far4, 53))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for range 3 {
		cl.Write([]byte("queued"))
	}
	s := <-sess
	go r.cli.Dial("tcp", ap(far6, 80).String())
	q := <-reqs
	if err := r.B.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	for {
		if _, _, err := s.ReadFromUDPAddrPort(buf); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("read: %v", err)
			}
			break
		}
	}
	if _, err := q.Accept(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept: %v", err)
	}
	if err := r.f.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

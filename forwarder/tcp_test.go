package forwarder_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/forwarder"
)

// echoHandler accepts every request and echoes what the client sends, half-closing after
// the client's FIN (as a relay does); requests to port 1 are rejected with a RST, to port 2
// silently.
func echoHandler(t testing.TB, wg *sync.WaitGroup) func(*forwarder.TCPRequest) {
	return func(r *forwarder.TCPRequest) {
		switch r.ID().Dst.Port() {
		case 1:
			r.Reject(true)
			return
		case 2:
			r.Reject(false)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := r.Accept(ctx)
		if err != nil {
			t.Errorf("accept %v: %v", r.ID(), err)
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer c.Close()
		if got := c.LocalAddr().(*net.TCPAddr).AddrPort(); got != r.ID().Dst {
			t.Errorf("LocalAddr %v, want the intercepted %v", got, r.ID().Dst)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(c, c); err != nil {
			t.Errorf("echo %v: %v", r.ID(), err)
		}
		_ = c.CloseWrite()
	}
}

// roundTrip dials dst from the client, sends data, half-closes and reads the echo to EOF.
func roundTrip(r *rig, dst string, data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := r.cli.DialContext(ctx, "tcp", dst)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := c.(interface{ CloseWrite() error })
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = tc.CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if werr := <-errc; werr != nil {
		return fmt.Errorf("write: %w", werr)
	}
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(got) != string(data) {
		return fmt.Errorf("echo of %d bytes came back as %d bytes", len(data), len(got))
	}
	return nil
}

func TestTCPEarlyAndDeferred(t *testing.T) {
	for _, c := range []struct {
		deferred bool
		cores    int
	}{{false, 1}, {true, 1}, {false, 2}, {true, 2}} {
		deferred := c.deferred
		t.Run(fmt.Sprintf("deferred=%v,cores=%d", deferred, c.cores), func(t *testing.T) {
			var wg sync.WaitGroup
			r := newRig(t, forwarder.Config{TCP: forwarder.TCPConfig{Handler: echoHandler(t, &wg), Deferred: deferred}}, rigConfig{cores: c.cores})
			for _, dst := range []string{"198.19.7.7:80", "[fd42:5eed:0:77::7]:443", "198.18.200.9:22", "198.19.1.2:8080", "[fd42:5eed:0:1::2]:8443"} {
				data := make([]byte, 100_000)
				for i := range data {
					data[i] = byte(i * 7)
				}
				if err := roundTrip(r, dst, data); err != nil {
					t.Fatalf("%s: %v", dst, err)
				}
			}
			wg.Wait()
			waitFor(t, 5*time.Second, "flows closed", func() bool { return r.f.Stats().TCPActive == 0 })
			st := r.f.Stats()
			if st.TCPRequests != 5 || st.TCPAccepted != 5 || st.TCPRejected != 0 || st.TCPRefusedFull != 0 {
				t.Errorf("stats:\n%v", st)
			}
		})
	}
}

// TestTCPRejectRefused: a request rejected with a RST is ECONNREFUSED at the client when
// deferred (the SYN was never answered), and a reset when early; at once either way.
func TestTCPRejectRefused(t *testing.T) {
	for _, deferred := range []bool{false, true} {
		t.Run(fmt.Sprintf("deferred=%v", deferred), func(t *testing.T) {
			var wg sync.WaitGroup
			r := newRig(t, forwarder.Config{TCP: forwarder.TCPConfig{Handler: echoHandler(t, &wg), Deferred: deferred}}, rigConfig{})
			for _, dst := range []string{"198.19.7.7:1", "[fd42:5eed:0:77::7]:1"} {
				start := time.Now()
				err := roundTrip(r, dst, []byte("hello"))
				if took := time.Since(start); took > 2*time.Second {
					t.Errorf("%s: the refusal took %v", dst, took)
				}
				want := syscall.ECONNRESET
				if deferred {
					want = syscall.ECONNREFUSED
				}
				if !errors.Is(err, want) && !(!deferred && errors.Is(err, syscall.EPIPE)) {
					t.Errorf("%s: %v, want %v", dst, err, want)
				}
			}
			wg.Wait()
			if st := r.f.Stats(); st.TCPRejected != 2 || st.TCPAccepted != 0 {
				t.Errorf("stats:\n%v", st)
			}
		})
	}
}

// TestTCPParallel runs 128 flows at once to as many addresses, both families.
func TestTCPParallel(t *testing.T) {
	var wg sync.WaitGroup
	r := newRig(t, forwarder.Config{TCP: forwarder.TCPConfig{Handler: echoHandler(t, &wg), Deferred: true}}, rigConfig{})
	const n = 128
	errc := make(chan error, n)
	for i := range n {
		dst := fmt.Sprintf("198.19.%d.%d:%d", i/200, 1+i%200, 1000+i)
		if i%2 == 1 {
			dst = fmt.Sprintf("[fd42:5eed:0:%x::%x]:%d", i, i+1, 1000+i)
		}
		go func() {
			data := make([]byte, 10_000+i)
			for j := range data {
				data[j] = byte(i + j)
			}
			errc <- roundTrip(r, dst, data)
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	waitFor(t, 5*time.Second, "flows closed", func() bool { return r.f.Stats().TCPActive == 0 })
	if st := r.f.Stats(); st.TCPAccepted != n {
		t.Errorf("stats:\n%v", st)
	}
}

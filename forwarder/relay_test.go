package forwarder_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/forwarder"
)

// kernelUpstream is a loopback TCP server on the host that answers each connection with
// answer and then echoes what it reads (EOF → half-close); reset makes it reset instead.
func kernelUpstream(t *testing.T, answer []byte) (addr string, wg *sync.WaitGroup) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wg = new(sync.WaitGroup)
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				first := make([]byte, 1)
				if _, err := io.ReadFull(c, first); err != nil {
					return
				}
				if first[0] == 'R' {
					_ = c.(*net.TCPConn).SetLinger(0) // a reset to the relay
					return
				}
				if _, err := c.Write(answer); err != nil {
					return
				}
				_, _ = c.Write(first)
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return l.Addr().String(), wg
}

// relayHandler accepts every request and relays it to the kernel server at up.
func relayHandler(t *testing.T, up string, stats chan<- forwarder.RelayStats) func(*forwarder.TCPRequest) {
	return func(r *forwarder.TCPRequest) {
		uc, err := net.DialTimeout("tcp", up, 5*time.Second)
		if err != nil {
			r.Reject(true)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := r.Accept(ctx)
		if err != nil {
			uc.Close()
			return
		}
		stats <- forwarder.Relay(c, uc)
	}
}

func TestRelayKernelUpstream(t *testing.T) {
	answer := make([]byte, 3<<20)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range answer {
		answer[i] = byte(rnd.Uint32())
	}
	up, _ := kernelUpstream(t, answer)
	stats := make(chan forwarder.RelayStats, 8)
	r := newRig(t, forwarder.Config{TCP: forwarder.TCPConfig{Handler: relayHandler(t, up, stats), Deferred: true}}, rigConfig{})
	for _, dst := range []string{"198.19.7.7:80", "[fd42:5eed:0:77::7]:443"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := r.cli.DialContext(ctx, "tcp", dst)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		sent := make([]byte, 1<<20)
		sent[0] = 'E'
		go func() {
			_, _ = c.Write(sent)
			_ = c.(interface{ CloseWrite() error }).CloseWrite() // half-close: the answer still comes
		}()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("%s: read: %v", dst, err)
		}
		want := append(append([]byte(nil), answer...), sent...)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes back (sha %x), want %d (sha %x)", dst, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
		}
		select {
		case st := <-stats:
			if st.Up != int64(len(sent)) || st.Down != int64(len(want)) || st.UpErr != nil || st.DownErr != nil {
				t.Fatalf("%s: relay stats %+v", dst, st)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the relay did not end", dst)
		}
	}
	// A reset upstream reaches the client as a reset, not an end of stream.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := r.cli.DialContext(ctx, "tcp", "198.19.7.8:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte("R")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(c); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after the upstream's reset: %v, want ECONNRESET", err)
	}
	select {
	case <-stats:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay did not end after the reset")
	}
}

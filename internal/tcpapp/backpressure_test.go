package tcpapp_test

import (
	"crypto/sha256"
	"hash"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/tcp"
)

// stubborn is a raw-API client that sends n pattern bytes but, while hold is set, keeps
// every pbuf it receives without calling Recved: a peer that does not read its echo.
// Core context only, except done.
type stubborn struct {
	c       *tcp.PCB
	n, sent int64
	seed    uint64
	hold    bool
	finSent bool
	held    []*pbuf.Pbuf
	recvd   int64
	h       hash.Hash
	buf     []byte
	done    chan error
}

func (s *stubborn) fill() {
	for s.c != nil && s.sent < s.n {
		k := int(min(int64(s.c.SndBuf()), s.n-s.sent, int64(len(s.buf))))
		if k < len(s.buf) && int64(k) < s.n-s.sent {
			return
		}
		tcpapp.FillPattern(s.buf[:k], s.seed, s.sent)
		if err := s.c.Write(s.buf[:k], tcp.WriteCopy); err != nil {
			return // retried on the next SentFunc
		}
		s.sent += int64(k)
	}
	if s.c != nil && s.sent == s.n && !s.finSent {
		s.finSent = true
		s.c.Shutdown(false, true)
	}
}

func (s *stubborn) consume(p *pbuf.Pbuf) {
	for q := p; q != nil; q = q.Next() {
		s.h.Write(q.Payload())
	}
	n := p.TotLen()
	s.recvd += int64(n)
	p.Free()
	s.c.Recved(n)
}

func (s *stubborn) release() {
	s.hold = false
	for _, p := range s.held {
		s.consume(p)
	}
	s.held = nil
}

// An echo peer that does not read stalls the echo at bounded memory; once it reads, every
// byte comes back.
func TestEchoBackpressure(t *testing.T) {
	o := opt.Tunnel()
	o.TCPWnd, o.TCPMaxWnd, o.TCPSndBuf = 128<<10, 128<<10, 128<<10
	o.TCPSndQueueLen = 4 * o.TCPSndBuf / 1460
	a, b := newPair(t, o)
	ctx := ctxFor(t, 30*time.Second)
	echoOn(t, b, netip.AddrPortFrom(addrB[0], 7))
	before := b.Stats()

	const n = 16 << 20
	s := &stubborn{n: n, seed: 9, hold: true, h: sha256.New(), buf: make([]byte, 16<<10), done: make(chan error, 1)}
	a.Callback(func() {
		c, err := a.TCP().NewPCB()
		if err != nil {
			t.Error(err)
			return
		}
		s.c = c
		c.OnRecv(func(c *tcp.PCB, p *pbuf.Pbuf) {
			switch {
			case p == nil:
				s.c = nil
				c.Close()
				s.done <- nil
			case s.hold:
				s.held = append(s.held, p)
			default:
				s.consume(p)
			}
		})
		c.OnSent(func(c *tcp.PCB, n int) { s.fill() })
		c.OnErr(func(c *tcp.PCB, err error) { s.c = nil; s.done <- err })
		if err := c.Connect(netip.AddrPortFrom(addrB[0], 7), func(c *tcp.PCB) { s.fill() }); err != nil {
			t.Error(err)
		}
	})
	// Wait until the sender is stuck.
	var sent int64
	for stable := 0; stable < 10; {
		if ctx.Err() != nil {
			t.Fatalf("the sender never stopped: %d bytes sent", sent)
		}
		time.Sleep(30 * time.Millisecond)
		var now int64
		a.Callback(func() { now = s.sent })
		if now == sent {
			stable++
		} else {
			stable, sent = 0, now
		}
	}
	if sent >= n {
		t.Fatalf("the sender sent all %d bytes to an echo whose client does not read", sent)
	}
	// b holds at most one receive window and one send buffer (in POOL chunks, which carry
	// a segment's 1460 bytes in 2560).
	snap := b.Stats()
	pool, _ := snap.Pool("PBUF_POOL")
	held := pool.Max*pool.Size + snap.Heap.Max - before.Heap.Max
	bound := 2 * (o.TCPMaxWnd + o.TCPSndBuf) * o.PbufPoolBufSize / 1460
	t.Logf("stalled after %d of %d bytes; echo side peak: %d POOL pbufs, heap %d bytes (bound %d)", sent, n, pool.Max, snap.Heap.Max, bound)
	if held > bound {
		t.Errorf("echo side held %d bytes at its peak; more than its windows (%d)", held, bound)
	}
	a.Callback(s.release)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("echo did not finish after the client started reading")
	}
	var sum [32]byte
	s.h.Sum(sum[:0])
	if s.recvd != n || sum != tcpapp.PatternSum(n, 9) {
		t.Fatalf("echo returned %d bytes (sha %x), want %d", s.recvd, sum[:4], n)
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/internal/tcpapp"
)

// dial connects from a side to dst within opTimeout.
func dial(from *side, dst netip.AddrPort) (*endpoint.TCPConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return from.n.DialContextTCPAddrPort(ctx, dst)
}

// errCorrupt marks data that arrived but is not what was sent: the worst failure.
var errCorrupt = errors.New("corrupt")

// bufs is one worker's scratch: what it reads into and the pattern it compares with.
type bufs struct {
	data, want []byte
}

func newBufs() *bufs { return &bufs{data: make([]byte, 64<<10), want: make([]byte, 64<<10)} }

// writePattern writes n bytes of the pattern of seed from stream offset off, each Write
// with its own deadline. It returns the bytes written.
func writePattern(c net.Conn, seed uint64, off, n int64, b *bufs) (int64, error) {
	done := int64(0)
	for done < n {
		k := int(min(int64(len(b.data)), n-done))
		tcpapp.FillPattern(b.data[:k], seed, off+done)
		c.SetWriteDeadline(time.Now().Add(opTimeout))
		w, err := c.Write(b.data[:k])
		done += int64(w)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// check compares got with the pattern of seed at stream offset off.
func check(got []byte, seed uint64, off int64, b *bufs) error {
	want := b.want[:len(got)]
	tcpapp.FillPattern(want, seed, off)
	if bytes.Equal(got, want) {
		return nil
	}
	i := 0
	for got[i] == want[i] {
		i++
	}
	return fmt.Errorf("%w: byte %d of the stream is %#02x, want %#02x (%d-byte read at offset %d)",
		errCorrupt, off+int64(i), got[i], want[i], len(got), off)
}

// readPattern reads exactly n bytes, checking them against the pattern of seed from stream
// offset off; count receives every checked byte. Each Read has its own deadline.
func readPattern(c net.Conn, seed uint64, off, n int64, b *bufs, count func(int)) (int64, error) {
	done := int64(0)
	for done < n {
		k := int(min(int64(len(b.data)), n-done))
		c.SetReadDeadline(time.Now().Add(opTimeout))
		r, err := c.Read(b.data[:k])
		if r > 0 {
			if cerr := check(b.data[:r], seed, off+done, b); cerr != nil {
				return done, cerr
			}
			done += int64(r)
			count(r)
		}
		if err == io.EOF && done < n {
			return done, fmt.Errorf("EOF after %d of %d bytes", done, n)
		}
		if err != nil && err != io.EOF {
			return done, err
		}
	}
	return done, nil
}

// expectEOF reads once more and wants the peer's FIN, not data.
func expectEOF(c net.Conn, b *bufs) error {
	c.SetReadDeadline(time.Now().Add(opTimeout))
	n, err := c.Read(b.data[:1])
	switch {
	case n > 0:
		return fmt.Errorf("%w: data after the end of the message", errCorrupt)
	case err == io.EOF:
		return nil
	case err == nil:
		return errors.New("empty read instead of EOF")
	}
	return fmt.Errorf("waiting for EOF: %w", err)
}

// readFull is io.ReadFull with one deadline.
func readFull(c net.Conn, b []byte) error {
	c.SetReadDeadline(time.Now().Add(opTimeout))
	_, err := io.ReadFull(c, b)
	return err
}

// writeFull writes b with one deadline.
func writeFull(c net.Conn, b []byte) error {
	c.SetWriteDeadline(time.Now().Add(opTimeout))
	_, err := c.Write(b)
	return err
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// peerReset reports a reset: a server sees one when its client gave up (and reported why).
func peerReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// resetByPeer reports what a writer may see after its peer reset the connection.
func resetByPeer(err error) bool {
	return peerReset(err) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENOTCONN)
}

// kindOf names a failure by its error: a deadline is a hang, wrong bytes are corruption.
func kindOf(prefix string, err error) string {
	switch {
	case errors.Is(err, errCorrupt):
		return "corrupt"
	case isTimeout(err):
		return prefix + " hang"
	}
	return prefix + " error"
}

// sizeLog is a size from 0 to max, log-uniform above 1 (small messages are as common as
// large ones), zero one time in 16.
func sizeLog(r *rand.Rand, max int) int64 {
	if r.IntN(16) == 0 {
		return 0
	}
	return int64(math.Exp(r.Float64() * math.Log(float64(max))))
}

// rng returns the generator of one worker: a pure function of the run's seed, the worker's
// kind and its index.
func (s *soak) rng(kind, i int) *rand.Rand {
	return rand.New(rand.NewPCG(s.cfg.Seed, uint64(kind)<<32|uint64(i)))
}

// Worker kinds for rng.
const (
	rngChurn = iota + 1
	rngStream
	rngUDP
)

// pair returns the dialing and the listening side for worker i: alternate directions.
func (s *soak) pair(i int) (from, to *side) {
	if i%2 == 0 {
		return s.a, s.b
	}
	return s.b, s.a
}

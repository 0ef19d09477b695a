package stacktest

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

// PatternByte is byte off of the stream of seed that Transfer sends: a byte moved, lost or
// repeated shows at its offset.
func PatternByte(seed byte, off int64) byte { return byte(off*7+off>>8) ^ seed }

// FillPattern fills b with the stream of seed from offset off.
func FillPattern(b []byte, seed byte, off int64) {
	for i := range b {
		b[i] = PatternByte(seed, off+int64(i))
	}
}

// Conn is what Transfer needs of a connection: a net.Conn, a netconn.TCPConn, an
// endpoint.TCPConn. CloseWrite, when it has one, half-closes after the data.
type Conn interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// Transfer moves n bytes of the pattern of seed from w to r and fails the test unless r
// delivers exactly those bytes and then EOF: w writes and half-closes (CloseWrite), r is
// read to EOF at the same time. Every read and write has a deadline d from now, so a stall
// fails the test (with the evidence of OnFail, if registered) instead of hanging it; the
// message says how far each side got and the first byte that differs.
func Transfer(t testing.TB, w, r Conn, n int64, seed byte, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	if err := w.SetWriteDeadline(deadline); err != nil {
		t.Fatalf("SetWriteDeadline: %v", err)
	}
	if err := r.SetReadDeadline(deadline); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	werr := make(chan error, 1)
	go func() { werr <- writePattern(w, n, seed) }()
	got, rerr := checkPattern(r, n, seed)
	if err := <-werr; err != nil {
		t.Errorf("transfer of %d bytes: writer: %v", n, err)
	}
	if rerr != nil {
		t.Errorf("transfer of %d bytes: reader after %d bytes: %v", n, got, rerr)
	}
}

// writePattern writes n bytes of the pattern of seed to w, then half-closes it.
func writePattern(w Conn, n int64, seed byte) error {
	buf := make([]byte, 32<<10)
	for off := int64(0); off < n; {
		b := buf[:min(int64(len(buf)), n-off)]
		FillPattern(b, seed, off)
		m, err := w.Write(b)
		off += int64(m)
		if err != nil {
			return fmt.Errorf("after %d of %d bytes: %w", off, n, err)
		}
	}
	if cw, ok := w.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return w.Close()
}

// checkPattern reads r to EOF and compares what arrives with n bytes of the pattern of seed;
// it returns how many bytes arrived.
func checkPattern(r io.Reader, n int64, seed byte) (int64, error) {
	buf := make([]byte, 32<<10)
	var got int64
	for {
		m, err := r.Read(buf)
		for i, b := range buf[:m] {
			off := got + int64(i)
			if off >= n {
				return off, fmt.Errorf("more than the %d bytes sent", n)
			}
			if want := PatternByte(seed, off); b != want {
				return off, fmt.Errorf("byte %d is %#x, want %#x", off, b, want)
			}
		}
		got += int64(m)
		if errors.Is(err, io.EOF) {
			if got != n {
				return got, fmt.Errorf("EOF after %d of %d bytes", got, n)
			}
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

// Connect runs dial while accept waits for the connection, and returns both ends, each with
// deadline d (from now) for its reads and writes and closed after the evidence when the test
// ends (ev.Close). It fails the test if either call fails or nothing is accepted within d;
// the caller closes its listener (which releases an accept still waiting).
func Connect[C Conn](t testing.TB, ev *Evidence, d time.Duration, dial, accept func() (C, error)) (client, server C) {
	t.Helper()
	type res struct {
		c   C
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := accept()
		ch <- res{c, err}
	}()
	client, err := dial()
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ev.Close(client)
	var r res
	select {
	case r = <-ch:
	case <-time.After(d):
		t.Fatalf("nothing accepted within %v of the dial", d)
	}
	if r.err != nil {
		t.Fatalf("accept: %v", r.err)
	}
	ev.Close(r.c)
	deadline := time.Now().Add(d)
	for _, c := range []C{client, r.c} {
		if err := c.SetReadDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		if err := c.SetWriteDeadline(deadline); err != nil {
			t.Fatal(err)
		}
	}
	return client, r.c
}

package netconn_test

import (
	"io"
	"testing"
	"time"
	"unsafe"

	"github.com/wispstack/wisp/endpoint/netconn"
)

// Steady-state Read and Write allocate nothing (the whole path: netconn, TCP, IP, pipe).
func TestTCPReadWriteAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	a, b := newPair(t, tunnel())
	c, s := connPair(t, a, b, 0)
	wbuf := pattern(4096, 9)
	rbuf := make([]byte, 4096)
	round := func() {
		if _, err := c.Write(wbuf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, rbuf); err != nil {
			t.Fatal(err)
		}
	}
	for range 200 {
		round()
	}
	if n := testing.AllocsPerRun(500, round); n != 0 {
		t.Errorf("%.2f allocations per Write+Read round, want 0", n)
	}
	// Zero-copy receive too.
	recv := func() {
		if _, err := c.Write(wbuf); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(wbuf); {
			buf, err := s.Recv()
			if err != nil {
				t.Fatal(err)
			}
			got += buf.Len()
			buf.Release()
		}
	}
	for range 100 {
		recv()
	}
	if n := testing.AllocsPerRun(300, recv); n != 0 {
		t.Errorf("%.2f allocations per Write+Recv round, want 0", n)
	}
}

// UDP sends and reads allocate nothing in steady state.
func TestUDPAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	a, b := newPair(t, tunnel())
	srv, cli := udpPair(t, a, b, 0)
	srv.SetReadDeadline(time.Now().Add(time.Minute))
	zeroAllocs(t, "UDP", srv, cli)
}

// An idle TCPConn stays small: the struct plus two one-slot channels, no preallocated
// mailbox (target < 1 KB of Go heap).
func TestTCPConnSize(t *testing.T) {
	const chanSize = 96 // runtime.hchan
	size := int(unsafe.Sizeof(netconn.TCPConn{})) + 2*chanSize
	t.Logf("TCPConn %d bytes, UDPConn %d, TCPListener %d", unsafe.Sizeof(netconn.TCPConn{}), unsafe.Sizeof(netconn.UDPConn{}), unsafe.Sizeof(netconn.TCPListener{}))
	if size > 1024 {
		t.Errorf("an idle TCPConn takes %d bytes, want < 1024", size)
	}
}

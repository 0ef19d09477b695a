package netconn_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/transport/tcp"
)

// The embedded preset: a window of four segments (Recved after every segment's worth) and
// a two-slot mailbox (later chains are concatenated), byte-exact.
func TestTCPEmbedded(t *testing.T) {
	o := opt.Embedded()
	o.TCPRecvMboxSize = 2 // beyond two queued chains, they are concatenated
	a, b := newPair(t, o)
	c, s := connPair(t, a, b, 0)
	const n = 100_000
	data := pattern(n, 11)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		c.CloseWrite()
		errc <- err
	}()
	// Let the mailbox fill before reading, so chains get concatenated.
	time.Sleep(50 * time.Millisecond)
	if s.Buffered() == 0 {
		t.Error("nothing buffered after 50ms")
	}
	got, err := readAll(s, 333)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes (%v), want %d exact", len(got), err, n)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// CloseRead drops what is queued and what comes later without resetting; options reach
// the PCB.
func TestTCPCloseReadOptions(t *testing.T) {
	a, b := newPair(t, tunnel())
	c, s := connPair(t, a, b, 0)
	ka := netconn.KeepAlive{On: true, Idle: time.Second, Intvl: 2 * time.Second, Cnt: 3}
	if err := c.SetKeepAlive(ka); err != nil {
		t.Fatal(err)
	}
	if got := c.Sockopts().KeepAlive; got != ka {
		t.Errorf("KeepAlive %+v", got)
	}
	if err := c.SetKeepAlive(netconn.KeepAlive{On: true}); !errors.Is(err, errs.Val) {
		t.Errorf("SetKeepAlive without parameters: %v", err)
	}
	if !c.Sockopts().NoDelay {
		t.Error("NoDelay off by default")
	}
	c.SetNoDelay(false)
	if c.Sockopts().NoDelay {
		t.Error("SetNoDelay(false) ignored")
	}
	if i := c.Info(); i.State != tcp.StateEstablished {
		t.Errorf("Info state %v", i.State)
	}
	s.Write([]byte("dropped"))
	time.Sleep(20 * time.Millisecond)
	if c.Buffered() != 7 {
		t.Errorf("Buffered %d, want 7", c.Buffered())
	}
	c.CloseRead()
	if n, err := c.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read after CloseRead: %d %v", n, err)
	}
	s.Write([]byte("more"))
	time.Sleep(20 * time.Millisecond)
	// The connection still works the other way.
	c.Write([]byte("hello"))
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 10)
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("server read %q %v", buf[:n], err)
	}
	if err := s.Err(); err != nil {
		t.Errorf("server got an error: %v", err)
	}
}

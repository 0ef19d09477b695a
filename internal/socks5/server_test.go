package socks5

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/stack/stacktest"
)

// memListener is an in-memory net.Listener: Dial hands one end of a net.Pipe to Accept.
type memListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newMemListener() *memListener {
	return &memListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *memListener) Addr() net.Addr { return memAddr{} }

func (l *memListener) Dial() (net.Conn, error) {
	a, b := net.Pipe()
	select {
	case l.ch <- b:
		return a, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "mem" }

// upper is a destination that answers each read with its bytes in upper case.
func upper(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(bytes.ToUpper(buf[:n])); err != nil {
			return
		}
	}
}

// fakeNet is a dial function: "ok" hosts get an upper-case server over net.Pipe, others an
// error that names their host.
type fakeNet struct {
	mu     sync.Mutex
	dialed []string
	wg     sync.WaitGroup
}

var hostErrs = map[string]error{
	"198.18.0.5":   &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED},
	"198.18.0.6":   &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ENETUNREACH},
	"198.18.0.7":   &net.OpError{Op: "dial", Net: "tcp", Err: syscall.EHOSTUNREACH},
	"198.18.0.8":   &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ETIMEDOUT},
	"nx.example":   &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "nx.example", IsNotFound: true}},
	"fd42:5eed::9": errors.New("boom"),
}

func (f *fakeNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	f.dialed = append(f.dialed, network+" "+addr)
	f.mu.Unlock()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if err := hostErrs[host]; err != nil {
		return nil, err
	}
	if host == "slow.example" {
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
	}
	a, b := net.Pipe()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		upper(b)
	}()
	return a, nil
}

// startServer runs Serve on a memListener; the test's cleanup closes it and checks that
// Serve returned nil and that no goroutine is left.
func startServer(t *testing.T, s *Server) *memListener {
	t.Helper()
	stacktest.NoGoroutineLeak(t)
	l := newMemListener()
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	t.Cleanup(func() {
		l.Close()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Serve = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after its listener closed")
		}
	})
	return l
}

// handshake sends the greeting and a request and returns the reply.
func handshake(t *testing.T, c net.Conn, req []byte) []byte {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		// net.Pipe is synchronous: write while the test reads.
		c.Write(append([]byte{5, 1, MethodNoAuth}, req...))
	}()
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil || sel != [2]byte{5, 0} {
		t.Fatalf("method selection: %v %v", sel, err)
	}
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatalf("reply: %v", err)
	}
	rest := 4 + 2
	if hdr[3] == AtypIPv6 {
		rest = 16 + 2
	}
	tail := make([]byte, rest)
	if _, err := io.ReadFull(c, tail); err != nil {
		t.Fatalf("reply: %v", err)
	}
	return append(hdr, tail...)
}

func TestServeConnect(t *testing.T) {
	fn := &fakeNet{}
	l := startServer(t, &Server{Dial: fn.dial})
	t.Cleanup(fn.wg.Wait)
	for _, r := range []Request{
		{Cmd: CmdConnect, Addr: netip.MustParseAddr("198.18.0.2"), Port: 80},
		{Cmd: CmdConnect, Addr: netip.MustParseAddr("fd42:5eed::2"), Port: 443},
		{Cmd: CmdConnect, Domain: "www.example", Port: 8080},
		// 4-in-6 (ATYP X'04'): the dial goes to the IPv4 host.
		{Cmd: CmdConnect, Addr: netip.MustParseAddr("::ffff:198.18.0.3"), Port: 81},
	} {
		c, err := l.Dial()
		if err != nil {
			t.Fatal(err)
		}
		rep := handshake(t, c, r.Append(nil))
		// net.Pipe has no address: BND is 0.0.0.0:0.
		if want := AppendReply(nil, Succeeded, netip.AddrPort{}); !bytes.Equal(rep, want) {
			t.Fatalf("%s: reply %v, want %v", r.Target(), rep, want)
		}
		go c.Write([]byte("hello " + r.Target()))
		want := strings.ToUpper("hello " + r.Target())
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
			t.Fatalf("%s: relayed %q, %v; want %q", r.Target(), got, err, want)
		}
		c.Close()
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	want := []string{"tcp 198.18.0.2:80", "tcp [fd42:5eed::2]:443", "tcp www.example:8080", "tcp 198.18.0.3:81"}
	if !slices.Equal(fn.dialed, want) {
		t.Errorf("dialed %v, want %v", fn.dialed, want)
	}
}

// Each dial failure is answered with the reply code of its cause, then the connection
// closes.
func TestServeConnectErrors(t *testing.T) {
	fn := &fakeNet{}
	l := startServer(t, &Server{Dial: fn.dial, HandshakeTimeout: 200 * time.Millisecond})
	t.Cleanup(fn.wg.Wait)
	for _, c := range []struct {
		req  []byte
		want Reply
	}{
		{Request{Cmd: CmdConnect, Addr: netip.MustParseAddr("198.18.0.5"), Port: 80}.Append(nil), ConnectionRefused},
		{Request{Cmd: CmdConnect, Addr: netip.MustParseAddr("198.18.0.6"), Port: 80}.Append(nil), NetworkUnreachable},
		{Request{Cmd: CmdConnect, Addr: netip.MustParseAddr("198.18.0.7"), Port: 80}.Append(nil), HostUnreachable},
		{Request{Cmd: CmdConnect, Addr: netip.MustParseAddr("198.18.0.8"), Port: 80}.Append(nil), TTLExpired},
		{Request{Cmd: CmdConnect, Domain: "nx.example", Port: 80}.Append(nil), HostUnreachable},
		{Request{Cmd: CmdConnect, Domain: "slow.example", Port: 80}.Append(nil), TTLExpired},
		{Request{Cmd: CmdConnect, Addr: netip.MustParseAddr("fd42:5eed::9"), Port: 80}.Append(nil), GeneralFailure},
		{Request{Cmd: CmdBind, Addr: netip.MustParseAddr("198.18.0.2"), Port: 80}.Append(nil), CommandNotSupported},
		{Request{Cmd: CmdUDPAssociate, Addr: netip.MustParseAddr("198.18.0.2"), Port: 80}.Append(nil), CommandNotSupported},
		{[]byte{5, 1, 0, 2, 1, 2, 3, 4}, AddressNotSupported},
		{[]byte{5, 1, 0, 3, 0, 0, 80}, HostUnreachable},
	} {
		conn, err := l.Dial()
		if err != nil {
			t.Fatal(err)
		}
		rep := handshake(t, conn, c.req)
		if want := AppendReply(nil, c.want, netip.AddrPort{}); !bytes.Equal(rep, want) {
			t.Errorf("%v: reply %v (%v), want %v", c.req, rep, Reply(rep[1]), c.want)
		}
		if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("%v: after the reply: %d, %v; want EOF", c.req, n, err)
		}
		conn.Close()
	}
}

// A client offering only username/password gets X'FF' and the connection closes; a
// client that says nothing is dropped after HandshakeTimeout; a SOCKS 4 client is dropped.
func TestServeNegotiation(t *testing.T) {
	fn := &fakeNet{}
	l := startServer(t, &Server{Dial: fn.dial, HandshakeTimeout: 100 * time.Millisecond})
	c, _ := l.Dial()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go c.Write([]byte{5, 1, 2})
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil || sel != [2]byte{5, 0xff} {
		t.Fatalf("selection %v, %v; want 5 255", sel, err)
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after X'FF': %v, want EOF", err)
	}
	c.Close()

	silent, _ := l.Dial()
	silent.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent client: %v, want EOF", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("silent client dropped after %v", d)
	}
	silent.Close()

	v4, _ := l.Dial()
	v4.SetDeadline(time.Now().Add(5 * time.Second))
	go v4.Write([]byte{4, 1, 0, 80})
	if _, err := v4.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("SOCKS 4 client: %v, want EOF", err)
	}
	v4.Close()
	if len(fn.dialed) != 0 {
		t.Errorf("dialed %v", fn.dialed)
	}
}

// Closing the listener ends relays in progress and Serve returns with no goroutine left.
func TestServeCloseEndsRelays(t *testing.T) {
	fn := &fakeNet{}
	stacktest.NoGoroutineLeak(t)
	l := newMemListener()
	errc := make(chan error, 1)
	go func() { errc <- (&Server{Dial: fn.dial}).Serve(l) }()
	var conns []net.Conn
	for range 3 {
		c, err := l.Dial()
		if err != nil {
			t.Fatal(err)
		}
		handshake(t, c, Request{Cmd: CmdConnect, Addr: netip.MustParseAddr("198.18.0.2"), Port: 7}.Append(nil))
		conns = append(conns, c)
	}
	l.Close()
	if err := <-errc; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	for _, c := range conns {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("relay still open: %v", err)
		}
		c.Close()
	}
	fn.wg.Wait()
}

// errListener fails Accept with an error other than net.ErrClosed.
type errListener struct{}

func (errListener) Accept() (net.Conn, error) { return nil, syscall.EMFILE }
func (errListener) Close() error              { return nil }
func (errListener) Addr() net.Addr            { return memAddr{} }

func TestServeAcceptError(t *testing.T) {
	if err := Serve(errListener{}, nil); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("Serve = %v, want EMFILE", err)
	}
}

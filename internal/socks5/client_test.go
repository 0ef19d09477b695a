package socks5

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/stack/stacktest"
)

// memClient is a Client whose server is Serve on a memListener (net.Pipe conns).
func memClient(t *testing.T, fn *fakeNet) *Client {
	l := startServer(t, &Server{Dial: fn.dial, HandshakeTimeout: 2 * time.Second})
	t.Cleanup(fn.wg.Wait)
	return &Client{Server: "mem:1080", HandshakeTimeout: 5 * time.Second,
		DialServer: func(context.Context, string, string) (net.Conn, error) { return l.Dial() }}
}

// CONNECT to IPv4, IPv6 and domain names through the package's own server; the data is
// relayed both ways.
func TestClientConnect(t *testing.T) {
	fn := &fakeNet{}
	c := memClient(t, fn)
	ctx := context.Background()
	for _, dst := range []string{"198.18.0.2:80", "[fd42:5eed::2]:443", "www.example:8080", "[::ffff:198.18.0.3]:81"} {
		conn, err := c.Dial(ctx, "tcp", dst)
		if err != nil {
			t.Fatalf("%s: %v", dst, err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		go conn.Write([]byte("hi " + dst))
		want := strings.ToUpper("hi " + dst)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != want {
			t.Fatalf("%s: %q, %v", dst, got, err)
		}
		conn.Close()
	}
	conn, err := c.DialAddrPort(ctx, netip.MustParseAddrPort("[fd42:5eed::4]:22"))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	fn.mu.Lock()
	defer fn.mu.Unlock()
	want := "tcp 198.18.0.2:80,tcp [fd42:5eed::2]:443,tcp www.example:8080,tcp 198.18.0.3:81,tcp [fd42:5eed::4]:22"
	if got := strings.Join(fn.dialed, ","); got != want {
		t.Errorf("dialed %s, want %s", got, want)
	}
}

// A refusal is a *ReplyError in a *net.OpError, and unwraps to the errno of its code.
func TestClientRefused(t *testing.T) {
	fn := &fakeNet{}
	c := memClient(t, fn)
	for _, x := range []struct {
		dst   string
		rep   Reply
		errno syscall.Errno
	}{
		{"198.18.0.5:1", ConnectionRefused, syscall.ECONNREFUSED},
		{"198.18.0.6:1", NetworkUnreachable, syscall.ENETUNREACH},
		{"198.18.0.7:1", HostUnreachable, syscall.EHOSTUNREACH},
		{"198.18.0.8:1", TTLExpired, syscall.ETIMEDOUT},
		{"nx.example:1", HostUnreachable, syscall.EHOSTUNREACH},
		{"[fd42:5eed::9]:1", GeneralFailure, 0},
	} {
		_, err := c.Dial(context.Background(), "tcp", x.dst)
		var re *ReplyError
		var op *net.OpError
		if !errors.As(err, &re) || re.Reply != x.rep || !errors.As(err, &op) || op.Op != "dial" {
			t.Errorf("%s: %v, want reply %v in a *net.OpError", x.dst, err, x.rep)
			continue
		}
		if x.errno != 0 && !errors.Is(err, x.errno) {
			t.Errorf("%s: %v is not %v", x.dst, err, x.errno)
		}
		if x.errno == 0 && errors.Unwrap(re) != nil {
			t.Errorf("%s: general failure unwraps to %v", x.dst, errors.Unwrap(re))
		}
	}
	if _, err := c.Dial(context.Background(), "tcp", "no-port"); err == nil {
		t.Error("Dial without a port succeeded")
	}
}

// fakeServer runs answer on every connection the client opens (over net.Pipe).
func fakeServer(t *testing.T, timeout time.Duration, answer func(net.Conn)) *Client {
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	return &Client{Server: "fake:1080", HandshakeTimeout: timeout,
		DialServer: func(context.Context, string, string) (net.Conn, error) {
			a, b := net.Pipe()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer b.Close()
				b.SetDeadline(time.Now().Add(5 * time.Second))
				answer(b)
			}()
			return a, nil
		}}
}

// readGreetingAndRequest reads what a no-auth client sends before the reply.
func readGreetingAndRequest(c net.Conn) (Request, error) {
	if _, err := ReadGreeting(c); err != nil {
		return Request{}, err
	}
	if _, err := c.Write([]byte{5, 0}); err != nil {
		return Request{}, err
	}
	return ReadRequest(c)
}

// A server that dies, answers garbage or falls silent ends in a clear error, never a hang.
func TestClientBadServer(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	for _, x := range []struct {
		name   string
		answer func(net.Conn)
		is     error
	}{
		{"closes at once", func(c net.Conn) {}, io.ErrClosedPipe}, // over TCP: EPIPE, ECONNRESET or EOF
		{"closes after the greeting", func(c net.Conn) { ReadGreeting(c) }, ErrProtocol},
		{"HTTP", func(c net.Conn) {
			ReadGreeting(c)
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
		}, ErrProtocol},
		{"method not offered", func(c net.Conn) { ReadGreeting(c); c.Write([]byte{5, 2}) }, ErrProtocol},
		{"no acceptable method", func(c net.Conn) { ReadGreeting(c); c.Write([]byte{5, 0xff}) }, ErrAuth},
		{"dies before the reply", func(c net.Conn) { readGreetingAndRequest(c) }, ErrProtocol},
		{"half a reply", func(c net.Conn) { readGreetingAndRequest(c); c.Write([]byte{5, 0, 0, 1, 198}) }, ErrProtocol},
		{"reply of version 4", func(c net.Conn) {
			readGreetingAndRequest(c)
			c.Write([]byte{4, 0, 0, 1, 0, 0, 0, 0, 0, 0})
		}, ErrProtocol},
		{"bad address type", func(c net.Conn) {
			readGreetingAndRequest(c)
			c.Write([]byte{5, 0, 0, 9, 0, 0, 0, 0, 0, 0})
		}, ErrProtocol},
		{"silent", func(c net.Conn) { readGreetingAndRequest(c); io.Copy(io.Discard, c) }, os.ErrDeadlineExceeded},
	} {
		c := fakeServer(t, 300*time.Millisecond, x.answer)
		start := time.Now()
		conn, err := c.Dial(context.Background(), "tcp", "198.18.0.2:80")
		if err == nil {
			conn.Close()
		}
		if !errors.Is(err, x.is) {
			t.Errorf("%s: %v, want %v", x.name, err, x.is)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: took %v", x.name, d)
		}
	}
}

// A cancelled context ends a handshake at once; its deadline bounds it.
func TestClientContext(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	c := fakeServer(t, time.Minute, func(c net.Conn) { readGreetingAndRequest(c); io.Copy(io.Discard, c) })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Dial(ctx, "tcp", "198.18.0.2:80")
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Errorf("cancelled: %v after %v", err, time.Since(start))
	}
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.Dial(ctx, "tcp", "198.18.0.2:80")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("deadline: %v", err)
	}
}

// RFC 1929: the username and password go to a server that picks X'02'; a refusal is ErrAuth.
func TestClientUserPass(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	server := func(ok bool) func(net.Conn) {
		return func(c net.Conn) {
			m, err := ReadGreeting(c)
			if err != nil || !bytes.Equal(m, []byte{0, 2}) {
				t.Errorf("methods %v, %v", m, err)
				return
			}
			c.Write([]byte{5, 2})
			want := []byte{1, 5, 'a', 'l', 'i', 'c', 'e', 3, 'p', 'w', 'd'}
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
				t.Errorf("subnegotiation %v, %v", got, err)
				return
			}
			if !ok {
				c.Write([]byte{1, 1})
				return
			}
			c.Write([]byte{1, 0})
			ReadRequest(c)
			c.Write(AppendReply(nil, Succeeded, netip.MustParseAddrPort("198.18.0.1:4000")))
		}
	}
	c := fakeServer(t, time.Second, server(true))
	c.Username, c.Password = "alice", "pwd"
	conn, err := c.Dial(context.Background(), "tcp", "198.18.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	c = fakeServer(t, time.Second, server(false))
	c.Username, c.Password = "alice", "pwd"
	if _, err := c.Dial(context.Background(), "tcp", "198.18.0.2:80"); !errors.Is(err, ErrAuth) {
		t.Errorf("refused password: %v", err)
	}
}

func TestReadReply(t *testing.T) {
	for _, x := range []struct {
		wire []byte
		rep  Reply
		bnd  string
		err  bool
	}{
		{[]byte{5, 0, 0, 1, 198, 18, 0, 1, 0x9c, 0x40}, Succeeded, "198.18.0.1:40000", false},
		{append(append([]byte{5, 0, 0, 4}, netip.MustParseAddr("fd42:5eed::1").AsSlice()...), 0, 2), Succeeded, "[fd42:5eed::1]:2", false},
		{append([]byte{5, 0, 0, 3, 4}, "host\x00\x50"...), Succeeded, "invalid AddrPort", false},
		{[]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}, ConnectionRefused, "0.0.0.0:0", false},
		{[]byte{5, 1, 0, 0}, GeneralFailure, "invalid AddrPort", false}, // a failure with a bad address
		{[]byte{5, 0, 0, 1, 1}, 0, "", true},
		{[]byte{0x48, 0x54, 0x54, 0x50}, 0, "", true},
	} {
		rep, bnd, err := ReadReply(bytes.NewReader(x.wire))
		if x.err {
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("%x: %v, want ErrProtocol", x.wire, err)
			}
			continue
		}
		if err != nil || rep != x.rep || bnd.String() != x.bnd {
			t.Errorf("%x: %v %v %v, want %v %v", x.wire, rep, bnd, err, x.rep, x.bnd)
		}
	}
}

func FuzzReadReply(f *testing.F) {
	f.Add([]byte{5, 0, 0, 1, 198, 18, 0, 1, 0x9c, 0x40})
	f.Add(append([]byte{5, 0, 0, 3, 4}, "host\x00\x50"...))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		rep, bnd, err := ReadReply(r)
		if err == nil && rep == Succeeded && bnd.Addr().IsValid() {
			// An address reply re-encodes to what was read.
			n := len(b) - r.Len()
			if got := AppendReply(nil, rep, bnd); !bytes.Equal(got[4:], b[4:n]) && b[3] != AtypIPv6 {
				t.Fatalf("%x re-encodes as %x", b[:n], got)
			}
		}
	})
}

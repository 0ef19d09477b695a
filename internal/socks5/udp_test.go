package socks5

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/stack/stacktest"
)

// Byte fixtures from RFC 1928 §7's layout.
var udpFixtures = []struct {
	name string
	wire []byte
	h    UDPHeader
}{
	{"IPv4", []byte{0, 0, 0, 1, 198, 18, 0, 7, 0, 53}, UDPHeader{Addr: netip.MustParseAddr("198.18.0.7"), Port: 53}},
	{"IPv6", append(append([]byte{0, 0, 0, 4}, netip.MustParseAddr("fd42:5eed::7").AsSlice()...), 0x11, 0x5c),
		UDPHeader{Addr: netip.MustParseAddr("fd42:5eed::7"), Port: 4444}},
	{"domain", append(append([]byte{0, 0, 0, 3, 7}, "dns.lan"...), 0, 53), UDPHeader{Domain: "dns.lan", Port: 53}},
	{"fragment 1", []byte{0, 0, 1, 1, 198, 18, 0, 7, 0, 53}, UDPHeader{Frag: 1, Addr: netip.MustParseAddr("198.18.0.7"), Port: 53}},
}

func TestUDPHeader(t *testing.T) {
	for _, f := range udpFixtures {
		b := append(append([]byte{}, f.wire...), "data"...)
		h, n, err := ParseUDPHeader(b)
		if err != nil || h != f.h || n != len(f.wire) {
			t.Errorf("%s: ParseUDPHeader = %+v, %d, %v; want %+v, %d", f.name, h, n, err, f.h, len(f.wire))
		}
		if got := f.h.Append(nil); !bytes.Equal(got, f.wire) {
			t.Errorf("%s: Append = %x, want %x", f.name, got, f.wire)
		}
	}
	for _, bad := range [][]byte{nil, {0, 0, 0}, {0, 0, 0, 1, 1, 2, 3, 4, 0}, {0, 0, 0, 4, 1}, {0, 0, 0, 3, 0, 0, 53},
		{0, 0, 0, 3, 5, 'a', 0, 53}, {0, 0, 0, 2, 1, 2, 3, 4, 0, 53}} {
		if _, _, err := ParseUDPHeader(bad); !errors.Is(err, ErrUDPHeader) {
			t.Errorf("%x: %v, want ErrUDPHeader", bad, err)
		}
	}
	ip := UDPHeader{Addr: netip.MustParseAddr("198.18.0.7"), Port: 53}
	buf := ip.Append(make([]byte, 0, MaxUDPHeader))
	if n := testing.AllocsPerRun(100, func() {
		buf = ip.Append(buf[:0])
		if _, _, err := ParseUDPHeader(buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Append+ParseUDPHeader of an address allocate %v times", n)
	}
}

func FuzzParseUDPHeader(f *testing.F) {
	for _, fx := range udpFixtures {
		f.Add(fx.wire)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseUDPHeader(b)
		if err != nil {
			return
		}
		if n > len(b) || n > MaxUDPHeader {
			t.Fatalf("header length %d of %d bytes", n, len(b))
		}
		// A parsed header re-encodes to its bytes, RSV aside.
		if got := h.Append(nil); !bytes.Equal(got[2:], b[2:n]) {
			t.Fatalf("%x re-encodes as %x", b[:n], got)
		}
	})
}

// udpServer is a fake SOCKS server for UDP ASSOCIATE on loopback: its relay answers every
// datagram with the data in upper case from the destination it was sent to, and it closes
// the association when the client closes the TCP connection (or, with endAfter, after that
// many datagrams).
type udpServer struct {
	ln       net.Listener
	wg       sync.WaitGroup
	endAfter int
	mu       sync.Mutex
	conns    []net.Conn // closed at cleanup, for a test that ends early
}

func startUDPServer(t *testing.T, network, addr string, endAfter int) *udpServer {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("loopback %s: %v", addr, err)
	}
	s := &udpServer{ln: ln, endAfter: endAfter}
	s.wg.Add(1)
	go s.serve(t)
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *udpServer) serve(t *testing.T) {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			req, err := readGreetingAndRequest(c)
			if err != nil || req.Cmd != CmdUDPAssociate {
				t.Errorf("request %+v, %v", req, err)
				return
			}
			host := addrPortOf(c.LocalAddr()).Addr()
			relay, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(host, 0)))
			if err != nil {
				t.Error(err)
				return
			}
			defer relay.Close()
			// BND.ADDR unspecified: the client must take the server's address.
			unspec := netip.IPv4Unspecified()
			if host.Is6() {
				unspec = netip.IPv6Unspecified()
			}
			c.Write(AppendReply(nil, Succeeded, netip.AddrPortFrom(unspec, relay.LocalAddr().(*net.UDPAddr).AddrPort().Port())))
			go func() { io.Copy(io.Discard, c); relay.Close() }()
			buf := make([]byte, 70000)
			for i := 0; s.endAfter == 0 || i < s.endAfter; i++ {
				n, from, err := relay.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				h, hn, err := ParseUDPHeader(buf[:n])
				if err != nil {
					t.Errorf("relay got %x: %v", buf[:n], err)
					continue
				}
				// Garbage first, which the client must drop, then the answer.
				relay.WriteToUDPAddrPort([]byte{0, 0, 0, 9}, from)
				relay.WriteToUDPAddrPort(append(UDPHeader{Frag: 1, Addr: h.Addr, Port: h.Port}.Append(nil), 'x'), from)
				out := append(h.Append(nil), bytes.ToUpper(buf[hn:n])...)
				relay.WriteToUDPAddrPort(out, from)
			}
			// Ending: the client's socket closes with the association, so give the last
			// answer time to be read.
			time.Sleep(200 * time.Millisecond)
		}()
	}
}

func TestClientAssociate(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	for _, srv := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		s := startUDPServer(t, srv.network, srv.addr, 0)
		c := &Client{Server: s.ln.Addr().String(), HandshakeTimeout: 5 * time.Second}
		u, err := c.Associate(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		u.SetDeadline(time.Now().Add(5 * time.Second))
		for _, dst := range []string{"198.18.0.9:53", "[fd42:5eed::9]:4444"} {
			d := netip.MustParseAddrPort(dst)
			if _, err := u.WriteToAddrPort([]byte("query "+dst), d); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 2048)
			n, from, err := u.ReadFromAddrPort(buf)
			if err != nil || from != d || string(buf[:n]) != strings.ToUpper("query "+dst) {
				t.Fatalf("%s via %s: %q from %v, %v", dst, srv.addr, buf[:n], from, err)
			}
		}
		// A domain name, through WriteTo with a non-UDP net.Addr: the relay answers from it,
		// which the client drops (it has no address to report).
		if _, err := u.WriteTo([]byte("x"), hostAddr{"udp", "dns.lan:53"}); err != nil {
			t.Fatal(err)
		}
		if _, err := u.WriteTo([]byte("big"), net.UDPAddrFromAddrPort(netip.MustParseAddrPort("198.18.0.9:7"))); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		n, from, err := u.ReadFrom(buf)
		if err != nil || from.String() != "198.18.0.9:7" || string(buf[:n]) != "BIG" {
			t.Fatalf("after a domain: %q from %v, %v", buf[:n], from, err)
		}
		// Per datagram sent: the 4-byte garbage and the fragment (the domain answer too).
		if got := u.Drops(); got != 2*4+1 {
			t.Errorf("Drops = %d, want 9", got)
		}
		if err := u.Close(); err != nil {
			t.Error(err)
		}
	}
}

// The server ends the association (closes its TCP connection): reads end with
// ErrAssociationEnded, not a hang.
func TestClientAssociationEnded(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	s := startUDPServer(t, "tcp4", "127.0.0.1:0", 1)
	c := &Client{Server: s.ln.Addr().String(), HandshakeTimeout: 5 * time.Second}
	u, err := c.Associate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(5 * time.Second))
	u.WriteToAddrPort([]byte("a"), netip.MustParseAddrPort("198.18.0.9:53"))
	buf := make([]byte, 2048)
	if _, _, err := u.ReadFromAddrPort(buf); err != nil {
		t.Fatal(err)
	}
	_, _, err = u.ReadFromAddrPort(buf)
	if !errors.Is(err, ErrAssociationEnded) {
		t.Errorf("read after the server left: %v", err)
	}
}

// A server that answers UDP ASSOCIATE with "command not supported" (the package's own
// server does) is a *ReplyError.
func TestClientAssociateRefused(t *testing.T) {
	fn := &fakeNet{}
	c := memClient(t, fn)
	_, err := c.Associate(context.Background())
	var re *ReplyError
	if !errors.As(err, &re) || re.Reply != CommandNotSupported {
		t.Errorf("Associate = %v, want command not supported", err)
	}
}

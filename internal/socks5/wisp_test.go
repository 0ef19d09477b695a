package socks5

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
)

// wispPair is two wisp stacks joined by an in-memory IP pipe: a (the proxy's side: SOCKS
// listener and outgoing dials) and b (the client and the destinations).
func wispPair(t *testing.T) (a, b *endpoint.Net) {
	t.Helper()
	stacktest.NoGoroutineLeak(t)
	pa, pb := pipe.New(pipe.Config{MTU: 1500, Medium: link.MediumIP})
	var nets [2]*endpoint.Net
	for i, c := range []struct {
		ep    link.Endpoint
		addrs []string
	}{{pa, []string{"198.18.0.1/24", "fd42:5eed::1/64"}}, {pb, []string{"198.18.0.2/24", "fd42:5eed::2/64"}}} {
		s, err := stack.New(stack.Config{Options: opt.Tunnel(), Seed: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		stacktest.Closed(t, s)
		var pfx []netip.Prefix
		for _, a := range c.addrs {
			pfx = append(pfx, netip.MustParsePrefix(a))
		}
		if _, err := s.AddNetif(c.ep, stack.NetifConfig{Name: "p0", Addrs: pfx}); err != nil {
			t.Fatal(err)
		}
		nets[i] = endpoint.New(s)
	}
	return nets[0], nets[1]
}

// connect opens a SOCKS connection from b to the proxy at proxy, asking for target.
func connect(t *testing.T, b *endpoint.Net, proxy string, req Request) (net.Conn, []byte) {
	t.Helper()
	c, err := b.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append([]byte{5, 1, 0}, req.Append(nil)...)); err != nil {
		t.Fatal(err)
	}
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil || sel != [2]byte{5, 0} {
		t.Fatalf("selection %v %v", sel, err)
	}
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatal(err)
	}
	n := 4 + 2
	if hdr[3] == AtypIPv6 {
		n = 16 + 2
	}
	tail := make([]byte, n)
	if _, err := io.ReadFull(c, tail); err != nil {
		t.Fatal(err)
	}
	return c, append(hdr, tail...)
}

// Over real TCP on wisp: a client on b reaches a server on b through the proxy on a,
// byte-exact both ways, with the client's half-close passed on; BND.ADDR is the proxy's
// outgoing address; a closed port is refused (a real RST); no route is network
// unreachable.
func TestServeOverWisp(t *testing.T) {
	a, b := wispPair(t)
	pl, err := a.Listen("tcp", "198.18.0.1:1080")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- Serve(pl, a.DialContext) }()
	defer func() {
		pl.Close()
		if err := <-errc; err != nil {
			t.Errorf("Serve = %v", err)
		}
	}()

	// The destination hashes what it receives until EOF, then answers with its length
	// and SHA-256 followed by 1 MiB of its own.
	dl, err := b.Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	srvDone := make(chan error, 1)
	go func() {
		for range 2 {
			c, err := dl.Accept()
			if err != nil {
				srvDone <- err
				return
			}
			h := sha256.New()
			n, err := io.Copy(h, c)
			if err != nil {
				srvDone <- err
				return
			}
			out := binary.BigEndian.AppendUint64(nil, uint64(n))
			out = h.Sum(out)
			out = append(out, bytes.Repeat([]byte{0x5a}, 1<<20)...)
			_, err = c.Write(out)
			c.Close()
			if err != nil {
				srvDone <- err
				return
			}
		}
		srvDone <- nil
	}()

	payload := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	want := sha256.Sum256(payload)
	for _, dst := range []netip.Addr{netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("fd42:5eed::2")} {
		c, rep := connect(t, b, "198.18.0.1:1080", Request{Cmd: CmdConnect, Addr: dst, Port: 8080})
		if rep[1] != byte(Succeeded) {
			t.Fatalf("%v: reply %v", dst, Reply(rep[1]))
		}
		wantBnd := netip.MustParseAddr("198.18.0.1")
		if dst.Is6() {
			wantBnd = netip.MustParseAddr("fd42:5eed::1")
		}
		var bnd netip.Addr
		if rep[3] == AtypIPv4 {
			bnd = netip.AddrFrom4([4]byte(rep[4:8]))
		} else {
			bnd = netip.AddrFrom16([16]byte(rep[4:20]))
		}
		if bnd != wantBnd || binary.BigEndian.Uint16(rep[len(rep)-2:]) == 0 {
			t.Errorf("%v: BND %v port %d, want %v and a port", dst, bnd, binary.BigEndian.Uint16(rep[len(rep)-2:]), wantBnd)
		}
		wr := make(chan error, 1)
		go func() {
			_, err := c.Write(payload)
			if err == nil {
				err = c.(*endpoint.TCPConn).CloseWrite()
			}
			wr <- err
		}()
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("%v: read: %v", dst, err)
		}
		if err := <-wr; err != nil {
			t.Fatalf("%v: write: %v", dst, err)
		}
		if len(got) != 8+32+1<<20 || binary.BigEndian.Uint64(got) != uint64(len(payload)) || !bytes.Equal(got[8:40], want[:]) {
			t.Fatalf("%v: answer of %d bytes: %x", dst, len(got), got[:min(len(got), 40)])
		}
		c.Close()
	}
	if err := <-srvDone; err != nil {
		t.Fatal(err)
	}

	// Port 9 has no listener on b: b answers the SYN with RST, ECONNREFUSED at the proxy.
	c, rep := connect(t, b, "198.18.0.1:1080", Request{Cmd: CmdConnect, Addr: netip.MustParseAddr("198.18.0.2"), Port: 9})
	if Reply(rep[1]) != ConnectionRefused {
		t.Errorf("closed port: reply %v, want %v", Reply(rep[1]), ConnectionRefused)
	}
	c.Close()
	// The same port as 4-in-6 (ATYP X'04', ::ffff:198.18.0.2): the dial reaches b's IPv4
	// address, which refuses it too.
	c, rep = connect(t, b, "198.18.0.1:1080", Request{Cmd: CmdConnect, Addr: netip.MustParseAddr("::ffff:198.18.0.2"), Port: 9})
	if Reply(rep[1]) != ConnectionRefused {
		t.Errorf("4-in-6 closed port: reply %v, want %v", Reply(rep[1]), ConnectionRefused)
	}
	c.Close()
	// 198.18.99.0/24 is off every route of a: ENETUNREACH.
	c, rep = connect(t, b, "198.18.0.1:1080", Request{Cmd: CmdConnect, Addr: netip.MustParseAddr("198.18.99.1"), Port: 80})
	if Reply(rep[1]) != NetworkUnreachable {
		t.Errorf("no route: reply %v, want %v", Reply(rep[1]), NetworkUnreachable)
	}
	c.Close()
	// wisp's endpoint has no resolver: a name fails with *net.DNSError, host unreachable.
	c, rep = connect(t, b, "198.18.0.1:1080", Request{Cmd: CmdConnect, Domain: "nx.example", Port: 80})
	if Reply(rep[1]) != HostUnreachable {
		t.Errorf("name: reply %v, want %v", Reply(rep[1]), HostUnreachable)
	}
	c.Close()
}

package netconn_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/stack"
)

// protoExp is an experimental IP protocol number (RFC 3692): no transport of the stack
// handles it, so only raw sockets see it.
const protoExp = 253

// A raw socket of protocol 253 on each stack, both families: payloads go across as sent,
// the receiver sees them from the transport header on with the sender's address.
func TestRawExchange(t *testing.T) {
	inBothFamilies(t, func(t *testing.T, fam int, a, b *stack.Stack) {
		srv, err := netconn.ListenRaw(b, protoExp, addrB[fam])
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		cli, err := netconn.DialRaw(a, protoExp, netip.Addr{}, addrB[fam])
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		if cli.V6() != (fam == 1) || cli.Proto() != protoExp || cli.RemoteAddr() != addrB[fam] {
			t.Fatalf("v6 %v proto %d raddr %v", cli.V6(), cli.Proto(), cli.RemoteAddr())
		}
		if fam == 1 {
			// RFC 3542 §3.1: the stack writes the checksum at the offset and verifies it.
			for _, c := range []*netconn.RawConn{srv, cli} {
				if err := c.SetChecksumOffset(2); err != nil {
					t.Fatal(err)
				}
			}
		} else if err := cli.SetChecksumOffset(2); !errors.Is(err, errs.Val) {
			t.Fatalf("IPv4 checksum offset: %v", err)
		}
		msg := []byte("\x01\x02\x00\x00raw payload")
		if _, err := cli.Write(msg); err != nil {
			t.Fatal(err)
		}
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, m, err := srv.ReadMsg(buf)
		if err != nil {
			t.Fatal(err)
		}
		if m.Src.Addr() != addrA[fam] || m.Dst != addrB[fam] || n != len(msg) || string(buf[4:n]) != "raw payload" {
			t.Fatalf("got % x from %+v", buf[:n], m)
		}
		if fam == 1 && buf[2] == 0 && buf[3] == 0 {
			t.Fatal("checksum not written")
		}
		// The answer back by WriteTo; a short buffer truncates.
		if _, err := srv.WriteTo([]byte("bk\x00\x00 again"), addrA[fam]); err != nil {
			t.Fatal(err)
		}
		cli.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, m, err = cli.ReadMsg(buf[:2])
		if err != nil || n != 2 || !m.Truncated || string(buf[:2]) != "bk" {
			t.Fatalf("truncated read %q %+v %v", buf[:n], m, err)
		}
		if _, err := srv.Write(msg); !errors.Is(err, errs.Conn) {
			t.Fatalf("unconnected Write: %v", err)
		}
		other := addrA[1-fam]
		if _, err := srv.WriteTo(msg, other); !errors.Is(err, errs.Val) {
			t.Fatalf("wrong family: %v", err)
		}
		// Close unblocks a reader; Close twice reports net.ErrClosed.
		closeReleasesRead(t, srv, func() error { _, _, err := srv.ReadFrom(buf); return err })
		if err := srv.Close(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("second Close: %v", err)
		}
	})
}

// The mailbox holds UDPRecvMboxSize packets; the rest are dropped and counted. A read
// deadline ends a wait.
func TestRawMailboxBound(t *testing.T) {
	o := tunnel()
	o.UDPRecvMboxSize = 3
	a, b := newPair(t, o)
	srv, err := netconn.ListenRaw(b, protoExp, netip.IPv4Unspecified())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := netconn.ListenRaw(a, protoExp, netip.IPv4Unspecified())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for i := range 6 {
		if _, err := cli.WriteTo([]byte{byte(i)}, addrB[0]); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Drops() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if srv.Drops() != 3 || srv.Buffered() != 1 {
		t.Fatalf("drops %d, next %d", srv.Drops(), srv.Buffered())
	}
	buf := make([]byte, 8)
	for i := range 3 {
		if n, from, err := srv.ReadFrom(buf); err != nil || n != 1 || buf[0] != byte(i) || from != addrA[0] {
			t.Fatalf("packet %d: % x from %v, %v", i, buf[:n], from, err)
		}
	}
	srv.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := srv.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	opts, err := srv.Sockopts()
	if err != nil || opts.TTL != 0 || opts.ChecksumOffset != -1 || opts.MulticastTTL != 1 || !opts.MulticastLoop {
		t.Fatalf("sockopts %+v %v", opts, err)
	}
	if err := srv.SetTTL(9); err != nil {
		t.Fatal(err)
	}
	if opts, _ = srv.Sockopts(); opts.TTL != 9 {
		t.Fatalf("TTL %d", opts.TTL)
	}
}

// An IPv6 extension header is no protocol for a raw socket; a socket needs a family.
func TestRawRefused(t *testing.T) {
	a, _ := newPair(t, tunnel())
	if _, err := netconn.ListenRaw(a, 44, netip.IPv6Unspecified()); !errors.Is(err, errs.Val) {
		t.Fatalf("fragment header: %v", err)
	}
	if _, err := netconn.ListenRaw(a, protoExp, netip.Addr{}); !errors.Is(err, errs.Val) {
		t.Fatalf("no family: %v", err)
	}
	if _, err := netconn.ListenRaw(a, protoExp, netip.MustParseAddr("198.18.0.9")); !errors.Is(err, errs.AddrNotAvail) {
		t.Fatalf("foreign address: %v", err)
	}
}

// When the stack closes, a blocked reader returns net.ErrClosed and Close still works.
func TestRawStackClose(t *testing.T) {
	a, _ := newPair(t, tunnel())
	c, err := netconn.ListenRaw(a, protoExp, netip.IPv6Unspecified())
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, _, err := c.ReadMsg(make([]byte, 8)); errc <- err }()
	time.Sleep(10 * time.Millisecond)
	a.Close()
	if err := waitErr(t, errc, "read released by the stack's Close"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after stack close: %v", err)
	}
	if _, err := c.WriteTo([]byte("x"), addrB[1]); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after stack close: %v", err)
	}
	c.Close()
}

// Raw sends and reads allocate nothing in steady state.
func TestRawAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	a, b := newPair(t, tunnel())
	srv, err := netconn.ListenRaw(b, protoExp, netip.IPv6Unspecified())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := netconn.DialRaw(a, protoExp, netip.Addr{}, addrB[1])
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv.SetReadDeadline(time.Now().Add(time.Minute))
	zeroAllocs(t, "raw", srv, cli)
}

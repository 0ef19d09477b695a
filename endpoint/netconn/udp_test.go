package netconn_test

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/errs"
)

// Datagrams both ways with their metadata, in both families; a short buffer truncates.
func TestUDPExchange(t *testing.T) {
	for fam, name := range fams {
		t.Run(name, func(t *testing.T) {
			a, b := newPair(t, tunnel())
			srv, cli := udpPair(t, a, b, fam)
			msg := pattern(1200, 5)
			if n, err := cli.Write(msg); n != len(msg) || err != nil {
				t.Fatalf("Write: %d %v", n, err)
			}
			srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 2000)
			n, m, err := srv.ReadMsg(buf)
			if err != nil || !bytes.Equal(buf[:n], msg) {
				t.Fatalf("ReadMsg: %d %v", n, err)
			}
			if m.Src != cli.LocalAddr() || m.Dst != addrB[fam] || m.IfIndex == 0 || m.Truncated {
				t.Errorf("meta %+v (client %v)", m, cli.LocalAddr())
			}
			if _, err := srv.WriteTo(msg[:100], m.Src); err != nil {
				t.Fatal(err)
			}
			cli.SetReadDeadline(time.Now().Add(5 * time.Second))
			short := make([]byte, 10)
			n, m, err = cli.ReadMsg(short)
			if err != nil || n != 10 || !m.Truncated || !bytes.Equal(short, msg[:10]) {
				t.Fatalf("truncated ReadMsg: %d %+v %v", n, m, err)
			}
			// Zero-copy.
			cli.Write(msg)
			d, m, err := srv.RecvDatagram()
			if err != nil || d.Len() != len(msg) || m.Src != cli.LocalAddr() {
				t.Fatalf("RecvDatagram: %v %+v", err, m)
			}
			var got []byte
			for _, v := range d.Bytes() {
				got = append(got, v...)
			}
			d.Release()
			if !bytes.Equal(got, msg) {
				t.Fatal("RecvDatagram: data differs")
			}
		})
	}
}

// The mailbox holds UDPRecvMboxSize datagrams; the rest are dropped and counted.
func TestUDPMboxDrops(t *testing.T) {
	o := tunnel()
	o.UDPRecvMboxSize = 4
	a, b := newPair(t, o)
	srv, cli := udpPair(t, a, b, 0)
	for i := range 10 {
		if _, err := cli.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Drops() < 6 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n, _ := srv.Queued(); n != 4 || srv.Drops() != 6 {
		t.Fatalf("queued %d, dropped %d; want 4 and 6", n, srv.Drops())
	}
	if srv.Buffered() != 1 {
		t.Errorf("Buffered %d, want 1", srv.Buffered())
	}
	for i := range 4 {
		var b [4]byte
		n, err := srv.Read(b[:])
		if n != 1 || err != nil || b[0] != byte(i) {
			t.Fatalf("datagram %d: %d %v %d", i, n, err, b[0])
		}
	}
	// The byte bound: one 1000-byte datagram fits 1500, the second does not.
	srv.SetReadBuffer(1500)
	cli.Write(make([]byte, 1000))
	cli.Write(make([]byte, 1000))
	for srv.Drops() < 7 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n, bytes := srv.Queued(); n != 1 || bytes != 1000 {
		t.Fatalf("queued %d datagrams, %d bytes; want 1 and 1000", n, bytes)
	}
}

// An ICMP port unreachable reaches a connected socket's next call and Err, once.
func TestUDPRefused(t *testing.T) {
	a, _ := newPair(t, tunnel())
	cli, err := netconn.DialUDP(a, netip.AddrPort{}, netip.AddrPortFrom(addrB[0], 9), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cli.Write([]byte("x"))
	cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := cli.Read(make([]byte, 10)); !errors.Is(err, errs.Refused) {
		t.Fatalf("Read: %v, want errs.Refused", err)
	}
	cli.Write([]byte("x"))
	deadline := time.Now().Add(5 * time.Second)
	var got error
	for got == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		got = cli.Err()
	}
	if !errors.Is(got, errs.Refused) || cli.Err() != nil {
		t.Fatalf("Err: %v", got)
	}
}

// Deadlines, Close from another goroutine and the stack's Close release a reader.
func TestUDPUnblock(t *testing.T) {
	a, _ := newPair(t, tunnel())
	c1, err := netconn.ListenUDP(a, netip.AddrPortFrom(addrA[0], 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	c1.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := c1.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read: %v", err)
	}
	c1.SetReadDeadline(time.Time{})
	c2, err := netconn.ListenUDP(a, netip.AddrPortFrom(addrA[1], 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	errc := make(chan error, 2)
	go func() { _, err := c1.Read(make([]byte, 1)); errc <- err }()
	go func() { _, _, err := c2.RecvDatagram(); errc <- err }()
	time.Sleep(30 * time.Millisecond)
	c1.Close()
	if err := waitErr(t, errc, "Read released by Close"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	a.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("after stack Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stack Close did not release the reader")
	}
	if _, err := c2.WriteTo([]byte("x"), netip.AddrPortFrom(addrB[0], 9)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after stack Close: %v", err)
	}
}

// Send errors come straight from the core.
func TestUDPSendErrors(t *testing.T) {
	a, _ := newPair(t, tunnel())
	c, err := netconn.ListenUDP(a, netip.AddrPortFrom(netip.IPv4Unspecified(), 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); !errors.Is(err, errs.Conn) {
		t.Errorf("Write unconnected: %v", err)
	}
	if _, err := c.WriteTo([]byte("x"), netip.MustParseAddrPort("198.18.0.255:9")); !errors.Is(err, errs.Access) {
		t.Errorf("broadcast without SO_BROADCAST: %v", err)
	}
	if _, err := c.WriteTo(make([]byte, 70000), netip.AddrPortFrom(addrB[0], 9)); !errors.Is(err, errs.MsgSize) {
		t.Errorf("oversize: %v", err)
	}
	if _, err := c.WriteTo([]byte("x"), netip.MustParseAddrPort("203.0.113.1:9")); !errors.Is(err, errs.NetUnreach) {
		t.Errorf("no route: %v", err)
	}
	if _, err := netconn.ListenUDP(a, netip.AddrPortFrom(addrB[0], 0), nil); !errors.Is(err, errs.AddrNotAvail) {
		t.Errorf("bind to a foreign address: %v", err)
	}
}

package netconn_test

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/wispstack/wisp/apps/doctor"
	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/stack"
)

// Datagrams both ways with their metadata, in both families; a short buffer truncates.
func TestUDPExchange(t *testing.T) {
	inBothFamilies(t, func(t *testing.T, fam int, a, b *stack.Stack) {
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
	// The live view and the doctor see the mailbox and its drops (stack.QueueStater).
	var seen bool
	for _, c := range b.Conns() {
		if c.Proto == "udp" && c.Local == srv.LocalAddr() {
			seen = true
			if c.RcvQueued != 4 || c.Pbufs != 4 || c.Drops != 6 {
				t.Errorf("Conns: %+v; want 4 bytes, 4 datagrams, 6 drops", c)
			}
		}
	}
	if !seen {
		t.Errorf("Conns lists no UDP PCB at %v", srv.LocalAddr())
	}
	in := b.DoctorInput()
	var named bool
	for _, f := range doctor.Diagnose(nil, &in) {
		named = named || f.Option == "UDPRecvMboxSize"
	}
	if !named {
		t.Errorf("no finding names UDPRecvMboxSize: %v", doctor.Diagnose(nil, &in))
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

// A socket that joined a group receives datagrams sent to it; after LeaveGroup (and after
// Close of the only member) the netif no longer accepts them.
func TestUDPMulticastJoinLeave(t *testing.T) {
	groups := []netip.Addr{netip.MustParseAddr("239.1.2.3"), netip.MustParseAddr("ff15::1234")}
	inBothFamilies(t, func(t *testing.T, fam int, a, b *stack.Stack) {
		g := groups[fam]
		srv := mcastMember(t, b, 5353, g)
		if err := srv.JoinGroup(addrB[fam], 0); err != errs.Val {
			t.Errorf("JoinGroup(unicast) = %v, want errs.Val", err)
		}
		cli := dialUDP(t, a, netip.AddrPortFrom(g, 5353))
		msg := pattern(300, 7)
		if _, err := cli.Write(msg); err != nil {
			t.Fatal(err)
		}
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1000)
		n, m, err := srv.ReadMsg(buf)
		if err != nil || n != len(msg) || m.Dst != g {
			t.Fatalf("ReadMsg: %d %+v %v", n, m, err)
		}
		if err := srv.LeaveGroup(g, 0); err != nil {
			t.Fatalf("LeaveGroup: %v", err)
		}
		if err := srv.LeaveGroup(g, 0); err != errs.Val {
			t.Errorf("second LeaveGroup = %v, want errs.Val", err)
		}
		if _, err := cli.Write(msg); err != nil {
			t.Fatal(err)
		}
		srv.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, _, err := srv.ReadMsg(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("after leave: %v, want a deadline", err)
		}
		// A membership still held at Close is dropped.
		if err := srv.JoinGroup(g, 0); err != nil {
			t.Fatal(err)
		}
		srv.Close()
		b.Lock()
		left := b.IP().Groups(nil)
		b.Unlock()
		for _, x := range left {
			if x == g {
				t.Errorf("group %v still joined after Close", g)
			}
		}
	})
}

// SetMulticastTTL(0) (IP_MULTICAST_TTL 0) is accepted: the datagram reaches a member on
// the sender's own stack, with TTL 0, and never the peer stack, which gets the next
// datagram (TTL 1) first.
func TestUDPMulticastTTLZero(t *testing.T) {
	groups := []netip.Addr{netip.MustParseAddr("239.1.2.4"), netip.MustParseAddr("ff15::4321")}
	inBothFamilies(t, func(t *testing.T, fam int, a, b *stack.Stack) {
		g := groups[fam]
		local, peer := mcastMember(t, a, 5354, g), mcastMember(t, b, 5354, g)
		cli := dialUDP(t, a, netip.AddrPortFrom(g, 5354))
		for _, bad := range []int{-1, 256} {
			if err := cli.SetMulticastTTL(bad); err != errs.Val {
				t.Errorf("SetMulticastTTL(%d) = %v, want errs.Val", bad, err)
			}
		}
		if err := cli.SetMulticastTTL(0); err != nil {
			t.Fatalf("SetMulticastTTL(0): %v", err)
		}
		if _, err := cli.Write([]byte("zero")); err != nil {
			t.Fatal(err)
		}
		if err := cli.SetMulticastTTL(1); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Write([]byte("one")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		read := func(c *netconn.UDPConn) (string, netconn.Meta) {
			t.Helper()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, m, err := c.ReadMsg(buf)
			if err != nil {
				t.Fatalf("ReadMsg: %v", err)
			}
			return string(buf[:n]), m
		}
		if s, m := read(local); s != "zero" || m.TTL != 0 || m.Dst != g {
			t.Fatalf("local member: %q %+v", s, m)
		}
		if s, m := read(local); s != "one" || m.TTL != 1 {
			t.Fatalf("local member, TTL 1: %q %+v", s, m)
		}
		if s, m := read(peer); s != "one" || m.TTL != 1 {
			t.Fatalf("peer got %q %+v first, want the TTL 1 datagram", s, m)
		}
	})
}

// UDP_SEGMENT on a netconn: a connected write of 5,000 bytes with a segment size of 1,200
// arrives as 5 datagrams (4 × 1,200 and 200), and WriteToFromSeg's size wins for its
// write; the option reads back and takes Linux's range only.
func TestUDPSegmentSize(t *testing.T) {
	inBothFamilies(t, func(t *testing.T, fam int, a, b *stack.Stack) {
		srv, cli := udpPair(t, a, b, fam)
		if err := cli.SetSegmentSize(-1); !errors.Is(err, errs.Val) {
			t.Errorf("SetSegmentSize(-1): %v", err)
		}
		if err := cli.SetSegmentSize(1200); err != nil {
			t.Fatal(err)
		}
		if n, err := cli.SegmentSize(); n != 1200 || err != nil {
			t.Fatalf("SegmentSize %d, %v", n, err)
		}
		msg := pattern(5000, 9)
		read := func(seg int) {
			t.Helper()
			srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 2000)
			for off := 0; off < len(msg); off += seg {
				n, m, err := srv.ReadMsg(buf)
				if err != nil || m.Truncated || !bytes.Equal(buf[:n], msg[off:min(off+seg, len(msg))]) {
					t.Fatalf("datagram at %d (segments of %d): %d bytes, %v", off, seg, n, err)
				}
			}
			if q, _ := srv.Queued(); q != 0 {
				t.Fatalf("%d datagrams too many", q)
			}
		}
		if n, err := cli.Write(msg); n != len(msg) || err != nil {
			t.Fatalf("Write: %d %v", n, err)
		}
		read(1200)
		if n, err := cli.WriteToFromSeg(msg, srv.LocalAddr(), netip.Addr{}, 0, 700); n != len(msg) || err != nil {
			t.Fatalf("WriteToFromSeg: %d %v", n, err)
		}
		read(700)
		if _, err := cli.WriteToFromSeg(msg, srv.LocalAddr(), netip.Addr{}, 0, 1<<16); !errors.Is(err, errs.Val) {
			t.Errorf("WriteToFromSeg with 65536: %v", err)
		}
		cli.Close()
		if _, err := cli.SegmentSize(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("SegmentSize after Close: %v", err)
		}
	})
}

package endpoint

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

func TestUDPEcho(t *testing.T) {
	p := newPair(t, pairConfig{})
	srv, err := p.nb.ListenPacket("udp", ":5353") // dual-stack
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		b := make([]byte, 2000)
		for {
			n, from, err := srv.ReadFrom(b)
			if err != nil {
				return
			}
			srv.WriteTo(b[:n], from) // from is v4-mapped for IPv4 peers: must be accepted
		}
	}()
	for fam, dst := range []string{"198.18.0.2:5353", "[fd42:5eed::2]:5353"} {
		c := dial(t, p.na, "udp", dst)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 10)
		n, err := c.Read(b)
		if err != nil || string(b[:n]) != "ping" {
			t.Fatalf("fam %d: %q %v", fam, b[:n], err)
		}
		c.Close()
	}
}

// A dual-stack UDP socket reports IPv4 senders v4-mapped (as Go does); IP_PKTINFO gives
// the destination address as a Linux control message x/net/ipv4 parses.
func TestUDPMappedAndPktInfo(t *testing.T) {
	p := newPair(t, pairConfig{})
	srv, err := p.nb.ListenUDP("udp", &net.UDPAddr{Port: 4000})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.SetsockoptInt(unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil {
		t.Fatal(err)
	}
	if v, err := srv.GetsockoptInt(unix.IPPROTO_IP, unix.IP_PKTINFO); v != 1 || err != nil {
		t.Fatal(v, err)
	}
	c, err := p.na.DialUDP("udp4", nil, &net.UDPAddr{IP: addrB[0].AsSlice(), Port: 4000})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, oob := make([]byte, 3), make([]byte, 64)
	n, oobn, flags, from, err := srv.ReadMsgUDPAddrPort(b, oob)
	if err != nil || n != 3 || flags&unix.MSG_TRUNC == 0 {
		t.Fatalf("n %d flags %x %v", n, flags, err)
	}
	if !from.Addr().Is4In6() || from.Addr().Unmap() != addrA[0] {
		t.Fatalf("from %v", from)
	}
	var cm ipv4.ControlMessage
	if err := cm.Parse(oob[:oobn]); err != nil {
		t.Fatal(err)
	}
	if !cm.Dst.Equal(addrB[0].AsSlice()) || cm.IfIndex != p.nifB.Index() {
		t.Fatalf("pktinfo %+v", cm)
	}
	// Answer with IP_PKTINFO choosing the source.
	reply := (&ipv4.ControlMessage{Src: addrB[0].AsSlice()}).Marshal()
	if _, _, err := srv.WriteMsgUDPAddrPort([]byte("re"), reply, from); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(b); err != nil || string(b[:n]) != "re" {
		t.Fatalf("%q %v", b[:n], err)
	}
}

func TestErrnoDestAddrReq(t *testing.T) {
	p := newPair(t, pairConfig{})
	c := listenPacket(t, p.na, "udp4", ":0").(*UDPConn)
	_, err := c.Write([]byte("x"))
	isErrno(t, err, syscall.EDESTADDRREQ)
}

func TestErrnoMsgSize(t *testing.T) {
	p := newPair(t, pairConfig{})
	c := listenPacket(t, p.na, "udp", ":0").(*UDPConn)
	_, err := c.WriteToUDPAddrPort(make([]byte, 70000), netip.AddrPortFrom(addrB[0], 9))
	isErrno(t, err, syscall.EMSGSIZE)
}

// A UDP send into a full link queue fails with ENOMEM rather than blocking (lwIP's
// documented behaviour, through ip's FailIfFull).
func TestErrnoNoMemLinkFull(t *testing.T) {
	p := newPair(t, pairConfig{queueLen: 2})
	// A socket on B's port (never read): without it B answers port unreachable, and the
	// connected socket's next write could report ECONNREFUSED before the queue fills.
	sink, err := p.nb.ListenUDP("udp4", &net.UDPAddr{Port: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	c, err := p.na.DialUDP("udp4", nil, &net.UDPAddr{IP: addrB[0].AsSlice(), Port: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := make([]byte, 1400)
	for i := 0; ; i++ {
		_, err := c.Write(b)
		if err != nil {
			isErrno(t, err, syscall.ENOMEM)
			return
		}
		if i > 100000 {
			t.Fatal("the link queue never filled")
		}
	}
}

func TestPing(t *testing.T) {
	p := newPair(t, pairConfig{})
	for fam, network := range []string{"ping4", "ping6"} {
		c := dial(t, p.na, network, addrB[fam].String())
		pc := c.(*PingConn)
		typ := byte(8)
		if fam == 1 {
			typ = 128
		}
		req := []byte{typ, 0, 0, 0, 0, 0, 0, 1, 'h', 'i'}
		if _, err := pc.Write(req); err != nil {
			t.Fatal(err)
		}
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 100)
		n, from, err := pc.ReadFrom(b)
		if err != nil || n != len(req) || string(b[8:n]) != "hi" {
			t.Fatalf("%s: %x %v", network, b[:n], err)
		}
		if pa, ok := from.(*PingAddr); !ok || pa.Addr() != addrB[fam] || pa.Network() != network {
			t.Fatalf("from %#v", from)
		}
		pc.Close()
	}
	// "ip4:icmp" through ListenPacket is a ping socket too.
	pc := listenPacket(t, p.na, "ip4:icmp", "0.0.0.0")
	if _, err := pc.WriteTo([]byte{8, 0, 0, 0, 0, 0, 0, 1}, &net.IPAddr{IP: addrB[0].AsSlice()}); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := pc.ReadFrom(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	_, err := pc.(*PingConn).Write([]byte{8, 0, 0, 0, 0, 0, 0, 1})
	isErrno(t, err, syscall.EDESTADDRREQ)
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatal(err)
	}
}

// Steady-state Write on a connected UDP socket (sockBase.Write) and Read allocate nothing.
func TestUDPWriteReadAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	p := newPair(t, pairConfig{})
	srv := listenPacket(t, p.nb, "udp4", ":0").(*UDPConn)
	port := srv.LocalAddr().(*net.UDPAddr).Port
	cli := dial(t, p.na, "udp4", net.JoinHostPort(addrB[0].String(), fmtInt(port))).(*UDPConn)
	srv.SetReadDeadline(time.Now().Add(ioTimeout))
	msg, buf := make([]byte, 512), make([]byte, 1500)
	round := func() {
		if _, err := cli.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		round()
	}
	if n := testing.AllocsPerRun(300, round); n != 0 {
		t.Errorf("%.2f allocations per UDP Write+Read, want 0", n)
	}
}

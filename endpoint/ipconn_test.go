package endpoint

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Raw sockets of an experimental protocol (RFC 3692) between the two stacks, both
// families, through Dial and ListenPacket: payloads cross as sent and are read from the
// transport header on, with *net.IPAddr addresses.
func TestIPConnExchange(t *testing.T) {
	p := newPair(t, pairConfig{})
	for fam, network := range []string{"ip4:253", "ip6:253"} {
		wild := []string{"0.0.0.0", "::"}[fam]
		pc := listenPacket(t, p.nb, network, wild)
		srv := pc.(*IPConn)
		c := dial(t, p.na, network, addrB[fam].String())
		cli := c.(*IPConn)
		if la, ok := srv.LocalAddr().(*net.IPAddr); !ok || la.Network() != "ip" || !la.IP.IsUnspecified() {
			t.Fatalf("%s: local %#v", network, srv.LocalAddr())
		}
		if ra := cli.RemoteAddr().(*net.IPAddr); ra.IP.String() != addrB[fam].String() {
			t.Fatalf("%s: remote %v", network, ra)
		}
		if _, err := cli.Write([]byte("hello raw")); err != nil {
			t.Fatal(err)
		}
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 64)
		n, from, err := srv.ReadFrom(b)
		if err != nil || string(b[:n]) != "hello raw" || from.(*net.IPAddr).IP.String() != addrA[fam].String() {
			t.Fatalf("%s: %q from %v, %v", network, b[:n], from, err)
		}
		// IP_PKTINFO / IPV6_PKTINFO and MSG_TRUNC through ReadMsgIP.
		opt := []int{unix.IPPROTO_IP, unix.IP_PKTINFO}
		if fam == 1 {
			opt = []int{unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO}
		}
		if err := srv.SetsockoptInt(opt[0], opt[1], 1); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Write([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		oob := make([]byte, 128)
		n, oobn, flags, addr, err := srv.ReadMsgIP(b[:4], oob)
		if err != nil || n != 4 || flags&unix.MSG_TRUNC == 0 || addr.IP.String() != addrA[fam].String() {
			t.Fatalf("%s: ReadMsgIP %d %#x %v %v", network, n, flags, addr, err)
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			t.Fatalf("%s: control messages %v %v", network, msgs, err)
		}
		// The answer back, to an unconnected socket through WriteToIP.
		if _, err := srv.WriteToIP([]byte("back"), &net.IPAddr{IP: addrA[fam].AsSlice()}); err != nil {
			t.Fatal(err)
		}
		cli.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := cli.Read(b); err != nil || string(b[:n]) != "back" {
			t.Fatalf("%s: read %q %v", network, b[:n], err)
		}
		// Errors as package net reports them.
		_, err = srv.Write([]byte("x"))
		isErrno(t, err, syscall.EDESTADDRREQ)
		if _, err := cli.WriteTo([]byte("x"), srv.LocalAddr()); !errors.Is(err, net.ErrWriteToConnected) {
			t.Fatalf("WriteTo on a connected socket: %v", err)
		}
		_, err = srv.WriteTo([]byte("x"), &net.IPAddr{IP: addrA[1-fam].AsSlice()})
		isErrno(t, err, syscall.EAFNOSUPPORT)
		_, _, err = srv.WriteMsgIP([]byte("x"), []byte{1, 2, 3}, &net.IPAddr{IP: addrA[fam].AsSlice()})
		isErrno(t, err, syscall.EINVAL)
		// Close unblocks a reader.
		srv.SetReadDeadline(time.Time{})
		errc := make(chan error, 1)
		go func() { _, _, err := srv.ReadFrom(b); errc <- err }()
		time.Sleep(10 * time.Millisecond)
		srv.Close()
		if err := waitErr(t, errc, network+": read after Close"); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("%s: read after Close: %v", network, err)
		}
		cli.Close()
	}
}

// ListenIP("ip4:icmp") is a raw socket, as in package net: it sees a copy of the echo
// requests a ping socket on the other stack sends, and the stack still answers them.
// ListenPacket("ip4:icmp") stays a ping socket (see TestPing).
func TestIPConnRawICMP(t *testing.T) {
	p := newPair(t, pairConfig{})
	for fam, network := range []string{"ip4:icmp", "ip6:ipv6-icmp"} {
		rc, err := p.nb.ListenIP(network, nil)
		if err != nil {
			t.Fatal(err)
		}
		ping := dial(t, p.na, []string{"ping4", "ping6"}[fam], addrB[fam].String())
		req := []byte{[]byte{8, 128}[fam], 0, 0, 0, 0, 0, 0, 9, 'r', 'a', 'w'}
		if _, err := ping.Write(req); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 64)
		rc.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			// The raw ICMPv6 socket also sees neighbor discovery: skip to the request.
			n, _, err := rc.ReadFromIP(b)
			if err != nil {
				t.Fatalf("%s: %v", network, err)
			}
			if n == len(req) && b[0] == req[0] && string(b[8:n]) == "raw" {
				break
			}
		}
		ping.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := ping.Read(b); err != nil || n != len(req) {
			t.Fatalf("%s: reply %d %v", network, n, err)
		}
		if fam == 1 {
			// RFC 3542 §3.1: the ICMPv6 checksum is always the stack's.
			if v, err := rc.GetsockoptInt(unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM); err != nil || v != 2 {
				t.Fatalf("ICMPv6 IPV6_CHECKSUM %d %v", v, err)
			}
			isErrno(t, rc.SetsockoptInt(unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, 4), syscall.EINVAL)
		}
		ping.Close()
		rc.Close()
	}
}

// IPV6_CHECKSUM on another IPv6 protocol: the sender's stack writes it, the receiver's
// checks it and drops a packet whose checksum is wrong.
func TestIPConnChecksum(t *testing.T) {
	p := newPair(t, pairConfig{})
	srv, err := p.nb.ListenIP("ip6:253", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := p.na.DialIP("ip6:253", nil, &net.IPAddr{IP: addrB[1].AsSlice()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if v, _ := srv.GetsockoptInt(unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM); v != -1 {
		t.Fatalf("default IPV6_CHECKSUM %d", v)
	}
	isErrno(t, srv.SetChecksumOffset(3), syscall.EINVAL)
	if err := srv.SetChecksumOffset(0); err != nil {
		t.Fatal(err)
	}
	if v, _ := srv.GetsockoptInt(unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM); v != 0 {
		t.Fatalf("IPV6_CHECKSUM %d", v)
	}
	// Without an offset the sender sends the bytes as they are: a wrong checksum.
	if _, err := cli.Write([]byte("\xde\xadbad sum")); err != nil {
		t.Fatal(err)
	}
	if err := cli.SetChecksumOffset(0); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Write([]byte("\x00\x00good sum")); err != nil {
		t.Fatal(err)
	}
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 64)
	n, err := srv.Read(b)
	if err != nil || string(b[2:n]) != "good sum" {
		t.Fatalf("got %q %v", b[:n], err)
	}
	// IPv4 sockets have no IPV6_CHECKSUM.
	c4, err := p.na.ListenIP("ip4:253", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	isErrno(t, c4.SetChecksumOffset(2), syscall.ENOPROTOOPT)
}

func TestIPConnSockopts(t *testing.T) {
	p := newPair(t, pairConfig{})
	pc := listenPacket(t, p.na, "ip:253", "")
	c := pc.(*IPConn)
	defer c.Close()
	if la := c.LocalAddr().(*net.IPAddr); len(la.IP) != 4 {
		t.Fatalf("\"ip:N\" without an address is IPv4: %v", la)
	}
	for _, o := range []struct{ level, name, want int }{
		{unix.SOL_SOCKET, unix.SO_TYPE, unix.SOCK_RAW},
		{unix.SOL_SOCKET, unix.SO_PROTOCOL, 253},
		{unix.SOL_SOCKET, unix.SO_DOMAIN, unix.AF_INET},
		{unix.SOL_SOCKET, unix.SO_REUSEADDR, 0},
		{unix.IPPROTO_IP, unix.IP_TTL, int(p.a.Options().IPDefaultTTL)},
		{unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 1},
		{unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 1},
	} {
		if v, err := c.GetsockoptInt(o.level, o.name); err != nil || v != o.want {
			t.Fatalf("get %d/%d = %d %v, want %d", o.level, o.name, v, err, o.want)
		}
	}
	setGet(t, c, []sockopt{
		{unix.IPPROTO_IP, unix.IP_TTL, 33},
		{unix.IPPROTO_IP, unix.IP_TOS, 0x10},
		{unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 5},
		{unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0},
		{unix.SOL_SOCKET, unix.SO_RCVBUF, 4096},
		{unix.SOL_SOCKET, unix.SO_RCVTIMEO, 20},
	})
	isErrno(t, c.SetsockoptInt(unix.IPPROTO_IP, unix.IP_TTL, 0), syscall.EINVAL)
	isErrno(t, c.SetsockoptInt(unix.SOL_SOCKET, unix.SO_REUSEADDR, 1), syscall.EINVAL)
	isErrno(t, c.SetsockoptInt(99, 99, 1), syscall.ENOPROTOOPT)
	// SO_RCVTIMEO: a read with nothing to read fails with EAGAIN.
	_, err := c.Read(make([]byte, 8))
	isErrno(t, err, syscall.EAGAIN)
}

// DialIP and ListenIP check their arguments as package net does.
func TestIPConnArgs(t *testing.T) {
	p := newPair(t, pairConfig{})
	var un net.UnknownNetworkError
	if _, err := p.na.ListenIP("udp", nil); !errors.As(err, &un) {
		t.Fatalf("udp: %v", err)
	}
	if _, err := p.na.ListenIP("ping4", nil); !errors.As(err, &un) {
		t.Fatalf("ping4: %v", err)
	}
	if _, err := p.na.DialIP("ip4:253", nil, nil); err == nil {
		t.Fatal("DialIP without raddr")
	}
	_, err := p.na.DialIP("ip4:253", nil, &net.IPAddr{IP: addrB[1].AsSlice()})
	isErrno(t, err, syscall.EAFNOSUPPORT)
	_, err = p.na.ListenIP("ip6:253", &net.IPAddr{IP: addrA[0].AsSlice()})
	isErrno(t, err, syscall.EAFNOSUPPORT)
	_, err = p.na.ListenIP("ip4:253", &net.IPAddr{IP: net.ParseIP("198.18.0.77")})
	isErrno(t, err, syscall.EADDRNOTAVAIL)
	_, err = p.na.DialIP("ip4:253", nil, &net.IPAddr{IP: net.ParseIP("10.9.9.9")})
	isErrno(t, err, syscall.ENETUNREACH)
	// A Dialer's LocalAddr for a raw socket is a *net.IPAddr.
	d := Dialer{Net: p.na, LocalAddr: &net.IPAddr{IP: addrA[0].AsSlice()}}
	c, err := d.Dial("ip4:253", addrB[0].String())
	if err != nil {
		t.Fatal(err)
	}
	if la := c.LocalAddr().(*net.IPAddr); !la.IP.Equal(addrA[0].AsSlice()) {
		t.Fatalf("local %v", la)
	}
	c.Close()
	d.LocalAddr = &net.UDPAddr{IP: addrA[0].AsSlice()}
	_, err = d.Dial("ip4:253", addrB[0].String())
	isErrno(t, err, syscall.EAFNOSUPPORT)
	// A failed ListenPacket returns a nil interface, not a typed nil.
	if pc, err := p.na.ListenPacket("ip4:253", "198.18.0.77"); pc != nil || err == nil {
		t.Fatalf("ListenPacket on a foreign address: %v %v", pc, err)
	}
}

package endpoint

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/link"
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

// UDP_SEGMENT (udp(7)): a write of 10,500 bytes on a socket with a segment size of 1,000
// arrives as 11 datagrams, 1,000 bytes each and 500 last, both families, over a pipe that
// takes the GSO packet whole (USO: the receiving stack splits it) and over one that does
// not (the sending stack cuts it); the per-write control message does the same with its
// own size. The option reads back; Linux's errors come back as its errnos.
func TestUDPSegment(t *testing.T) {
	for _, c := range []struct {
		name string
		off  link.Offloads
	}{{"soft", link.Offloads{}}, {"uso", link.Offloads{TxChecksum: true, USO: true, GSOMax: 65535}}} {
		t.Run(c.name, func(t *testing.T) {
			p := newPair(t, pairConfig{offloads: c.off})
			srv, err := p.nb.ListenUDP("udp", &net.UDPAddr{Port: 4000})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			cli, err := p.na.ListenUDP("udp", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			if err := cli.SetSegmentSize(1000); err != nil {
				t.Fatal(err)
			}
			if v, err := cli.GetsockoptInt(unix.SOL_UDP, unix.UDP_SEGMENT); v != 1000 || err != nil {
				t.Fatalf("UDP_SEGMENT reads %d, %v", v, err)
			}
			data := make([]byte, 10500)
			for i := range data {
				data[i] = byte(i*7 + i>>8)
			}
			// expect reads the datagrams of data cut at seg from srv.
			expect := func(what string, seg int) {
				t.Helper()
				srv.SetReadDeadline(time.Now().Add(ioTimeout))
				b := make([]byte, 2000)
				for off := 0; off < len(data); off += seg {
					n, _, err := srv.ReadFromUDPAddrPort(b)
					want := data[off:min(off+seg, len(data))]
					if err != nil || !bytes.Equal(b[:n], want) {
						t.Fatalf("%s: datagram at %d: %d bytes, %v; want %d bytes", what, off, n, err, len(want))
					}
				}
				if q := srv.Buffered(); q != 0 {
					t.Fatalf("%s: a datagram of %d bytes too many", what, q)
				}
			}
			for fam := range 2 {
				dst := netip.AddrPortFrom(addrB[fam], 4000)
				if n, err := cli.WriteToUDPAddrPort(data, dst); n != len(data) || err != nil {
					t.Fatalf("write to %v: %d, %v", dst, n, err)
				}
				expect(dst.String(), 1000)
				oob := segCmsg(600, 2)
				if n, _, err := cli.WriteMsgUDPAddrPort(data, oob, dst); n != len(data) || err != nil {
					t.Fatalf("write with UDP_SEGMENT 600 to %v: %d, %v", dst, n, err)
				}
				expect(dst.String()+" cmsg", 600)
			}
			dst := netip.AddrPortFrom(addrB[0], 4000)
			_, _, err = cli.WriteMsgUDPAddrPort(make([]byte, 100*128+1), segCmsg(100, 2), dst)
			isErrno(t, err, syscall.EINVAL) // past UDP_MAX_SEGMENTS
			_, _, err = cli.WriteMsgUDPAddrPort(data, segCmsg(600, 4), dst)
			isErrno(t, err, syscall.EINVAL) // a control message of 4 bytes, not a __u16
			if err := cli.SetSegmentSize(1473); err != nil {
				t.Fatal(err)
			}
			_, err = cli.WriteToUDPAddrPort(data, dst)
			isErrno(t, err, syscall.EMSGSIZE) // 20 + 8 + 1473 > 1500
			isErrno(t, cli.SetsockoptInt(unix.SOL_UDP, unix.UDP_SEGMENT, 65536), syscall.EINVAL)
			if q := srv.Buffered(); q != 0 {
				t.Errorf("a refused write delivered %d bytes", q)
			}
		})
	}
}

// segCmsg is a SOL_UDP UDP_SEGMENT control message (64-bit Linux layout) of n data bytes
// holding seg.
func segCmsg(seg uint16, n int) []byte {
	b := make([]byte, unix.CmsgSpace(n))
	ne.PutUint64(b[0:8], uint64(unix.CmsgLen(n)))
	ne.PutUint32(b[8:12], unix.SOL_UDP)
	ne.PutUint32(b[12:16], unix.UDP_SEGMENT)
	ne.PutUint16(b[unix.CmsgLen(0):], seg)
	return b
}

// udpSegment reads a UDP_SEGMENT control message among others, and refuses what Linux's
// udp_cmsg_send refuses.
func TestUDPSegmentCmsg(t *testing.T) {
	pktinfo := (&ipv4.ControlMessage{Src: addrA[0].AsSlice()}).Marshal()
	other := segCmsg(0, 4)
	ne.PutUint32(other[12:16], 1) // UDP_CORK: not a control message
	for _, c := range []struct {
		name string
		oob  []byte
		seg  int
		err  error
	}{
		{"none", nil, -1, nil},
		{"pktinfo only", pktinfo, -1, nil},
		{"segment", segCmsg(1200, 2), 1200, nil},
		{"segment after pktinfo", append(append([]byte(nil), pktinfo...), segCmsg(0, 2)...), 0, nil},
		{"four bytes", segCmsg(1200, 4), -1, errInval},
		{"another SOL_UDP type", other, -1, errInval},
		{"shorter than a header", segCmsg(1200, 2)[:10], -1, nil}, // Linux finds no cmsghdr
		{"data cut short", segCmsg(1200, 2)[:17], -1, errInval},
	} {
		if seg, err := udpSegment(c.oob); seg != c.seg || err != c.err {
			t.Errorf("%s: %d, %v; want %d, %v", c.name, seg, err, c.seg, c.err)
		}
	}
}

package udp_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/udp"
)

func TestEchoBothFamilies(t *testing.T) {
	for _, medium := range []link.Medium{link.MediumIP, link.MediumEthernet} {
		t.Run(medium.String(), func(t *testing.T) {
			p := newPair(t, pairConfig{medium: medium})
			srv, _ := listen(t, p.B, "[::]:7")
			// The server echoes every datagram back to its sender.
			p.B.Callback(func() {
				srv.OnRecv(func(c *udp.PCB, q *pbuf.Pbuf, info *udp.RecvInfo) {
					if err := c.SendTo(q, info.Src); err != nil {
						t.Errorf("echo: %v", err)
					}
				})
			})
			cli, k := listen(t, p.A, "[::]:0")
			for i, dst := range []string{"198.18.0.2:7", "[fd42:5eed::2]:7", "[::ffff:198.18.0.2]:7"} {
				data := pattern(100 + i)
				if err := sendTo(t, p.A, cli, dst, data); err != nil {
					t.Fatalf("send to %s: %v", dst, err)
				}
				p.flush()
				if len(k.got) != i+1 || !bytes.Equal(k.got[i].data, data) {
					t.Fatalf("to %s: got %d datagrams", dst, len(k.got))
				}
				info := k.got[i].info
				// A "::" PCB is an IPv6 socket: IPv4 peers are reported IPv4-mapped.
				want := netip.MustParseAddrPort(dst)
				if want.Addr().Is4() {
					want = netip.AddrPortFrom(netip.AddrFrom16(want.Addr().As16()), want.Port())
				}
				if info.Src != want || info.IfIndex != p.NetifA.Index() || info.Broadcast || info.Multicast {
					t.Errorf("to %s: info %+v", dst, info)
				}
				if info.TTL != 64 {
					t.Errorf("TTL %d, want the tunnel default 64", info.TTL)
				}
			}
			sa, sb := p.A.Stats().UDP, p.B.Stats().UDP
			if sa.Xmit != 3 || sa.Recv != 3 || sb.Xmit != 3 || sb.Recv != 3 || sa.Drop+sb.Drop != 0 {
				t.Errorf("counters a %+v b %+v", sa, sb)
			}
			p.A.Callback(cli.Close)
			p.B.Callback(srv.Close)
		})
	}
}

func TestPktInfoAndTTL(t *testing.T) {
	p := newPair(t, pairConfig{})
	srv, k := listen(t, p.B, "0.0.0.0:9")
	defer p.B.Callback(srv.Close)
	cli, _ := listen(t, p.A, "0.0.0.0:0")
	defer p.A.Callback(cli.Close)
	var err error
	p.A.Callback(func() {
		cli.SetTTL(9)
		cli.SetTOS(0x20)
		err = cli.SendToFrom(payload(t, p.A, []byte("x")), netip.MustParseAddrPort("198.18.0.2:9"), addrA, p.NetifA.Index())
	})
	if err != nil {
		t.Fatal(err)
	}
	p.flush()
	if len(k.got) != 1 {
		t.Fatal("nothing received")
	}
	in := k.got[0].info
	var local netip.AddrPort
	p.A.Callback(func() { local = cli.LocalAddr() })
	if in.Dst != addrB || in.TTL != 9 || in.TOS != 0x20 || in.Src.Addr() != addrA || in.Src.Port() != local.Port() {
		t.Errorf("info %+v", in)
	}
	// A source that is not ours is refused.
	p.A.Callback(func() {
		err = cli.SendToFrom(payload(t, p.A, []byte("x")), netip.MustParseAddrPort("198.18.0.2:9"), netip.MustParseAddr("198.18.0.77"), 0)
	})
	if !errors.Is(err, errs.AddrNotAvail) {
		t.Errorf("foreign source: %v", err)
	}
}

func TestConnectedFiltersAndBeatsWildcard(t *testing.T) {
	p := newPair(t, pairConfig{})
	wild, kw := listen(t, p.B, "0.0.0.0:53")
	var conn *udp.PCB
	kc := &sink{}
	var err error
	p.B.Callback(func() {
		conn, _ = p.B.UDP().NewPCB()
		conn.SetReuseAddr(true)
		wild.SetReuseAddr(true) // both PCBs must allow sharing the port
		if err = conn.Bind(netip.MustParseAddrPort("198.18.0.2:53")); err != nil {
			return
		}
		err = conn.Connect(netip.MustParseAddrPort("198.18.0.1:1000"))
		conn.OnRecv(kc.recv)
	})
	if err != nil {
		t.Fatal(err)
	}
	var got netip.AddrPort
	p.B.Callback(func() { got = conn.RemoteAddr() })
	if got != netip.MustParseAddrPort("198.18.0.1:1000") {
		t.Errorf("RemoteAddr %v", got)
	}
	from1000, _ := listen(t, p.A, "0.0.0.0:1000")
	from1001, _ := listen(t, p.A, "0.0.0.0:1001")
	_ = sendTo(t, p.A, from1000, "198.18.0.2:53", []byte("c"))
	_ = sendTo(t, p.A, from1001, "198.18.0.2:53", []byte("w"))
	p.flush()
	if len(kc.got) != 1 || string(kc.got[0].data) != "c" || len(kw.got) != 1 || string(kw.got[0].data) != "w" {
		t.Fatalf("connected got %d, wildcard got %d", len(kc.got), len(kw.got))
	}
	// Send on the connected PCB, then disconnect: it hears everyone again.
	p.B.Callback(func() { err = conn.Send(payload(t, p.B, []byte("reply"))) })
	if err != nil {
		t.Fatal(err)
	}
	p.B.Callback(func() { conn.Disconnect(); got = conn.RemoteAddr() })
	if got.IsValid() {
		t.Error("RemoteAddr after Disconnect")
	}
	p.B.Callback(func() { err = conn.Send(payload(t, p.B, []byte("x"))) })
	if !errors.Is(err, errs.Conn) {
		t.Errorf("Send unconnected: %v", err)
	}
	_ = sendTo(t, p.A, from1001, "198.18.0.2:53", []byte("s"))
	p.flush()
	if len(kc.got) != 2 || string(kc.got[1].data) != "s" {
		t.Errorf("specific address after disconnect: %d", len(kc.got))
	}
	p.A.Callback(func() { from1000.Close(); from1001.Close() })
	p.B.Callback(func() { conn.Close(); wild.Close() })
}

func TestBindRules(t *testing.T) {
	p := newPair(t, pairConfig{})
	s := p.A
	s.Callback(func() {
		u := s.UDP()
		mk := func() *udp.PCB {
			c, err := u.NewPCB()
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		var open []*udp.PCB
		bind := func(addr string, reuse, v6only bool) error {
			c := mk()
			c.SetReuseAddr(reuse)
			c.SetV6Only(v6only)
			err := c.Bind(netip.MustParseAddrPort(addr))
			if err != nil {
				c.Close()
			} else {
				open = append(open, c)
			}
			return err
		}
		check := func(addr string, reuse, v6only bool, want error) {
			t.Helper()
			if err := bind(addr, reuse, v6only); err != want {
				t.Errorf("bind %s reuse=%v v6only=%v: %v, want %v", addr, reuse, v6only, err, want)
			}
		}
		check("0.0.0.0:100", false, false, nil)
		check("198.18.0.1:100", false, false, errs.Use)
		check("[::]:100", false, false, errs.Use) // dual stack overlaps 0.0.0.0
		check("[::]:100", false, true, nil)       // v6-only does not
		check("[fd42:5eed::1]:100", false, false, errs.Use)
		check("198.18.0.1:101", false, false, nil)
		check("198.18.0.1:101", true, false, errs.Use) // both must set SO_REUSEADDR
		check("198.18.0.1:102", true, false, nil)
		check("198.18.0.1:102", true, false, nil)
		check("198.18.0.9:103", false, false, errs.AddrNotAvail)
		check("[fd42::9]:103", false, false, errs.AddrNotAvail)
		check("224.1.2.3:103", false, false, nil)
		check("255.255.255.255:103", false, false, nil)
		check("198.18.0.255:104", false, false, nil) // our directed broadcast
		check("[::ffff:198.18.0.1]:105", false, false, nil)
		check("198.18.0.1:105", false, false, errs.Use) // the mapped bind is that IPv4 address
		c := mk()
		c.SetV6Only(true)
		if err := c.Bind(netip.MustParseAddrPort("[::ffff:198.18.0.1]:106")); err != errs.Val {
			t.Errorf("v4-mapped on v6-only: %v", err)
		}
		if err := c.Bind(netip.MustParseAddrPort("[::]:0")); err != nil {
			t.Fatal(err)
		}
		if err := c.Bind(netip.MustParseAddrPort("[::]:0")); err != errs.Val {
			t.Errorf("second bind: %v", err)
		}
		lp := c.LocalAddr().Port()
		if lp < opt.Tunnel().TCPPortLow {
			t.Errorf("ephemeral port %d below the range", lp)
		}
		c.Close()
		for _, c := range open {
			c.Close()
		}
		if n := u.NumPCBs(); n != 0 {
			t.Errorf("%d PCBs left", n)
		}
	})
}

// Ephemeral ports come from a seeded generator: the same seed picks the same ports, and
// they differ from one pick to the next.
func TestEphemeralPorts(t *testing.T) {
	pick := func() []uint16 {
		p := newPair(t, pairConfig{})
		var ports []uint16
		p.A.Callback(func() {
			var cs []*udp.PCB
			for range 8 {
				c, _ := p.A.UDP().NewPCB()
				if err := c.Bind(netip.AddrPort{}); err != nil {
					t.Fatal(err)
				}
				ports = append(ports, c.LocalAddr().Port())
				cs = append(cs, c)
			}
			for _, c := range cs {
				c.Close()
			}
		})
		return ports
	}
	a, b := pick(), pick()
	seen := map[uint16]bool{}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("seeded choice differs: %v vs %v", a, b)
			break
		}
		if seen[a[i]] {
			t.Errorf("port %d picked twice: %v", a[i], a)
		}
		seen[a[i]] = true
	}
}

func TestPoolExhaustionAndClose(t *testing.T) {
	o := testOpts()
	o.MempNumUDPPCB = 2
	p := newPair(t, pairConfig{o: o})
	p.A.Callback(func() {
		u := p.A.UDP()
		c1, _ := u.NewPCB()
		c2, _ := u.NewPCB()
		if _, err := u.NewPCB(); err != errs.Mem {
			t.Errorf("third PCB: %v", err)
		}
		c1.Close()
		c3, err := u.NewPCB()
		if err != nil {
			t.Fatal(err)
		}
		c3.Close()
		_ = c2.Bind(netip.MustParseAddrPort("0.0.0.0:5"))
		// Proto.Close (the stack's Close) frees the rest; nothing may be used afterwards.
	})
	if err := p.A.Close(); err != nil {
		t.Fatal(err)
	}
	p.A.Callback(func() {
		if _, err := p.A.UDP().NewPCB(); err != errs.Clsd {
			t.Errorf("NewPCB after Close: %v", err)
		}
	})
}

func TestSendErrors(t *testing.T) {
	p := newPair(t, pairConfig{})
	c, _ := listen(t, p.A, "0.0.0.0:0")
	c6, _ := listen(t, p.A, "[::]:0")
	defer p.A.Callback(func() { c.Close(); c6.Close() })
	cases := []struct {
		pcb  *udp.PCB
		dst  string
		size int
		want error
	}{
		{c, "198.18.0.2:9", udp.MaxPayload4 + 1, errs.MsgSize},
		{c6, "[fd42:5eed::2]:9", udp.MaxPayload6 + 1, errs.MsgSize},
		{c, "198.18.0.255:9", 1, errs.Access},
		{c, "255.255.255.255:9", 1, errs.Access},
		{c, "10.1.2.3:9", 1, errs.NetUnreach},
		{c, "198.18.0.2:0", 1, errs.Val},
		{c, "0.0.0.0:9", 1, errs.Val},
		{c, "[fd42:5eed::2]:9", 1, errs.Val}, // an IPv4 PCB cannot reach IPv6
	}
	for _, tc := range cases {
		if err := sendTo(t, p.A, tc.pcb, tc.dst, make([]byte, tc.size)); err != tc.want {
			t.Errorf("send %d bytes to %s: %v, want %v", tc.size, tc.dst, err, tc.want)
		}
	}
	// The netif goes down: its routes stay, and the send says so.
	p.NetifA.SetUp(false)
	if err := sendTo(t, p.A, c, "198.18.0.2:9", []byte("x")); err != errs.NetDown {
		t.Errorf("netif down: %v, want NetDown", err)
	}
	p.NetifA.SetUp(true)
	var err error
	p.A.Callback(func() {
		c6.SetV6Only(true)
		err = c6.SendTo(payload(t, p.A, []byte("x")), netip.MustParseAddrPort("198.18.0.2:9"))
	})
	if err != errs.NetUnreach {
		t.Errorf("v6-only to IPv4: %v", err)
	}
	if s := p.A.Stats().UDP; s.Drop == 0 || s.Drop != s.Lenerr+s.Err+s.Rterr+s.Memerr {
		t.Errorf("refused sends are counted under a reason: %+v", s)
	}
}

func TestBroadcast(t *testing.T) {
	p := newPair(t, pairConfig{medium: link.MediumEthernet})
	var r1, r2 *udp.PCB
	k1, k2 := &sink{}, &sink{}
	p.B.Callback(func() {
		for _, x := range []struct {
			c **udp.PCB
			k *sink
		}{{&r1, k1}, {&r2, k2}} {
			c, _ := p.B.UDP().NewPCB()
			c.SetReuseAddr(true)
			if err := c.Bind(netip.MustParseAddrPort("0.0.0.0:67")); err != nil {
				t.Fatal(err)
			}
			c.OnRecv(x.k.recv)
			*x.c = c
		}
	})
	// A PCB bound to the unicast address does not hear broadcasts.
	var uni *udp.PCB
	ku := &sink{}
	p.B.Callback(func() {
		uni, _ = p.B.UDP().NewPCB()
		uni.SetReuseAddr(true)
		if err := uni.Bind(netip.MustParseAddrPort("198.18.0.2:67")); err != nil {
			t.Fatal(err)
		}
		uni.OnRecv(ku.recv)
	})
	c, _ := listen(t, p.A, "0.0.0.0:68")
	var err error
	for _, dst := range []string{"198.18.0.255:67", "255.255.255.255:67"} {
		p.A.Callback(func() {
			c.SetBroadcast(true)
			c.SetMulticastNetif(p.NetifA.Index()) // the limited broadcast has no route
			err = c.SendTo(payload(t, p.A, []byte(dst)), netip.MustParseAddrPort(dst))
		})
		if err != nil {
			t.Fatalf("%s: %v", dst, err)
		}
	}
	p.flush()
	if len(k1.got) != 2 || len(k2.got) != 2 || len(ku.got) != 0 {
		t.Fatalf("got %d and %d (unicast PCB %d), want 2 each", len(k1.got), len(k2.got), len(ku.got))
	}
	for _, g := range append(k1.got, k2.got...) {
		if !g.info.Broadcast || g.info.Dst.String() != netip.MustParseAddrPort(string(g.data)).Addr().String() {
			t.Errorf("info %+v for %q", g.info, g.data)
		}
	}
	// No PCB: no port unreachable for a broadcast, just a drop.
	before := p.A.Stats().ICMP.Recv
	p.A.Callback(func() {
		err = c.SendTo(payload(t, p.A, []byte("x")), netip.MustParseAddrPort("198.18.0.255:69"))
	})
	p.flush()
	if err != nil || p.A.Stats().ICMP.Recv != before || p.B.Stats().UDP.Proterr != 1 {
		t.Errorf("broadcast to no PCB: err %v, icmp %d→%d, b %+v", err, before, p.A.Stats().ICMP.Recv, p.B.Stats().UDP)
	}
	p.A.Callback(c.Close)
	p.B.Callback(func() { r1.Close(); r2.Close(); uni.Close() })
}

func TestPortUnreachableRefusesConnected(t *testing.T) {
	for _, dst := range []string{"198.18.0.2:4444", "[fd42:5eed::2]:4444"} {
		t.Run(dst, func(t *testing.T) {
			p := newPair(t, pairConfig{})
			var c *udp.PCB
			var got []error
			var err error
			p.A.Callback(func() {
				c, _ = p.A.UDP().NewPCB()
				c.OnErr(func(_ *udp.PCB, e error) { got = append(got, e) })
				if err = c.Connect(netip.MustParseAddrPort(dst)); err != nil {
					return
				}
				err = c.Send(payload(t, p.A, []byte("anyone?")))
			})
			if err != nil {
				t.Fatal(err)
			}
			p.flush()
			if len(got) != 1 || !errors.Is(got[0], errs.Refused) {
				t.Fatalf("ErrFunc got %v, want Refused", got)
			}
			if s := p.B.Stats().UDP; s.Proterr != 1 || s.Drop != 1 {
				t.Errorf("receiver counters %+v", s)
			}
			// An unconnected PCB is not told.
			var u *udp.PCB
			p.A.Callback(func() {
				u, _ = p.A.UDP().NewPCB()
				u.OnErr(func(_ *udp.PCB, e error) { t.Errorf("unconnected PCB told %v", e) })
				err = u.SendTo(payload(t, p.A, []byte("x")), netip.MustParseAddrPort(dst))
			})
			p.clk.Advance(1e9) // a fresh ICMP rate-limit token
			p.flush()
			p.A.Callback(func() { c.Close(); u.Close() })
		})
	}
}

// A datagram of 64 KiB crosses a 1500-byte link as fragments both ways.
func TestFragmentedMaxDatagram(t *testing.T) {
	p := newPair(t, pairConfig{})
	srv, k := listen(t, p.B, "[::]:9")
	cli, k2 := listen(t, p.A, "[::]:0")
	p.B.Callback(func() {
		srv.OnRecv(func(c *udp.PCB, q *pbuf.Pbuf, info *udp.RecvInfo) {
			k.recv(c, q, info)
		})
	})
	for _, tc := range []struct {
		dst  string
		size int
	}{{"198.18.0.2:9", udp.MaxPayload4}, {"[fd42:5eed::2]:9", udp.MaxPayload6 - 48}} {
		data := pattern(tc.size)
		if err := sendTo(t, p.A, cli, tc.dst, data); err != nil {
			t.Fatalf("%s: %v", tc.dst, err)
		}
		p.flush()
		if len(k.got) == 0 || !bytes.Equal(k.got[len(k.got)-1].data, data) {
			t.Fatalf("%s: %d bytes did not arrive intact", tc.dst, tc.size)
		}
	}
	if s := p.B.Stats(); s.IPFrag.Recv < 40 || s.IP6Frag.Recv < 40 {
		t.Errorf("not fragmented: %+v %+v", s.IPFrag, s.IP6Frag)
	}
	_ = k2
	p.A.Callback(cli.Close)
	p.B.Callback(srv.Close)
}

// When the link's queue is full the send fails with ERR_MEM instead of the frame vanishing.
func TestFullLinkIsErrMem(t *testing.T) {
	p := newPair(t, pairConfig{queueLen: 4})
	c, _ := listen(t, p.A, "0.0.0.0:0")
	var sent, full int
	p.A.Callback(func() {
		for range 20 {
			err := c.SendTo(payload(t, p.A, []byte("x")), netip.MustParseAddrPort("198.18.0.2:9"))
			switch {
			case err == nil:
				sent++
			case errors.Is(err, errs.Mem):
				full++
			default:
				t.Fatalf("send: %v", err)
			}
			p.A.IP().Flush() // the netif's batch goes to the link queue
		}
	})
	if sent != 4 || full != 16 {
		t.Errorf("sent %d, ERR_MEM %d; want 4 and 16", sent, full)
	}
	if s := p.A.Stats().UDP; s.Memerr != 16 || s.Xmit != 4 {
		t.Errorf("counters %+v", s)
	}
	p.flush()
	p.A.Callback(c.Close)
}

// A send and its receive allocate nothing on the Go heap, IPv4 and IPv6 alike.
func TestSendReceiveAllocs(t *testing.T) {
	p := newPair(t, pairConfig{})
	srv, _ := listen(t, p.B, "[::]:9")
	n := 0
	p.B.Callback(func() {
		srv.OnRecv(func(c *udp.PCB, q *pbuf.Pbuf, info *udp.RecvInfo) { n++; q.Free() })
	})
	cli, _ := listen(t, p.A, "[::]:0")
	dsts := []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:9"), netip.MustParseAddrPort("[fd42:5eed::2]:9")}
	alloc := p.A.Allocator()
	var err error
	i := 0
	send := func() {
		q, _ := alloc.Alloc(pbuf.LayerTransport, 64, pbuf.RAM)
		err = cli.SendTo(q, dsts[i%2])
		i++
	}
	step := func() {
		p.A.Lock()
		send()
		p.A.Unlock()
		p.flush()
	}
	step()
	if a := testing.AllocsPerRun(200, step); a != 0 {
		t.Errorf("%v allocations per datagram", a)
	}
	if err != nil || n != 202 {
		t.Errorf("err %v, received %d", err, n)
	}
	p.A.Callback(cli.Close)
	p.B.Callback(srv.Close)
}

func TestNoChecksumAndZeroChecksum(t *testing.T) {
	p := newPair(t, pairConfig{})
	srv, k := listen(t, p.B, "[::]:9")
	cli, _ := listen(t, p.A, "0.0.0.0:0")
	p.A.Callback(func() { cli.SetNoChecksum(true) })
	if err := sendTo(t, p.A, cli, "198.18.0.2:9", []byte("no sum")); err != nil {
		t.Fatal(err)
	}
	p.flush()
	if len(k.got) != 1 {
		t.Fatalf("IPv4 datagram without checksum not accepted")
	}
	p.A.Callback(cli.Close)
	p.B.Callback(srv.Close)
}

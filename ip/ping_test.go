package ip

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
)

type echoRec struct {
	id, seq uint16
	src     netip.Addr
	data    []byte
}

func (p *pair) setup(t *testing.T, v6 bool) (dstB netip.Addr, recs *[]echoRec) {
	t.Helper()
	for _, c := range []struct {
		n *Netif
		a netip.Addr
	}{{p.na, v4A}, {p.nb, v4B}} {
		if err := c.n.AddAddr(mustPrefix(c.a, 24)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		n *Netif
		a netip.Addr
	}{{p.na, v6A}, {p.nb, v6B}} {
		if err := c.n.AddAddr(mustPrefix(c.a, 64)); err != nil {
			t.Fatal(err)
		}
	}
	p.na.SetUp(true)
	p.nb.SetUp(true)
	p.pump()
	if p.na.Medium() == link.MediumEthernet {
		p.advance(3 * time.Second) // DAD
	}
	var got []echoRec
	p.a.l.SetEchoHandler(func(h *Header, id, seq uint16, data []byte) {
		got = append(got, echoRec{id, seq, h.Src, append([]byte(nil), data...)})
	})
	if v6 {
		return v6B, &got
	}
	return v4B, &got
}

func TestPing(t *testing.T) {
	for _, medium := range []link.Medium{link.MediumIP, link.MediumEthernet} {
		for _, v6 := range []bool{false, true} {
			for _, size := range []int{56, 4000} {
				t.Run(fmt.Sprintf("%v/v6=%v/%d", medium, v6, size), func(t *testing.T) {
					p := newPair(t, medium, 1500, testOptions())
					dst, got := p.setup(t, v6)
					data := linktest.Pattern(size, 3)
					if err := p.a.l.SendEcho(netip.Addr{}, dst, 77, 1, data, OutputOptions{}); err != nil {
						t.Fatal(err)
					}
					p.pump()
					if len(*got) != 1 {
						t.Fatalf("got %d replies; stats A %+v B %+v", len(*got), p.a.stats(), p.b.stats())
					}
					r := (*got)[0]
					if r.id != 77 || r.seq != 1 || r.src != dst || !bytes.Equal(r.data, data) {
						t.Fatalf("reply id %d seq %d src %v len %d", r.id, r.seq, r.src, len(r.data))
					}
					sa, sb := p.a.stats(), p.b.stats()
					if size > 1500 {
						fs := sb.IPFrag
						if v6 {
							fs = sb.IP6Frag
						}
						if fs.Recv < 3 || fs.Xmit < 3 {
							t.Errorf("frag stats of B %+v", fs)
						}
					}
					// The only drops allowed: multicast to groups not joined (the peer's DAD
					// probes), counted under Err.
					for _, s := range []uint64{sa.IP.Drop, sb.IP.Drop, sa.IP6.Drop - sa.IP6.Err, sb.IP6.Drop - sb.IP6.Err} {
						if s != 0 {
							t.Errorf("drops: A %+v %+v B %+v %+v", sa.IP, sa.IP6, sb.IP, sb.IP6)
						}
					}
					if medium == link.MediumEthernet && v6 && sa.ND6.Xmit == 0 {
						t.Errorf("no ND traffic: %+v", sa.ND6)
					}
				})
			}
		}
	}
}

// TestLoopback: a packet to one's own address is delivered at Flush, not recursively.
func TestLoopback(t *testing.T) {
	e := newEnv(t, testOptions(), 1)
	defer e.close()
	ep := &capEP{medium: link.MediumIP, mtu: 1500}
	n, _ := e.l.AddNetif(ep, NetifConfig{})
	_ = n.AddAddr(mustPrefix(v4A, 24))
	_ = n.AddAddr(mustPrefix(v6A, 64))
	n.SetUp(true)
	tr := &recTransport{l: e.l}
	e.l.RegisterTransport(17, tr)
	var replies int
	e.l.SetEchoHandler(func(h *Header, id, seq uint16, data []byte) { replies++ })
	for _, dst := range []netip.Addr{v4A, v6A} {
		if err := e.sendUDP(netip.Addr{}, dst, 3000, OutputOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := e.l.SendEcho(netip.Addr{}, dst, 1, 2, []byte("hi"), OutputOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(tr.inputs) != 0 {
		t.Fatal("delivered before Flush")
	}
	e.l.Flush()
	if len(tr.inputs) != 2 || replies != 2 {
		t.Fatalf("inputs %d replies %d", len(tr.inputs), replies)
	}
	if tr.inputs[0].Src != v4A || tr.inputs[1].Src != v6A || len(tr.data[0]) != 3008 {
		t.Fatalf("inputs %+v", tr.inputs)
	}
	if len(ep.frames) != 0 {
		t.Fatalf("%d frames on the wire", len(ep.frames))
	}
}

package ip

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
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
		a netip.Prefix
	}{{p.na, mustPrefix(v4A, 24)}, {p.nb, mustPrefix(v4B, 24)}, {p.na, mustPrefix(v6A, 64)}, {p.nb, mustPrefix(v6B, 64)}} {
		if err := c.n.AddAddr(c.a); err != nil {
			t.Fatal(err)
		}
	}
	p.na.SetUp(true)
	p.nb.SetUp(true)
	p.pump()
	if p.na.Medium() == link.MediumEthernet {
		p.advance(3 * time.Second) // DAD
	}
	c := &echoCatcher{}
	p.a.catchEchoes(c)
	if v6 {
		return v6B, &c.got
	}
	return v4B, &c.got
}

// echoCatcher takes echo replies through the Raw hook, as the ping sockets of
// transport/raw do.
type echoCatcher struct{ got []echoRec }

func (c *echoCatcher) RawInput(h *Header, p *pbuf.Pbuf) bool {
	b := p.Bytes(nil)
	m := wire.ICMPv4(b)
	if len(b) < 8 || h.Dst.Is4() && m.Type() != wire.ICMPv4EchoReply || h.Dst.Is6() && m.Type() != wire.ICMPv6EchoReply {
		return false
	}
	c.got = append(c.got, echoRec{m.Ident(), m.Seq(), h.Src, b[8:]})
	p.Free()
	return true
}

// catchEchoes hands e's echo replies of both families to c.
func (e *env) catchEchoes(c *echoCatcher) {
	e.l.SetRaw(c)
	e.l.RawListen(wire.ProtoICMP, true)
	e.l.RawListen(wire.ProtoICMPv6, true)
}

// sendEcho sends an echo request from e's layer, as a ping socket does.
func (e *env) sendEcho(dst netip.Addr, id, seq uint16, data []byte) error {
	msg, proto := echo4(id, seq, data), uint8(wire.ProtoICMP)
	var src netip.Addr
	if dst.Is6() {
		var err error
		if src, err = e.l.SourceFor(dst, nil); err != nil {
			return err
		}
		msg, proto = echo6(src, dst, id, seq, data), wire.ProtoICMPv6
	}
	p, err := e.alloc.Alloc(pbuf.LayerTransport, len(msg), pbuf.RAM)
	if err != nil {
		return err
	}
	_ = p.CopyIn(msg, 0)
	return e.l.Output(p, src, dst, proto, OutputOptions{})
}

func TestPing(t *testing.T) {
	for _, medium := range []link.Medium{link.MediumIP, link.MediumEthernet} {
		for _, v6 := range []bool{false, true} {
			for _, size := range []int{56, 4000} {
				t.Run(fmt.Sprintf("%v/v6=%v/%d", medium, v6, size), func(t *testing.T) {
					p := newPair(t, medium, 1500, testOptions())
					dst, got := p.setup(t, v6)
					data := linktest.Pattern(size, 3)
					if err := p.a.sendEcho(dst, 77, 1, data); err != nil {
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
	ep := &linktest.Capture{}
	e.addNetif(ep, mustPrefix(v4A, 24), mustPrefix(v6A, 64))
	tr := &recTransport{l: e.l}
	e.l.RegisterTransport(17, tr)
	c := &echoCatcher{}
	e.catchEchoes(c)
	for _, dst := range []netip.Addr{v4A, v6A} {
		if err := e.sendUDP(netip.Addr{}, dst, 3000, OutputOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := e.sendEcho(dst, 1, 2, []byte("hi")); err != nil {
			t.Fatal(err)
		}
	}
	if len(tr.inputs) != 0 {
		t.Fatal("delivered before Flush")
	}
	e.l.Flush()
	if len(tr.inputs) != 2 || len(c.got) != 2 {
		t.Fatalf("inputs %d replies %d", len(tr.inputs), len(c.got))
	}
	if tr.inputs[0].Src != v4A || tr.inputs[1].Src != v6A || len(tr.data[0]) != 3008 {
		t.Fatalf("inputs %+v", tr.inputs)
	}
	if len(ep.Frames) != 0 {
		t.Fatalf("%d frames on the wire", len(ep.Frames))
	}
}

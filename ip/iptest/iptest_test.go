package iptest_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// replies takes echo replies through the Raw hook, as a ping socket does.
type replies struct{ got [][]byte }

func (r *replies) RawInput(h *ip.Header, p *pbuf.Pbuf) bool {
	b := p.Bytes(nil)
	if len(b) < wire.ICMPv4HeaderLen || b[0] != wire.ICMPv4EchoReply && b[0] != wire.ICMPv6EchoReply {
		return false
	}
	r.got = append(r.got, b)
	p.Free()
	return true
}

// sendEcho sends an echo request with data from n to dst.
func sendEcho(t *testing.T, n *iptest.Node, dst netip.Addr, data []byte) {
	t.Helper()
	var err error
	n.Do(func() {
		src, proto := netip.Addr{}, uint8(wire.ProtoICMP)
		b := make([]byte, wire.ICMPv4HeaderLen+len(data))
		copy(b[wire.ICMPv4HeaderLen:], data)
		if dst.Is6() {
			if src, err = n.IP.SourceFor(dst, nil); err != nil {
				return
			}
			proto = wire.ProtoICMPv6
			r := wire.ICMPv6Repr{Type: wire.ICMPv6EchoRequest, Ident: 1, Seq: 2, PayloadLen: len(data)}
			_ = r.Emit(b, src, dst)
		} else {
			r := wire.ICMPv4Repr{Type: wire.ICMPv4EchoRequest, Ident: 1, Seq: 2, PayloadLen: len(data)}
			_ = r.Emit(b)
		}
		p, e := n.Alloc.Alloc(pbuf.LayerTransport, len(b), pbuf.RAM)
		if err = e; err != nil {
			return
		}
		_ = p.CopyIn(b, 0)
		err = n.IP.Output(p, src, dst, proto, ip.OutputOptions{})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A Pair answers echo requests both ways, small and fragmented, over bare IP and Ethernet
// (ARP, NDP); its cleanup finds every pool empty.
func TestPairEcho(t *testing.T) {
	for _, medium := range []link.Medium{link.MediumIP, link.MediumEthernet} {
		for _, size := range []int{56, 4000} {
			t.Run(fmt.Sprintf("%v/%d", medium, size), func(t *testing.T) {
				p := iptest.NewPair(t, iptest.PairConfig{Medium: medium})
				r := &replies{}
				p.A.Do(func() {
					p.A.IP.SetRaw(r)
					p.A.IP.RawListen(wire.ProtoICMP, true)
					p.A.IP.RawListen(wire.ProtoICMPv6, true)
				})
				data := bytes.Repeat([]byte("wisp"), size/4)
				for _, dst := range iptest.AddrB {
					sendEcho(t, p.A, dst, data)
					p.Pump()
				}
				if len(r.got) != 2 {
					t.Fatalf("%d replies", len(r.got))
				}
				for _, b := range r.got {
					if !bytes.Equal(b[wire.ICMPv4HeaderLen:], data) {
						t.Errorf("reply data differs (%d bytes)", len(b))
					}
				}
			})
		}
	}
}

// A Capture records what a netif writes, stamped with its clock.
func TestCapture(t *testing.T) {
	p := iptest.NewPair(t, iptest.PairConfig{})
	c := &linktest.Capture{Clock: p.Clock}
	p.A.Attach(c, netip.MustParsePrefix("198.19.0.1/24"))
	sendEcho(t, p.A, netip.MustParseAddr("198.19.0.2"), []byte("hi"))
	if len(c.At) != 1 || !c.At[0].Equal(p.Clock.Now()) {
		t.Errorf("stamps %v, want one at %v", c.At, p.Clock.Now())
	}
	f := c.Take()
	if len(f) != 1 || c.Count != 1 || len(f[0]) != wire.IPv4MinHeaderLen+wire.ICMPv4HeaderLen+2 || c.At != nil {
		t.Fatalf("captured %d frames (count %d, stamps left %d)", len(f), c.Count, len(c.At))
	}
	if ipv4 := wire.IPv4(f[0]); ipv4.Dst() != netip.MustParseAddr("198.19.0.2") || ipv4.Protocol() != wire.ProtoICMP {
		t.Errorf("frame % x", f[0])
	}
}

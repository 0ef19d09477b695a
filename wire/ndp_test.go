package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

var (
	macA       = MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}
	targetAddr = netip.MustParseAddr("2001:db8::2")
	solNode    = netip.MustParseAddr("ff02::1:ff00:2")
)

// buildNS emits a Neighbor Solicitation with a Source Link-layer option.
func buildNS(t testing.TB, b []byte) []byte {
	n, err := EmitNDPNeighborSolicit(b, targetAddr)
	if err != nil {
		t.Fatal(err)
	}
	m, err := EmitNDPLinkLayerOption(b[n:], NDPOptSourceLLAddr, macA)
	if err != nil {
		t.Fatal(err)
	}
	ICMPv6(b[:n+m]).SetChecksum(ll1, solNode)
	return b[:n+m]
}

func TestNDPNeighborSolicit(t *testing.T) {
	b := buildNS(t, make([]byte, 64))
	want := []byte{
		135, 0, 0, 0, 0, 0, 0, 0,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
		1, 1, 0x02, 0, 0, 0, 0, 0x0a,
	}
	b2 := append([]byte(nil), b...)
	b2[2], b2[3] = 0, 0
	if !bytes.Equal(b2, want) {
		t.Fatalf("emit\n% x\nwant\n% x", b2, want)
	}
	if err := CheckICMPv6(b, ll1, solNode); err != nil {
		t.Fatal(err)
	}
	if err := CheckNDPNeighborSolicit(b); err != nil {
		t.Fatal(err)
	}
	ns := NDPNeighborSolicit(b)
	if ns.TargetAddress() != targetAddr {
		t.Fatal(ns.TargetAddress())
	}
	it := ns.Options().Iter()
	o, ok := it.Next()
	if !ok || o.Type() != NDPOptSourceLLAddr || o.Len() != 8 {
		t.Fatalf("option % x", o)
	}
	if mac, ok := o.LinkLayerAddr(); !ok || mac != macA {
		t.Fatal(mac)
	}
	if _, ok := it.Next(); ok || it.Err() != nil {
		t.Fatal("extra option")
	}
	// RFC 4861 §4.6: an option of length 0 invalidates the packet.
	b[25] = 0
	if err := CheckNDPNeighborSolicit(b); !errors.Is(err, ErrOption) {
		t.Fatal(err)
	}
	b[25] = 2 // runs past the end
	if err := CheckNDPNeighborSolicit(b); !errors.Is(err, ErrOption) {
		t.Fatal(err)
	}
	b[25] = 1
	b[1] = 1
	if err := CheckNDPNeighborSolicit(b); !errors.Is(err, ErrType) {
		t.Fatal(err)
	}
	b[1] = 0
	copy(b[8:], solNode.AsSlice())
	if err := CheckNDPNeighborSolicit(b); !errors.Is(err, ErrAddress) {
		t.Fatal(err)
	}
	if err := CheckNDPNeighborSolicit(b[:23]); !errors.Is(err, ErrTruncated) {
		t.Fatal(err)
	}
	if err := CheckNDPNeighborSolicit(b[:27]); !errors.Is(err, ErrOption) {
		t.Fatal(err)
	}
}

func TestNDPNeighborAdvert(t *testing.T) {
	b := make([]byte, 32)
	n, _ := EmitNDPNeighborAdvert(b, NDPNASolicited|NDPNAOverride, targetAddr)
	m, _ := EmitNDPLinkLayerOption(b[n:], NDPOptTargetLLAddr, macA)
	b = b[:n+m]
	ICMPv6(b).SetChecksum(targetAddr, ll1)
	if err := CheckICMPv6(b, targetAddr, ll1); err != nil {
		t.Fatal(err)
	}
	if err := CheckNDPNeighborAdvert(b); err != nil {
		t.Fatal(err)
	}
	na := NDPNeighborAdvert(b)
	if na.Router() || !na.Solicited() || !na.Override() || na.Flags() != 0x60 || na.TargetAddress() != targetAddr {
		t.Fatalf("% x", b)
	}
	if err := CheckNDPNeighborSolicit(b); !errors.Is(err, ErrType) {
		t.Fatal(err)
	}
	copy(b[8:], solNode.AsSlice()) // RFC 4861 §7.1.2: a multicast target is invalid
	if err := CheckNDPNeighborAdvert(b); !errors.Is(err, ErrAddress) {
		t.Fatal(err)
	}
}

func TestNDPRouterAdvert(t *testing.T) {
	b := make([]byte, 128)
	ra := NDPRouterAdvertRepr{CurHopLimit: 64, Flags: NDPRAOther, RouterLifetime: 1800, ReachableTime: 30000, RetransTimer: 1000}
	n, err := ra.Emit(b)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := EmitNDPLinkLayerOption(b[n:], NDPOptSourceLLAddr, macA)
	n += k
	k, _ = EmitNDPMTUOption(b[n:], 1500)
	n += k
	pi := NDPPrefixInfoRepr{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), OnLink: true, Autonomous: true,
		ValidLifetime: 86400, PreferredLifetime: 14400}
	k, err = pi.Emit(b[n:])
	if err != nil {
		t.Fatal(err)
	}
	n += k
	b = b[:n]
	ICMPv6(b).SetChecksum(ll1, netip.MustParseAddr("ff02::1"))

	var got NDPRouterAdvertRepr
	if err := got.Parse(b); err != nil || got != ra {
		t.Fatalf("%+v %v", got, err)
	}
	v := NDPRouterAdvert(b)
	if v.Managed() || !v.Other() || v.CurHopLimit() != 64 || v.RouterLifetime() != 1800 {
		t.Fatal("fields")
	}
	var sawLL, sawMTU, sawPI bool
	it := v.Options().Iter()
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		switch o.Type() {
		case NDPOptSourceLLAddr:
			mac, ok := o.LinkLayerAddr()
			sawLL = ok && mac == macA
		case NDPOptMTU:
			mtu, ok := o.MTU()
			sawMTU = ok && mtu == 1500
		case NDPOptPrefixInfo:
			p, ok := o.PrefixInfo()
			sawPI = ok && p.Prefix() == pi.Prefix && p.OnLink() && p.Autonomous() &&
				p.ValidLifetime() == 86400 && p.PreferredLifetime() == 14400 && p.PrefixLength() == 64
		}
	}
	if it.Err() != nil || !sawLL || !sawMTU || !sawPI {
		t.Fatalf("options: err %v ll %v mtu %v pi %v", it.Err(), sawLL, sawMTU, sawPI)
	}
	// A wrongly-sized known option is not interpreted.
	if _, ok := NDPOption([]byte{NDPOptMTU, 2, 0, 0, 0, 0, 5, 0xdc, 0, 0, 0, 0, 0, 0, 0, 0}).MTU(); ok {
		t.Fatal("16-byte MTU option accepted")
	}
}

func TestNDPRouterSolicitAndRedirect(t *testing.T) {
	b := make([]byte, 48)
	n, _ := EmitNDPRouterSolicit(b)
	if err := CheckNDPRouterSolicit(b[:n]); err != nil {
		t.Fatal(err)
	}
	n, err := EmitNDPRedirect(b, ll2, targetAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckNDPRedirect(b[:n]); err != nil {
		t.Fatal(err)
	}
	rd := NDPRedirect(b[:n])
	if rd.TargetAddress() != ll2 || rd.DestinationAddress() != targetAddr || len(rd.Options()) != 0 {
		t.Fatal("redirect fields")
	}
	if _, err := EmitNDPRedirect(b, ll2, netip.MustParseAddr("10.0.0.1")); !errors.Is(err, ErrAddress) {
		t.Fatal(err)
	}
	copy(b[24:], solNode.AsSlice()) // RFC 4861 §8.1: a multicast destination is invalid
	if err := CheckNDPRedirect(b[:n]); !errors.Is(err, ErrAddress) {
		t.Fatal(err)
	}
}

// FuzzNDP validates any NDP message, walks its options, re-emits the fixed
// part with the emitters and the options verbatim, and checks the result
// parses to the same fields.
func FuzzNDP(f *testing.F) {
	f.Add(buildNS(f, make([]byte, 64)))
	f.Add([]byte{134, 0, 0, 0, 64, 0x40, 7, 8, 0, 0, 0, 1, 0, 0, 0, 2, 5, 1, 0, 0, 0, 0, 5, 0xdc})
	f.Add([]byte{133, 0, 0, 0, 0, 0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 8 {
			return
		}
		var (
			base int
			opts NDPOptions
			out  = make([]byte, len(b))
			err  error
		)
		switch b[0] {
		case ICMPv6RouterSolicit:
			if CheckNDPRouterSolicit(b) != nil {
				return
			}
			base, err = EmitNDPRouterSolicit(out)
			opts = NDPRouterSolicit(b).Options()
		case ICMPv6RouterAdvert:
			var r NDPRouterAdvertRepr
			if r.Parse(b) != nil {
				return
			}
			base, err = r.Emit(out)
			opts = NDPRouterAdvert(b).Options()
		case ICMPv6NeighborSolicit:
			if CheckNDPNeighborSolicit(b) != nil {
				return
			}
			base, err = EmitNDPNeighborSolicit(out, NDPNeighborSolicit(b).TargetAddress())
			opts = NDPNeighborSolicit(b).Options()
		case ICMPv6NeighborAdvert:
			if CheckNDPNeighborAdvert(b) != nil {
				return
			}
			na := NDPNeighborAdvert(b)
			base, err = EmitNDPNeighborAdvert(out, na.Flags(), na.TargetAddress())
			opts = na.Options()
		case ICMPv6Redirect:
			if CheckNDPRedirect(b) != nil {
				return
			}
			rd := NDPRedirect(b)
			base, err = EmitNDPRedirect(out, rd.TargetAddress(), rd.DestinationAddress())
			opts = rd.Options()
		default:
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		n := base
		it := opts.Iter()
		for o, ok := it.Next(); ok; o, ok = it.Next() {
			if mac, ok := o.LinkLayerAddr(); ok {
				k, _ := EmitNDPLinkLayerOption(out[n:], o.Type(), mac)
				out[n+1] = o[1] // longer LL options keep their length and tail
				copy(out[n+k:], o[k:])
				n += o.Len()
				continue
			}
			if p, ok := o.PrefixInfo(); ok && p.Prefix().IsValid() {
				pr := NDPPrefixInfoRepr{Prefix: p.Prefix(), OnLink: p.OnLink(), Autonomous: p.Autonomous(),
					ValidLifetime: p.ValidLifetime(), PreferredLifetime: p.PreferredLifetime()}
				if _, err := pr.Emit(out[n:]); err != nil {
					t.Fatal(err)
				}
				q := NDPPrefixInfo(out[n : n+32])
				if q.Prefix() != p.Prefix() || q.OnLink() != p.OnLink() || q.ValidLifetime() != p.ValidLifetime() {
					t.Fatal("prefix info round trip")
				}
				n += 32
				continue
			}
			n += copy(out[n:], o)
		}
		if it.Err() != nil || n != len(b) {
			t.Fatalf("options: %v, %d of %d bytes", it.Err(), n, len(b))
		}
		out = out[:n]
		ICMPv6(out).SetChecksum(ll1, ll2)
		if err := CheckICMPv6(out, ll1, ll2); err != nil {
			t.Fatal(err)
		}
		// The fixed part matches but for reserved bits and the checksum.
		want := append([]byte(nil), b[:base]...)
		want[2], want[3] = out[2], out[3]
		switch b[0] {
		case ICMPv6NeighborAdvert:
			want[4] &= 0xe0
			want[5], want[6], want[7] = 0, 0, 0
		case ICMPv6RouterSolicit, ICMPv6NeighborSolicit, ICMPv6Redirect:
			want[4], want[5], want[6], want[7] = 0, 0, 0, 0
		}
		if !bytes.Equal(out[:base], want) {
			t.Fatalf("fixed part differs\n% x\n% x", out[:base], want)
		}
		i1, i2 := opts.Iter(), NDPOptions(out[base:]).Iter()
		for o1, ok := i1.Next(); ok; o1, ok = i1.Next() {
			o2, ok2 := i2.Next()
			m1, _ := o1.LinkLayerAddr()
			m2, _ := o2.LinkLayerAddr()
			if !ok2 || o1.Type() != o2.Type() || o1.Len() != o2.Len() || m1 != m2 {
				t.Fatalf("option differs: % x vs % x", o1, o2)
			}
		}
	})
}

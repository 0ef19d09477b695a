package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

var (
	v6src = netip.MustParseAddr("2001:db8::1")
	v6dst = netip.MustParseAddr("2001:db8::2")
)

// ipv6ChainFixture: IPv6 | Hop-by-Hop (Router Alert) | Destination Options
// (PadN, unknown option 0x3e) | Routing (type 4, segments left 0) | Fragment
// (offset 1448, M, id 0x01020304) | 8 bytes of UDP.
func ipv6ChainFixture() []byte {
	b := []byte{
		0x60, 0x12, 0x34, 0x56, 0x00, 0x28, ProtoHopByHop, 64,
	}
	b = append(b, v6src.AsSlice()...)
	b = append(b, v6dst.AsSlice()...)
	b = append(b,
		// Hop-by-Hop at 40: Router Alert (MLD) + PadN(0).
		ProtoIPv6DstOpts, 0, IPv6OptRouterAlert, 2, 0, 0, IPv6OptPadN, 0,
		// Destination Options at 48: Pad1, unknown type 0x3e len 1, PadN.
		ProtoIPv6Route, 0, IPv6OptPad1, 0x3e, 1, 0xaa, IPv6OptPadN, 0,
		// Routing at 56: type 4, segments left 0.
		ProtoIPv6Frag, 0, 4, 0, 0, 0, 0, 0,
		// Fragment at 64: offset 1448 (181<<3), M=1, id 0x01020304.
		ProtoUDP, 0, 0x05, 0xa9, 0x01, 0x02, 0x03, 0x04,
		// Fragment data at 72.
		1, 2, 3, 4, 5, 6, 7, 8,
	)
	return b
}

func TestIPv6Fixture(t *testing.T) {
	b := ipv6ChainFixture()
	var r IPv6Repr
	if err := r.Parse(b); err != nil {
		t.Fatal(err)
	}
	want := IPv6Repr{TrafficClass: 0x01, FlowLabel: 0x23456, NextHeader: ProtoHopByHop, HopLimit: 64,
		Src: v6src, Dst: v6dst, PayloadLen: 0x28}
	if r != want {
		t.Fatalf("parsed %+v\nwant %+v", r, want)
	}
	out := make([]byte, IPv6HeaderLen)
	if err := r.Emit(out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, b[:IPv6HeaderLen]) {
		t.Fatalf("emit\n% x\nwant\n% x", out, b[:IPv6HeaderLen])
	}
	if len(IPv6(b).Payload()) != 0x28 {
		t.Fatal("payload length")
	}

	c, err := WalkIPv6(b)
	if err != nil {
		t.Fatal(err)
	}
	wantChain := IPv6Chain{Proto: ProtoUDP, Offset: 72, HopByHopOffset: 40, RoutingOffset: 56, FragmentOffset: 64}
	if c != wantChain {
		t.Fatalf("walk %+v\nwant %+v", c, wantChain)
	}
	f := IPv6Fragment(b[c.FragmentOffset:])
	if f.NextHeader() != ProtoUDP || f.FragmentOffset() != 1448 || !f.MoreFragments() || f.Identification() != 0x01020304 {
		t.Fatalf("fragment % x", b[64:72])
	}
	var fr IPv6FragmentRepr
	if err := fr.Parse(b[64:]); err != nil {
		t.Fatal(err)
	}
	fout := make([]byte, 8)
	if err := fr.Emit(fout); err != nil || !bytes.Equal(fout, b[64:72]) {
		t.Fatalf("fragment emit % x %v", fout, err)
	}
	rt := IPv6ExtHeader(b[56:])
	if rt.RoutingType() != 4 || rt.SegmentsLeft() != 0 || rt.Len() != 8 {
		t.Fatal("routing header")
	}

	// Options: Router Alert in HBH, the unknown 0x3e in Destination Options.
	it := IPv6ExtHeader(b[40:]).Options()
	o, ok := it.Next()
	if !ok || o.Type != IPv6OptRouterAlert || !bytes.Equal(o.Data, []byte{0, 0}) || o.Offset != 2 {
		t.Fatalf("hbh option %+v", o)
	}
	if _, ok := it.Next(); ok || it.Err() != nil {
		t.Fatalf("hbh: extra option or %v", it.Err())
	}
	it = IPv6ExtHeader(b[48:]).Options()
	o, ok = it.Next()
	if !ok || o.Type != 0x3e || o.Offset != 3 || IPv6OptionAction(o.Type) != IPv6OptActionSkip {
		t.Fatalf("dst option %+v", o)
	}
	if IPv6OptionAction(IPv6OptJumbo) != IPv6OptActionDiscardICMPUni {
		t.Fatal("jumbo action")
	}
}

func TestIPv6WalkErrors(t *testing.T) {
	// Truncated: Payload Length ends inside the Routing header.
	b := ipv6ChainFixture()
	IPv6(b).SetPayloadLength(20)
	c, err := WalkIPv6(b)
	if !errors.Is(err, ErrTruncated) || c.ErrPointer != 57 {
		t.Fatalf("truncated routing: %v %+v", err, c)
	}
	// Hdr Ext Len runs past the end: the pointer names the length field.
	b = ipv6ChainFixture()
	b[49] = 5
	c, err = WalkIPv6(b)
	if !errors.Is(err, ErrTruncated) || c.ErrPointer != 49 || c.ErrCode != ICMPv6ParamErroneousField {
		t.Fatalf("long dstopts: %v %+v", err, c)
	}
	// Hop-by-Hop after Destination Options: Parameter Problem code 1,
	// pointing at the Next Header field (offset 48) that named it.
	b = ipv6ChainFixture()
	b[48] = ProtoHopByHop
	c, err = WalkIPv6(b)
	if !errors.Is(err, ErrExtHeader) || c.ErrPointer != 48 || c.ErrCode != ICMPv6ParamUnknownNextHdr {
		t.Fatalf("late hbh: %v %+v", err, c)
	}
	// Fragment header cut short.
	b = ipv6ChainFixture()
	IPv6(b).SetPayloadLength(28)
	if _, err := WalkIPv6(b[:68]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short frag: %v", err)
	}
	// No Next Header and a bare upper layer.
	b = ipv6ChainFixture()
	b[40] = ProtoNoNextHdr
	if c, err := WalkIPv6(b); err != nil || c.Proto != ProtoNoNextHdr || c.Offset != 48 {
		t.Fatalf("no next header: %v %+v", err, c)
	}
	b = ipv6ChainFixture()
	IPv6(b).SetNextHeader(ProtoTCP)
	if c, err := WalkIPv6(b); err != nil || c != (IPv6Chain{Proto: ProtoTCP, Offset: 40}) {
		t.Fatalf("tcp: %v %+v", err, c)
	}
	// Bad option length inside an options header.
	b = ipv6ChainFixture()
	b[52] = 9
	it := IPv6ExtHeader(b[48:]).Options()
	for _, ok := it.Next(); ok; _, ok = it.Next() {
	}
	if !errors.Is(it.Err(), ErrOption) || it.ErrOffset() != 3 {
		t.Fatalf("bad option: %v at %d", it.Err(), it.ErrOffset())
	}
}

func TestIPv6Malformed(t *testing.T) {
	b := ipv6ChainFixture()
	if err := CheckIPv6(b[:39]); !errors.Is(err, ErrTruncated) {
		t.Error(err)
	}
	if err := CheckIPv6(b[:79]); !errors.Is(err, ErrTruncated) {
		t.Error(err)
	}
	b[0] = 0x40
	if err := CheckIPv6(b); !errors.Is(err, ErrVersion) {
		t.Error(err)
	}
	r := IPv6Repr{Src: v6src, Dst: v6dst, FlowLabel: 1 << 20}
	if err := r.Emit(make([]byte, 40)); !errors.Is(err, ErrRepr) {
		t.Error(err)
	}
	r = IPv6Repr{Src: netip.MustParseAddr("10.0.0.1"), Dst: v6dst}
	if err := r.Emit(make([]byte, 40)); !errors.Is(err, ErrAddress) {
		t.Error(err)
	}
	if err := EmitIPv6Fragment(make([]byte, 8), ProtoUDP, 12, false, 0); !errors.Is(err, ErrRepr) {
		t.Error(err)
	}
}

func FuzzIPv6(f *testing.F) {
	f.Add(ipv6ChainFixture())
	b := ipv6ChainFixture()
	b[48] = ProtoHopByHop
	f.Add(b)
	f.Add(b[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		c, werr := WalkIPv6(b)
		var r IPv6Repr
		if err := r.Parse(b); err != nil {
			return
		}
		if werr == nil {
			if c.Offset > IPv6HeaderLen+r.PayloadLen || c.Offset < IPv6HeaderLen {
				t.Fatalf("walk offset %d out of range", c.Offset)
			}
			if c.FragmentOffset != 0 {
				var fr IPv6FragmentRepr
				if err := fr.Parse(b[c.FragmentOffset:]); err != nil {
					t.Fatal(err)
				}
			}
		} else if c.ErrPointer >= IPv6HeaderLen+r.PayloadLen {
			t.Fatalf("error pointer %d past packet", c.ErrPointer)
		}
		if off := c.HopByHopOffset; werr == nil && off != 0 {
			if err := CheckIPv6ExtHeader(b[off:]); err != nil {
				t.Fatalf("walked past a bad header: %v", err)
			}
			it := IPv6ExtHeader(b[off:]).Options()
			for _, ok := it.Next(); ok; _, ok = it.Next() {
			}
		}
		out := make([]byte, IPv6HeaderLen+r.PayloadLen)
		copy(out[IPv6HeaderLen:], IPv6(b).Payload())
		if err := r.Emit(out); err != nil {
			t.Fatal(err)
		}
		var r2 IPv6Repr
		if err := r2.Parse(out); err != nil || r2 != r {
			t.Fatalf("round trip %+v %v != %+v", r2, err, r)
		}
		c2, werr2 := WalkIPv6(out)
		if c2 != c || werr2 != werr {
			t.Fatalf("re-walk %+v %v != %+v %v", c2, werr2, c, werr)
		}
	})
}

func FuzzIPv6Fragment(f *testing.F) {
	f.Add([]byte{ProtoUDP, 0, 0x05, 0xa9, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r IPv6FragmentRepr
		if err := r.Parse(b); err != nil {
			return
		}
		out := make([]byte, IPv6FragmentHeaderLen)
		if err := r.Emit(out); err != nil {
			t.Fatal(err)
		}
		var r2 IPv6FragmentRepr
		if err := r2.Parse(out); err != nil || r2 != r {
			t.Fatalf("round trip %+v %v != %+v", r2, err, r)
		}
	})
}

func FuzzIPv6Options(f *testing.F) {
	f.Add([]byte{ProtoUDP, 0, IPv6OptPad1, 0x3e, 1, 0xaa, IPv6OptPadN, 0})
	f.Add([]byte{ProtoUDP, 1, IPv6OptPadN, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckIPv6ExtHeader(b) != nil {
			return
		}
		h := IPv6ExtHeader(b)
		it := h.Options()
		for o, ok := it.Next(); ok; o, ok = it.Next() {
			if o.Offset < 2 || o.Offset+2+len(o.Data) > h.Len() || o.Type == IPv6OptPad1 || o.Type == IPv6OptPadN {
				t.Fatalf("bad option %+v in %d-byte header", o, h.Len())
			}
		}
		if it.Err() != nil && (it.ErrOffset() < 2 || it.ErrOffset() >= h.Len()) {
			t.Fatalf("error offset %d", it.ErrOffset())
		}
	})
}

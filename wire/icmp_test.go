package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// Echo request, id 0x1234, seq 1, data "abcdefgh"; checksum computed by hand.
var icmpv4EchoFixture = []byte{
	0x08, 0x00, 0x54, 0x35, 0x12, 0x34, 0x00, 0x01,
	'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h',
}

// ICMPv6 echo request fe80::1 -> fe80::2, id 0xabcd, seq 2, data "hi".
var (
	icmpv6EchoFixture = []byte{0x80, 0x00, 0x6e, 0x7d, 0xab, 0xcd, 0x00, 0x02, 'h', 'i'}
	ll1               = netip.MustParseAddr("fe80::1")
	ll2               = netip.MustParseAddr("fe80::2")
)

func TestICMPv4Echo(t *testing.T) {
	var r ICMPv4Repr
	if err := r.Parse(icmpv4EchoFixture); err != nil {
		t.Fatal(err)
	}
	want := ICMPv4Repr{Type: ICMPv4EchoRequest, Ident: 0x1234, Seq: 1, PayloadLen: 8}
	if r != want {
		t.Fatalf("%+v", r)
	}
	m := ICMPv4(icmpv4EchoFixture)
	if m.IsError() || m.Checksum() != 0x5435 || string(m.Payload()) != "abcdefgh" {
		t.Fatal("accessors")
	}
	// Turn it into the reply in place, as the ip layer will.
	b := append([]byte(nil), icmpv4EchoFixture...)
	r.Type = ICMPv4EchoReply
	if err := r.Emit(b); err != nil {
		t.Fatal(err)
	}
	if ICMPv4(b).Type() != ICMPv4EchoReply || refChecksum(b) != 0 || string(ICMPv4(b).Payload()) != "abcdefgh" {
		t.Fatalf("reply % x", b)
	}
	b[9]++
	if err := CheckICMPv4(b); !errors.Is(err, ErrChecksum) {
		t.Fatal(err)
	}
	if err := CheckICMPv4(b[:7]); !errors.Is(err, ErrTruncated) {
		t.Fatal(err)
	}
}

func TestICMPv4Errors(t *testing.T) {
	// Fragmentation needed with next-hop MTU 1400, quoting an IPv4 header.
	b := make([]byte, 8+28)
	copy(b[8:], ipv4Fixture)
	r := ICMPv4Repr{Type: ICMPv4DestUnreach, Code: ICMPv4FragNeeded, NextHopMTU: 1400, PayloadLen: 28}
	if err := r.Emit(b); err != nil {
		t.Fatal(err)
	}
	m := ICMPv4(b)
	if CheckICMPv4(b) != nil || !m.IsError() || m.NextHopMTU() != 1400 || m.Code() != ICMPv4FragNeeded {
		t.Fatalf("% x", b)
	}
	r = ICMPv4Repr{Type: ICMPv4ParamProblem, Pointer: 9, PayloadLen: 0}
	if err := r.Emit(b[:8]); err != nil || ICMPv4(b[:8]).Pointer() != 9 {
		t.Fatal(err)
	}
	r = ICMPv4Repr{Type: ICMPv4Redirect, Gateway: netip.MustParseAddr("10.1.2.3")}
	if err := r.Emit(b[:8]); err != nil || ICMPv4(b[:8]).Gateway() != r.Gateway {
		t.Fatal(err)
	}
	if err := r.Emit(b[:7]); !errors.Is(err, ErrBufferTooSmall) {
		t.Fatal(err)
	}
}

func TestICMPv6Echo(t *testing.T) {
	var r ICMPv6Repr
	if err := r.Parse(icmpv6EchoFixture, ll1, ll2); err != nil {
		t.Fatal(err)
	}
	if r != (ICMPv6Repr{Type: ICMPv6EchoRequest, Ident: 0xabcd, Seq: 2, PayloadLen: 2}) {
		t.Fatalf("%+v", r)
	}
	out := make([]byte, len(icmpv6EchoFixture))
	copy(out[8:], "hi")
	if err := r.Emit(out, ll1, ll2); err != nil || !bytes.Equal(out, icmpv6EchoFixture) {
		t.Fatalf("emit % x %v", out, err)
	}
	// The pseudo-header binds the addresses.
	if err := CheckICMPv6(icmpv6EchoFixture, ll2, ll1); err != nil {
		t.Fatal("swapping addresses keeps the sum:", err)
	}
	if err := CheckICMPv6(icmpv6EchoFixture, ll1, netip.MustParseAddr("fe80::3")); !errors.Is(err, ErrChecksum) {
		t.Fatal(err)
	}
	ptb := make([]byte, 8)
	r = ICMPv6Repr{Type: ICMPv6PacketTooBig, MTU: 1280}
	if err := r.Emit(ptb, ll1, ll2); err != nil || ICMPv6(ptb).MTU() != 1280 || !ICMPv6(ptb).IsError() {
		t.Fatal(err)
	}
	r = ICMPv6Repr{Type: ICMPv6ParamProblem, Code: ICMPv6ParamUnknownNextHdr, Pointer: 48}
	if err := r.Emit(ptb, ll1, ll2); err != nil || ICMPv6(ptb).Pointer() != 48 || CheckICMPv6(ptb, ll1, ll2) != nil {
		t.Fatal(err)
	}
}

func FuzzICMPv4(f *testing.F) {
	f.Add(icmpv4EchoFixture)
	f.Add([]byte{3, 4, 0, 0, 0, 0, 5, 0x78})
	f.Add([]byte{5, 0, 0, 0, 10, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = CheckICMPv4(data)
		b := append([]byte(nil), data...)
		if len(b) >= ICMPv4HeaderLen {
			ICMPv4(b).SetChecksum()
		}
		var r ICMPv4Repr
		if err := r.Parse(b); err != nil {
			return
		}
		out := make([]byte, r.HeaderLen()+r.PayloadLen)
		copy(out[8:], ICMPv4(b).Payload())
		if err := r.Emit(out); err != nil {
			t.Fatal(err)
		}
		var r2 ICMPv4Repr
		if err := r2.Parse(out); err != nil || r2 != r {
			t.Fatalf("round trip %+v %v != %+v", r2, err, r)
		}
	})
}

func FuzzICMPv6(f *testing.F) {
	f.Add(icmpv6EchoFixture)
	f.Add([]byte{2, 0, 0, 0, 0, 0, 5, 0})
	f.Add([]byte{135, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = CheckICMPv6(data, ll1, ll2)
		b := append([]byte(nil), data...)
		if len(b) >= ICMPv6HeaderLen {
			ICMPv6(b).SetChecksum(ll1, ll2)
		}
		var r ICMPv6Repr
		if err := r.Parse(b, ll1, ll2); err != nil {
			return
		}
		out := make([]byte, r.HeaderLen()+r.PayloadLen)
		copy(out[8:], ICMPv6(b).Payload())
		if err := r.Emit(out, ll1, ll2); err != nil {
			t.Fatal(err)
		}
		var r2 ICMPv6Repr
		if err := r2.Parse(out, ll1, ll2); err != nil || r2 != r {
			t.Fatalf("round trip %+v %v != %+v", r2, err, r)
		}
	})
}

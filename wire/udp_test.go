package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

var (
	v4a = netip.MustParseAddr("10.0.0.1")
	v4b = netip.MustParseAddr("10.0.0.2")
)

// 10.0.0.1:1234 -> 10.0.0.2:53, "hi!", checksum computed by hand.
var udpFixture = []byte{0x04, 0xd2, 0x00, 0x35, 0x00, 0x0b, 0x5d, 0x65, 'h', 'i', '!'}

func TestUDPFixture(t *testing.T) {
	var r UDPRepr
	if err := r.Parse(udpFixture, v4a, v4b); err != nil {
		t.Fatal(err)
	}
	if r != (UDPRepr{SrcPort: 1234, DstPort: 53, PayloadLen: 3}) {
		t.Fatalf("%+v", r)
	}
	out := make([]byte, 11)
	copy(out[8:], "hi!")
	if err := r.Emit(out, v4a, v4b); err != nil || !bytes.Equal(out, udpFixture) {
		t.Fatalf("emit % x %v", out, err)
	}
	// Trailing bytes past Length are not payload.
	long := append(append([]byte(nil), udpFixture...), 0, 0)
	if err := CheckUDP(long); err != nil || string(UDP(long).Payload()) != "hi!" {
		t.Fatal(err)
	}
}

func TestUDPChecksumRules(t *testing.T) {
	b := append([]byte(nil), udpFixture...)
	b[6], b[7] = 0, 0
	if !UDP(b).ValidChecksum(v4a, v4b) {
		t.Error("IPv4 zero checksum means none and must be accepted")
	}
	if UDP(b).ValidChecksum(v6src, v6dst) {
		t.Error("IPv6 zero checksum must be rejected")
	}
	// Find a payload whose checksum computes to 0: it must go out as 0xffff.
	b = make([]byte, 10)
	UDP(b).SetSrcPort(1)
	b[5] = 10
	s := Finish(Checksum(b, PseudoHeaderChecksum(ProtoUDP, v6src, v6dst, 10)))
	// Adding the checksum value as data word makes the sum all ones.
	b[8], b[9] = byte(s>>8), byte(s)
	if c := UDP(b).ComputeChecksum(v6src, v6dst); c != 0xffff {
		t.Fatalf("computed-zero checksum went out as %#04x", c)
	}
	UDP(b).SetChecksum(v6src, v6dst)
	if !UDP(b).ValidChecksum(v6src, v6dst) {
		t.Fatal("0xffff checksum does not verify")
	}
	for name, bb := range map[string][]byte{
		"short":      udpFixture[:7],
		"len < 8":    {0, 1, 0, 2, 0, 7, 0, 0},
		"len > data": udpFixture[:10],
	} {
		if CheckUDP(bb) == nil {
			t.Errorf("%s accepted", name)
		}
	}
	b = append([]byte(nil), udpFixture...)
	b[10]++
	var r UDPRepr
	if err := r.Parse(b, v4a, v4b); !errors.Is(err, ErrChecksum) {
		t.Error(err)
	}
}

func FuzzUDP(f *testing.F) {
	f.Add(udpFixture, true)
	f.Add([]byte{0, 1, 0, 2, 0, 8, 0, 0}, false)
	f.Fuzz(func(t *testing.T, data []byte, v4 bool) {
		src, dst := v4a, v4b
		if !v4 {
			src, dst = v6src, v6dst
		}
		_ = CheckUDP(data)
		b := append([]byte(nil), data...)
		if CheckUDP(b) == nil {
			UDP(b).SetChecksum(src, dst)
		}
		var r UDPRepr
		if err := r.Parse(b, src, dst); err != nil {
			return
		}
		out := make([]byte, r.HeaderLen()+r.PayloadLen)
		copy(out[8:], UDP(b).Payload())
		if err := r.Emit(out, src, dst); err != nil {
			t.Fatal(err)
		}
		var r2 UDPRepr
		if err := r2.Parse(out, src, dst); err != nil || r2 != r {
			t.Fatalf("round trip %+v %v != %+v", r2, err, r)
		}
		if !bytes.Equal(out, b[:len(out)]) {
			t.Fatalf("re-emit differs\n% x\n% x", out, b[:len(out)])
		}
	})
}

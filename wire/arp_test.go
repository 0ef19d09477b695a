package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// Who has 192.168.1.1? Tell 192.168.1.100 (RFC 826 layout).
var arpRequestFixture = []byte{
	0x00, 0x01, // ar$hrd: Ethernet
	0x08, 0x00, // ar$pro: IPv4
	0x06, 0x04, // ar$hln, ar$pln
	0x00, 0x01, // ar$op: request
	0x02, 0x11, 0x22, 0x33, 0x44, 0x55, // ar$sha
	192, 168, 1, 100, // ar$spa
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ar$tha
	192, 168, 1, 1, // ar$tpa
}

func TestARPFixture(t *testing.T) {
	var r ARPRepr
	if err := r.Parse(arpRequestFixture); err != nil {
		t.Fatal(err)
	}
	want := ARPRepr{
		Operation: ARPRequest,
		SHA:       MAC{0x02, 0x11, 0x22, 0x33, 0x44, 0x55},
		SPA:       netip.MustParseAddr("192.168.1.100"),
		TPA:       netip.MustParseAddr("192.168.1.1"),
	}
	if r != want {
		t.Fatalf("parsed %+v, want %+v", r, want)
	}
	out := make([]byte, ARPLen)
	if err := EmitARP(out, ARPRequest, want.SHA, want.SPA, MAC{}, want.TPA); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, arpRequestFixture) {
		t.Fatalf("emit\n% x\nwant\n% x", out, arpRequestFixture)
	}
}

func TestARPMalformed(t *testing.T) {
	for name, mutate := range map[string]func([]byte) []byte{
		"short": func(b []byte) []byte { return b[:27] },
		"tiny":  func(b []byte) []byte { return b[:5] },
		"htype": func(b []byte) []byte { b[1] = 6; return b },
		"ptype": func(b []byte) []byte { b[2] = 0x86; return b },
		"hlen":  func(b []byte) []byte { b[4] = 8; return b },
		"plen":  func(b []byte) []byte { b[5] = 16; return b },
	} {
		b := mutate(append([]byte(nil), arpRequestFixture...))
		if err := CheckARP(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := EmitARP(make([]byte, ARPLen), ARPReply, MAC{}, netip.MustParseAddr("::1"), MAC{}, netip.MustParseAddr("10.0.0.1")); !errors.Is(err, ErrAddress) {
		t.Errorf("v6 spa: %v", err)
	}
	if err := EmitARP(make([]byte, ARPLen-1), ARPReply, MAC{}, netip.Addr{}, MAC{}, netip.Addr{}); !errors.Is(err, ErrBufferTooSmall) {
		t.Errorf("short buffer: %v", err)
	}
}

func FuzzARP(f *testing.F) {
	f.Add(arpRequestFixture)
	f.Add(arpRequestFixture[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		var r ARPRepr
		if err := r.Parse(b); err != nil {
			return
		}
		out := make([]byte, r.HeaderLen())
		if err := r.Emit(out); err != nil {
			t.Fatal(err)
		}
		var r2 ARPRepr
		if err := r2.Parse(out); err != nil || r2 != r {
			t.Fatalf("round trip: %+v %v != %+v", r2, err, r)
		}
		if !bytes.Equal(out, b[:ARPLen]) {
			t.Fatalf("re-emit differs:\n% x\n% x", out, b[:ARPLen])
		}
	})
}

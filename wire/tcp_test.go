package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// SYN 49152 -> 80, seq 1, window 65535, MSS 1460; checksum computed by hand
// for 10.0.0.1 -> 10.0.0.2.
var tcpSynFixture = []byte{
	0xc0, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
	0x60, 0x02, 0xff, 0xff, 0xc3, 0xd2, 0x00, 0x00,
	0x02, 0x04, 0x05, 0xb4,
}

func TestTCPFixture(t *testing.T) {
	var r TCPRepr
	if err := r.Parse(tcpSynFixture, v4a, v4b); err != nil {
		t.Fatal(err)
	}
	want := TCPRepr{SrcPort: 49152, DstPort: 80, SeqNum: 1, Flags: TCPFlagSYN, Window: 65535,
		Options: TCPOptions{HasMSS: true, MSS: 1460}}
	if r != want {
		t.Fatalf("%+v", r)
	}
	tc := TCP(tcpSynFixture)
	if tc.DataOffset() != 6 || tc.HeaderLen() != 24 || len(tc.Payload()) != 0 || tc.Checksum() != 0xc3d2 {
		t.Fatal("accessors")
	}
	out := make([]byte, r.HeaderLen())
	if err := r.Emit(out, v4a, v4b); err != nil || !bytes.Equal(out, tcpSynFixture) {
		t.Fatalf("emit % x %v", out, err)
	}
}

func TestTCPFlagsString(t *testing.T) {
	for f, want := range map[TCPFlags]string{
		TCPFlagSYN | TCPFlagACK:              "SYN|ACK",
		TCPFlagFIN | TCPFlagPSH | TCPFlagACK: "FIN|PSH|ACK",
		0:                                    "0",
		0xff:                                 "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR",
		TCPFlagRST:                           "RST",
	} {
		if got := f.String(); got != want {
			t.Errorf("%#02x: %q want %q", uint8(f), got, want)
		}
	}
	if !(TCPFlagSYN | TCPFlagACK).Has(TCPFlagACK) || TCPFlagSYN.Has(TCPFlagSYN|TCPFlagACK) {
		t.Error("Has")
	}
}

func TestTCPOptions(t *testing.T) {
	full := TCPOptions{
		HasMSS: true, MSS: 1440,
		HasWindowScale: true, WindowScale: 7,
		SACKPermitted: true,
		HasTimestamps: true, TSVal: 0xdeadbeef, TSEcr: 1,
	}
	b := make([]byte, TCPMaxOptionsLen)
	n, err := full.Emit(b)
	if err != nil || n != 20 || n != full.Len() {
		t.Fatalf("n %d err %v", n, err)
	}
	want := []byte{2, 4, 0x05, 0xa0, 1, 3, 3, 7, 4, 2, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1}
	if !bytes.Equal(b[:n], want) {
		t.Fatalf("% x", b[:n])
	}
	got, err := ParseTCPOptions(b[:n])
	if err != nil || got != full {
		t.Fatalf("%+v %v", got, err)
	}

	sack := TCPOptions{HasTimestamps: true, TSVal: 5, TSEcr: 6, NumSACK: 2,
		SACKBlocks: [4]SACKBlock{{100, 200}, {300, 400}}}
	n, err = sack.Emit(b)
	if err != nil || n != 32 {
		t.Fatal(n, err)
	}
	if got, err := ParseTCPOptions(b[:n]); err != nil || got != sack {
		t.Fatalf("%+v %v", got, err)
	}
	tooMany := sack
	tooMany.NumSACK, tooMany.HasWindowScale = 3, true
	if _, err := tooMany.Emit(b); !errors.Is(err, ErrRepr) {
		t.Fatal(err)
	}

	// Unknown options are skipped, EOL stops parsing.
	got, err = ParseTCPOptions([]byte{1, 0xfe, 4, 0xaa, 0xbb, 2, 4, 0x02, 0x18, 0, 2, 1})
	if err != nil || got != (TCPOptions{HasMSS: true, MSS: 536}) {
		t.Fatalf("%+v %v", got, err)
	}
	for name, bad := range map[string][]byte{
		"zero length":  {0xfe, 0},
		"one length":   {0xfe, 1, 0, 0},
		"past end":     {0xfe, 6, 0, 0},
		"kind only":    {1, 1, 2},
		"mss len 3":    {2, 3, 0},
		"wscale len 4": {3, 4, 0, 0},
		"sackok len 3": {4, 3, 0},
		"sack len 9":   {5, 9, 0, 0, 0, 0, 0, 0, 0},
		"sack len 2":   {5, 2},
		"ts len 8":     {8, 8, 0, 0, 0, 0, 0, 0},
	} {
		if _, err := ParseTCPOptions(bad); !errors.Is(err, ErrOption) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTCPMalformed(t *testing.T) {
	b := append([]byte(nil), tcpSynFixture...)
	if err := CheckTCP(b[:19]); !errors.Is(err, ErrTruncated) {
		t.Error(err)
	}
	b[12] = 0x40
	if err := CheckTCP(b); !errors.Is(err, ErrHeaderLen) {
		t.Error(err)
	}
	b[12] = 0x70
	if err := CheckTCP(b); !errors.Is(err, ErrTruncated) {
		t.Error(err)
	}
	b = append([]byte(nil), tcpSynFixture...)
	b[4]++
	var r TCPRepr
	if err := r.Parse(b, v4a, v4b); !errors.Is(err, ErrChecksum) {
		t.Error(err)
	}
}

func FuzzTCP(f *testing.F) {
	f.Add(tcpSynFixture, true)
	f.Add(append(append([]byte(nil), tcpSynFixture[:12]...), 0xa0, 0x12, 0, 1, 0, 0, 0, 0,
		1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 10, 0, 0, 0, 5, 0, 0, 0, 9, 'x'), false)
	f.Fuzz(func(t *testing.T, data []byte, v4 bool) {
		src, dst := v4a, v4b
		if !v4 {
			src, dst = v6src, v6dst
		}
		_ = CheckTCP(data)
		b := append([]byte(nil), data...)
		if CheckTCP(b) == nil {
			TCP(b).SetChecksum(src, dst)
			_ = TCP(b).Flags().String()
		}
		var r TCPRepr
		if err := r.Parse(b, src, dst); err != nil {
			return
		}
		if r.Options.Len() > TCPMaxOptionsLen {
			return // parsed options that the aligned layout cannot hold
		}
		out := make([]byte, r.HeaderLen()+r.PayloadLen)
		copy(out[r.HeaderLen():], TCP(b).Payload())
		if err := r.Emit(out, src, dst); err != nil {
			t.Fatal(err)
		}
		var r2 TCPRepr
		if err := r2.Parse(out, src, dst); err != nil || r2 != r {
			t.Fatalf("round trip\n%+v %v\n%+v", r2, err, r)
		}
	})
}

func FuzzTCPOptions(f *testing.F) {
	f.Add([]byte{2, 4, 0x05, 0xa0, 1, 3, 3, 7, 4, 2, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1})
	f.Add([]byte{1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseTCPOptions(b)
		if err != nil || o.Len() > TCPMaxOptionsLen {
			return
		}
		out := make([]byte, TCPMaxOptionsLen)
		n, err := o.Emit(out)
		if err != nil || n != o.Len() || n%4 != 0 {
			t.Fatal(n, err)
		}
		o2, err := ParseTCPOptions(out[:n])
		if err != nil || o2 != o {
			t.Fatalf("round trip\n%+v %v\n%+v", o2, err, o)
		}
	})
}

// TestTCPEmitHeader builds a segment as TCP does: EmitHeader into a header buffer, the
// payload elsewhere, the checksum summed piece by piece and stored with SetChecksumField;
// gopacket decodes and verifies it, and the header equals what Emit writes in one piece.
func TestTCPEmitHeader(t *testing.T) {
	r := TCPRepr{SrcPort: 80, DstPort: 40000, SeqNum: 0x80000001, AckNum: 0xfffffff0,
		Flags: TCPFlagACK | TCPFlagPSH, Window: 0xabcd, PayloadLen: 5,
		Options: TCPOptions{HasTimestamps: true, TSVal: 7, TSEcr: 9, NumSACK: 2,
			SACKBlocks: [TCPMaxSACKBlocks]SACKBlock{{Left: 100, Right: 200}, {Left: 300, Right: 400}}}}
	hl := r.HeaderLen()
	hdr := bytes.Repeat([]byte{0xee}, hl+3) // dirty: EmitHeader must write every byte it owns
	n, err := r.EmitHeader(hdr)
	if err != nil || n != hl {
		t.Fatalf("EmitHeader = %d, %v; want %d", n, err, hl)
	}
	if !bytes.Equal(hdr[hl:], []byte{0xee, 0xee, 0xee}) {
		t.Fatal("EmitHeader wrote past the header")
	}
	payload := []byte("hello")
	sum := Checksum(hdr[:hl], PseudoHeaderChecksum(ProtoTCP, v4a, v4b, uint32(hl+len(payload))))
	TCP(hdr).SetChecksumField(Finish(Checksum(payload, sum)))

	b := make([]byte, 20+hl+len(payload))
	copy(b[20:], hdr[:hl])
	copy(b[20+hl:], payload)
	ip := IPv4Repr{TTL: 64, Protocol: ProtoTCP, Src: v4a, Dst: v4b, PayloadLen: hl + len(payload)}
	_ = ip.Emit(b)
	p := decode(t, b, layers.LayerTypeIPv4)
	lt := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if lt.SrcPort != 80 || lt.DstPort != 40000 || lt.Seq != 0x80000001 || lt.Ack != 0xfffffff0 ||
		int(lt.DataOffset)*4 != hl || !lt.ACK || !lt.PSH || lt.SYN || lt.FIN || lt.RST || lt.Window != 0xabcd ||
		lt.Urgent != 0 || string(lt.Payload) != "hello" {
		t.Errorf("tcp %+v", lt)
	}
	var sack []byte
	for _, o := range lt.Options {
		if o.OptionType == layers.TCPOptionKindSACK {
			sack = o.OptionData
		}
	}
	if !bytes.Equal(sack, []byte{0, 0, 0, 100, 0, 0, 0, 200, 0, 0, 1, 0x2c, 0, 0, 1, 0x90}) {
		t.Errorf("SACK blocks % x", sack)
	}

	one := make([]byte, hl+len(payload))
	copy(one[hl:], payload)
	if err := r.Emit(one, v4a, v4b); err != nil || !bytes.Equal(one[:hl], hdr[:hl]) {
		t.Errorf("Emit % x, %v; EmitHeader+SetChecksumField % x", one[:hl], err, hdr[:hl])
	}

	if _, err := r.EmitHeader(hdr[:hl-1]); err != ErrBufferTooSmall {
		t.Errorf("short buffer: %v", err)
	}
	r.Options.NumSACK = TCPMaxSACKBlocks + 1
	if _, err := r.EmitHeader(make([]byte, 80)); err != ErrRepr {
		t.Errorf("bad NumSACK: %v", err)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		r.Options.NumSACK = 1
		_, _ = r.EmitHeader(hdr)
		TCP(hdr).SetChecksumField(1)
	}); allocs != 0 {
		t.Errorf("EmitHeader: %v allocs", allocs)
	}
}

package wire

import (
	"bytes"
	"errors"
	"testing"
)

// A TCPv4 GSO packet as a TUN device reads it from the kernel: NEEDS_CSUM, gso tcpv4,
// hdr_len 66 (IPv4 20 + TCP 32 with timestamps + 14 of linear data: a hint), gso_size 1448,
// csum_start 20, csum_offset 16. Little-endian.
var virtioNetTSO4Fixture = []byte{0x01, 0x01, 0x42, 0x00, 0xa8, 0x05, 0x14, 0x00, 0x10, 0x00}

// A plain IPv6 UDP packet with a partial checksum: NEEDS_CSUM, no GSO, csum_start 40,
// csum_offset 6.
var virtioNetCsum6Fixture = []byte{0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28, 0x00, 0x06, 0x00}

func TestVirtioNetHdrFixtures(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		n    int
		want VirtioNetHdrRepr
	}{
		{"tso4", virtioNetTSO4Fixture, 64000, VirtioNetHdrRepr{Flags: VirtioNetNeedsCsum, GSOType: VirtioNetGSOTCPv4,
			HdrLen: 66, GSOSize: 1448, CsumStart: 20, CsumOffset: 16}},
		{"csum6", virtioNetCsum6Fixture, 48, VirtioNetHdrRepr{Flags: VirtioNetNeedsCsum, CsumStart: 40, CsumOffset: 6}},
		{"zero", make([]byte, 10), 20, VirtioNetHdrRepr{}},
		{"data valid", []byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 20, VirtioNetHdrRepr{Flags: VirtioNetDataValid}},
		{"tso6 ecn", []byte{1, 0x84, 0, 0, 0x10, 0, 40, 0, 16, 0}, 100, VirtioNetHdrRepr{Flags: VirtioNetNeedsCsum,
			GSOType: VirtioNetGSOTCPv6, ECN: true, GSOSize: 16, CsumStart: 40, CsumOffset: 16}},
		{"uso", []byte{1, 5, 0, 0, 0x10, 0, 40, 0, 6, 0}, 100, VirtioNetHdrRepr{Flags: VirtioNetNeedsCsum,
			GSOType: VirtioNetGSOUDPL4, GSOSize: 16, CsumStart: 40, CsumOffset: 6}},
	} {
		var r VirtioNetHdrRepr
		if err := r.Parse(c.b, c.n); err != nil || r != c.want {
			t.Errorf("%s: %+v %v, want %+v", c.name, r, err, c.want)
			continue
		}
		h := VirtioNetHdr(c.b)
		if h.Flags() != c.want.Flags || h.HdrLen() != c.want.HdrLen || h.GSOSize() != c.want.GSOSize ||
			h.CsumStart() != c.want.CsumStart || h.CsumOffset() != c.want.CsumOffset {
			t.Errorf("%s: view disagrees", c.name)
		}
		out := bytes.Repeat([]byte{0xee}, 12)
		if err := r.Emit(out); err != nil || !bytes.Equal(out[:10], c.b) || out[10] != 0xee {
			t.Errorf("%s: emit % x %v", c.name, out, err)
		}
	}
}

func TestVirtioNetHdrRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		n    int
		want error
	}{
		{"short", virtioNetTSO4Fixture[:9], 64000, ErrTruncated},
		{"negative length", virtioNetTSO4Fixture, -1, ErrTruncated},
		{"unknown flag", []byte{4, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 20, ErrVirtioNetFlags},
		{"ufo", []byte{1, 3, 0, 0, 8, 0, 20, 0, 6, 0}, 100, ErrVirtioNetGSOType},
		{"unknown type", []byte{1, 2, 0, 0, 8, 0, 20, 0, 6, 0}, 100, ErrVirtioNetGSOType},
		{"ecn without gso", []byte{1, 0x80, 0, 0, 0, 0, 20, 0, 6, 0}, 100, ErrVirtioNetGSOType},
		{"ecn on uso", []byte{1, 0x85, 0, 0, 8, 0, 20, 0, 6, 0}, 100, ErrVirtioNetGSOType},
		{"gso size 0", []byte{1, 1, 0, 0, 0, 0, 20, 0, 16, 0}, 100, ErrVirtioNetGSO},
		{"gso without csum flag", []byte{0, 1, 0, 0, 8, 0, 20, 0, 16, 0}, 100, ErrVirtioNetGSO},
		{"csum past end", []byte{1, 0, 0, 0, 0, 0, 20, 0, 16, 0}, 37, ErrVirtioNetCsum},
		{"csum offset huge", []byte{1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, 65535, ErrVirtioNetCsum},
		{"hdr_len past end", []byte{0, 0, 100, 0, 0, 0, 0, 0, 0, 0}, 99, ErrVirtioNetHdrLen},
	} {
		var r VirtioNetHdrRepr
		if err := r.Parse(c.b, c.n); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// The checksum field may end exactly at the end of the packet.
	var r VirtioNetHdrRepr
	if err := r.Parse([]byte{1, 0, 0, 0, 0, 0, 20, 0, 16, 0}, 38); err != nil {
		t.Error(err)
	}
	for _, bad := range []VirtioNetHdrRepr{{Flags: 8}, {GSOType: 0x81}, {ECN: true}, {ECN: true, GSOType: VirtioNetGSOUDPL4}} {
		if err := bad.Emit(make([]byte, 10)); !errors.Is(err, ErrRepr) {
			t.Errorf("emit %+v: %v", bad, err)
		}
	}
	if err := (&VirtioNetHdrRepr{}).Emit(make([]byte, 9)); !errors.Is(err, ErrBufferTooSmall) {
		t.Error(err)
	}
}

func TestVirtioNetHdrZeroAllocs(t *testing.T) {
	b := append([]byte(nil), virtioNetTSO4Fixture...)
	var r VirtioNetHdrRepr
	if n := testing.AllocsPerRun(100, func() {
		_ = r.Parse(b, 64000)
		_ = r.Emit(b)
		_ = r.Parse(b[:3], 1) // errors are sentinels
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func FuzzVirtioNetHdr(f *testing.F) {
	f.Add(virtioNetTSO4Fixture, 64000)
	f.Add(virtioNetCsum6Fixture, 48)
	f.Add([]byte{1, 0x84, 0, 0, 0x10, 0, 40, 0, 16, 0}, 100)
	f.Add([]byte{1, 3, 0, 0, 8, 0, 20, 0, 6, 0}, 100)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		var r VirtioNetHdrRepr
		if err := r.Parse(data, n); err != nil {
			return
		}
		h := VirtioNetHdr(data)
		_, _, _, _, _, _ = h.Flags(), h.GSOType(), h.HdrLen(), h.GSOSize(), h.CsumStart(), h.CsumOffset()
		if r.Flags&VirtioNetNeedsCsum != 0 && int(r.CsumStart)+int(r.CsumOffset)+2 > n {
			t.Fatalf("checksum field outside %d bytes accepted: %+v", n, r)
		}
		out := make([]byte, VirtioNetHdrLen)
		if err := r.Emit(out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, data[:VirtioNetHdrLen]) {
			t.Fatalf("re-emit differs\n% x\n% x", out, data[:VirtioNetHdrLen])
		}
		var r2 VirtioNetHdrRepr
		if err := r2.Parse(out, n); err != nil || r2 != r {
			t.Fatalf("round trip %+v %v != %+v", r2, err, r)
		}
	})
}

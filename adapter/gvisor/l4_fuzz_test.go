package gvisor

import (
	"encoding/binary"
	"testing"
)

// FuzzL4Of: l4Of never panics, and what it accepts lies within the bytes it was given
// (a TCP header whole, an IPv4 header at least 20 bytes, IPv6 headers in 8-byte units).
func FuzzL4Of(f *testing.F) {
	v4 := make([]byte, 40)
	v4[0], v4[9], v4[32] = 0x45, 6, 5<<4
	f.Add(v4)
	v6 := make([]byte, 60)
	v6[0], v6[6], v6[52] = 0x60, 6, 5<<4
	f.Add(v6)
	ext := make([]byte, 76) // hop-by-hop (8 bytes), then destination options (8), then UDP
	ext[0], ext[6], ext[40], ext[48] = 0x60, 0, 60, 17
	f.Add(ext)
	frag := append([]byte(nil), v4...)
	binary.BigEndian.PutUint16(frag[6:], 0x2000)
	f.Add(frag)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok := l4Of(b)
		if !ok {
			return
		}
		if r.v6 != (b[0]>>4 == 6) || (!r.v6 && r.l3 < 20) || (r.v6 && (r.l3 < 40 || r.l3%8 != 0)) {
			t.Fatalf("%+v from % x", r, b)
		}
		if r.proto == 6 && (r.thl < 20 || r.l3+20 > len(b)) {
			t.Fatalf("TCP %+v beyond %d bytes", r, len(b))
		}
		if r.proto != 6 && r.thl != 0 {
			t.Fatalf("%+v: a header length for a protocol other than TCP", r)
		}
	})
}

package dns

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

// compressedAnswer is a response to "www.example.com. A" whose answer is a CNAME to
// "example.com." (compressed: a pointer into the question) and an A record for it.
var compressedAnswer = []byte{
	0xbe, 0xef, 0x81, 0x80, // ID, QR RD RA, NOERROR
	0, 1, 0, 2, 0, 0, 0, 0, // 1 question, 2 answers
	// question at 12: www.example.com. A IN
	3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
	0, 1, 0, 1,
	// answer 1: pointer to 12, CNAME IN, TTL 300, rdata: pointer to 16 (example.com.)
	0xc0, 12, 0, 5, 0, 1, 0, 0, 1, 0x2c, 0, 2, 0xc0, 16,
	// answer 2: pointer to 16, A IN, TTL 60, 93.184.216.34
	0xc0, 16, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 34,
}

func TestUnpackCompressed(t *testing.T) {
	var m Message
	if err := m.Unpack(compressedAnswer); err != nil {
		t.Fatal(err)
	}
	want := Message{
		Header:    Header{ID: 0xbeef, Response: true, RecursionDesired: true, RecursionAvailable: true},
		Questions: []Question{{"www.example.com.", TypeA, ClassINET}},
		Answers: []Resource{
			{Name: "www.example.com.", Type: TypeCNAME, Class: ClassINET, TTL: 300, Target: "example.com."},
			{Name: "example.com.", Type: TypeA, Class: ClassINET, TTL: 60, Addr: netip.MustParseAddr("93.184.216.34")},
		},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got  %+v\nwant %+v", m, want)
	}
}

func TestPackRoundTrip(t *testing.T) {
	m := Message{
		Header:    Header{ID: 1, Response: true, Authoritative: true, Truncated: true, Opcode: 2, RCode: RCodeNameError},
		Questions: []Question{{`we\.ird\\name\000.example.`, TypeAAAA, ClassINET}},
		Answers: []Resource{
			{Name: "a.example.", Type: TypeAAAA, Class: ClassINET, TTL: 1, Addr: netip.MustParseAddr("fd00::1")},
			{Name: "a.example.", Type: 16, Class: ClassINET, TTL: 2, Data: []byte("\x05hello")},
		},
		Authorities: []Resource{{Name: "example.", Type: TypeSOA, Class: ClassINET, TTL: 3,
			SOA: SOA{MName: "ns.example.", RName: "root.example.", Serial: 1, Refresh: 2, Retry: 3, Expire: 4, Minimum: 5}}},
	}
	b, err := m.Pack(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got Message
	if err := got.Unpack(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("got  %+v\nwant %+v", got, m)
	}
	// The escaped name is one 13-byte label: we.ird\name + NUL.
	if !bytes.Contains(b, []byte("\x0cwe.ird\\name\x00\x07example\x00")) {
		t.Errorf("escaped label not packed as one label: % x", b)
	}
}

func TestUnpackErrors(t *testing.T) {
	hdr := []byte{0, 0, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, tc := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"short header", hdr[:11], ErrShort},
		{"forward pointer", append(append([]byte{}, hdr...), 0xc0, 14, 0, 0, 1, 0, 1), ErrPointer},
		{"self pointer", append(append([]byte{}, hdr...), 0xc0, 12, 0, 1, 0, 1), ErrPointer},
		{"loop", append(append([]byte{}, hdr...), 1, 'a', 0xc0, 12, 0, 1, 0, 1), ErrPointer},
		{"label past end", append(append([]byte{}, hdr...), 5, 'a'), ErrShort},
		{"extended label", append(append([]byte{}, hdr...), 0x41, 0), ErrName},
		{"no qtype", append(append([]byte{}, hdr...), 0, 0), ErrShort},
	} {
		var m Message
		if err := m.Unpack(tc.b); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	// A 4-label name of 63-byte labels is 257 octets: too long (RFC 1035 §2.3.4).
	long := append([]byte{}, hdr...)
	for range 4 {
		long = append(long, 63)
		long = append(long, bytes.Repeat([]byte{'x'}, 63)...)
	}
	long = append(long, 0, 0, 1, 0, 1)
	var m Message
	if err := m.Unpack(long); !errors.Is(err, ErrName) {
		t.Errorf("long name: %v", err)
	}
	// An A record with 5 bytes of data.
	bad := []byte{0, 0, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5}
	if err := m.Unpack(bad); !errors.Is(err, ErrRData) {
		t.Errorf("bad A: %v", err)
	}
}

func TestPackNameErrors(t *testing.T) {
	for _, n := range []string{"a..b", `a\`, `a\25`, `a\300`, string(bytes.Repeat([]byte{'x'}, 64)) + ".", ".a"} {
		if _, err := packName(nil, n); err == nil {
			t.Errorf("packName(%q) succeeded", n)
		}
	}
}

func TestEqualName(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		eq   bool
	}{
		{"Example.COM.", "example.com", true},
		{"a.", "a", true},
		{`a\.`, "a", false},
		{`a\\.`, `a\\`, true},
		{"a.b", "a.c", false},
	} {
		if EqualName(tc.a, tc.b) != tc.eq {
			t.Errorf("EqualName(%q, %q) != %v", tc.a, tc.b, tc.eq)
		}
	}
}

// FuzzUnpack: Unpack never panics, and what it accepts packs and unpacks back to itself.
func FuzzUnpack(f *testing.F) {
	f.Add(compressedAnswer)
	m := Message{Header: Header{ID: 7}, Questions: []Question{{"x.", TypeA, ClassINET}}}
	b, _ := m.Pack(nil)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if m.Unpack(b) != nil {
			return
		}
		p, err := m.Pack(nil)
		if err != nil {
			t.Fatalf("Pack of an unpacked message: %v", err)
		}
		var m2 Message
		if err := m2.Unpack(p); err != nil {
			t.Fatalf("Unpack of a packed message: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip:\n%+v\n%+v", m, m2)
		}
	})
}

package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

var (
	grp4a = netip.MustParseAddr("239.1.1.1")
	grp4b = netip.MustParseAddr("239.2.2.2")
)

// IGMP fixtures, their checksums computed by hand (the one's complement sum of the words).
var (
	// v2 report for 239.1.1.1.
	igmpV2ReportFixture = []byte{0x16, 0, 0xf9, 0xfc, 239, 1, 1, 1}
	// v3 general query: Max Resp Code 0x8f (24.8 s), QRV 2, QQIC 125, one source 10.0.0.1.
	igmpV3QueryFixture = []byte{0x11, 0x8f, 0xe1, 0xf1, 0, 0, 0, 0, 0x02, 0x7d, 0, 1, 10, 0, 0, 1}
	// v3 report, two records: TO_EX{} for 239.1.1.1; IS_IN{10.0.0.2} for 239.2.2.2 with one
	// word of auxiliary data.
	igmpV3ReportFixture = []byte{0x22, 0, 0x76, 0x58, 0, 0, 0, 2,
		4, 0, 0, 0, 239, 1, 1, 1,
		1, 1, 0, 1, 239, 2, 2, 2, 10, 0, 0, 2, 0xaa, 0xbb, 0xcc, 0xdd}
	igmpV3ReportRecords = []recordWant{
		{RecordToExclude, grp4a, nil, 0, IGMPv3RecordLen},
		{RecordIsInclude, grp4b, []netip.Addr{v4b}, 1, 16},
	}
)

func TestIGMPQuery(t *testing.T) {
	m := IGMP(igmpV3QueryFixture)
	if err := CheckIGMP(m); err != nil {
		t.Fatal(err)
	}
	if m.Type() != IGMPQuery || m.QueryVersion() != 3 || m.MaxRespCode() != 0x8f || m.Checksum() != 0xe1f1 ||
		m.Group() != netip.IPv4Unspecified() || m.SFlag() || m.QRV() != 2 || m.NumSources() != 1 || m.Source(0) != v4a {
		t.Fatalf("% x", []byte(m))
	}
	// 0x8f in the exponent form: (0xf|0x10) << (0+3) = 248 tenths of a second.
	if m.MaxRespTime() != 24800*time.Millisecond || m.QQI() != 125*time.Second {
		t.Fatalf("max resp %v, QQI %v", m.MaxRespTime(), m.QQI())
	}
	b := make([]byte, len(igmpV3QueryFixture))
	w := IGMP(b)
	w.SetQuery(2, 125, 1)
	copy(b[IGMPv3QueryLen:], igmpV3QueryFixture[IGMPv3QueryLen:])
	w.SetType(IGMPQuery)
	w.SetMaxRespCode(0x8f)
	w.SetGroup(netip.Addr{})
	w.SetChecksum()
	if !bytes.Equal(b, igmpV3QueryFixture) {
		t.Fatalf("built % x", b)
	}
	// RFC 3376 §7.1: v1 is 8 bytes with code 0 (read as 10 s, RFC 2236 §4), v2 8 bytes,
	// 9 to 11 bytes no version.
	for _, c := range []struct {
		b       []byte
		version int
		maxResp time.Duration
	}{
		{[]byte{0x11, 0, 0, 0, 0, 0, 0, 0}, 1, 10 * time.Second},
		{[]byte{0x11, 100, 0, 0, 0, 0, 0, 0}, 2, 10 * time.Second},
		{[]byte{0x11, 0xff, 0, 0, 0, 0, 0, 0}, 2, 25500 * time.Millisecond},
		{[]byte{0x11, 100, 0, 0, 0, 0, 0, 0, 0, 0}, 0, 10 * time.Second},
	} {
		if v, d := IGMP(c.b).QueryVersion(), IGMP(c.b).MaxRespTime(); v != c.version || d != c.maxResp {
			t.Errorf("% x: version %d, max resp %v", c.b, v, d)
		}
	}
	if decodeExpCode(0x8000, 16) != 32768 || decodeExpCode(1000, 16) != 1000 || decodeExpCode(0xff, 8) != 31744 {
		t.Error("decodeExpCode")
	}
}

func TestIGMPReports(t *testing.T) {
	m := IGMP(igmpV2ReportFixture)
	if err := CheckIGMP(m); err != nil || m.Type() != IGMPv2Report || m.Group() != grp4a {
		t.Fatal(err, m.Group())
	}
	m = IGMP(igmpV3ReportFixture)
	if err := CheckIGMP(m); err != nil || m.Type() != IGMPv3Report || m.NumRecords() != 2 {
		t.Fatal(err)
	}
	expectRecords(t, m.Records(), igmpV3ReportRecords)
	// Built through the setters.
	b := make([]byte, 8+8)
	w := IGMP(b)
	w.SetType(IGMPv3Report)
	w.SetNumRecords(1)
	IGMPv3Record(b[8:]).SetType(RecordToExclude)
	IGMPv3Record(b[8:]).SetGroup(grp4a)
	w.SetChecksum()
	if err := CheckIGMP(b); err != nil || !bytes.Equal(b[8:], igmpV3ReportFixture[8:16]) {
		t.Fatalf("built % x %v", b, err)
	}
}

func TestIGMPMalformed(t *testing.T) {
	short := func(b []byte, n int) []byte { return append([]byte(nil), b[:n]...) }
	badSum := append([]byte(nil), igmpV2ReportFixture...)
	badSum[7]++
	oddQuery := []byte{0x11, 100, 0, 0, 0, 0, 0, 0, 0, 0}
	IGMP(oddQuery).SetChecksum()
	cutSources := short(igmpV3QueryFixture, 14)
	IGMP(cutSources).SetChecksum()
	cutRecord := short(igmpV3ReportFixture, 28)
	IGMP(cutRecord).SetChecksum()
	for _, c := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"short", igmpV2ReportFixture[:7], ErrTruncated},
		{"checksum", badSum, ErrChecksum},
		{"10-byte query", oddQuery, ErrLength},
		{"sources cut", cutSources, ErrTruncated},
		{"record cut", cutRecord, ErrTruncated},
	} {
		if err := CheckIGMP(c.b); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
	// The iterator stops at a record that does not fit, whatever the count says.
	it := IGMP(cutRecord).Records()
	if _, ok := it.Next(); !ok {
		t.Fatal("first record")
	}
	if _, ok := it.Next(); ok {
		t.Fatal("a cut record")
	}
}

// readIGMP reads every field CheckIGMP's acceptance makes safe to read.
func readIGMP(t *testing.T, m IGMP) {
	_, _, _ = m.Type(), m.Group(), m.MaxRespTime()
	switch {
	case m.Type() == IGMPQuery && m.QueryVersion() == 3:
		_, _, _ = m.SFlag(), m.QRV(), m.QQI()
		for i := range m.NumSources() {
			_ = m.Source(i)
		}
	case m.Type() == IGMPv3Report:
		walkRecords(t, m.Records(), m.NumRecords())
	}
}

// recordWant is a group record as a test expects it.
type recordWant struct {
	typ     uint8
	group   netip.Addr
	sources []netip.Addr
	aux     int
	len     int
}

// expectRecords walks it and compares each record with want; there must be no more.
func expectRecords(t *testing.T, it GroupRecords, want []recordWant) {
	t.Helper()
	for i, w := range want {
		r, ok := it.Next()
		if !ok || r.Type() != w.typ || r.Group() != w.group || r.NumSources() != len(w.sources) ||
			r.AuxDataLen() != w.aux || w.len != 0 && len(r.Bytes()) != w.len {
			t.Fatalf("record %d: % x, want %+v", i, r.Bytes(), w)
		}
		for j, s := range w.sources {
			if r.Source(j) != s {
				t.Errorf("record %d source %d: %v, want %v", i, j, r.Source(j), s)
			}
		}
	}
	if r, ok := it.Next(); ok {
		t.Fatalf("a record too many: % x", r.Bytes())
	}
}

// walkRecords reads every field of every record of a report CheckIGMP or CheckMLD
// accepted, and checks that the records walked are as many as the report's header says.
func walkRecords(t *testing.T, it GroupRecords, want int) {
	n := 0
	for r, ok := it.Next(); ok; r, ok = it.Next() {
		for i := range r.NumSources() {
			_ = r.Source(i)
		}
		_, _ = r.Group(), r.AuxDataLen()
		n++
	}
	if n != want {
		t.Fatalf("%d records walked, %d in the header", n, want)
	}
}

func FuzzIGMP(f *testing.F) {
	f.Add(igmpV2ReportFixture)
	f.Add(igmpV3QueryFixture)
	f.Add(igmpV3ReportFixture)
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = CheckIGMP(data)
		b := append([]byte(nil), data...)
		if len(b) >= IGMPHeaderLen {
			IGMP(b).SetChecksum()
		}
		if err := CheckIGMP(b); err != nil {
			if len(b) >= IGMPHeaderLen && errors.Is(err, ErrChecksum) {
				t.Fatal("checksum set, still rejected")
			}
			return
		}
		readIGMP(t, IGMP(b))
	})
}

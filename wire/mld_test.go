package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

var (
	grp6a    = netip.MustParseAddr("ff05::1:3")
	grp6b    = netip.MustParseAddr("ff05::2")
	allNodes = netip.MustParseAddr("ff02::1")
)

// MLD fixtures with the ICMPv6 checksum left 0 (it covers the pseudo-header; the tests set
// it where they need it).
var (
	// v1 report for ff05::1:3.
	mldV1ReportFixture = []byte{131, 0, 0, 0, 0, 0, 0, 0, 0xff, 5, 21: 1, 23: 3}
	// v2 general query: Maximum Response Code 0x8001 ((1|0x1000) << 3 = 32776 ms), QRV 2,
	// QQIC 125, one source 2001:db8::1.
	mldV2QueryFixture = []byte{130, 0, 0, 0, 0x80, 0x01, 0, 0, 23: 0, 2, 125, 0, 1,
		0x20, 0x01, 0x0d, 0xb8, 43: 1}
	// v2 report, two records: TO_EX{} for ff05::1:3; IS_IN{2001:db8::1} for ff05::2 with one
	// word of auxiliary data.
	mldV2ReportFixture = []byte{143, 0, 0, 0, 0, 0, 0, 2,
		4, 0, 0, 0, 0xff, 5, 25: 1, 27: 3,
		1, 1, 0, 1, 0xff, 5, 47: 2, 0x20, 0x01, 0x0d, 0xb8, 63: 1, 0xaa, 0xbb, 0xcc, 0xdd}
	mldV2ReportRecords = []recordWant{
		{RecordToExclude, grp6a, nil, 0, MLDv2RecordLen},
		{RecordIsInclude, grp6b, []netip.Addr{v6src}, 1, 40},
	}
)

func TestMLDQuery(t *testing.T) {
	m := MLD(mldV2QueryFixture)
	if err := CheckMLD(m); err != nil {
		t.Fatal(err)
	}
	if m.Type() != ICMPv6MLDQuery || m.QueryVersion() != 2 || m.MaxRespCode() != 0x8001 ||
		m.Group() != netip.IPv6Unspecified() || m.SFlag() || m.QRV() != 2 || m.NumSources() != 1 || m.Source(0) != v6src {
		t.Fatalf("% x", []byte(m))
	}
	if m.MaxRespTime() != 32776*time.Millisecond || m.QQI() != 125*time.Second {
		t.Fatalf("max resp %v, QQI %v", m.MaxRespTime(), m.QQI())
	}
	b := make([]byte, len(mldV2QueryFixture))
	w := MLD(b)
	w.SetQuery(2, 125, 1)
	copy(b[MLDv2QueryLen:], mldV2QueryFixture[MLDv2QueryLen:])
	w.SetType(ICMPv6MLDQuery)
	w.SetMaxRespCode(0x8001)
	w.SetGroup(netip.Addr{})
	if !bytes.Equal(b, mldV2QueryFixture) {
		t.Fatalf("built % x", b)
	}
	// RFC 3810 §8.1: v1 is 24 bytes, its code milliseconds; 25 to 27 bytes no version.
	v1 := append([]byte(nil), mldV2QueryFixture[:MLDv1Len]...)
	if MLD(v1).QueryVersion() != 1 || MLD(v1).MaxRespTime() != 0x8001*time.Millisecond {
		t.Fatal("v1 query", MLD(v1).MaxRespTime())
	}
	if MLD(mldV2QueryFixture[:26]).QueryVersion() != 0 {
		t.Fatal("26-byte query has a version")
	}
	// The checksum is ICMPv6's.
	ICMPv6(b).SetChecksum(ll1, allNodes)
	if err := CheckICMPv6(b, ll1, allNodes); err != nil {
		t.Fatal(err)
	}
}

func TestMLDReports(t *testing.T) {
	m := MLD(mldV1ReportFixture)
	if err := CheckMLD(m); err != nil || m.Type() != ICMPv6MLDReport || m.Group() != grp6a {
		t.Fatal(err, m.Group())
	}
	m = MLD(mldV2ReportFixture)
	if err := CheckMLD(m); err != nil || m.Type() != ICMPv6MLDv2Report || m.NumRecords() != 2 {
		t.Fatal(err)
	}
	expectRecords(t, m.Records(), mldV2ReportRecords)
	b := make([]byte, MLDv2ReportHeaderLen+MLDv2RecordLen)
	MLD(b).SetType(ICMPv6MLDv2Report)
	MLD(b).SetNumRecords(1)
	MLDv2Record(b[8:]).SetType(RecordToExclude)
	MLDv2Record(b[8:]).SetGroup(grp6a)
	if err := CheckMLD(b); err != nil || !bytes.Equal(b[8:], mldV2ReportFixture[8:28]) {
		t.Fatalf("built % x %v", b, err)
	}
}

func TestMLDMalformed(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"short v1", mldV1ReportFixture[:23], ErrTruncated},
		{"short v2 report", mldV2ReportFixture[:7], ErrTruncated},
		{"26-byte query", mldV2QueryFixture[:26], ErrLength},
		{"sources cut", mldV2QueryFixture[:40], ErrTruncated},
		{"record cut", mldV2ReportFixture[:60], ErrTruncated},
	} {
		if err := CheckMLD(c.b); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
}

// readMLD reads every field CheckMLD's acceptance makes safe to read.
func readMLD(t *testing.T, m MLD) {
	_ = m.Type()
	switch {
	case m.Type() == ICMPv6MLDQuery && m.QueryVersion() == 2:
		_, _, _, _ = m.SFlag(), m.QRV(), m.QQI(), m.MaxRespTime()
		for i := range m.NumSources() {
			_ = m.Source(i)
		}
	case m.Type() == ICMPv6MLDv2Report:
		walkRecords(t, m.Records(), m.NumRecords())
	default:
		_, _ = m.Group(), m.MaxRespTime()
	}
}

func FuzzMLD(f *testing.F) {
	f.Add(mldV1ReportFixture)
	f.Add(mldV2QueryFixture)
	f.Add(mldV2ReportFixture)
	f.Fuzz(func(t *testing.T, data []byte) {
		if CheckMLD(data) == nil {
			readMLD(t, MLD(data))
		}
	})
}

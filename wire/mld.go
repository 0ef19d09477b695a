package wire

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// MLD message lengths (RFC 2710 §3, RFC 3810 §5). The types are ICMPv6MLDQuery,
// ICMPv6MLDReport, ICMPv6MLDDone and ICMPv6MLDv2Report.
const (
	MLDv1Len             = 24 // v1 query, report and done
	MLDv2QueryLen        = 28 // a v2 query without sources
	MLDv2ReportHeaderLen = 8  // the v2 report header
	MLDv2RecordLen       = 20 // a v2 address record without sources or auxiliary data
)

// MLD is a view of an MLD message, an ICMPv6 message whose checksum
// CheckICMPv6 verifies. The version of a query is told by its length, so
// len(m) must be the message's length, or, for the query accessors, its first
// MLDv2QueryLen bytes when it is longer.
//
//	0: type  1: code  2: checksum  4: max resp code  8: multicast address
//	v2 query:  24: S flag and QRV  25: QQIC  26: number of sources  28: sources
//	v2 report: 6: number of records  8: address records
type MLD []byte

// CheckMLD validates the layout of the MLD message in b (its checksum is
// CheckICMPv6's): a v1 message is 24 bytes or more; a query's length names a
// version (QueryVersion) and its sources fit; a v2 report's records fit.
func CheckMLD(b []byte) error {
	m := MLD(b)
	if len(b) < MLDv2ReportHeaderLen || m.Type() != ICMPv6MLDv2Report && len(b) < MLDv1Len {
		return ErrTruncated
	}
	switch m.Type() {
	case ICMPv6MLDQuery:
		switch m.QueryVersion() {
		case 0:
			return ErrLength
		case 2:
			if len(b) < MLDv2QueryLen+16*m.NumSources() {
				return ErrTruncated
			}
		}
	case ICMPv6MLDv2Report:
		return checkRecords(b[MLDv2ReportHeaderLen:], m.NumRecords(), 16)
	}
	return nil
}

// Type is the ICMPv6 type.
func (m MLD) Type() uint8 { return m[0] }

// MaxRespCode is the Maximum Response Code of a query: milliseconds in v1, a
// floating-point code in v2 (RFC 3810 §5.1.3).
func (m MLD) MaxRespCode() uint16 { return binary.BigEndian.Uint16(m[4:6]) }

// Group is the multicast address: the address of a v1 report or done, of an
// address-specific query, :: in a general query.
func (m MLD) Group() netip.Addr { return netip.AddrFrom16([16]byte(m[8:24])) }

// QueryVersion is the version of a query, from its length as RFC 3810 §8.1
// tells them apart: 1 (24 bytes), 2 (28 bytes or more); 0 for any other
// length, which "MUST be silently ignored".
func (m MLD) QueryVersion() int {
	switch {
	case len(m) == MLDv1Len:
		return 1
	case len(m) >= MLDv2QueryLen:
		return 2
	}
	return 0
}

// MaxRespTime is the time a query allows for the reply: v1's code counts
// milliseconds, v2's decodes as RFC 3810 §5.1.3 says.
func (m MLD) MaxRespTime() time.Duration {
	c := m.MaxRespCode()
	if m.QueryVersion() == 2 {
		return time.Duration(decodeExpCode(c, 16)) * time.Millisecond
	}
	return time.Duration(c) * time.Millisecond
}

// SFlag is a v2 query's Suppress Router-Side Processing flag.
func (m MLD) SFlag() bool { return m[24]&0x08 != 0 }

// QRV is a v2 query's Querier's Robustness Variable; 0 if over 7.
func (m MLD) QRV() uint8 { return m[24] & 0x07 }

// QQI is a v2 query's Querier's Query Interval, decoded from its QQIC (RFC
// 3810 §5.1.9).
func (m MLD) QQI() time.Duration { return time.Duration(decodeExpCode(uint16(m[25]), 8)) * time.Second }

// NumSources is the number of sources of a v2 query.
func (m MLD) NumSources() int { return int(binary.BigEndian.Uint16(m[26:28])) }

// Source is source i of a v2 query, i < NumSources.
func (m MLD) Source(i int) netip.Addr {
	o := MLDv2QueryLen + 16*i
	return netip.AddrFrom16([16]byte(m[o : o+16]))
}

// NumRecords is the number of address records of a v2 report.
func (m MLD) NumRecords() int { return int(binary.BigEndian.Uint16(m[6:8])) }

// Records iterates over the address records of a v2 report.
func (m MLD) Records() GroupRecords {
	return GroupRecords{b: m[MLDv2ReportHeaderLen:], n: m.NumRecords(), alen: 16}
}

// SetType sets the ICMPv6 type.
func (m MLD) SetType(t uint8) { m[0] = t }

// SetMaxRespCode sets the Maximum Response Code.
func (m MLD) SetMaxRespCode(c uint16) { binary.BigEndian.PutUint16(m[4:6], c) }

// SetGroup sets the multicast address; g must be IPv6 or invalid (::).
func (m MLD) SetGroup(g netip.Addr) { putAddr(m[8:24], g) }

// SetQuery sets the fields of a v2 query after the address: QRV (the S flag
// clear), QQIC and the number of sources.
func (m MLD) SetQuery(qrv, qqic uint8, sources int) {
	m[24], m[25] = qrv&0x07, qqic
	binary.BigEndian.PutUint16(m[26:28], uint16(sources))
}

// SetNumRecords sets the number of address records of a v2 report.
func (m MLD) SetNumRecords(n int) { binary.BigEndian.PutUint16(m[6:8], uint16(n)) }

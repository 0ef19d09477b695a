package wire

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// IGMP message lengths (RFC 2236 §2, RFC 3376 §4).
const (
	IGMPHeaderLen   = 8  // v1 and v2 messages, the v3 report header
	IGMPv3QueryLen  = 12 // a v3 query without sources
	IGMPv3RecordLen = 8  // a v3 group record without sources or auxiliary data
)

// IGMP message types (RFC 3376 §4, RFC 2236 §2, RFC 1112 Appendix I).
const (
	IGMPQuery    = 0x11 // Membership Query, all versions
	IGMPv1Report = 0x12
	IGMPv2Report = 0x16
	IGMPv2Leave  = 0x17
	IGMPv3Report = 0x22
)

// Group record types of IGMPv3 and MLDv2 reports (RFC 3376 §4.2.12, RFC 3810 §5.2.12).
const (
	RecordIsInclude = 1 // MODE_IS_INCLUDE
	RecordIsExclude = 2 // MODE_IS_EXCLUDE
	RecordToInclude = 3 // CHANGE_TO_INCLUDE_MODE
	RecordToExclude = 4 // CHANGE_TO_EXCLUDE_MODE
	RecordAllow     = 5 // ALLOW_NEW_SOURCES
	RecordBlock     = 6 // BLOCK_OLD_SOURCES
)

// IGMP is a view of an IGMP message of any version. The version of a query is
// told by its length, so len(m) must be the message's length, or, for the
// query accessors, its first IGMPv3QueryLen bytes when it is longer.
//
//	0: type  1: max resp code  2: checksum  4: group address
//	v3 query:  8: S flag and QRV  9: QQIC  10: number of sources  12: sources
//	v3 report: 6: number of records  8: group records
type IGMP []byte

// CheckIGMP validates that b holds an IGMP message: a header and a correct
// checksum; a query whose length names a version (QueryVersion) and whose
// sources fit; a v3 report whose records fit.
func CheckIGMP(b []byte) error {
	if len(b) < IGMPHeaderLen {
		return ErrTruncated
	}
	m := IGMP(b)
	if !m.ValidChecksum() {
		return ErrChecksum
	}
	switch m.Type() {
	case IGMPQuery:
		switch m.QueryVersion() {
		case 0:
			return ErrLength
		case 3:
			if len(b) < IGMPv3QueryLen+4*m.NumSources() {
				return ErrTruncated
			}
		}
	case IGMPv3Report:
		return checkRecords(b[IGMPHeaderLen:], m.NumRecords(), 4)
	}
	return nil
}

// Type is the message type.
func (m IGMP) Type() uint8 { return m[0] }

// MaxRespCode is the Max Resp Code of a query: tenths of a second in v2, a
// floating-point code in v3 (RFC 3376 §4.1.1), 0 in v1.
func (m IGMP) MaxRespCode() uint8 { return m[1] }

// Checksum is the checksum field.
func (m IGMP) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:4]) }

// Group is the group address: the group of a report or leave, the group of a
// group-specific query, 0.0.0.0 in a general query.
func (m IGMP) Group() netip.Addr { return netip.AddrFrom4([4]byte(m[4:8])) }

// QueryVersion is the version of a query, from its length and Max Resp Code as
// RFC 3376 §7.1 tells them apart: 1 (8 bytes, code 0), 2 (8 bytes), 3 (12 bytes
// or more); 0 for any other length, which "MUST be silently ignored".
func (m IGMP) QueryVersion() int {
	switch {
	case len(m) == IGMPHeaderLen && m[1] == 0:
		return 1
	case len(m) == IGMPHeaderLen:
		return 2
	case len(m) >= IGMPv3QueryLen:
		return 3
	}
	return 0
}

// MaxRespTime is the time a query allows for the reply: RFC 2236 §4 reads a
// v1 query's as 10 seconds; v2's code counts tenths of a second, v3's decodes
// as RFC 3376 §4.1.1 says.
func (m IGMP) MaxRespTime() time.Duration {
	switch m.QueryVersion() {
	case 1:
		return 10 * time.Second
	case 3:
		return time.Duration(decodeExpCode(uint16(m[1]), 8)) * 100 * time.Millisecond
	}
	return time.Duration(m[1]) * 100 * time.Millisecond
}

// SFlag is a v3 query's Suppress Router-Side Processing flag.
func (m IGMP) SFlag() bool { return m[8]&0x08 != 0 }

// QRV is a v3 query's Querier's Robustness Variable; 0 if over 7.
func (m IGMP) QRV() uint8 { return m[8] & 0x07 }

// QQI is a v3 query's Querier's Query Interval, decoded from its QQIC (RFC
// 3376 §4.1.7).
func (m IGMP) QQI() time.Duration { return time.Duration(decodeExpCode(uint16(m[9]), 8)) * time.Second }

// NumSources is the number of sources of a v3 query.
func (m IGMP) NumSources() int { return int(binary.BigEndian.Uint16(m[10:12])) }

// Source is source i of a v3 query, i < NumSources.
func (m IGMP) Source(i int) netip.Addr {
	o := IGMPv3QueryLen + 4*i
	return netip.AddrFrom4([4]byte(m[o : o+4]))
}

// NumRecords is the number of group records of a v3 report.
func (m IGMP) NumRecords() int { return int(binary.BigEndian.Uint16(m[6:8])) }

// Records iterates over the group records of a v3 report.
func (m IGMP) Records() GroupRecords {
	return GroupRecords{b: m[IGMPHeaderLen:], n: m.NumRecords(), alen: 4}
}

// ValidChecksum reports whether the checksum over the message verifies.
func (m IGMP) ValidChecksum() bool { return Finish(Checksum(m, 0)) == 0 }

// SetType sets the message type.
func (m IGMP) SetType(t uint8) { m[0] = t }

// SetMaxRespCode sets the Max Resp Code.
func (m IGMP) SetMaxRespCode(c uint8) { m[1] = c }

// SetGroup sets the group address; g must be IPv4 or invalid (0.0.0.0).
func (m IGMP) SetGroup(g netip.Addr) { putAddr(m[4:8], g) }

// SetQuery sets the fields of a v3 query after the group: QRV (the S flag
// clear), QQIC and the number of sources.
func (m IGMP) SetQuery(qrv, qqic uint8, sources int) {
	m[8], m[9] = qrv&0x07, qqic
	binary.BigEndian.PutUint16(m[10:12], uint16(sources))
}

// SetNumRecords sets the number of group records of a v3 report.
func (m IGMP) SetNumRecords(n int) { binary.BigEndian.PutUint16(m[6:8], uint16(n)) }

// SetChecksum computes and stores the checksum over the whole message.
func (m IGMP) SetChecksum() {
	binary.BigEndian.PutUint16(m[2:4], 0)
	binary.BigEndian.PutUint16(m[2:4], Finish(Checksum(m, 0)))
}

// GroupRecord is a view of a group record of an IGMPv3 report (RFC 3376 §4.2.4) or a
// multicast address record of an MLDv2 report (RFC 3810 §5.2.4): one layout, its addresses
// 4 or 16 bytes long.
//
//	0: record type  1: aux data len  2: number of sources  4: group  4+alen: sources
type GroupRecord struct {
	b    []byte
	alen int
}

// IGMPv3Record is a view of the IGMPv3 group record at the start of b.
func IGMPv3Record(b []byte) GroupRecord { return GroupRecord{b, 4} }

// MLDv2Record is a view of the MLDv2 multicast address record at the start of b.
func MLDv2Record(b []byte) GroupRecord { return GroupRecord{b, 16} }

// Bytes is the record, as long as the walk of a report found it (GroupRecords), or the
// buffer the view was made of.
func (r GroupRecord) Bytes() []byte { return r.b }

// Type is the record type (RecordIsInclude...).
func (r GroupRecord) Type() uint8 { return r.b[0] }

// AuxDataLen is the length of the auxiliary data in 32-bit words.
func (r GroupRecord) AuxDataLen() int { return int(r.b[1]) }

// NumSources is the number of sources.
func (r GroupRecord) NumSources() int { return int(binary.BigEndian.Uint16(r.b[2:4])) }

// Group is the multicast address the record is about.
func (r GroupRecord) Group() netip.Addr { return addrAt(r.b, 4, r.alen) }

// Source is source i, i < NumSources.
func (r GroupRecord) Source(i int) netip.Addr { return addrAt(r.b, 4+r.alen*(i+1), r.alen) }

// SetType sets the record type.
func (r GroupRecord) SetType(t uint8) { r.b[0] = t }

// SetGroup sets the multicast address, of the record's family.
func (r GroupRecord) SetGroup(g netip.Addr) { putAddr(r.b[4:4+r.alen], g) }

// GroupRecords iterates over the group records of an IGMPv3 or MLDv2 report: as many as
// the report's count says, each as long as its source count and auxiliary data length make
// it. A record that does not fit ends the walk; CheckIGMP and CheckMLD reject such reports.
type GroupRecords struct {
	b       []byte
	n, alen int
}

// Next returns the next record, or false when there is none.
func (it *GroupRecords) Next() (GroupRecord, bool) {
	if it.n == 0 {
		return GroupRecord{}, false
	}
	l := recordLen(it.b, it.alen)
	if l < 0 {
		it.n = 0
		return GroupRecord{}, false
	}
	r := GroupRecord{it.b[:l], it.alen}
	it.b, it.n = it.b[l:], it.n-1
	return r, true
}

// addrAt is the address of alen bytes (4 or 16) at off in b.
func addrAt(b []byte, off, alen int) netip.Addr {
	if alen == 4 {
		return netip.AddrFrom4([4]byte(b[off : off+4]))
	}
	return netip.AddrFrom16([16]byte(b[off : off+16]))
}

// recordLen is the length of the group record at the start of b whose
// addresses are alen bytes long, or -1 if it does not fit in b.
func recordLen(b []byte, alen int) int {
	if len(b) < 4+alen {
		return -1
	}
	l := 4 + alen + alen*int(binary.BigEndian.Uint16(b[2:4])) + 4*int(b[1])
	if l > len(b) {
		return -1
	}
	return l
}

// checkRecords validates that n group records with alen-byte addresses fit in b.
func checkRecords(b []byte, n, alen int) error {
	for ; n > 0; n-- {
		l := recordLen(b, alen)
		if l < 0 {
			return ErrTruncated
		}
		b = b[l:]
	}
	return nil
}

// decodeExpCode decodes a floating-point Max Resp Code or QQIC of bits bits
// (RFC 3376 §4.1.1, §4.1.7 and RFC 3810 §5.1.9: 8; RFC 3810 §5.1.3: 16): below
// 1<<(bits-1) the value itself, else "(mant | 0x10) << (exp + 3)" with a
// mantissa of bits-4 bits and the 3-bit exponent above it.
func decodeExpCode(c uint16, bits uint) int {
	if c < 1<<(bits-1) {
		return int(c)
	}
	m := bits - 4
	return int(c&(1<<m-1)|1<<m) << ((c>>m)&0x07 + 3)
}

// putAddr writes a's bytes to b: 4 of an IPv4 address, 16 of an IPv6 one; an
// invalid a writes zeros.
func putAddr(b []byte, a netip.Addr) {
	switch {
	case !a.IsValid():
		clear(b)
	case len(b) == 4:
		x := a.As4()
		copy(b, x[:])
	default:
		x := a.As16()
		copy(b, x[:])
	}
}

package dns

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
)

// Type is a resource record TYPE (RFC 1035 §3.2.2, RFC 3596 for AAAA).
type Type uint16

// Record types the resolver reads; others are carried as raw data.
const (
	TypeA     Type = 1
	TypeNS    Type = 2
	TypeCNAME Type = 5
	TypeSOA   Type = 6
	TypePTR   Type = 12
	TypeAAAA  Type = 28
)

func (t Type) String() string {
	switch t {
	case TypeA:
		return "A"
	case TypeNS:
		return "NS"
	case TypeCNAME:
		return "CNAME"
	case TypeSOA:
		return "SOA"
	case TypePTR:
		return "PTR"
	case TypeAAAA:
		return "AAAA"
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// Class is a resource record CLASS (RFC 1035 §3.2.4).
type Class uint16

// ClassINET is the Internet class, IN.
const ClassINET Class = 1

// RCode is a response code (RFC 1035 §4.1.1).
type RCode uint8

// Response codes.
const (
	RCodeSuccess        RCode = 0
	RCodeFormatError    RCode = 1
	RCodeServerFailure  RCode = 2
	RCodeNameError      RCode = 3 // NXDOMAIN
	RCodeNotImplemented RCode = 4
	RCodeRefused        RCode = 5
)

// Header is the fixed part of a message (RFC 1035 §4.1.1) without the section counts,
// which Pack derives from the sections.
type Header struct {
	ID                 uint16
	Response           bool  // QR
	Opcode             uint8 // 4 bits
	Authoritative      bool  // AA
	Truncated          bool  // TC
	RecursionDesired   bool  // RD
	RecursionAvailable bool  // RA
	RCode              RCode // 4 bits
}

// Question is one entry of the question section (RFC 1035 §4.1.2).
type Question struct {
	Name  string // presentation form, absolute: "example.com."
	Type  Type
	Class Class
}

// SOA is the RDATA of an SOA record (RFC 1035 §3.3.13).
type SOA struct {
	MName, RName                            string
	Serial, Refresh, Retry, Expire, Minimum uint32
}

// Resource is one resource record (RFC 1035 §4.1.3). The RDATA of A and AAAA records is
// in Addr, of CNAME, NS and PTR in Target, of SOA in SOA; other types keep it raw in Data.
type Resource struct {
	Name   string
	Type   Type
	Class  Class
	TTL    uint32
	Addr   netip.Addr
	Target string
	SOA    SOA
	Data   []byte
}

// Message is a DNS message.
type Message struct {
	Header
	Questions   []Question
	Answers     []Resource
	Authorities []Resource
	Additionals []Resource
}

const (
	headerLen   = 12
	maxNameLen  = 255 // RFC 1035 §2.3.4: names are 255 octets or less (wire form)
	maxLabelLen = 63  // RFC 1035 §2.3.4: labels are 63 octets or less
)

// Errors of the codec.
var (
	ErrShort    = errors.New("dns: message too short")
	ErrName     = errors.New("dns: malformed name")
	ErrPointer  = errors.New("dns: bad compression pointer")
	ErrRData    = errors.New("dns: malformed record data")
	ErrTooLarge = errors.New("dns: message too large")
)

// Unpack parses b into m (RFC 1035 §4.1), decompressing names (§4.1.4). m's slices are
// reused; nothing in m aliases b.
func (m *Message) Unpack(b []byte) error {
	if len(b) < headerLen {
		return ErrShort
	}
	flags := binary.BigEndian.Uint16(b[2:])
	m.Header = Header{
		ID:                 binary.BigEndian.Uint16(b),
		Response:           flags&(1<<15) != 0,
		Opcode:             uint8(flags>>11) & 0xf,
		Authoritative:      flags&(1<<10) != 0,
		Truncated:          flags&(1<<9) != 0,
		RecursionDesired:   flags&(1<<8) != 0,
		RecursionAvailable: flags&(1<<7) != 0,
		RCode:              RCode(flags & 0xf),
	}
	var counts [4]int
	for i := range counts {
		counts[i] = int(binary.BigEndian.Uint16(b[4+2*i:]))
	}
	off := headerLen
	m.Questions = m.Questions[:0]
	for range counts[0] {
		name, n, err := unpackName(b, off)
		if err != nil {
			return err
		}
		off = n
		if len(b)-off < 4 {
			return ErrShort
		}
		m.Questions = append(m.Questions, Question{
			Name:  name,
			Type:  Type(binary.BigEndian.Uint16(b[off:])),
			Class: Class(binary.BigEndian.Uint16(b[off+2:])),
		})
		off += 4
	}
	var err error
	for i, sec := range []*[]Resource{&m.Answers, &m.Authorities, &m.Additionals} {
		*sec = (*sec)[:0]
		for range counts[i+1] {
			var r Resource
			if r, off, err = unpackResource(b, off); err != nil {
				return err
			}
			*sec = append(*sec, r)
		}
	}
	return nil
}

func unpackResource(b []byte, off int) (Resource, int, error) {
	var r Resource
	name, off, err := unpackName(b, off)
	if err != nil {
		return r, 0, err
	}
	if len(b)-off < 10 {
		return r, 0, ErrShort
	}
	r.Name = name
	r.Type = Type(binary.BigEndian.Uint16(b[off:]))
	r.Class = Class(binary.BigEndian.Uint16(b[off+2:]))
	r.TTL = binary.BigEndian.Uint32(b[off+4:])
	rdlen := int(binary.BigEndian.Uint16(b[off+8:]))
	off += 10
	if len(b)-off < rdlen {
		return r, 0, ErrShort
	}
	rd := b[off : off+rdlen]
	end := off + rdlen
	switch r.Type {
	case TypeA, TypeAAAA:
		want := 4
		if r.Type == TypeAAAA {
			want = 16
		}
		if rdlen != want {
			return r, 0, ErrRData
		}
		r.Addr, _ = netip.AddrFromSlice(rd)
	case TypeCNAME, TypeNS, TypePTR:
		// The name may be compressed against the whole message (RFC 1035 §4.1.4), but
		// must end exactly where the RDATA does.
		t, n, err := unpackName(b[:end], off)
		if err != nil || n != end {
			return r, 0, ErrRData
		}
		r.Target = t
	case TypeSOA:
		mn, n, err := unpackName(b[:end], off)
		if err != nil {
			return r, 0, ErrRData
		}
		rn, n, err := unpackName(b[:end], n)
		if err != nil || end-n != 20 {
			return r, 0, ErrRData
		}
		r.SOA = SOA{
			MName: mn, RName: rn,
			Serial:  binary.BigEndian.Uint32(b[n:]),
			Refresh: binary.BigEndian.Uint32(b[n+4:]),
			Retry:   binary.BigEndian.Uint32(b[n+8:]),
			Expire:  binary.BigEndian.Uint32(b[n+12:]),
			Minimum: binary.BigEndian.Uint32(b[n+16:]),
		}
	default:
		r.Data = append([]byte(nil), rd...)
	}
	return r, end, nil
}

// unpackName reads the name at off and returns it in presentation form and the offset
// after it (after the first pointer when compressed).
func unpackName(b []byte, off int) (string, int, error) {
	var buf [maxNameLen * 4]byte // room for every byte escaped as \DDD
	name := buf[:0]
	wire := 0 // octets of the name in wire form, for the 255 limit
	end := -1
	for lim := off; ; {
		if off >= len(b) {
			return "", 0, ErrShort
		}
		c := int(b[off])
		switch c & 0xc0 {
		case 0x00:
			if c == 0 {
				if end < 0 {
					end = off + 1
				}
				if len(name) == 0 {
					name = append(name, '.')
				}
				return string(name), end, nil
			}
			if off+1+c > len(b) {
				return "", 0, ErrShort
			}
			if wire += 1 + c; wire+1 > maxNameLen {
				return "", 0, ErrName
			}
			name = appendLabel(name, b[off+1:off+1+c])
			off += 1 + c
		case 0xc0:
			if off+2 > len(b) {
				return "", 0, ErrShort
			}
			// RFC 1035 §4.1.4: a pointer refers to a prior occurrence of the name; only
			// backward pointers are followed, which also rules out loops.
			p := int(binary.BigEndian.Uint16(b[off:]) & 0x3fff)
			if p >= lim {
				return "", 0, ErrPointer
			}
			if end < 0 {
				end = off + 2
			}
			off, lim = p, p
		default:
			// 0x40 and 0x80: extended label types (RFC 6891 §5 deprecates them).
			return "", 0, ErrName
		}
	}
}

// appendLabel appends one label and its dot, escaping as RFC 1035 §5.1's master files do.
func appendLabel(dst, label []byte) []byte {
	for _, c := range label {
		switch {
		case c == '.' || c == '\\':
			dst = append(dst, '\\', c)
		case c < '!' || c > '~':
			dst = append(dst, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '.')
}

// Pack appends m in wire form to b, without compression.
func (m *Message) Pack(b []byte) ([]byte, error) {
	start := len(b)
	var flags uint16
	for i, f := range []bool{m.Response, m.Authoritative, m.Truncated, m.RecursionDesired, m.RecursionAvailable} {
		if f {
			flags |= [...]uint16{1 << 15, 1 << 10, 1 << 9, 1 << 8, 1 << 7}[i]
		}
	}
	flags |= uint16(m.Opcode&0xf)<<11 | uint16(m.RCode&0xf)
	counts := [4]int{len(m.Questions), len(m.Answers), len(m.Authorities), len(m.Additionals)}
	b = binary.BigEndian.AppendUint16(b, m.ID)
	b = binary.BigEndian.AppendUint16(b, flags)
	for _, c := range counts {
		if c > 0xffff {
			return nil, ErrTooLarge
		}
		b = binary.BigEndian.AppendUint16(b, uint16(c))
	}
	var err error
	for _, q := range m.Questions {
		if b, err = packName(b, q.Name); err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint16(b, uint16(q.Type))
		b = binary.BigEndian.AppendUint16(b, uint16(q.Class))
	}
	for _, sec := range [][]Resource{m.Answers, m.Authorities, m.Additionals} {
		for i := range sec {
			if b, err = packResource(b, &sec[i]); err != nil {
				return nil, err
			}
		}
	}
	if len(b)-start > 0xffff {
		return nil, ErrTooLarge
	}
	return b, nil
}

func packResource(b []byte, r *Resource) ([]byte, error) {
	b, err := packName(b, r.Name)
	if err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint16(b, uint16(r.Type))
	b = binary.BigEndian.AppendUint16(b, uint16(r.Class))
	b = binary.BigEndian.AppendUint32(b, r.TTL)
	lenAt := len(b)
	b = append(b, 0, 0)
	switch r.Type {
	case TypeA:
		if !r.Addr.Is4() {
			return nil, ErrRData
		}
		a := r.Addr.As4()
		b = append(b, a[:]...)
	case TypeAAAA:
		if !r.Addr.Is6() {
			return nil, ErrRData
		}
		a := r.Addr.As16()
		b = append(b, a[:]...)
	case TypeCNAME, TypeNS, TypePTR:
		if b, err = packName(b, r.Target); err != nil {
			return nil, err
		}
	case TypeSOA:
		if b, err = packName(b, r.SOA.MName); err != nil {
			return nil, err
		}
		if b, err = packName(b, r.SOA.RName); err != nil {
			return nil, err
		}
		for _, v := range []uint32{r.SOA.Serial, r.SOA.Refresh, r.SOA.Retry, r.SOA.Expire, r.SOA.Minimum} {
			b = binary.BigEndian.AppendUint32(b, v)
		}
	default:
		b = append(b, r.Data...)
	}
	n := len(b) - lenAt - 2
	if n > 0xffff {
		return nil, ErrTooLarge
	}
	binary.BigEndian.PutUint16(b[lenAt:], uint16(n))
	return b, nil
}

// packName appends the wire form of a presentation-form name ("example.com." or
// "example.com"; "." is the root), undoing the escapes of appendLabel.
func packName(b []byte, name string) ([]byte, error) {
	start := len(b)
	if name == "." || name == "" {
		return append(b, 0), nil
	}
	lenAt := len(b)
	b = append(b, 0)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch c {
		case '.':
			if len(b)-lenAt-1 == 0 {
				return nil, ErrName // empty label
			}
			b[lenAt] = byte(len(b) - lenAt - 1)
			lenAt = len(b)
			b = append(b, 0)
			continue
		case '\\':
			if i+1 >= len(name) {
				return nil, ErrName
			}
			if d := name[i+1]; d >= '0' && d <= '9' {
				if i+3 >= len(name) {
					return nil, ErrName
				}
				v, err := strconv.Atoi(name[i+1 : i+4])
				if err != nil || v > 255 {
					return nil, ErrName
				}
				c = byte(v)
				i += 3
			} else {
				c = d
				i++
			}
		}
		b = append(b, c)
		if len(b)-lenAt-1 > maxLabelLen {
			return nil, ErrName
		}
	}
	if n := len(b) - lenAt - 1; n > 0 {
		b[lenAt] = byte(n)
		b = append(b, 0)
	}
	if len(b)-start > maxNameLen {
		return nil, ErrName
	}
	return b, nil
}

// EqualName compares two presentation-form names, ASCII case-insensitively (RFC 4343) and
// ignoring a trailing dot.
func EqualName(a, b string) bool {
	a, b = trimDot(a), trimDot(b)
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// trimDot removes a final dot unless it is escaped (preceded by an odd run of '\\').
func trimDot(s string) string {
	if len(s) < 2 || s[len(s)-1] != '.' {
		return s
	}
	bs := 0
	for i := len(s) - 2; i >= 0 && s[i] == '\\'; i-- {
		bs++
	}
	if bs%2 == 1 {
		return s
	}
	return s[:len(s)-1]
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

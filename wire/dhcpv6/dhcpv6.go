package dhcpv6

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	"github.com/wispstack/wisp/wire"
)

// Ports (RFC 8415 §7.2) and the All_DHCP_Relay_Agents_and_Servers address (§7.1).
const (
	ClientPort = 546
	ServerPort = 547
)

// AllServers is ff02::1:2, where a client sends (RFC 8415 §7.1).
var AllServers = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 13: 0x01, 15: 0x02})

// HeaderLen is the fixed part of a client/server message: type and transaction ID.
const HeaderLen = 4

// MsgType is a message type (RFC 8415 §7.3).
type MsgType uint8

// The message types.
const (
	Solicit            MsgType = 1
	Advertise          MsgType = 2
	Request            MsgType = 3
	Confirm            MsgType = 4
	Renew              MsgType = 5
	Rebind             MsgType = 6
	Reply              MsgType = 7
	Release            MsgType = 8
	Decline            MsgType = 9
	Reconfigure        MsgType = 10
	InformationRequest MsgType = 11
	RelayForw          MsgType = 12
	RelayRepl          MsgType = 13
)

func (t MsgType) String() string {
	names := [...]string{"", "SOLICIT", "ADVERTISE", "REQUEST", "CONFIRM", "RENEW", "REBIND", "REPLY",
		"RELEASE", "DECLINE", "RECONFIGURE", "INFORMATION-REQUEST", "RELAY-FORW", "RELAY-REPL"}
	if int(t) < len(names) && t != 0 {
		return names[t]
	}
	return "MsgType(" + strconv.Itoa(int(t)) + ")"
}

// Option codes (RFC 8415 §21, RFC 3646).
const (
	OptClientID        uint16 = 1
	OptServerID        uint16 = 2
	OptIANA            uint16 = 3
	OptORO             uint16 = 6
	OptPreference      uint16 = 7
	OptElapsedTime     uint16 = 8
	OptStatusCode      uint16 = 13
	OptRapidCommit     uint16 = 14
	OptDNSServers      uint16 = 23
	OptDomainList      uint16 = 24
	OptInfoRefreshTime uint16 = 32
	OptSolMaxRT        uint16 = 82
	OptInfMaxRT        uint16 = 83
)

// Status codes (RFC 8415 §21.13).
const (
	StatusSuccess      uint16 = 0
	StatusUnspecFail   uint16 = 1
	StatusNoAddrsAvail uint16 = 2
	StatusNoBinding    uint16 = 3
	StatusNotOnLink    uint16 = 4
	StatusUseMulticast uint16 = 5
)

// Message is a view of a client/server message. Validate it with Check; no accessor then
// panics, and every option lies within the message.
type Message []byte

// Check validates the header and that the options tile the rest of b exactly.
func Check(b []byte) error {
	if len(b) < HeaderLen {
		return wire.ErrTruncated
	}
	it := Message(b).Options()
	for it.Next() {
	}
	return it.Err()
}

// Type is the msg-type field.
func (m Message) Type() MsgType { return MsgType(m[0]) }

// TransactionID is the 24-bit transaction-id.
func (m Message) TransactionID() uint32 { return uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3]) }

// Options iterates over the message's options.
func (m Message) Options() OptionIter { return OptionIter{b: m[HeaderLen:]} }

// Option returns the data of the first option with code, or false.
func (m Message) Option(code uint16) ([]byte, bool) {
	it := m.Options()
	for it.Next() {
		if it.Code() == code {
			return it.Data(), true
		}
	}
	return nil, false
}

// OptionIter walks a list of options (the message's, or those inside an option).
type OptionIter struct {
	b    []byte
	code uint16
	data []byte
	err  error
}

// NewOptionIter iterates over the options in b (encapsulated options of IA_NA, for one).
func NewOptionIter(b []byte) OptionIter { return OptionIter{b: b} }

// Next moves to the next option; false at the end or on a malformed one (Err).
func (it *OptionIter) Next() bool {
	if it.err != nil || len(it.b) == 0 {
		return false
	}
	if len(it.b) < 4 {
		it.err = wire.ErrOption
		return false
	}
	n := int(binary.BigEndian.Uint16(it.b[2:]))
	if 4+n > len(it.b) {
		it.err = wire.ErrOption
		return false
	}
	it.code = binary.BigEndian.Uint16(it.b)
	it.data = it.b[4 : 4+n : 4+n]
	it.b = it.b[4+n:]
	return true
}

// Code is the current option's code.
func (it *OptionIter) Code() uint16 { return it.code }

// Data is the current option's data (a view into the message).
func (it *OptionIter) Data() []byte { return it.data }

// Err is the error that stopped the iteration, nil at a clean end.
func (it *OptionIter) Err() error { return it.err }

// PutHeader writes msg-type and transaction-id into b[:4]; it returns HeaderLen, or 0 when
// b is too short.
func PutHeader(b []byte, t MsgType, xid uint32) int {
	if len(b) < HeaderLen {
		return 0
	}
	b[0], b[1], b[2], b[3] = byte(t), byte(xid>>16), byte(xid>>8), byte(xid)
	return HeaderLen
}

// PutOption writes one option at b[0:]: code, length and data; it returns 4+len(data), or
// 0 when b is too short or data longer than 65535.
func PutOption(b []byte, code uint16, data []byte) int {
	if len(data) > 0xffff || len(b) < 4+len(data) {
		return 0
	}
	binary.BigEndian.PutUint16(b, code)
	binary.BigEndian.PutUint16(b[2:], uint16(len(data)))
	return 4 + copy(b[4:], data)
}

// DUIDLL builds a DUID-LL (RFC 8415 §11.4: type 3, hardware type 1 Ethernet, the MAC)
// into b[:10] and returns it.
func DUIDLL(b []byte, mac [6]byte) []byte {
	b = b[:10]
	binary.BigEndian.PutUint16(b, 3)
	binary.BigEndian.PutUint16(b[2:], 1)
	copy(b[4:], mac[:])
	return b
}

// Repr is a message with the options a stateless client sends and reads as values.
// Absent options are zero (nil, or Has* false). Parse keeps other options out; read them
// with Message.Options.
type Repr struct {
	Type          MsgType
	TransactionID uint32 // 24 bits
	ClientID      []byte // DUID
	ServerID      []byte // DUID
	ORO           []uint16
	// ElapsedTime is in hundredths of a second (RFC 8415 §21.9); HasElapsed says whether
	// the option is present.
	ElapsedTime uint16
	HasElapsed  bool
	// Status is the message's Status Code option (§21.13); HasStatus says whether it is
	// present (absent means success).
	Status     uint16
	StatusMsg  string
	HasStatus  bool
	DNSServers []netip.Addr
	DomainList []string
	// InfoRefreshTime is in seconds (§21.23); HasRefresh says whether it is present.
	InfoRefreshTime uint32
	HasRefresh      bool
	// InfMaxRT is the server's INF_MAX_RT in seconds (§21.25); HasInfMaxRT says whether it
	// is present.
	InfMaxRT    uint32
	HasInfMaxRT bool
}

// Parse fills r from b. Errors: wire.ErrTruncated, wire.ErrOption (a malformed option
// list, or one of the options above with a malformed body).
func (r *Repr) Parse(b []byte) error {
	if err := Check(b); err != nil {
		return err
	}
	m := Message(b)
	*r = Repr{Type: m.Type(), TransactionID: m.TransactionID()}
	it := m.Options()
	for it.Next() {
		d := it.Data()
		switch it.Code() {
		case OptClientID:
			r.ClientID = append([]byte(nil), d...)
		case OptServerID:
			r.ServerID = append([]byte(nil), d...)
		case OptORO:
			if len(d)%2 != 0 {
				return wire.ErrOption
			}
			r.ORO = make([]uint16, 0, len(d)/2)
			for i := 0; i < len(d); i += 2 {
				r.ORO = append(r.ORO, binary.BigEndian.Uint16(d[i:]))
			}
		case OptElapsedTime:
			if len(d) != 2 {
				return wire.ErrOption
			}
			r.ElapsedTime, r.HasElapsed = binary.BigEndian.Uint16(d), true
		case OptStatusCode:
			if len(d) < 2 {
				return wire.ErrOption
			}
			r.Status, r.StatusMsg, r.HasStatus = binary.BigEndian.Uint16(d), string(d[2:]), true
		case OptDNSServers:
			addrs, ok := ParseAddrs(d)
			if !ok {
				return wire.ErrOption
			}
			r.DNSServers = addrs
		case OptDomainList:
			names, ok := ParseDomainList(d)
			if !ok {
				return wire.ErrOption
			}
			r.DomainList = names
		case OptInfoRefreshTime:
			if len(d) != 4 {
				return wire.ErrOption
			}
			r.InfoRefreshTime, r.HasRefresh = binary.BigEndian.Uint32(d), true
		case OptInfMaxRT:
			if len(d) != 4 {
				return wire.ErrOption
			}
			r.InfMaxRT, r.HasInfMaxRT = binary.BigEndian.Uint32(d), true
		}
	}
	return nil
}

// Len is the length Emit writes.
func (r *Repr) Len() int {
	n := HeaderLen
	if r.ClientID != nil {
		n += 4 + len(r.ClientID)
	}
	if r.ServerID != nil {
		n += 4 + len(r.ServerID)
	}
	if r.ORO != nil {
		n += 4 + 2*len(r.ORO)
	}
	if r.HasElapsed {
		n += 6
	}
	if r.HasStatus {
		n += 6 + len(r.StatusMsg)
	}
	if r.DNSServers != nil {
		n += 4 + 16*len(r.DNSServers)
	}
	if r.DomainList != nil {
		n += 4 + domainListLen(r.DomainList)
	}
	if r.HasRefresh {
		n += 8
	}
	if r.HasInfMaxRT {
		n += 8
	}
	return n
}

// Emit writes the message into b[:r.Len()], options in the order of the struct. Errors:
// wire.ErrBufferTooSmall, wire.ErrRepr (a transaction ID over 24 bits, an IPv4 DNS server,
// a domain name that does not encode, an option over 65535 bytes).
func (r *Repr) Emit(b []byte) error {
	n := r.Len()
	if len(b) < n {
		return wire.ErrBufferTooSmall
	}
	if r.TransactionID > 0xffffff || n-HeaderLen > 0xffff+4 {
		return wire.ErrRepr
	}
	o := PutHeader(b, r.Type, r.TransactionID)
	put := func(code uint16, l int) []byte {
		binary.BigEndian.PutUint16(b[o:], code)
		binary.BigEndian.PutUint16(b[o+2:], uint16(l))
		d := b[o+4 : o+4+l]
		o += 4 + l
		return d
	}
	if r.ClientID != nil {
		copy(put(OptClientID, len(r.ClientID)), r.ClientID)
	}
	if r.ServerID != nil {
		copy(put(OptServerID, len(r.ServerID)), r.ServerID)
	}
	if r.ORO != nil {
		d := put(OptORO, 2*len(r.ORO))
		for i, c := range r.ORO {
			binary.BigEndian.PutUint16(d[2*i:], c)
		}
	}
	if r.HasElapsed {
		binary.BigEndian.PutUint16(put(OptElapsedTime, 2), r.ElapsedTime)
	}
	if r.HasStatus {
		d := put(OptStatusCode, 2+len(r.StatusMsg))
		binary.BigEndian.PutUint16(d, r.Status)
		copy(d[2:], r.StatusMsg)
	}
	if r.DNSServers != nil {
		d := put(OptDNSServers, 16*len(r.DNSServers))
		for i, a := range r.DNSServers {
			if !a.Is6() || a.Is4In6() {
				return wire.ErrRepr
			}
			a16 := a.As16()
			copy(d[16*i:], a16[:])
		}
	}
	if r.DomainList != nil {
		l := domainListLen(r.DomainList)
		if l < 0 {
			return wire.ErrRepr
		}
		putDomainList(put(OptDomainList, l), r.DomainList)
	}
	if r.HasRefresh {
		binary.BigEndian.PutUint32(put(OptInfoRefreshTime, 4), r.InfoRefreshTime)
	}
	if r.HasInfMaxRT {
		binary.BigEndian.PutUint32(put(OptInfMaxRT, 4), r.InfMaxRT)
	}
	return nil
}

// ParseAddrs reads a list of IPv6 addresses (options 23, 21 ...): false unless the length
// is a multiple of 16.
func ParseAddrs(d []byte) ([]netip.Addr, bool) {
	if len(d)%16 != 0 {
		return nil, false
	}
	addrs := make([]netip.Addr, 0, len(d)/16)
	for i := 0; i < len(d); i += 16 {
		addrs = append(addrs, netip.AddrFrom16([16]byte(d[i:i+16])))
	}
	return addrs, true
}

// ParseDomainList reads domain names encoded as RFC 1035 §3.1 says, without compression
// (RFC 8415 §10), one after the other; names are returned without the trailing dot.
func ParseDomainList(d []byte) ([]string, bool) {
	var names []string
	for len(d) > 0 {
		var sb strings.Builder
		for {
			if len(d) == 0 {
				return nil, false
			}
			l := int(d[0])
			d = d[1:]
			if l == 0 {
				break
			}
			if l > 63 || l > len(d) || sb.Len()+l+1 > 254 {
				return nil, false
			}
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.Write(d[:l])
			d = d[l:]
		}
		names = append(names, sb.String())
	}
	return names, true
}

// domainListLen is the encoded length of names, or -1 if one does not encode.
func domainListLen(names []string) int {
	n := 0
	for _, s := range names {
		s = strings.TrimSuffix(s, ".")
		if len(s) > 253 {
			return -1
		}
		if s != "" {
			for l := range strings.SplitSeq(s, ".") {
				if len(l) == 0 || len(l) > 63 {
					return -1
				}
			}
			n += len(s) + 1
		}
		n++
	}
	return n
}

func putDomainList(d []byte, names []string) {
	o := 0
	for _, s := range names {
		s = strings.TrimSuffix(s, ".")
		if s != "" {
			for l := range strings.SplitSeq(s, ".") {
				d[o] = byte(len(l))
				o += 1 + copy(d[o+1:], l)
			}
		}
		d[o] = 0
		o++
	}
}

package dhcpv4

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Ports (RFC 2131 §4.1).
const (
	ServerPort = 67
	ClientPort = 68
)

// Lengths.
const (
	// HeaderLen is the fixed BOOTP part, op through file (RFC 2131 Figure 1).
	HeaderLen = 236
	// MinLen is HeaderLen plus the magic cookie: the shortest DHCP message.
	MinLen = HeaderLen + 4
	// MinEmitLen is the length Emit pads a message to: RFC 1542 §3.1.1 ("the minimum ...
	// BOOTREQUEST message size of 300 octets"), which some relays and servers still require.
	MinEmitLen = 300
)

// Op codes (RFC 2131 §2).
const (
	OpRequest = 1 // BOOTREQUEST
	OpReply   = 2 // BOOTREPLY
)

// FlagBroadcast is the BROADCAST bit of the flags field (RFC 2131 §2, Figure 2).
const FlagBroadcast = 0x8000

// MagicCookie begins the options field (RFC 2131 §3: 99.130.83.99).
const MagicCookie = 0x63825363

// HTypeEthernet is the hardware type of 10 Mb Ethernet (RFC 1700), with a 6-byte address.
const HTypeEthernet = 1

// MessageType is option 53 (RFC 2132 §9.6).
type MessageType uint8

// Message types.
const (
	Discover MessageType = 1
	Offer    MessageType = 2
	Request  MessageType = 3
	Decline  MessageType = 4
	Ack      MessageType = 5
	Nak      MessageType = 6
	Release  MessageType = 7
	Inform   MessageType = 8
)

func (t MessageType) String() string {
	names := [...]string{"", "DHCPDISCOVER", "DHCPOFFER", "DHCPREQUEST", "DHCPDECLINE", "DHCPACK", "DHCPNAK",
		"DHCPRELEASE", "DHCPINFORM"}
	if int(t) < len(names) && t != 0 {
		return names[t]
	}
	return "DHCP(" + itoa(int(t)) + ")"
}

func itoa(v int) string {
	var b [4]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 || i == 0 {
			return string(b[i:])
		}
	}
}

// Option codes (RFC 2132).
const (
	OptPad            = 0
	OptSubnetMask     = 1
	OptRouter         = 3
	OptDNS            = 6
	OptHostname       = 12
	OptRequestedIP    = 50
	OptLeaseTime      = 51
	OptOverload       = 52
	OptMessageType    = 53
	OptServerID       = 54
	OptParamRequest   = 55
	OptMessage        = 56
	OptMaxMessageSize = 57
	OptRenewalTime    = 58 // T1
	OptRebindingTime  = 59 // T2
	OptClientID       = 61
	OptEnd            = 255
)

// Errors of Check and Parse beyond the wire package's kind.
var (
	ErrTruncated = errors.New("dhcpv4: truncated")
	ErrCookie    = errors.New("dhcpv4: bad magic cookie")
	ErrOption    = errors.New("dhcpv4: malformed option")
	ErrRepr      = errors.New("dhcpv4: field out of range")
	ErrShort     = errors.New("dhcpv4: buffer too small")
)

// Message is a view of a BOOTP/DHCP message. Validate it with Check; afterwards no accessor
// panics.
type Message []byte

// Check validates b: the fixed part, the magic cookie, and well-formed options in the
// options field and, when option 52 says so, in file and sname. A missing end option is
// accepted (the options then end with the message), as most clients and servers do.
func Check(b []byte) error {
	if len(b) < MinLen {
		return ErrTruncated
	}
	if binary.BigEndian.Uint32(b[HeaderLen:]) != MagicCookie {
		return ErrCookie
	}
	it := Message(b).options()
	for {
		_, _, ok, err := it.next()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
	}
}

// Op returns op: OpRequest or OpReply.
func (m Message) Op() uint8 { return m[0] }

// HType returns the hardware address type.
func (m Message) HType() uint8 { return m[1] }

// HLen returns the hardware address length.
func (m Message) HLen() uint8 { return m[2] }

// Hops returns hops (relay agents).
func (m Message) Hops() uint8 { return m[3] }

// XID returns the transaction ID.
func (m Message) XID() uint32 { return binary.BigEndian.Uint32(m[4:]) }

// Secs returns the seconds since the client began.
func (m Message) Secs() uint16 { return binary.BigEndian.Uint16(m[8:]) }

// Flags returns the flags field (FlagBroadcast).
func (m Message) Flags() uint16 { return binary.BigEndian.Uint16(m[10:]) }

// CIAddr returns the client's address (when it has one).
func (m Message) CIAddr() netip.Addr { return addr4(m[12:16]) }

// YIAddr returns "your" address: what the server gives.
func (m Message) YIAddr() netip.Addr { return addr4(m[16:20]) }

// SIAddr returns the next server's address.
func (m Message) SIAddr() netip.Addr { return addr4(m[20:24]) }

// GIAddr returns the relay agent's address.
func (m Message) GIAddr() netip.Addr { return addr4(m[24:28]) }

// CHAddr returns the 16-byte client hardware address field.
func (m Message) CHAddr() []byte { return m[28:44] }

// SName returns the 64-byte server host name field.
func (m Message) SName() []byte { return m[44:108] }

// File returns the 128-byte boot file name field.
func (m Message) File() []byte { return m[108:236] }

// Options returns the options field after the cookie.
func (m Message) Options() []byte { return m[MinLen:] }

// Option returns the value of the first instance of option code (from options, then file,
// then sname when overloaded), borrowed from m. It allocates nothing.
func (m Message) Option(code uint8) ([]byte, bool) {
	it := m.options()
	for {
		c, v, ok, err := it.next()
		if err != nil || !ok {
			return nil, false
		}
		if c == code {
			return v, true
		}
	}
}

// Type returns option 53, 0 when absent or malformed.
func (m Message) Type() MessageType {
	if v, ok := m.Option(OptMessageType); ok && len(v) == 1 {
		return MessageType(v[0])
	}
	return 0
}

func addr4(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }

// optIter walks the options of a message: the options field, then (RFC 2131 §4.1, option
// 52) file and then sname.
type optIter struct {
	m        Message
	cur      []byte
	area     int   // 0 options, 1 file, 2 sname
	overload uint8 // option 52's value, seen in the options field
}

func (m Message) options() optIter { return optIter{m: m, cur: m[MinLen:]} }

// next returns the next option; ok false at the end of all areas.
func (it *optIter) next() (code uint8, val []byte, ok bool, err error) {
	for {
		if len(it.cur) == 0 {
			if !it.nextArea() {
				return 0, nil, false, nil
			}
			continue
		}
		c := it.cur[0]
		switch c {
		case OptPad:
			it.cur = it.cur[1:]
			continue
		case OptEnd:
			it.cur = nil
			continue
		}
		if len(it.cur) < 2 || len(it.cur) < 2+int(it.cur[1]) {
			return 0, nil, false, ErrOption
		}
		v := it.cur[2 : 2+int(it.cur[1])]
		it.cur = it.cur[2+len(v):]
		if c == OptOverload && it.area == 0 {
			// RFC 2132 §9.3: 1 file, 2 sname, 3 both.
			if len(v) != 1 || v[0] < 1 || v[0] > 3 {
				return 0, nil, false, ErrOption
			}
			it.overload = v[0]
		}
		return c, v, true, nil
	}
}

func (it *optIter) nextArea() bool {
	for it.area < 2 {
		it.area++
		if it.area == 1 && it.overload&1 != 0 {
			it.cur = it.m.File()
			return true
		}
		if it.area == 2 && it.overload&2 != 0 {
			it.cur = it.m.SName()
			return true
		}
	}
	return false
}

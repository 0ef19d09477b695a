package ntp

import (
	"encoding/binary"

	"github.com/wispstack/wisp/wire"
)

// HeaderLen is the length of the NTP header without extension fields or MAC.
const HeaderLen = 48

// Port is the NTP port (RFC 5905 §7.2).
const Port = 123

// Version is the NTP version wisp sends (RFC 5905: 4).
const Version = 4

// Mode is the association mode (RFC 5905 Figure 10).
type Mode uint8

// The modes.
const (
	ModeReserved Mode = iota
	ModeSymmetricActive
	ModeSymmetricPassive
	ModeClient
	ModeServer
	ModeBroadcast
	ModeControl
	ModePrivate
)

func (m Mode) String() string {
	names := [...]string{"reserved", "symmetric active", "symmetric passive", "client", "server", "broadcast", "control", "private"}
	return names[m&7]
}

// Leap is the leap indicator (RFC 5905 Figure 9).
type Leap uint8

// The leap indicators; LeapAlarm means the server's clock is not synchronised.
const (
	LeapNone Leap = iota
	LeapAddSecond
	LeapDelSecond
	LeapAlarm
)

// Header is a view of an NTP packet. Validate it with Check; no accessor then panics.
type Header []byte

// Check validates that b holds a whole header (extension fields, if any, are not checked).
func Check(b []byte) error {
	if len(b) < HeaderLen {
		return wire.ErrTruncated
	}
	return nil
}

// Leap is the LI field.
func (h Header) Leap() Leap { return Leap(h[0] >> 6) }

// Version is the VN field.
func (h Header) Version() uint8 { return h[0] >> 3 & 7 }

// Mode is the Mode field.
func (h Header) Mode() Mode { return Mode(h[0] & 7) }

// Stratum is the stratum: 0 unspecified or a Kiss-o'-Death, 1 primary, 2–15 secondary,
// 16 unsynchronised.
func (h Header) Stratum() uint8 { return h[1] }

// Poll is the maximum interval between messages, log2 seconds.
func (h Header) Poll() int8 { return int8(h[2]) }

// Precision is the precision of the system clock, log2 seconds.
func (h Header) Precision() int8 { return int8(h[3]) }

// RootDelay is the total round-trip delay to the reference clock.
func (h Header) RootDelay() Short { return Short(binary.BigEndian.Uint32(h[4:])) }

// RootDispersion is the total dispersion to the reference clock.
func (h Header) RootDispersion() Short { return Short(binary.BigEndian.Uint32(h[8:])) }

// ReferenceID is the reference identifier: a kiss code when Stratum is 0, a reference
// clock's ASCII name at stratum 1, else the server's upstream (an IPv4 address or the
// first four bytes of the MD5 of an IPv6 address).
func (h Header) ReferenceID() [4]byte { return [4]byte(h[12:16]) }

// ReferenceTime is when the system clock was last set or corrected.
func (h Header) ReferenceTime() Timestamp { return Timestamp(binary.BigEndian.Uint64(h[16:])) }

// OriginTime (T1) is the client's time when the request departed, as the client sent it in
// its Transmit Timestamp.
func (h Header) OriginTime() Timestamp { return Timestamp(binary.BigEndian.Uint64(h[24:])) }

// ReceiveTime (T2) is the server's time when the request arrived.
func (h Header) ReceiveTime() Timestamp { return Timestamp(binary.BigEndian.Uint64(h[32:])) }

// TransmitTime (T3) is the sender's time when the packet departed.
func (h Header) TransmitTime() Timestamp { return Timestamp(binary.BigEndian.Uint64(h[40:])) }

// KissCode returns the Kiss-o'-Death code of a stratum 0 packet (RFC 5905 §7.4) and true,
// or false when the packet is not a kiss.
func (h Header) KissCode() (KissCode, bool) {
	if h.Stratum() != 0 {
		return 0, false
	}
	return KissCode(binary.BigEndian.Uint32(h[12:])), true
}

// Repr is the header as values.
type Repr struct {
	Leap           Leap
	Version        uint8 // 1..7; 0 in Emit means Version (4)
	Mode           Mode
	Stratum        uint8
	Poll           int8
	Precision      int8
	RootDelay      Short
	RootDispersion Short
	ReferenceID    [4]byte
	ReferenceTime  Timestamp
	OriginTime     Timestamp
	ReceiveTime    Timestamp
	TransmitTime   Timestamp
}

// Parse fills r from b (the first HeaderLen bytes; the rest is ignored).
func (r *Repr) Parse(b []byte) error {
	if err := Check(b); err != nil {
		return err
	}
	h := Header(b)
	*r = Repr{
		Leap: h.Leap(), Version: h.Version(), Mode: h.Mode(), Stratum: h.Stratum(),
		Poll: h.Poll(), Precision: h.Precision(),
		RootDelay: h.RootDelay(), RootDispersion: h.RootDispersion(), ReferenceID: h.ReferenceID(),
		ReferenceTime: h.ReferenceTime(), OriginTime: h.OriginTime(),
		ReceiveTime: h.ReceiveTime(), TransmitTime: h.TransmitTime(),
	}
	return nil
}

// Emit writes the header into b[:HeaderLen]. errs: wire.ErrBufferTooSmall, wire.ErrRepr
// (a Leap, Version or Mode out of range).
func (r *Repr) Emit(b []byte) error {
	if len(b) < HeaderLen {
		return wire.ErrBufferTooSmall
	}
	v := r.Version
	if v == 0 {
		v = Version
	}
	if r.Leap > 3 || v > 7 || r.Mode > 7 {
		return wire.ErrRepr
	}
	b[0] = byte(r.Leap)<<6 | v<<3 | byte(r.Mode)
	b[1] = r.Stratum
	b[2] = byte(r.Poll)
	b[3] = byte(r.Precision)
	binary.BigEndian.PutUint32(b[4:], uint32(r.RootDelay))
	binary.BigEndian.PutUint32(b[8:], uint32(r.RootDispersion))
	copy(b[12:16], r.ReferenceID[:])
	binary.BigEndian.PutUint64(b[16:], uint64(r.ReferenceTime))
	binary.BigEndian.PutUint64(b[24:], uint64(r.OriginTime))
	binary.BigEndian.PutUint64(b[32:], uint64(r.ReceiveTime))
	binary.BigEndian.PutUint64(b[40:], uint64(r.TransmitTime))
	return nil
}

// KissCode is a Kiss-o'-Death code: four ASCII characters in the Reference ID field.
type KissCode uint32

// The kiss codes an SNTP client acts on (RFC 5905 §7.4); the others are ignored.
const (
	KissRATE KissCode = 'R'<<24 | 'A'<<16 | 'T'<<8 | 'E' // reduce the polling rate
	KissDENY KissCode = 'D'<<24 | 'E'<<16 | 'N'<<8 | 'Y' // access denied: stop using the server
	KissRSTR KissCode = 'R'<<24 | 'S'<<16 | 'T'<<8 | 'R' // access restricted: stop using the server
)

// String is the code's four characters (bytes outside printable ASCII as '?').
func (k KissCode) String() string {
	var b [4]byte
	for i := range b {
		c := byte(k >> (24 - 8*i))
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b[i] = c
	}
	return string(b[:])
}

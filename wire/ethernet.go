package wire

import (
	"encoding/binary"
	"net/netip"
)

// EthernetHeaderLen is the length of an Ethernet II header: destination,
// source and EtherType. wire does not handle 802.1Q tags or 802.3 LLC frames.
const EthernetHeaderLen = 14

// MAC is an IEEE 802 48-bit MAC address.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

const hexDigits = "0123456789abcdef"

// String formats m as six colon-separated lower-case hex octets.
func (m MAC) String() string {
	var buf [17]byte
	for i, b := range m {
		if i > 0 {
			buf[3*i-1] = ':'
		}
		buf[3*i] = hexDigits[b>>4]
		buf[3*i+1] = hexDigits[b&0xf]
	}
	return string(buf[:])
}

// IsBroadcast reports whether m is ff:ff:ff:ff:ff:ff.
func (m MAC) IsBroadcast() bool { return m == BroadcastMAC }

// IsMulticast reports whether m is a group address (the I/G bit, the least
// significant bit of the first octet, is set). Broadcast is multicast too.
func (m MAC) IsMulticast() bool { return m[0]&0x01 != 0 }

// IsUnicast reports whether m is an individual address other than zero.
func (m MAC) IsUnicast() bool { return m[0]&0x01 == 0 && m != MAC{} }

// IPv4MulticastMAC maps an IPv4 multicast group to its Ethernet address:
// RFC 1112 §6.4, 01:00:5e followed by the low-order 23 bits of the group.
func IPv4MulticastMAC(group netip.Addr) MAC {
	if !group.Is4() {
		return MAC{}
	}
	a := group.As4()
	return MAC{0x01, 0x00, 0x5e, a[1] & 0x7f, a[2], a[3]}
}

// IPv6MulticastMAC maps an IPv6 multicast address to its Ethernet address:
// RFC 2464 §7, 33:33 followed by the last four octets of the address.
func IPv6MulticastMAC(group netip.Addr) MAC {
	if !group.Is6() {
		return MAC{}
	}
	a := group.As16()
	return MAC{0x33, 0x33, a[12], a[13], a[14], a[15]}
}

// EtherType identifies the payload of an Ethernet frame.
type EtherType uint16

// EtherTypes wisp handles.
const (
	EtherTypeIPv4 EtherType = 0x0800
	EtherTypeARP  EtherType = 0x0806
	EtherTypeIPv6 EtherType = 0x86dd
)

// String names the known EtherTypes, and prints others in hex.
func (t EtherType) String() string {
	switch t {
	case EtherTypeIPv4:
		return "IPv4"
	case EtherTypeARP:
		return "ARP"
	case EtherTypeIPv6:
		return "IPv6"
	}
	return "0x" + string([]byte{hexDigits[t>>12], hexDigits[t>>8&0xf], hexDigits[t>>4&0xf], hexDigits[t&0xf]})
}

// Ethernet is a view of an Ethernet II frame, starting at the destination
// address and without the FCS. Validate it with CheckEthernet.
type Ethernet []byte

// CheckEthernet validates that b holds an Ethernet II header.
func CheckEthernet(b []byte) error {
	if len(b) < EthernetHeaderLen {
		return ErrTruncated
	}
	return nil
}

// Dst is the destination MAC address.
func (e Ethernet) Dst() MAC { return MAC(e[0:6]) }

// Src is the source MAC address.
func (e Ethernet) Src() MAC { return MAC(e[6:12]) }

// EtherType is the type of the payload.
func (e Ethernet) EtherType() EtherType { return EtherType(binary.BigEndian.Uint16(e[12:14])) }

// Payload is the frame after the header, including any padding.
func (e Ethernet) Payload() []byte { return e[EthernetHeaderLen:] }

// SetDst sets the destination MAC address.
func (e Ethernet) SetDst(m MAC) { copy(e[0:6], m[:]) }

// SetSrc sets the source MAC address.
func (e Ethernet) SetSrc(m MAC) { copy(e[6:12], m[:]) }

// SetEtherType sets the EtherType.
func (e Ethernet) SetEtherType(t EtherType) { binary.BigEndian.PutUint16(e[12:14], uint16(t)) }

// EthernetRepr is a parsed Ethernet II header.
type EthernetRepr struct {
	Dst, Src  MAC
	EtherType EtherType
}

// Parse validates b and fills r from it.
func (r *EthernetRepr) Parse(b []byte) error {
	if err := CheckEthernet(b); err != nil {
		return err
	}
	e := Ethernet(b)
	*r = EthernetRepr{Dst: e.Dst(), Src: e.Src(), EtherType: e.EtherType()}
	return nil
}

// HeaderLen is the number of bytes Emit writes.
func (r *EthernetRepr) HeaderLen() int { return EthernetHeaderLen }

// Emit writes the header to the start of b.
func (r *EthernetRepr) Emit(b []byte) error {
	if len(b) < EthernetHeaderLen {
		return ErrBufferTooSmall
	}
	e := Ethernet(b)
	e.SetDst(r.Dst)
	e.SetSrc(r.Src)
	e.SetEtherType(r.EtherType)
	return nil
}

package dhcpv4

import (
	"encoding/binary"
	"net/netip"
)

// Repr is a DHCP message as the client sends and reads it: the BOOTP fields, with an
// Ethernet chaddr, and the options wisp uses. Parse fills it without copying: the byte
// slices (Hostname, ClientID, ParamRequest, Message) borrow the parsed buffer, and Routers
// and DNS are appended to the slices' existing capacity (reuse a Repr and parsing
// allocates nothing).
type Repr struct {
	Op        uint8
	XID       uint32
	Secs      uint16
	Broadcast bool // the flags' BROADCAST bit
	Hops      uint8
	// Addresses; invalid is 0.0.0.0 on the wire.
	CIAddr, YIAddr, SIAddr, GIAddr netip.Addr
	CHAddr                         [6]byte // hardware type 1, length 6

	Type        MessageType // option 53 (required)
	ServerID    netip.Addr  // option 54
	RequestedIP netip.Addr  // option 50
	SubnetMask  netip.Addr  // option 1
	Routers     []netip.Addr
	DNS         []netip.Addr
	// LeaseTime, T1 and T2 are seconds (options 51, 58, 59); 0 is absent. 0xffffffff is an
	// infinite lease.
	LeaseTime, T1, T2 uint32
	MaxSize           uint16 // option 57; 0 absent
	Hostname          []byte // option 12
	ClientID          []byte // option 61
	ParamRequest      []byte // option 55
	Message           []byte // option 56 (a NAK's reason)
}

// Parse reads a message checked by Check into r (fields of a previous Parse are reset).
// It fails if the message is not Ethernet-addressed, has no message type, or an option
// wisp reads has a bad length.
func (r *Repr) Parse(b []byte) error {
	if err := Check(b); err != nil {
		return err
	}
	m := Message(b)
	if m.HType() != HTypeEthernet || m.HLen() != 6 {
		return ErrRepr
	}
	routers, dns := r.Routers[:0], r.DNS[:0]
	*r = Repr{Op: m.Op(), XID: m.XID(), Secs: m.Secs(), Broadcast: m.Flags()&FlagBroadcast != 0, Hops: m.Hops(),
		CIAddr: nonzero(m.CIAddr()), YIAddr: nonzero(m.YIAddr()), SIAddr: nonzero(m.SIAddr()),
		GIAddr: nonzero(m.GIAddr()), CHAddr: [6]byte(m.CHAddr()[:6]), Routers: routers, DNS: dns}
	it := m.options()
	for {
		c, v, ok, err := it.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch c {
		case OptMessageType:
			if len(v) != 1 || r.Type != 0 {
				return ErrOption
			}
			r.Type = MessageType(v[0])
		case OptServerID:
			err = oneAddr(v, &r.ServerID)
		case OptRequestedIP:
			err = oneAddr(v, &r.RequestedIP)
		case OptSubnetMask:
			err = oneAddr(v, &r.SubnetMask)
		case OptRouter:
			r.Routers, err = addrList(v, r.Routers)
		case OptDNS:
			r.DNS, err = addrList(v, r.DNS)
		case OptLeaseTime:
			err = seconds(v, &r.LeaseTime)
		case OptRenewalTime:
			err = seconds(v, &r.T1)
		case OptRebindingTime:
			err = seconds(v, &r.T2)
		case OptMaxMessageSize:
			if len(v) != 2 {
				return ErrOption
			}
			r.MaxSize = binary.BigEndian.Uint16(v)
		case OptHostname:
			r.Hostname = v
		case OptClientID:
			r.ClientID = v
		case OptParamRequest:
			r.ParamRequest = v
		case OptMessage:
			r.Message = v
		}
		if err != nil {
			return err
		}
	}
	if r.Type == 0 {
		return ErrRepr
	}
	return nil
}

func nonzero(a netip.Addr) netip.Addr {
	if a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

func oneAddr(v []byte, dst *netip.Addr) error {
	if len(v) != 4 {
		return ErrOption
	}
	*dst = addr4(v)
	return nil
}

// addrList appends the addresses of a list option (RFC 2132 §3.5: "The minimum length for
// the router option is 4 octets, and the length MUST always be a multiple of 4").
func addrList(v []byte, dst []netip.Addr) ([]netip.Addr, error) {
	if len(v) == 0 || len(v)%4 != 0 {
		return dst, ErrOption
	}
	for ; len(v) > 0; v = v[4:] {
		dst = append(dst, addr4(v))
	}
	return dst, nil
}

func seconds(v []byte, dst *uint32) error {
	if len(v) != 4 {
		return ErrOption
	}
	*dst = binary.BigEndian.Uint32(v)
	return nil
}

// Len returns the length Emit writes: at least MinEmitLen.
func (r *Repr) Len() int {
	n := MinLen + 3 // message type
	addOpt := func(l int) {
		if l > 0 {
			n += 2 + l
		}
	}
	for _, a := range [...]netip.Addr{r.ServerID, r.RequestedIP, r.SubnetMask} {
		if a.IsValid() {
			n += 6
		}
	}
	addOpt(4 * len(r.Routers))
	addOpt(4 * len(r.DNS))
	for _, s := range [...]uint32{r.LeaseTime, r.T1, r.T2} {
		if s != 0 {
			n += 6
		}
	}
	if r.MaxSize != 0 {
		n += 4
	}
	addOpt(len(r.Hostname))
	addOpt(len(r.ClientID))
	addOpt(len(r.ParamRequest))
	addOpt(len(r.Message))
	n++ // end
	return max(n, MinEmitLen)
}

// Emit writes the message to b[:r.Len()] and returns that length: options in a fixed
// order, an end option, then zero padding up to MinEmitLen. ErrShort if b is too small,
// ErrRepr for an option over 255 bytes, an IPv6 address or no message type.
func (r *Repr) Emit(b []byte) (int, error) {
	n := r.Len()
	if len(b) < n {
		return 0, ErrShort
	}
	if r.Type == 0 {
		return 0, ErrRepr
	}
	for _, l := range [...]int{4 * len(r.Routers), 4 * len(r.DNS), len(r.Hostname), len(r.ClientID), len(r.ParamRequest), len(r.Message)} {
		if l > 255 {
			return 0, ErrRepr
		}
	}
	b = b[:n]
	clear(b)
	b[0], b[1], b[2], b[3] = r.Op, HTypeEthernet, 6, r.Hops
	binary.BigEndian.PutUint32(b[4:], r.XID)
	binary.BigEndian.PutUint16(b[8:], r.Secs)
	if r.Broadcast {
		binary.BigEndian.PutUint16(b[10:], FlagBroadcast)
	}
	for i, a := range [...]netip.Addr{r.CIAddr, r.YIAddr, r.SIAddr, r.GIAddr} {
		if err := putAddr(b[12+4*i:], a); err != nil {
			return 0, err
		}
	}
	copy(b[28:], r.CHAddr[:])
	binary.BigEndian.PutUint32(b[HeaderLen:], MagicCookie)
	o := b[MinLen:]
	o[0], o[1], o[2] = OptMessageType, 1, byte(r.Type)
	o = o[3:]
	var err error
	put := func(code uint8, v []byte) {
		if len(v) > 0 {
			o[0], o[1] = code, byte(len(v))
			copy(o[2:], v)
			o = o[2+len(v):]
		}
	}
	putA := func(code uint8, addrs ...netip.Addr) {
		if len(addrs) == 0 || !addrs[0].IsValid() {
			return
		}
		o[0], o[1] = code, byte(4*len(addrs))
		for i, a := range addrs {
			if e := putAddr(o[2+4*i:], a); e != nil {
				err = e
			}
		}
		o = o[2+4*len(addrs):]
	}
	putS := func(code uint8, s uint32) {
		if s != 0 {
			o[0], o[1] = code, 4
			binary.BigEndian.PutUint32(o[2:], s)
			o = o[6:]
		}
	}
	put(OptClientID, r.ClientID)
	putA(OptRequestedIP, r.RequestedIP)
	putA(OptServerID, r.ServerID)
	putS(OptLeaseTime, r.LeaseTime)
	putS(OptRenewalTime, r.T1)
	putS(OptRebindingTime, r.T2)
	putA(OptSubnetMask, r.SubnetMask)
	putA(OptRouter, r.Routers...)
	putA(OptDNS, r.DNS...)
	put(OptHostname, r.Hostname)
	put(OptParamRequest, r.ParamRequest)
	if r.MaxSize != 0 {
		o[0], o[1] = OptMaxMessageSize, 2
		binary.BigEndian.PutUint16(o[2:], r.MaxSize)
		o = o[4:]
	}
	put(OptMessage, r.Message)
	o[0] = OptEnd
	if err != nil {
		return 0, err
	}
	return n, nil
}

func putAddr(b []byte, a netip.Addr) error {
	if !a.IsValid() {
		return nil
	}
	if !a.Is4() {
		return ErrRepr
	}
	v := a.As4()
	copy(b, v[:])
	return nil
}

// MaskBits returns the prefix length of a contiguous subnet mask, or -1.
func MaskBits(mask netip.Addr) int {
	if !mask.Is4() {
		return -1
	}
	a4 := mask.As4()
	v := binary.BigEndian.Uint32(a4[:])
	bits := 0
	for v&0x80000000 != 0 {
		bits++
		v <<= 1
	}
	if v != 0 {
		return -1
	}
	return bits
}

package wire

import (
	"encoding/binary"
	"net/netip"
)

// Neighbor Discovery (RFC 4861 §4). Each message view covers the whole
// ICMPv6 message, so offsets match the RFC figures. The Check functions
// validate length, type, code 0 and the options' lengths; the ICMPv6
// checksum (CheckICMPv6) and the IP Hop Limit of 255 are the caller's.

// Lengths of the fixed part of each NDP message, ICMPv6 header included.
const (
	NDPRouterSolicitLen   = 8
	NDPRouterAdvertLen    = 16
	NDPNeighborSolicitLen = 24
	NDPNeighborAdvertLen  = 24
	NDPRedirectLen        = 40
)

// NDP option types (RFC 4861 §4.6).
const (
	NDPOptSourceLLAddr = 1
	NDPOptTargetLLAddr = 2
	NDPOptPrefixInfo   = 3
	NDPOptRedirected   = 4
	NDPOptMTU          = 5
)

// Neighbor Advertisement flags, the high bits of byte 4.
const (
	NDPNARouter    = 0x80
	NDPNASolicited = 0x40
	NDPNAOverride  = 0x20
)

// Router Advertisement flags, byte 5.
const (
	NDPRAManaged = 0x80
	NDPRAOther   = 0x40
)

func checkNDP(b []byte, typ uint8, base int) error {
	if len(b) < base {
		return ErrTruncated
	}
	if b[0] != typ || b[1] != 0 {
		return ErrType
	}
	return CheckNDPOptions(b[base:])
}

// checkNDPUnicast is checkNDP for the messages that name a unicast address at off: the
// target of a Neighbor Solicitation or Advertisement, a Redirect's destination; a
// multicast one is ErrAddress.
func checkNDPUnicast(b []byte, typ uint8, base, off int) error {
	if err := checkNDP(b, typ, base); err != nil {
		return err
	}
	if netip.AddrFrom16([16]byte(b[off : off+16])).IsMulticast() {
		return ErrAddress
	}
	return nil
}

// NDPRouterSolicit is a view of a Router Solicitation (RFC 4861 §4.1).
type NDPRouterSolicit []byte

// CheckNDPRouterSolicit validates a Router Solicitation.
func CheckNDPRouterSolicit(b []byte) error {
	return checkNDP(b, ICMPv6RouterSolicit, NDPRouterSolicitLen)
}

// Options are the message's options.
func (m NDPRouterSolicit) Options() NDPOptions { return NDPOptions(m[NDPRouterSolicitLen:]) }

// NDPRouterAdvert is a view of a Router Advertisement (RFC 4861 §4.2).
type NDPRouterAdvert []byte

// CheckNDPRouterAdvert validates a Router Advertisement.
func CheckNDPRouterAdvert(b []byte) error {
	return checkNDP(b, ICMPv6RouterAdvert, NDPRouterAdvertLen)
}

// CurHopLimit is the hop limit hosts should use; 0 means unspecified.
func (m NDPRouterAdvert) CurHopLimit() uint8 { return m[4] }

// Flags is the raw flags octet (M, O and later extensions).
func (m NDPRouterAdvert) Flags() uint8 { return m[5] }

// Managed is the M flag: addresses are available via DHCPv6.
func (m NDPRouterAdvert) Managed() bool { return m[5]&NDPRAManaged != 0 }

// Other is the O flag: other configuration is available via DHCPv6.
func (m NDPRouterAdvert) Other() bool { return m[5]&NDPRAOther != 0 }

// RouterLifetime is the default router lifetime in seconds; 0 means not a
// default router.
func (m NDPRouterAdvert) RouterLifetime() uint16 { return binary.BigEndian.Uint16(m[6:8]) }

// ReachableTime is in milliseconds; 0 means unspecified.
func (m NDPRouterAdvert) ReachableTime() uint32 { return binary.BigEndian.Uint32(m[8:12]) }

// RetransTimer is in milliseconds; 0 means unspecified.
func (m NDPRouterAdvert) RetransTimer() uint32 { return binary.BigEndian.Uint32(m[12:16]) }

// Options are the message's options.
func (m NDPRouterAdvert) Options() NDPOptions { return NDPOptions(m[NDPRouterAdvertLen:]) }

// NDPNeighborSolicit is a view of a Neighbor Solicitation (RFC 4861 §4.3).
type NDPNeighborSolicit []byte

// CheckNDPNeighborSolicit validates a Neighbor Solicitation, including that
// the target is not multicast (RFC 4861 §7.1.1).
func CheckNDPNeighborSolicit(b []byte) error {
	return checkNDPUnicast(b, ICMPv6NeighborSolicit, NDPNeighborSolicitLen, 8)
}

// TargetAddress is the address being resolved.
func (m NDPNeighborSolicit) TargetAddress() netip.Addr { return netip.AddrFrom16([16]byte(m[8:24])) }

// Options are the message's options.
func (m NDPNeighborSolicit) Options() NDPOptions { return NDPOptions(m[NDPNeighborSolicitLen:]) }

// NDPNeighborAdvert is a view of a Neighbor Advertisement (RFC 4861 §4.4).
type NDPNeighborAdvert []byte

// CheckNDPNeighborAdvert validates a Neighbor Advertisement, including that
// the target is not multicast (RFC 4861 §7.1.2).
func CheckNDPNeighborAdvert(b []byte) error {
	return checkNDPUnicast(b, ICMPv6NeighborAdvert, NDPNeighborAdvertLen, 8)
}

// Flags is the flags octet: NDPNARouter | NDPNASolicited | NDPNAOverride.
func (m NDPNeighborAdvert) Flags() uint8 { return m[4] & 0xe0 }

// Router is the R flag.
func (m NDPNeighborAdvert) Router() bool { return m[4]&NDPNARouter != 0 }

// Solicited is the S flag.
func (m NDPNeighborAdvert) Solicited() bool { return m[4]&NDPNASolicited != 0 }

// Override is the O flag.
func (m NDPNeighborAdvert) Override() bool { return m[4]&NDPNAOverride != 0 }

// TargetAddress is the address whose link-layer address is advertised.
func (m NDPNeighborAdvert) TargetAddress() netip.Addr { return netip.AddrFrom16([16]byte(m[8:24])) }

// Options are the message's options.
func (m NDPNeighborAdvert) Options() NDPOptions { return NDPOptions(m[NDPNeighborAdvertLen:]) }

// NDPRedirect is a view of a Redirect (RFC 4861 §4.5).
type NDPRedirect []byte

// CheckNDPRedirect validates a Redirect, including that the destination is
// not multicast (RFC 4861 §8.1).
func CheckNDPRedirect(b []byte) error {
	return checkNDPUnicast(b, ICMPv6Redirect, NDPRedirectLen, 24)
}

// TargetAddress is the better first hop.
func (m NDPRedirect) TargetAddress() netip.Addr { return netip.AddrFrom16([16]byte(m[8:24])) }

// DestinationAddress is the destination being redirected.
func (m NDPRedirect) DestinationAddress() netip.Addr { return netip.AddrFrom16([16]byte(m[24:40])) }

// Options are the message's options.
func (m NDPRedirect) Options() NDPOptions { return NDPOptions(m[NDPRedirectLen:]) }

// NDPOptions is the options area of an NDP message.
type NDPOptions []byte

// CheckNDPOptions validates that b is a sequence of whole options, none of
// length 0 (RFC 4861 §4.6: "Nodes MUST silently discard an ND packet that
// contains an option with length zero").
func CheckNDPOptions(b []byte) error {
	it := NDPOptions(b).Iter()
	for {
		if _, ok := it.Next(); !ok {
			return it.Err()
		}
	}
}

// Iter returns an iterator over the options.
func (o NDPOptions) Iter() NDPOptionIter { return NDPOptionIter{b: o} }

// NDPOptionIter walks NDP options without allocating.
type NDPOptionIter struct {
	b   []byte
	off int
	err error
}

// Next returns the next option, or false at the end or on a malformed option
// (then Err is ErrOption).
func (it *NDPOptionIter) Next() (NDPOption, bool) {
	if it.err != nil || it.off >= len(it.b) {
		return nil, false
	}
	rest := it.b[it.off:]
	if len(rest) < 2 {
		it.err = ErrOption
		return nil, false
	}
	n := int(rest[1]) * 8
	if n == 0 || n > len(rest) {
		it.err = ErrOption
		return nil, false
	}
	it.off += n
	return NDPOption(rest[:n]), true
}

// Err is ErrOption if an option was truncated or had length 0.
func (it *NDPOptionIter) Err() error { return it.err }

// NDPOption is one whole option: type, length in 8-octet units, data. Options
// from NDPOptionIter are at least 8 bytes.
type NDPOption []byte

// Type is the option type.
func (o NDPOption) Type() uint8 { return o[0] }

// Len is the option length in bytes.
func (o NDPOption) Len() int { return len(o) }

// Data is the option after the type and length octets.
func (o NDPOption) Data() []byte { return o[2:] }

// LinkLayerAddr returns the Ethernet address of a Source or Target
// Link-layer Address option (RFC 4861 §4.6.1, RFC 2464 §8).
func (o NDPOption) LinkLayerAddr() (MAC, bool) {
	if len(o) < 8 || (o[0] != NDPOptSourceLLAddr && o[0] != NDPOptTargetLLAddr) {
		return MAC{}, false
	}
	return MAC(o[2:8]), true
}

// MTU returns the MTU of an MTU option (RFC 4861 §4.6.4).
func (o NDPOption) MTU() (uint32, bool) {
	if len(o) != 8 || o[0] != NDPOptMTU {
		return 0, false
	}
	return binary.BigEndian.Uint32(o[4:8]), true
}

// PrefixInfo returns a Prefix Information option (RFC 4861 §4.6.2), which
// must be exactly 32 bytes.
func (o NDPOption) PrefixInfo() (NDPPrefixInfo, bool) {
	if len(o) != 32 || o[0] != NDPOptPrefixInfo {
		return nil, false
	}
	return NDPPrefixInfo(o), true
}

// NDPPrefixInfo is a view of a 32-byte Prefix Information option, obtained
// from NDPOption.PrefixInfo.
type NDPPrefixInfo []byte

// PrefixLength is the number of leading valid bits in the prefix.
func (p NDPPrefixInfo) PrefixLength() uint8 { return p[2] }

// OnLink is the L flag.
func (p NDPPrefixInfo) OnLink() bool { return p[3]&0x80 != 0 }

// Autonomous is the A flag: the prefix may be used for SLAAC.
func (p NDPPrefixInfo) Autonomous() bool { return p[3]&0x40 != 0 }

// ValidLifetime is in seconds; 0xffffffff is infinity.
func (p NDPPrefixInfo) ValidLifetime() uint32 { return binary.BigEndian.Uint32(p[4:8]) }

// PreferredLifetime is in seconds; 0xffffffff is infinity.
func (p NDPPrefixInfo) PreferredLifetime() uint32 { return binary.BigEndian.Uint32(p[8:12]) }

// Prefix is the prefix with PrefixLength. It is invalid (IsValid false) if
// PrefixLength exceeds 128. Bits past the length are kept as sent.
func (p NDPPrefixInfo) Prefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16([16]byte(p[16:32])), int(p[2]))
}

// EmitNDPRouterSolicit writes the fixed part of a Router Solicitation to the
// start of b and returns its length. Options follow it; the caller then sets
// the checksum with ICMPv6.SetChecksum over the whole message.
func EmitNDPRouterSolicit(b []byte) (int, error) {
	if len(b) < NDPRouterSolicitLen {
		return 0, ErrBufferTooSmall
	}
	clear(b[:NDPRouterSolicitLen])
	b[0] = ICMPv6RouterSolicit
	return NDPRouterSolicitLen, nil
}

// NDPRouterAdvertRepr is the fixed part of a Router Advertisement.
type NDPRouterAdvertRepr struct {
	CurHopLimit    uint8
	Flags          uint8  // NDPRAManaged | NDPRAOther | ...
	RouterLifetime uint16 // seconds
	ReachableTime  uint32 // milliseconds
	RetransTimer   uint32 // milliseconds
}

// Parse validates b with CheckNDPRouterAdvert and fills r from it.
func (r *NDPRouterAdvertRepr) Parse(b []byte) error {
	if err := CheckNDPRouterAdvert(b); err != nil {
		return err
	}
	m := NDPRouterAdvert(b)
	*r = NDPRouterAdvertRepr{
		CurHopLimit:    m.CurHopLimit(),
		Flags:          m.Flags(),
		RouterLifetime: m.RouterLifetime(),
		ReachableTime:  m.ReachableTime(),
		RetransTimer:   m.RetransTimer(),
	}
	return nil
}

// Emit writes the fixed part of a Router Advertisement to the start of b and
// returns its length; options and checksum as for EmitNDPRouterSolicit.
func (r *NDPRouterAdvertRepr) Emit(b []byte) (int, error) {
	if len(b) < NDPRouterAdvertLen {
		return 0, ErrBufferTooSmall
	}
	b[0], b[1], b[2], b[3] = ICMPv6RouterAdvert, 0, 0, 0
	b[4], b[5] = r.CurHopLimit, r.Flags
	binary.BigEndian.PutUint16(b[6:8], r.RouterLifetime)
	binary.BigEndian.PutUint32(b[8:12], r.ReachableTime)
	binary.BigEndian.PutUint32(b[12:16], r.RetransTimer)
	return NDPRouterAdvertLen, nil
}

func emitNDPTarget(b []byte, typ, flags uint8, target netip.Addr, n int) (int, error) {
	if len(b) < n {
		return 0, ErrBufferTooSmall
	}
	if !target.Is6() {
		return 0, ErrAddress
	}
	clear(b[:8])
	b[0], b[4] = typ, flags
	t := target.As16()
	copy(b[8:24], t[:])
	return n, nil
}

// EmitNDPNeighborSolicit writes the fixed part of a Neighbor Solicitation
// for target to the start of b and returns its length; options and checksum
// as for EmitNDPRouterSolicit.
func EmitNDPNeighborSolicit(b []byte, target netip.Addr) (int, error) {
	return emitNDPTarget(b, ICMPv6NeighborSolicit, 0, target, NDPNeighborSolicitLen)
}

// EmitNDPNeighborAdvert writes the fixed part of a Neighbor Advertisement to
// the start of b and returns its length. flags is a combination of
// NDPNARouter, NDPNASolicited and NDPNAOverride.
func EmitNDPNeighborAdvert(b []byte, flags uint8, target netip.Addr) (int, error) {
	return emitNDPTarget(b, ICMPv6NeighborAdvert, flags&0xe0, target, NDPNeighborAdvertLen)
}

// EmitNDPRedirect writes the fixed part of a Redirect to the start of b and
// returns its length.
func EmitNDPRedirect(b []byte, target, dst netip.Addr) (int, error) {
	if !dst.Is6() {
		return 0, ErrAddress
	}
	n, err := emitNDPTarget(b, ICMPv6Redirect, 0, target, NDPRedirectLen)
	if err != nil {
		return 0, err
	}
	d := dst.As16()
	copy(b[24:40], d[:])
	return n, nil
}

// EmitNDPLinkLayerOption writes an 8-byte Source (NDPOptSourceLLAddr) or
// Target (NDPOptTargetLLAddr) Link-layer Address option for an Ethernet
// address and returns its length.
func EmitNDPLinkLayerOption(b []byte, typ uint8, mac MAC) (int, error) {
	if len(b) < 8 {
		return 0, ErrBufferTooSmall
	}
	b[0], b[1] = typ, 1
	copy(b[2:8], mac[:])
	return 8, nil
}

// EmitNDPMTUOption writes an MTU option and returns its length.
func EmitNDPMTUOption(b []byte, mtu uint32) (int, error) {
	if len(b) < 8 {
		return 0, ErrBufferTooSmall
	}
	b[0], b[1], b[2], b[3] = NDPOptMTU, 1, 0, 0
	binary.BigEndian.PutUint32(b[4:8], mtu)
	return 8, nil
}

// NDPPrefixInfoRepr is a Prefix Information option.
type NDPPrefixInfoRepr struct {
	Prefix            netip.Prefix // IPv6
	OnLink            bool
	Autonomous        bool
	ValidLifetime     uint32
	PreferredLifetime uint32
}

// Emit writes the 32-byte option to the start of b and returns its length.
// The prefix is written as held, not masked.
func (r *NDPPrefixInfoRepr) Emit(b []byte) (int, error) {
	if len(b) < 32 {
		return 0, ErrBufferTooSmall
	}
	if !r.Prefix.Addr().Is6() {
		return 0, ErrAddress
	}
	clear(b[:32])
	b[0], b[1], b[2] = NDPOptPrefixInfo, 4, uint8(r.Prefix.Bits())
	if r.OnLink {
		b[3] |= 0x80
	}
	if r.Autonomous {
		b[3] |= 0x40
	}
	binary.BigEndian.PutUint32(b[4:8], r.ValidLifetime)
	binary.BigEndian.PutUint32(b[8:12], r.PreferredLifetime)
	a := r.Prefix.Addr().As16()
	copy(b[16:32], a[:])
	return 32, nil
}

package wire

import (
	"encoding/binary"
	"net/netip"
)

// ARPLen is the length of an ARP packet for Ethernet and IPv4 (RFC 826).
const ARPLen = 28

// ARP hardware and protocol spaces wire handles.
const (
	ARPHardwareEthernet = 1      // ar$hrd for Ethernet (10Mb)
	ARPProtocolIPv4     = 0x0800 // ar$pro: the EtherType of IPv4
)

// ARP operation codes (ar$op).
const (
	ARPRequest = 1
	ARPReply   = 2
)

// ARP is a view of an ARP packet mapping IPv4 to Ethernet addresses. Validate
// it with CheckARP.
type ARP []byte

// CheckARP validates that b is an Ethernet/IPv4 ARP packet. Other hardware or
// protocol spaces give ErrUnsupported.
func CheckARP(b []byte) error {
	if len(b) < 8 {
		return ErrTruncated
	}
	a := ARP(b)
	if a.HardwareType() != ARPHardwareEthernet || a.ProtocolType() != ARPProtocolIPv4 ||
		a.HardwareLen() != 6 || a.ProtocolLen() != 4 {
		return ErrUnsupported
	}
	if len(b) < ARPLen {
		return ErrTruncated
	}
	return nil
}

// HardwareType is ar$hrd.
func (a ARP) HardwareType() uint16 { return binary.BigEndian.Uint16(a[0:2]) }

// ProtocolType is ar$pro.
func (a ARP) ProtocolType() uint16 { return binary.BigEndian.Uint16(a[2:4]) }

// HardwareLen is ar$hln.
func (a ARP) HardwareLen() uint8 { return a[4] }

// ProtocolLen is ar$pln.
func (a ARP) ProtocolLen() uint8 { return a[5] }

// Operation is ar$op: ARPRequest or ARPReply.
func (a ARP) Operation() uint16 { return binary.BigEndian.Uint16(a[6:8]) }

// SenderHardwareAddr is ar$sha.
func (a ARP) SenderHardwareAddr() MAC { return MAC(a[8:14]) }

// SenderProtocolAddr is ar$spa.
func (a ARP) SenderProtocolAddr() netip.Addr { return netip.AddrFrom4([4]byte(a[14:18])) }

// TargetHardwareAddr is ar$tha.
func (a ARP) TargetHardwareAddr() MAC { return MAC(a[18:24]) }

// TargetProtocolAddr is ar$tpa.
func (a ARP) TargetProtocolAddr() netip.Addr { return netip.AddrFrom4([4]byte(a[24:28])) }

// ARPRepr is a parsed Ethernet/IPv4 ARP packet.
type ARPRepr struct {
	Operation uint16
	SHA       MAC
	SPA       netip.Addr
	THA       MAC
	TPA       netip.Addr
}

// Parse validates b and fills r from it.
func (r *ARPRepr) Parse(b []byte) error {
	if err := CheckARP(b); err != nil {
		return err
	}
	a := ARP(b)
	*r = ARPRepr{
		Operation: a.Operation(),
		SHA:       a.SenderHardwareAddr(),
		SPA:       a.SenderProtocolAddr(),
		THA:       a.TargetHardwareAddr(),
		TPA:       a.TargetProtocolAddr(),
	}
	return nil
}

// HeaderLen is the number of bytes Emit writes.
func (r *ARPRepr) HeaderLen() int { return ARPLen }

// Emit writes the packet to the start of b.
func (r *ARPRepr) Emit(b []byte) error {
	return EmitARP(b, r.Operation, r.SHA, r.SPA, r.THA, r.TPA)
}

// EmitARP writes an Ethernet/IPv4 ARP packet of ARPLen bytes to the start of
// b. spa and tpa must be IPv4 addresses.
func EmitARP(b []byte, op uint16, sha MAC, spa netip.Addr, tha MAC, tpa netip.Addr) error {
	if len(b) < ARPLen {
		return ErrBufferTooSmall
	}
	if !spa.Is4() || !tpa.Is4() {
		return ErrAddress
	}
	binary.BigEndian.PutUint16(b[0:2], ARPHardwareEthernet)
	binary.BigEndian.PutUint16(b[2:4], ARPProtocolIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:8], op)
	s4, t4 := spa.As4(), tpa.As4()
	copy(b[8:14], sha[:])
	copy(b[14:18], s4[:])
	copy(b[18:24], tha[:])
	copy(b[24:28], t4[:])
	return nil
}

package endpoint

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// putPktInfo writes the IP_PKTINFO (IPv4) or IPV6_PKTINFO (IPv6) control message of a
// datagram received for dst on netif ifIndex into oob, in the kernel's layout, and returns
// its length: -1 when oob is too short (the caller reports MSG_CTRUNC).
func putPktInfo(oob []byte, dst netip.Addr, ifIndex int) int {
	var m []byte
	dst = dst.Unmap() // an IPv4 datagram on a dual-stack socket gets IP_PKTINFO, as on Linux
	if dst.Is4() {
		info := unix.Inet4Pktinfo{Ifindex: int32(ifIndex), Spec_dst: dst.As4(), Addr: dst.As4()}
		m = unix.PktInfo4(&info)
	} else {
		info := unix.Inet6Pktinfo{Addr: dst.As16(), Ifindex: uint32(ifIndex)}
		m = unix.PktInfo6(&info)
	}
	if len(oob) < len(m) {
		return -1
	}
	return copy(oob, m)
}

// parsePktInfo reads the source address and netif a sender chose with IP_PKTINFO or
// IPV6_PKTINFO (other control messages are ignored, as Linux ignores unknown ones on UDP).
// An empty oob gives neither.
func parsePktInfo(oob []byte) (src netip.Addr, ifIndex int, err error) {
	if len(oob) == 0 {
		return netip.Addr{}, 0, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}, 0, errInval
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO:
			if len(m.Data) < unix.SizeofInet4Pktinfo {
				return netip.Addr{}, 0, errInval
			}
			// struct in_pktinfo { int ipi_ifindex; struct in_addr ipi_spec_dst, ipi_addr; }:
			// on send, ipi_spec_dst is the source address (ip(7)).
			ifIndex = int(int32(ne.Uint32(m.Data[0:4])))
			src = netip.AddrFrom4([4]byte(m.Data[4:8]))
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO:
			if len(m.Data) < unix.SizeofInet6Pktinfo {
				return netip.Addr{}, 0, errInval
			}
			// struct in6_pktinfo { struct in6_addr ipi6_addr; int ipi6_ifindex; } (ipv6(7)).
			src = netip.AddrFrom16([16]byte(m.Data[0:16]))
			ifIndex = int(ne.Uint32(m.Data[16:20]))
		}
	}
	if src.IsUnspecified() {
		src = netip.Addr{}
	}
	return src, ifIndex, nil
}

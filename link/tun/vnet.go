package tun

import (
	"errors"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// peekLen is how many bytes of a frame the virtio-net checks look at: a TAP's Ethernet
// header, the longest IPv4 header and the TCP data offset byte fit.
const peekLen = wire.EthernetHeaderLen + wire.IPv4MaxHeaderLen + wire.TCPMinHeaderLen

// gsoMax is the largest GSO packet the device takes from the stack (link.Offloads.GSOMax).
const gsoMax = 65535

// rxMax is the largest packet a read of a device with offloads takes: the kernel's
// GSO_MAX_SIZE (an IPv6 GSO packet may be one byte longer than an IPv4 total length).
const rxMax = 65536

var errTxHdr = errors.New("tun: no virtio-net header describes this frame")

// frameTransport is transport for a frame of n bytes whose first bytes are b, after lh
// bytes of link header: 0 on a TUN, an Ethernet header on a TAP, whose EtherType must
// then say the IP version the packet has (no VLAN tags). off counts from the frame's start.
func frameTransport(b []byte, n, lh int) (ver, off int, proto uint8, ok bool) {
	if lh == 0 {
		return transport(b, n)
	}
	if len(b) <= lh || n <= lh {
		return 0, 0, 0, false
	}
	ver, off, proto, ok = transport(b[lh:], n-lh)
	if et := wire.Ethernet(b).EtherType(); ok && !(ver == 4 && et == wire.EtherTypeIPv4 || ver == 6 && et == wire.EtherTypeIPv6) {
		return 0, 0, 0, false
	}
	return ver, off + lh, proto, ok
}

// transport locates the transport header of the IP packet of n bytes whose first bytes
// are b (wire.IPTransport): the IP version, the header's offset and protocol. ok is false
// for anything but an unfragmented IPv4 or IPv6 packet whose length field covers exactly n
// bytes with at least the fixed part of a TCP or UDP header in it.
func transport(b []byte, n int) (ver, off int, proto uint8, ok bool) {
	off, proto, end, ok := wire.IPTransport(b)
	if !ok || end != n {
		return 0, 0, 0, false
	}
	ver = int(b[0] >> 4)
	switch proto {
	case wire.ProtoTCP:
		ok = off+wire.TCPMinHeaderLen <= n
	case wire.ProtoUDP:
		ok = off+wire.UDPHeaderLen <= n
	default:
		ok = false
	}
	return ver, off, proto, ok
}

// rxMeta turns the virtio-net header h of a frame of n bytes whose first bytes are b
// (at least min(n, peekLen) of them), lh bytes of link header and then an IP packet, into
// the frame's marks (the header's offsets count from the frame's start). ok is false when the header
// is malformed or does not describe the packet: the frame is dropped.
//
// A GSO packet must be one TCP segment of the family its type says, or with uso (the
// device took USO) a UDP payload to cut into datagrams, with the checksum (when partial)
// at its transport header; it gets the GSO mark and FlagChecksumOK (and
// FlagChecksumPartial with NEEDS_CSUM). A plain packet with NEEDS_CSUM at its TCP or UDP
// checksum gets FlagChecksumOK|FlagChecksumPartial; with NEEDS_CSUM anywhere else (a
// tunnel's inner header) it gets no mark, so the stack verifies what it can. DATA_VALID
// gets FlagChecksumOK.
func rxMeta(h, b []byte, n, lh int, uso bool) (flags pbuf.Flags, gso pbuf.GSOType, size int, ok bool) {
	var r wire.VirtioNetHdrRepr
	if r.Parse(h, n) != nil {
		return 0, pbuf.GSONone, 0, false
	}
	if r.Flags == 0 {
		return 0, pbuf.GSONone, 0, true // Parse refuses a GSO packet without a flag
	}
	ver, off, proto, tok := frameTransport(b, n, lh)
	partial := r.Flags&wire.VirtioNetNeedsCsum != 0
	atL4 := tok && int(r.CsumStart) == off &&
		((proto == wire.ProtoTCP || proto == wire.ProtoUDP) && int(r.CsumOffset) == wire.ChecksumOffset(proto))
	if r.GSOType != wire.VirtioNetGSONone {
		switch {
		case !tok:
			return 0, pbuf.GSONone, 0, false
		case r.GSOType == wire.VirtioNetGSOTCPv4 && ver == 4 && proto == wire.ProtoTCP:
			gso = pbuf.GSOTCPv4
		case r.GSOType == wire.VirtioNetGSOTCPv6 && ver == 6 && proto == wire.ProtoTCP:
			gso = pbuf.GSOTCPv6
		case r.GSOType == wire.VirtioNetGSOUDPL4 && uso && proto == wire.ProtoUDP:
			gso = pbuf.GSOUDPL4 // either family: the IP header says which
		default: // the other family or protocol, or USO the device did not ask for
			return 0, pbuf.GSONone, 0, false
		}
		if partial && !atL4 {
			return 0, pbuf.GSONone, 0, false
		}
		size = int(r.GSOSize)
	}
	switch {
	case partial && atL4:
		flags = pbuf.FlagChecksumOK | pbuf.FlagChecksumPartial
	case partial:
		flags = 0
	default: // DATA_VALID
		flags = pbuf.FlagChecksumOK
	}
	return flags, gso, size, true
}

// txHdr fills r for a frame of n bytes whose first bytes are b (at least min(n, peekLen)),
// lh bytes of link header and then an IP packet (the header's offsets count from the
// frame's start), with GSO request gso/size, and a checksum left partial when partial is set: a GSO packet
// gets its type, segment size, header length and NEEDS_CSUM at its TCP checksum (and the ECN
// bit when CWR is set: only the first segment keeps it); a partial checksum of a plain packet
// gets NEEDS_CSUM at its TCP or UDP checksum; a UDP GSO packet (USO) gets its type, size
// and header length. It fails for anything else (a packet that is not TCP or UDP right
// after its IP header).
func txHdr(r *wire.VirtioNetHdrRepr, b []byte, n, lh int, gso pbuf.GSOType, size int, partial bool) error {
	*r = wire.VirtioNetHdrRepr{}
	if gso == pbuf.GSONone && !partial {
		return nil
	}
	ver, off, proto, ok := frameTransport(b, n, lh)
	if !ok {
		return errTxHdr
	}
	r.Flags = wire.VirtioNetNeedsCsum
	r.CsumStart = uint16(off)
	r.CsumOffset = uint16(wire.ChecksumOffset(proto))
	r.HdrLen = r.CsumStart + r.CsumOffset + 2
	if gso == pbuf.GSONone {
		return nil
	}
	if gso == pbuf.GSOUDPL4 {
		// USO: the kernel cuts the payload into datagrams of size bytes (a device without
		// USO is never given one: it does not offer it).
		if proto != wire.ProtoUDP || size <= 0 {
			return errTxHdr
		}
		r.GSOType = wire.VirtioNetGSOUDPL4
		r.HdrLen = uint16(off + wire.UDPHeaderLen)
		r.GSOSize = uint16(min(size, 0xffff))
		return nil
	}
	switch {
	case proto != wire.ProtoTCP || size <= 0 || len(b) < off+wire.TCPMinHeaderLen:
		return errTxHdr
	case gso == pbuf.GSOTCPv4 && ver == 4:
		r.GSOType = wire.VirtioNetGSOTCPv4
	case gso == pbuf.GSOTCPv6 && ver == 6:
		r.GSOType = wire.VirtioNetGSOTCPv6
	default:
		return errTxHdr
	}
	tcp := wire.TCP(b[off:])
	hl := tcp.HeaderLen()
	if hl < wire.TCPMinHeaderLen || off+hl > n {
		return errTxHdr
	}
	r.HdrLen = uint16(off + hl)
	r.GSOSize = uint16(min(size, 0xffff))
	r.ECN = tcp.Flags().Has(wire.TCPFlagCWR)
	return nil
}

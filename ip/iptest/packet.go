package iptest

import (
	"net/netip"

	"github.com/wispstack/wisp/wire"
)

// Packet is an IP packet (IPv4 when src is, else IPv6; TTL or hop limit 64) from src to dst
// carrying payload as is under protocol proto: what a test injects below a transport.
func Packet(proto uint8, src, dst netip.Addr, payload []byte) []byte {
	if src.Is4() {
		b := make([]byte, wire.IPv4MinHeaderLen+len(payload))
		r := wire.IPv4Repr{TTL: 64, Protocol: proto, Src: src, Dst: dst, PayloadLen: len(payload)}
		if err := r.Emit(b); err != nil {
			panic(err)
		}
		copy(b[wire.IPv4MinHeaderLen:], payload)
		return b
	}
	b := make([]byte, wire.IPv6HeaderLen+len(payload))
	r := wire.IPv6Repr{NextHeader: proto, HopLimit: 64, Src: src, Dst: dst, PayloadLen: len(payload)}
	if err := r.Emit(b); err != nil {
		panic(err)
	}
	copy(b[wire.IPv6HeaderLen:], payload)
	return b
}

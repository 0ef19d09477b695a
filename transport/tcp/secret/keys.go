package secret

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Keys holds the secret keys of one stack: one SipHash key per use, so that no output of
// one use (an ISN on the wire, a chosen port) tells anything about another. A Keys value
// is read-only after NewKeys; share it by pointer or copy it.
type Keys struct {
	isn          sipKey // RFC 6528 F()
	port         sipKey // RFC 6056 Algorithm 3 F()
	cookieMAC    sipKey // RFC 4987 §3.6 keyed hash of the tuple, peer ISN, time and MSS
	cookieOffset sipKey // per-tuple offset that keeps cookie ISNs unpredictable
	tsOffset     sipKey // per-tuple timestamp clock offset
}

// NewKeys derives the keys from seed. The keys are exactly as secret as seed: a stack
// must seed it from crypto/rand in production (a fixed seed is for reproducible tests).
func NewKeys(seed uint64) Keys {
	// A fixed SipHash key ("wisp secret v1 \x00") turns the seed into four independent keys.
	var dk [16]byte
	copy(dk[:], "wisp secret v1 \x00")
	derive := sipKeyFrom(dk)
	key := func(label byte) sipKey {
		var m [10]byte
		m[0] = label
		binary.LittleEndian.PutUint64(m[2:], seed)
		k0 := derive.sum64(m[:])
		m[1] = 1
		return sipKey{k0, derive.sum64(m[:])}
	}
	return Keys{isn: key('i'), port: key('p'), cookieMAC: key('c'), cookieOffset: key('o'), tsOffset: key('t')}
}

// ISN per RFC 6528: M + F(localip, localport, remoteip, remoteport, secretkey), M a 250 kHz
// (4 µs) clock derived from now (time since the Unix epoch).
//
// RFC 6528 §3: "M is the 4 microsecond timer", so a new connection of the same tuple
// starts above where the previous one did (as RFC 9293 §3.4.1 wants), while F makes the
// start of each tuple's sequence space unguessable from other tuples.
func (k *Keys) ISN(local, remote netip.AddrPort, now time.Time) uint32 {
	var m msg
	m.addrPort(local)
	m.addrPort(remote)
	return isnClock(now) + uint32(k.isn.sum64(m.bytes()))
}

// isnClock is M: the count of 4 µs ticks since the Unix epoch, modulo 2^32 (it wraps
// every 4.77 hours, as RFC 9293's ISN clock does).
func isnClock(now time.Time) uint32 {
	return uint32(now.Unix()*250000 + int64(now.Nanosecond()/4000))
}

// PortOffset is RFC 6056 Algorithm 3's F(local_IP, remote_IP, remote_port, secret).
//
// The caller tries ports min + (offset + next_ephemeral) % num_ephemeral; the offset is
// fixed per destination, so connections to one destination walk the port range in order
// (no early reuse) while the starting point differs per destination.
func (k *Keys) PortOffset(local netip.Addr, remote netip.AddrPort) uint32 {
	var m msg
	m.addr(local)
	m.addrPort(remote)
	return uint32(k.port.sum64(m.bytes()))
}

// TSOffset is a per-connection offset for the RFC 7323 timestamp clock (TSval = clock +
// offset), so that a TSval reveals neither the host's clock nor links its connections.
// It depends only on the 4-tuple, so a connection rebuilt from a SYN cookie computes the
// same offset as the SYN-ACK that carried TSCookie.
func (k *Keys) TSOffset(local, remote netip.AddrPort) uint32 {
	var m msg
	m.addrPort(local)
	m.addrPort(remote)
	return uint32(k.tsOffset.sum64(m.bytes()))
}

// msg builds a hash input on the stack: addresses in their 16-byte form (IPv4 as
// IPv4-mapped IPv6, zones ignored), integers big-endian.
type msg struct {
	b [48]byte
	n int
}

func (m *msg) addr(a netip.Addr) {
	b := a.As16()
	m.n += copy(m.b[m.n:], b[:])
}

func (m *msg) addrPort(ap netip.AddrPort) {
	m.addr(ap.Addr())
	m.u16(ap.Port())
}

func (m *msg) u16(v uint16) {
	binary.BigEndian.PutUint16(m.b[m.n:], v)
	m.n += 2
}

func (m *msg) u32(v uint32) {
	binary.BigEndian.PutUint32(m.b[m.n:], v)
	m.n += 4
}

func (m *msg) u8(v uint8) {
	m.b[m.n] = v
	m.n++
}

func (m *msg) bytes() []byte { return m.b[:m.n] }

package secret

import (
	"net/netip"
	"time"
)

// MSSTable lists the MSS values a SYN cookie can encode, sorted ascending: the IPv4
// minimum (536), the IPv6 minimum (1280-60), WireGuard tunnels over IPv6 and IPv4
// (1420-60, 1420-40), Ethernet IPv6 and IPv4 (1500-60, 1500-40), FDDI-sized and 9000-byte
// jumbo frames. A cookie carries the largest entry <= the peer's MSS.
var MSSTable = [...]uint16{536, 1220, 1360, 1380, 1440, 1460, 4312, 8960}

// Cookie layout, before the per-tuple offset is added (RFC 4987 §3.6 describes the same
// fields: "the top 5 bits are t mod 32 ... the next 3 bits encode an MSS ... the bottom 24
// bits are a server-selected secret function"):
//
//	31      27 26  24 23                      0
//	| t mod 32 | mss  | MAC(tuple, peer ISN, t, mss) |
const (
	cookieMSSShift  = 24
	cookieTimeShift = 27
	cookieMACMask   = 1<<cookieMSSShift - 1
	cookieTimeMask  = 1<<(32-cookieTimeShift) - 1
)

// CookiePeriod is the step of the cookie time counter; CheckCookie accepts cookies up to
// CookieMaxAge counter steps old (so 128 to 192 seconds).
const (
	CookiePeriod = 64 * time.Second
	CookieMaxAge = 2
)

// SYN cookies (RFC 4987 §3.6): the ISN of our SYN-ACK encodes a coarse time (64 s
// counter), the index of the MSS in MSSTable and a keyed hash of the 4-tuple, the peer's
// ISN and the time counter.
//
// The encoded MSS is the largest MSSTable entry <= mss (MSSTable[0] when mss is smaller:
// the caller that must honour a tiny MSS should not answer with a cookie). A keyed offset
// of the tuple and peer ISN is added, so the cookie is as unpredictable an ISN as
// RFC 6528 asks and shows neither the time nor the MSS.
func (k *Keys) Cookie(local, remote netip.AddrPort, peerISN uint32, mss int, now time.Time) uint32 {
	t := cookieClock(now)
	idx := mssIndex(mss)
	v := t<<cookieTimeShift | uint32(idx)<<cookieMSSShift | k.cookieHash(local, remote, peerISN, t, idx)
	return v + k.offset(local, remote, peerISN)
}

// CheckCookie validates cookie (the ACK number of the final ACK minus 1) and returns the
// MSS it encodes (the largest table entry ≤ the peer's MSS was encoded); cookies from
// more than 2 time counter steps ago fail.
//
// peerISN is the peer's ISN, the final ACK's sequence number minus 1. A cookie from the
// future (the clock went back) fails too. A random forgery passes with probability about
// 3/32 * 2^-24.
func (k *Keys) CheckCookie(local, remote netip.AddrPort, peerISN, cookie uint32, now time.Time) (mss int, ok bool) {
	v := cookie - k.offset(local, remote, peerISN)
	now32 := cookieClock(now)
	age := (now32 - v>>cookieTimeShift) & cookieTimeMask
	if age > CookieMaxAge {
		return 0, false
	}
	t := now32 - age
	idx := int(v >> cookieMSSShift & uint32(len(MSSTable)-1))
	if v&cookieMACMask != k.cookieHash(local, remote, peerISN, t, idx) {
		return 0, false
	}
	return int(MSSTable[idx]), true
}

// cookieHash is the 24-bit MAC; it covers the full time counter (not only the 5 bits on
// the wire), so a cookie does not come back to life when the counter wraps, and the MSS
// index, so a peer cannot pick a larger MSS.
func (k *Keys) cookieHash(local, remote netip.AddrPort, peerISN, t uint32, idx int) uint32 {
	var m msg
	m.addrPort(local)
	m.addrPort(remote)
	m.u32(peerISN)
	m.u32(t)
	m.u8(uint8(idx))
	return uint32(k.cookieMAC.sum64(m.bytes())) & cookieMACMask
}

func (k *Keys) offset(local, remote netip.AddrPort, peerISN uint32) uint32 {
	var m msg
	m.addrPort(local)
	m.addrPort(remote)
	m.u32(peerISN)
	return uint32(k.cookieOffset.sum64(m.bytes()))
}

// cookieClock counts CookiePeriod steps since the Unix epoch (floor, also before 1970).
func cookieClock(now time.Time) uint32 {
	return uint32(now.Unix() >> 6)
}

// mssIndex is the index of the largest MSSTable entry <= mss, or 0.
func mssIndex(mss int) int {
	for i := len(MSSTable) - 1; i > 0; i-- {
		if mss >= int(MSSTable[i]) {
			return i
		}
	}
	return 0
}

// NoWScale is the window scale TSCookie encodes for a SYN without a Window Scale option.
const NoWScale = 15

// tsCookieBits is how many low bits of a TSval carry the options: 4 for the window
// scale, 1 for SACK-permitted.
const (
	tsCookieBits = 5
	tsCookieMask = 1<<tsCookieBits - 1
	tsSACKBit    = 1 << 4
	tsWScaleMask = 0xf
)

// TSCookie packs window scale (4 bits, 15 = none) and SACK-permitted into the low 5 bits
// of a TSval when the SYN carried timestamps, so the options survive a cookie handshake
// (the peer echoes it as TSecr).
//
// wscale is the peer's shift count (0..14) or NoWScale; a larger count is encoded as 14
// (RFC 7323 §2.3: "use 14 instead"). The result is never above tsval (modulo 2^32, less
// than 64 below it), so the connection's later TSvals never go backwards, and never 0, so
// that TSCookieDecode can tell an echoed cookie from a missing TSecr.
func TSCookie(tsval uint32, wscale uint8, sackOK bool) uint32 {
	if wscale > 14 && wscale != NoWScale {
		wscale = 14
	}
	opts := uint32(wscale)
	if sackOK {
		opts |= tsSACKBit
	}
	r := tsval&^tsCookieMask | opts
	if int32(r-tsval) > 0 || r == 0 {
		r -= 1 << tsCookieBits
	}
	return r
}

// TSCookieDecode reads the options TSCookie packed, from the TSecr of the final ACK of a
// cookie handshake. wscale is NoWScale when the SYN had no Window Scale option. ok is
// false for a zero TSecr, which TSCookie never produces (the peer did not echo our
// timestamp). Every other value decodes: the options are only trusted after CheckCookie
// accepted the ACK.
func TSCookieDecode(tsecr uint32) (wscale uint8, sackOK, ok bool) {
	if tsecr == 0 {
		return 0, false, false
	}
	return uint8(tsecr & tsWScaleMask), tsecr&tsSACKBit != 0, true
}

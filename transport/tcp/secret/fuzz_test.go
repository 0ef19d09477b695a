package secret

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzCheckCookie: CheckCookie never panics, and whatever it accepts is a cookie Cookie
// would have made for that tuple and peer ISN within the last CookieMaxAge steps, with an
// MSS from the table. A garbage value is accepted only by matching the MAC.
func FuzzCheckCookie(f *testing.F) {
	k := NewKeys(77)
	f.Add([]byte{192, 0, 2, 1}, uint16(80), []byte{198, 51, 100, 7}, uint16(40000), uint32(1), uint32(2), int64(1_700_000_000))
	f.Add(make([]byte, 16), uint16(0), make([]byte, 16), uint16(0), uint32(0), uint32(0), int64(0))
	f.Add([]byte{}, uint16(1), []byte{1}, uint16(2), uint32(0xffffffff), uint32(0xffffffff), int64(-1<<62))
	l, r := v6l, v6r
	c := k.Cookie(l, r, 9, 1460, t0)
	la, ra := l.Addr().As16(), r.Addr().As16()
	f.Add(la[:], l.Port(), ra[:], r.Port(), uint32(9), c, t0.Unix())
	f.Fuzz(func(t *testing.T, lb []byte, lp uint16, rb []byte, rp uint16, isn, cookie uint32, sec int64) {
		local := netip.AddrPortFrom(addrOf(lb), lp)
		remote := netip.AddrPortFrom(addrOf(rb), rp)
		now := time.Unix(sec, 0)
		mss, ok := k.CheckCookie(local, remote, isn, cookie, now)
		if !ok {
			return
		}
		for age := range CookieMaxAge + 1 {
			if k.Cookie(local, remote, isn, mss, now.Add(-time.Duration(age)*CookiePeriod)) == cookie {
				return
			}
		}
		t.Fatalf("accepted cookie %#x (mss %d) that Cookie never makes", cookie, mss)
	})
}

func addrOf(b []byte) netip.Addr {
	switch {
	case len(b) >= 16:
		return netip.AddrFrom16([16]byte(b[:16]))
	case len(b) >= 4:
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.Addr{}
}

// FuzzTSCookieDecode: never panics; what decodes is exactly what TSCookie encodes for
// those options at that TSval, and the window scale fits in 4 bits.
func FuzzTSCookieDecode(f *testing.F) {
	for _, v := range []uint32{0, 1, 15, 16, 31, 32, 0xffffffff, 0x80000000} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, tsecr uint32) {
		ws, sack, ok := TSCookieDecode(tsecr)
		if !ok {
			if tsecr != 0 {
				t.Fatalf("TSecr %#x rejected", tsecr)
			}
			return
		}
		if ws > NoWScale {
			t.Fatalf("wscale %d", ws)
		}
		if got := TSCookie(tsecr, ws, sack); got != tsecr {
			t.Fatalf("TSecr %#x decodes to (%d, %v) which encodes to %#x", tsecr, ws, sack, got)
		}
	})
}

package secret

import (
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func randAddr(r *rand.Rand) netip.Addr {
	if r.IntN(2) == 0 {
		var b [4]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return netip.AddrFrom16(b)
}

func randTuple(r *rand.Rand) (local, remote netip.AddrPort) {
	l := randAddr(r)
	rem := randAddr(r)
	if l.Is4() != rem.Is4() { // a connection has one family
		if l.Is4() {
			rem = netip.AddrFrom4([4]byte{10, byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		} else {
			rem = netip.AddrFrom16(rem.As16())
			rem = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(r.Uint32())})
		}
	}
	return netip.AddrPortFrom(l, uint16(r.Uint32())), netip.AddrPortFrom(rem, uint16(r.Uint32()))
}

var (
	v4l = netip.MustParseAddrPort("192.0.2.1:80")
	v4r = netip.MustParseAddrPort("198.51.100.7:40000")
	v6l = netip.MustParseAddrPort("[2001:db8::1]:443")
	v6r = netip.MustParseAddrPort("[2001:db8:ffff::42]:51515")
)

func TestNewKeysDeterministicAndDistinct(t *testing.T) {
	a, b, c := NewKeys(1), NewKeys(1), NewKeys(2)
	if a != b {
		t.Fatal("NewKeys is not deterministic")
	}
	if a == c {
		t.Fatal("seeds 1 and 2 give the same keys")
	}
	ks := []sipKey{a.isn, a.port, a.cookieMAC, a.cookieOffset, a.tsOffset, c.isn, c.port, c.cookieMAC, c.cookieOffset, c.tsOffset}
	for i := range ks {
		for j := range i {
			if ks[i] == ks[j] {
				t.Fatalf("keys %d and %d are equal", i, j)
			}
		}
	}
	if z := NewKeys(0); z.isn == (sipKey{}) {
		t.Fatal("seed 0 gives a zero key")
	}
}

func TestMSSTable(t *testing.T) {
	if len(MSSTable) != 8 {
		t.Fatalf("%d entries: the cookie has 3 bits", len(MSSTable))
	}
	for i := 1; i < len(MSSTable); i++ {
		if MSSTable[i] <= MSSTable[i-1] {
			t.Fatalf("not sorted: %v", MSSTable)
		}
	}
	for _, want := range []uint16{536, 1220, 1440, 1460, 8960} {
		found := false
		for _, v := range MSSTable {
			found = found || v == want
		}
		if !found {
			t.Fatalf("%d missing from %v", want, MSSTable)
		}
	}
}

// RFC 4987 §3.6: the final ACK of a cookie handshake gives back the MSS, for every table
// entry, IPv4 and IPv6, at any point of the validity window.
func TestCookieRoundTrip(t *testing.T) {
	k := NewKeys(99)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		local, remote := randTuple(r)
		if i == 0 {
			local, remote = v4l, v4r
		} else if i == 1 {
			local, remote = v6l, v6r
		}
		isn := r.Uint32()
		now := t0.Add(time.Duration(r.Int64N(int64(100 * 365 * 24 * time.Hour))))
		for idx, m := range MSSTable {
			mss := int(m)
			// Anything from this entry up to just below the next encodes this entry.
			if idx+1 < len(MSSTable) && r.IntN(2) == 0 {
				mss += r.IntN(int(MSSTable[idx+1]) - int(m))
			}
			c := k.Cookie(local, remote, isn, mss, now)
			// Accepted from the same instant to 2 full counter steps later.
			for _, later := range []time.Duration{0, time.Second, CookiePeriod, 2 * CookiePeriod} {
				got, ok := k.CheckCookie(local, remote, isn, c, now.Add(later))
				if !ok || got != int(m) {
					t.Fatalf("mss %d (entry %d) %v later: CheckCookie = %d, %v", mss, m, later, got, ok)
				}
			}
		}
	}
	// Below the smallest entry: the smallest entry; above the largest: the largest.
	for _, tc := range []struct{ mss, want int }{{0, 536}, {-1, 536}, {100, 536}, {535, 536}, {1219, 536}, {1459, 1440}, {9000, 8960}, {65535, 8960}, {1 << 40, 8960}} {
		c := k.Cookie(v4l, v4r, 7, tc.mss, t0)
		if got, ok := k.CheckCookie(v4l, v4r, 7, c, t0); !ok || got != tc.want {
			t.Errorf("mss %d: CheckCookie = %d, %v, want %d", tc.mss, got, ok, tc.want)
		}
	}
}

// The counter steps: a cookie made at counter T is good at T, T+1 and T+2 and not at
// T+3, T-1 (the clock went back) or T+32 (the 5 bits wrapped).
func TestCookieAge(t *testing.T) {
	k := NewKeys(5)
	base := time.Unix(1_700_000_000/64*64, 0) // the start of a counter step
	for _, made := range []time.Duration{0, 30 * time.Second, 63 * time.Second} {
		c := k.Cookie(v6l, v6r, 1234, 1440, base.Add(made))
		for _, tc := range []struct {
			steps int
			ok    bool
		}{{0, true}, {1, true}, {2, true}, {3, false}, {4, false}, {-1, false}, {31, false}, {32, false}, {33, false}, {34, false}, {1 << 20, false}} {
			for _, in := range []time.Duration{0, 63 * time.Second} {
				at := base.Add(time.Duration(tc.steps)*CookiePeriod + in)
				_, ok := k.CheckCookie(v6l, v6r, 1234, c, at)
				if ok != tc.ok {
					t.Errorf("made +%v, checked %d steps later (+%v): ok = %v, want %v", made, tc.steps, in, ok, tc.ok)
				}
			}
		}
	}
	// Before 1970 the counter still steps correctly.
	old := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	c := k.Cookie(v4l, v4r, 1, 1460, old)
	if m, ok := k.CheckCookie(v4l, v4r, 1, c, old.Add(CookiePeriod)); !ok || m != 1460 {
		t.Errorf("1960: %d, %v", m, ok)
	}
}

// Any change of the tuple, the peer's ISN or the keys fails the cookie.
func TestCookieWrongInputs(t *testing.T) {
	k := NewKeys(11)
	other := NewKeys(12)
	r := rand.New(rand.NewPCG(5, 6))
	for range 500 {
		local, remote := randTuple(r)
		isn := r.Uint32()
		c := k.Cookie(local, remote, isn, 1460, t0)
		flip := func(ap netip.AddrPort) netip.AddrPort {
			return netip.AddrPortFrom(ap.Addr(), ap.Port()^uint16(1+r.IntN(0xffff)))
		}
		bump := func(ap netip.AddrPort) netip.AddrPort {
			b := ap.Addr().As16()
			b[15-r.IntN(4)] ^= byte(1 + r.IntN(255))
			a := netip.AddrFrom16(b)
			if ap.Addr().Is4() {
				a = a.Unmap()
			}
			return netip.AddrPortFrom(a, ap.Port())
		}
		for _, tc := range []struct {
			name          string
			local, remote netip.AddrPort
			isn           uint32
			keys          *Keys
		}{
			{"local port", flip(local), remote, isn, &k},
			{"remote port", local, flip(remote), isn, &k},
			{"local addr", bump(local), remote, isn, &k},
			{"remote addr", local, bump(remote), isn, &k},
			{"swapped", remote, local, isn, &k},
			{"peer ISN", local, remote, isn + 1, &k},
			{"peer ISN far", local, remote, isn ^ 0x80000000, &k},
			{"other keys", local, remote, isn, &other},
		} {
			if tc.local == tc.remote {
				continue
			}
			if m, ok := tc.keys.CheckCookie(tc.local, tc.remote, tc.isn, c, t0); ok {
				t.Fatalf("%s: accepted (mss %d)", tc.name, m)
			}
		}
		// Every single-bit change of the cookie fails.
		for b := range 32 {
			if _, ok := k.CheckCookie(local, remote, isn, c^1<<b, t0); ok {
				t.Fatalf("cookie with bit %d flipped accepted", b)
			}
		}
	}
}

// Forged cookies: a blind guess passes about 3/32 * 2^-24 of the time; one that somehow
// got the time and MSS fields right still needs the 24-bit MAC.
func TestCookieForgeryRate(t *testing.T) {
	k := NewKeys(21)
	r := rand.New(rand.NewPCG(7, 8))
	n := 1 << 21
	if testing.Short() {
		n = 1 << 18
	}
	blind := 0
	for range n {
		if _, ok := k.CheckCookie(v4l, v4r, 99, r.Uint32(), t0); ok {
			blind++
		}
	}
	// Expected 2M * 3/32 * 2^-24 = 0.01: more than 2 means a broken check.
	if blind > 2 {
		t.Fatalf("%d of %d random cookies accepted", blind, n)
	}
	// Right time and MSS index, random MAC: expected n * 2^-24 = 0.125 for 2M.
	off := k.offset(v4l, v4r, 99)
	top := cookieClock(t0)<<cookieTimeShift | 5<<cookieMSSShift
	mac := 0
	for range n {
		v := top | r.Uint32()&cookieMACMask
		if _, ok := k.CheckCookie(v4l, v4r, 99, v+off, t0); ok {
			mac++
		}
	}
	if mac > 3 {
		t.Fatalf("%d of %d cookies with a random MAC accepted (2^-24 expected)", mac, n)
	}
}

// RFC 6528: for one tuple the ISN advances with the 4 µs clock; across tuples the ISNs
// have nothing in common.
func TestISN(t *testing.T) {
	k := NewKeys(31)
	for _, tu := range [][2]netip.AddrPort{{v4l, v4r}, {v6l, v6r}} {
		base := k.ISN(tu[0], tu[1], t0)
		for _, d := range []time.Duration{0, 3 * time.Microsecond, 4 * time.Microsecond, time.Millisecond, time.Second, time.Hour, 4*time.Hour + 46*time.Minute} {
			got := k.ISN(tu[0], tu[1], t0.Add(d)) - base
			if want := uint32(d / (4 * time.Microsecond)); got != want {
				t.Errorf("%v later: ISN advanced %d, want %d", d, got, want)
			}
		}
		// Monotonic (in sequence space) over a run of increasing times.
		prev := base
		now := t0
		for range 1000 {
			now = now.Add(time.Duration(1+now.Nanosecond()%997) * time.Microsecond)
			isn := k.ISN(tu[0], tu[1], now)
			if int32(isn-prev) < 0 {
				t.Fatalf("ISN went back: %d after %d", isn, prev)
			}
			prev = isn
		}
	}
	// Unrelated across tuples: at one instant, each bit is set about half the time and
	// nearby tuples (ports differing by one) share nothing.
	r := rand.New(rand.NewPCG(9, 10))
	const n = 20000
	var ones [32]int
	seen := make(map[uint32]bool, n)
	for i := range n {
		local, remote := randTuple(r)
		if i%2 == 1 {
			remote = netip.AddrPortFrom(v4r.Addr(), uint16(i))
			local = v4l
		}
		isn := k.ISN(local, remote, t0)
		seen[isn] = true
		for b := range 32 {
			ones[b] += int(isn >> b & 1)
		}
	}
	for b, c := range ones {
		if c < n*45/100 || c > n*55/100 {
			t.Errorf("ISN bit %d set %d of %d times", b, c, n)
		}
	}
	if len(seen) < n-2 {
		t.Errorf("%d distinct ISNs of %d", len(seen), n)
	}
	// Neighbouring ports: differences look random too (Hamming distance near 16).
	var dist int
	for p := range uint16(1000) {
		a := k.ISN(v4l, netip.AddrPortFrom(v4r.Addr(), p), t0)
		b := k.ISN(v4l, netip.AddrPortFrom(v4r.Addr(), p+1), t0)
		dist += bits.OnesCount32(a ^ b)
	}
	if avg := float64(dist) / 1000; avg < 15 || avg > 17 {
		t.Errorf("neighbouring tuples: ISNs differ in %.2f bits on average", avg)
	}
	// Different keys, different ISNs for the same tuple.
	k2 := NewKeys(32)
	if k.ISN(v4l, v4r, t0) == k2.ISN(v4l, v4r, t0) {
		t.Error("ISN does not depend on the key")
	}
}

// RFC 6056 Algorithm 3: F is stable for a (local address, remote address, remote port)
// and spread across them; the local port is not an input.
func TestPortOffset(t *testing.T) {
	k := NewKeys(41)
	a := k.PortOffset(v4l.Addr(), v4r)
	for range 10 {
		if k.PortOffset(v4l.Addr(), v4r) != a {
			t.Fatal("PortOffset not stable")
		}
	}
	if k.PortOffset(v6l.Addr(), v6r) == k.PortOffset(v6l.Addr(), netip.AddrPortFrom(v6r.Addr(), v6r.Port()+1)) {
		t.Error("remote port ignored")
	}
	k2 := NewKeys(42)
	if k.PortOffset(v4l.Addr(), v4r) == k2.PortOffset(v4l.Addr(), v4r) {
		t.Error("PortOffset does not depend on the key")
	}
	// Spread over the default ephemeral range (49152-65535): 16384 ports in 64 buckets.
	r := rand.New(rand.NewPCG(11, 12))
	const n = 64000
	var buckets [64]int
	for i := range n {
		local, remote := randTuple(r)
		if i%2 == 0 { // one client talking to many ports of one server
			local, remote = v4l, netip.AddrPortFrom(v4r.Addr(), uint16(i))
		}
		port := k.PortOffset(local.Addr(), remote) % 16384
		buckets[port/256]++
	}
	// χ² with 63 degrees of freedom: 99.9% of uniform samples stay below ~104.
	var chi float64
	for _, c := range buckets {
		d := float64(c) - n/64
		chi += d * d / (n / 64)
	}
	if chi > 110 {
		t.Errorf("port offsets not spread: χ² = %.1f (%v)", chi, buckets)
	}
}

// TSOffset: stable per 4-tuple, different across tuples and keys, and unrelated to the
// ISN of the same tuple.
func TestTSOffset(t *testing.T) {
	k := NewKeys(71)
	if k.TSOffset(v4l, v4r) != k.TSOffset(v4l, v4r) {
		t.Fatal("not stable")
	}
	k2 := NewKeys(72)
	if k.TSOffset(v4l, v4r) == k2.TSOffset(v4l, v4r) {
		t.Fatal("does not depend on the key")
	}
	if k.TSOffset(v4l, v4r) == k.TSOffset(v4r, v4l) {
		t.Fatal("direction ignored")
	}
	r := rand.New(rand.NewPCG(15, 16))
	seen := map[uint32]bool{}
	for range 10000 {
		l, rem := randTuple(r)
		off := k.TSOffset(l, rem)
		if off == k.ISN(l, rem, time.Unix(0, 0)) {
			t.Fatal("TSOffset equals the ISN's F")
		}
		seen[off] = true
	}
	if len(seen) < 9998 {
		t.Fatalf("%d distinct offsets of 10000", len(seen))
	}
}

// An IPv4 address and its IPv4-mapped IPv6 form are one address to the hashes (both are
// hashed in their 16-byte form); a zone is ignored.
func TestAddressForms(t *testing.T) {
	k := NewKeys(51)
	mapped := netip.AddrPortFrom(netip.AddrFrom16(v4r.Addr().As16()), v4r.Port())
	if k.ISN(v4l, v4r, t0) != k.ISN(v4l, mapped, t0) {
		t.Error("IPv4 and IPv4-mapped differ")
	}
	zoned := netip.AddrPortFrom(netip.MustParseAddr("fe80::1%eth0"), 1)
	plain := netip.AddrPortFrom(netip.MustParseAddr("fe80::1"), 1)
	if k.ISN(zoned, v6r, t0) != k.ISN(plain, v6r, t0) {
		t.Error("zone changes the ISN")
	}
	// The zero AddrPort does not panic.
	var z netip.AddrPort
	_ = k.ISN(z, z, t0)
	_ = k.PortOffset(netip.Addr{}, z)
	c := k.Cookie(z, z, 0, 0, t0)
	if _, ok := k.CheckCookie(z, z, 0, c, t0); !ok {
		t.Error("zero tuple cookie rejected")
	}
}

// RFC 7323 timestamps carry the SYN's options through a cookie handshake.
func TestTSCookie(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	tsvals := []uint32{0, 1, 5, 15, 16, 31, 32, 33, 63, 64, 0x7fffffff, 0x80000000, 0xffffffe0, 0xffffffff}
	for range 2000 {
		tsvals = append(tsvals, r.Uint32())
	}
	for _, ts := range tsvals {
		for ws := range 256 {
			for _, sack := range []bool{false, true} {
				c := TSCookie(ts, uint8(ws), sack)
				if c == 0 {
					t.Fatalf("TSCookie(%d, %d, %v) = 0", ts, ws, sack)
				}
				if d := int32(ts - c); d < 0 || d >= 2<<tsCookieBits || (d >= 1<<tsCookieBits && ts&^tsCookieMask != 0) {
					t.Fatalf("TSCookie(%d, %d, %v) = %d: too far below tsval", ts, ws, sack, c)
				}
				gw, gs, ok := TSCookieDecode(c)
				want := uint8(ws)
				if ws > 14 && ws != NoWScale {
					want = 14
				}
				if !ok || gw != want || gs != sack {
					t.Fatalf("TSCookie(%d, %d, %v) = %d decodes to %d, %v, %v", ts, ws, sack, c, gw, gs, ok)
				}
			}
		}
	}
	if _, _, ok := TSCookieDecode(0); ok {
		t.Fatal("TSecr 0 accepted")
	}
	// An unchanged TSval when its low bits already say the right thing.
	if got := TSCookie(0x12345670|7|tsSACKBit, 7, true); got != 0x12345670|7|tsSACKBit {
		t.Fatalf("TSCookie moved a matching TSval to %#x", got)
	}
}

func TestNoAllocs(t *testing.T) {
	k := NewKeys(61)
	var sink uint32
	allocs := testing.AllocsPerRun(1000, func() {
		sink += k.ISN(v6l, v6r, t0)
		sink += k.PortOffset(v4l.Addr(), v4r)
		sink += k.TSOffset(v4l, v4r)
		c := k.Cookie(v6l, v6r, 5, 1440, t0)
		m, _ := k.CheckCookie(v6l, v6r, 5, c, t0)
		sink += uint32(m)
		ts := TSCookie(12345, 7, true)
		w, _, _ := TSCookieDecode(ts)
		sink += uint32(w)
		kk := NewKeys(uint64(sink))
		sink += kk.ISN(v4l, v4r, t0)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

func BenchmarkISN(b *testing.B) {
	k := NewKeys(1)
	var sink uint32
	for b.Loop() {
		sink += k.ISN(v6l, v6r, t0)
	}
	_ = sink
}

func BenchmarkPortOffset(b *testing.B) {
	k := NewKeys(1)
	var sink uint32
	for b.Loop() {
		sink += k.PortOffset(v4l.Addr(), v4r)
	}
	_ = sink
}

func BenchmarkCookie(b *testing.B) {
	k := NewKeys(1)
	var sink uint32
	for b.Loop() {
		sink += k.Cookie(v6l, v6r, 7, 1440, t0)
	}
	_ = sink
}

func BenchmarkCheckCookie(b *testing.B) {
	k := NewKeys(1)
	c := k.Cookie(v6l, v6r, 7, 1440, t0)
	var sink int
	for b.Loop() {
		m, _ := k.CheckCookie(v6l, v6r, 7, c, t0)
		sink += m
	}
	_ = sink
}

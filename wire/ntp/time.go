package ntp

import (
	"math/bits"
	"time"
)

// Timestamp is the 64-bit NTP timestamp: seconds since the start of the era in the high 32
// bits, the fraction of a second in the low 32. Era 0 began 1900-01-01T00:00:00Z, era 1
// begins 2036-02-07T06:28:16Z. Zero means "unknown" (RFC 5905 §6).
type Timestamp uint64

// eraSeconds is the length of an era, 2^32 seconds.
const eraSeconds = 1 << 32

// ntpEpoch is the start of era 0 as Unix seconds (1900-01-01 is 2208988800 s before 1970).
const ntpEpoch = -2208988800

// Seconds is the whole seconds within the era.
func (t Timestamp) Seconds() uint32 { return uint32(t >> 32) }

// Fraction is the fraction of a second, in units of 2^-32 s.
func (t Timestamp) Fraction() uint32 { return uint32(t) }

// FromTime converts t (in any era) to a timestamp, rounding to the nearest 2^-32 s.
func FromTime(t time.Time) Timestamp {
	s := t.Unix() - ntpEpoch // seconds since era 0; may be >= 2^32 (later eras) or < 0
	ns := uint64(t.Nanosecond())
	// fraction = ns * 2^32 / 1e9, rounded.
	hi, lo := bits.Mul64(ns, 1<<32)
	lo, c := bits.Add64(lo, 500_000_000, 0)
	frac, _ := bits.Div64(hi+c, lo, 1e9)
	if frac == 1<<32 {
		s++
		frac = 0
	}
	return Timestamp(uint64(s)<<32 | frac)
}

// Time converts t to a time.Time in the era that puts it closest to pivot (RFC 5905 §6:
// "the era ... must be determined by some other means"): a client passes its own clock, so
// replies within 68 years of it convert right across the 2036 era rollover.
func (t Timestamp) Time(pivot time.Time) time.Time {
	p := pivot.Unix() - ntpEpoch
	era := p >> 32 // floor, also before 1900
	s := era*eraSeconds + int64(t.Seconds())
	// Choose among eras era-1, era, era+1 the one closest to the pivot.
	if d := s - p; d > eraSeconds/2 {
		s -= eraSeconds
	} else if d < -eraSeconds/2 {
		s += eraSeconds
	}
	ns := (uint64(t.Fraction())*1e9 + 1<<31) >> 32
	return time.Unix(s+ntpEpoch, int64(ns)).UTC()
}

// TimeRFC4330 converts t without a pivot by RFC 4330 §3's rule: a most significant bit of 1
// is era 0 (1968–2036), of 0 era 1 (2036–2104).
func (t Timestamp) TimeRFC4330() time.Time {
	s := int64(t.Seconds())
	if t.Seconds()&(1<<31) == 0 {
		s += eraSeconds
	}
	ns := (uint64(t.Fraction())*1e9 + 1<<31) >> 32
	return time.Unix(s+ntpEpoch, int64(ns)).UTC()
}

// Short is the 32-bit NTP short format: 16 bits of seconds, 16 of fraction (RFC 5905 §6).
type Short uint32

// Duration converts s to a duration.
func (s Short) Duration() time.Duration {
	return time.Duration((uint64(s)*uint64(time.Second) + 1<<15) >> 16)
}

// ShortFrom converts d (clamped to 0..65535.99998 s) to the short format.
func ShortFrom(d time.Duration) Short {
	if d <= 0 {
		return 0
	}
	v := (uint64(d)<<16 + uint64(time.Second)/2) / uint64(time.Second)
	if v > 0xffffffff {
		v = 0xffffffff
	}
	return Short(v)
}

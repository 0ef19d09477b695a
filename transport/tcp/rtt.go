package tcp

import "time"

// minRTTWindow is how long an RTT sample can stay the minimum. RFC 8985 sizes the
// reordering window from RACK.min_RTT; a lifetime minimum would keep the window sized for
// the emptiest moment of the path forever (a route change or a standing queue makes every
// later RTT larger), so the minimum is taken over the last 10 seconds, like the windowed
// minimum RTT of BBR (draft-ietf-ccwg-bbr §4.2: "MinRTTFilterLen: ... 10 seconds").
const minRTTWindow = int64(10 * time.Second)

// minFilter is a windowed minimum that keeps three samples instead of every sample of the
// window: the minimum, and the best samples taken in the later parts of the window, which
// take over when the minimum ages out. Fixed size, no allocation.
type minFilter struct {
	s [3]minSample
}

type minSample struct {
	v  time.Duration
	at int64
}

// update adds sample v taken at time at (ns) and returns the minimum over the last win ns.
func (f *minFilter) update(v time.Duration, at, win int64) time.Duration {
	n := minSample{v, at}
	if f.s[0].v == 0 || v <= f.s[0].v || at-f.s[2].at > win {
		// A new minimum, or every kept sample is out of the window: start over.
		f.s = [3]minSample{n, n, n}
		return v
	}
	if v <= f.s[1].v {
		f.s[1], f.s[2] = n, n
	} else if v <= f.s[2].v {
		f.s[2] = n
	}
	switch {
	case at-f.s[0].at > win:
		// The minimum aged out: the next best takes over, and this sample fills in.
		f.s[0], f.s[1], f.s[2] = f.s[1], f.s[2], n
		if at-f.s[0].at > win {
			f.s[0], f.s[1] = f.s[1], f.s[2]
		}
	case f.s[1].at == f.s[0].at && at-f.s[0].at > win/4:
		// A quarter of the window without a better sample: keep a fresher second best,
		// so that the minimum does not fall straight to this sample when it expires.
		f.s[1], f.s[2] = n, n
	case f.s[2].at == f.s[1].at && at-f.s[1].at > win/2:
		f.s[2] = n
	}
	return f.s[0].v
}

package endpoint

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Socket options by level and name, with golang.org/x/sys/unix constants, as getsockopt(2)
// and setsockopt(2) take them: every option ESP-IDF's lwIP documents. Each conn type
// has GetsockoptInt / SetsockoptInt; structured options have typed variants
// (SetsockoptIPMreq, SetsockoptIPMreqn, SetsockoptIPv6Mreq, Get/SetsockoptTimeval,
// Get/SetsockoptLinger) and SetsockoptBytes takes the raw C structs. Unknown options fail
// with ENOPROTOOPT; options that exist but not on this kind of socket with ENOPROTOOPT
// too (as Linux answers, for example, SO_NO_CHECK on TCP); bad values with EINVAL.
//
// Beyond lwIP's, TCP sockets have four of Linux's TCP options: TCP_MAXSEG, TCP_USER_TIMEOUT,
// TCP_CORK and TCP_NOTSENT_LOWAT.
//
// Units: TCP_KEEPIDLE (and its alias TCPKeepAlive), TCP_KEEPINTVL in seconds;
// TCP_USER_TIMEOUT in milliseconds; TCP_MAXSEG, TCP_NOTSENT_LOWAT, SO_RCVBUF and SO_SNDBUF
// in bytes; SO_RCVTIMEO / SO_SNDTIMEO through SetsockoptInt in milliseconds
// (lwIP's LWIP_SO_SNDRCVTIMEO_NONSTANDARD int form) or through SetsockoptTimeval as a
// struct timeval; IP_MULTICAST_IF / IPV6_MULTICAST_IF through SetsockoptInt as an
// interface index.

// optKey names one option.
type optKey struct{ level, name int }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkTTL validates a TTL / hop-limit value (-1 restores the default, as Linux).
func checkTTL(v int) bool { return v >= -1 && v <= 255 && v != 0 }

// msDuration converts an int option in milliseconds.
func msDuration(v int) (time.Duration, bool) {
	if v < 0 {
		return 0, false
	}
	return time.Duration(v) * time.Millisecond, true
}

// timevalDuration converts a struct timeval option.
func timevalDuration(tv *unix.Timeval) (time.Duration, bool) {
	if tv == nil || tv.Sec < 0 || tv.Usec < 0 || tv.Usec >= 1e6 {
		return 0, false
	}
	return time.Duration(tv.Nano()), true
}

// durationTimeval is the inverse of timevalDuration.
func durationTimeval(d time.Duration) *unix.Timeval {
	tv := unix.NsecToTimeval(d.Nanoseconds())
	return &tv
}

// seconds converts a keep-alive option in seconds.
func seconds(v int) (time.Duration, bool) {
	if v <= 0 || v > 32767 { // Linux caps TCP_KEEPIDLE / TCP_KEEPINTVL at MAX_TCP_KEEPIDLE
		return 0, false
	}
	return time.Duration(v) * time.Second, true
}

// unwrap takes the errno back out of an error a typed setter already wrapped, so the
// generic setter wraps it once with its own Op.
func unwrap(err error) error {
	if oe, ok := err.(*net.OpError); ok {
		return oe.Err
	}
	return err
}

package endpoint

import (
	"maps"
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

// Every socket type dispatches GetsockoptInt and SetsockoptInt alike: through its optTable,
// one entry per option, whose get reads the value where it lives (the PCB, through
// netconn; the socket for what only it keeps, such as SO_RCVTIMEO) and whose set changes
// it there. The typed setters of a socket go through the same entries.

// intOpt is one int option of socket type S. A nil get or set answers ENOPROTOOPT (as
// Linux answers setsockopt of SO_TYPE).
type intOpt[S any] struct {
	get func(c S) (int, error)
	set func(c S, v int) error
}

// optTable maps the options socket type S knows to their entries; any other option is
// ENOPROTOOPT.
type optTable[S any] map[optKey]intOpt[S]

// newOptTable merges parts into one table (a later part's entry replaces an earlier one's)
// and gives each IPv4 option of ipTwins its IPv6 twin's name too, unless a part has it.
func newOptTable[S any](parts ...optTable[S]) optTable[S] {
	t := optTable[S]{}
	for _, p := range parts {
		maps.Copy(t, p)
	}
	for _, tw := range ipTwins {
		if o, ok := t[tw[0]]; ok {
			if _, ok := t[tw[1]]; !ok {
				t[tw[1]] = o
			}
		}
	}
	return t
}

// ipTwins pairs the IPv4 options with the IPv6 ones that mean the same.
var ipTwins = [][2]optKey{
	{{unix.IPPROTO_IP, unix.IP_TTL}, {unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS}},
	{{unix.IPPROTO_IP, unix.IP_TOS}, {unix.IPPROTO_IPV6, unix.IPV6_TCLASS}},
	{{unix.IPPROTO_IP, unix.IP_PKTINFO}, {unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO}},
	{{unix.IPPROTO_IP, unix.IP_MULTICAST_IF}, {unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF}},
	{{unix.IPPROTO_IP, unix.IP_MULTICAST_TTL}, {unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS}},
	{{unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP}, {unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP}},
}

func (t optTable[S]) get(c S, level, name int) (int, error) {
	if o := t[optKey{level, name}]; o.get != nil {
		return o.get(c)
	}
	return 0, errNoProtoOpt
}

func (t optTable[S]) set(c S, level, name, v int) error {
	if o := t[optKey{level, name}]; o.set != nil {
		return o.set(c, v)
	}
	return errNoProtoOpt
}

// Keys and entries the tables share.
var (
	soType       = optKey{unix.SOL_SOCKET, unix.SO_TYPE}
	soAcceptConn = optKey{unix.SOL_SOCKET, unix.SO_ACCEPTCONN}
	soError      = optKey{unix.SOL_SOCKET, unix.SO_ERROR}
	soReuseAddr  = optKey{unix.SOL_SOCKET, unix.SO_REUSEADDR}
	soRcvBuf     = optKey{unix.SOL_SOCKET, unix.SO_RCVBUF}
	soSndBuf     = optKey{unix.SOL_SOCKET, unix.SO_SNDBUF}
	soRcvTimeo   = optKey{unix.SOL_SOCKET, unix.SO_RCVTIMEO}
	soSndTimeo   = optKey{unix.SOL_SOCKET, unix.SO_SNDTIMEO}
	ipTTL        = optKey{unix.IPPROTO_IP, unix.IP_TTL}
	ipTOS        = optKey{unix.IPPROTO_IP, unix.IP_TOS}
	ipv6V6Only   = optKey{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY}
	ipv6Checksum = optKey{unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM}
)

// constant is a get that reports v.
func constant[S any](v int) func(S) (int, error) {
	return func(S) (int, error) { return v, nil }
}

// afterBind is the set of an option that acts at bind, which the socket has done (Dial,
// Listen and Accept bind): EINVAL, as Linux answers IPV6_V6ONLY on a bound socket.
func afterBind[S any](S, int) error { return errInval }

// timeoOpts are SO_RCVTIMEO and SO_SNDTIMEO (ms) of a socket whose timeouts t returns,
// applied to the conn d returns (nil while it has none).
func timeoOpts[S any](t func(S) *callTimeouts, d func(S) deadliner) optTable[S] {
	entry := func(read bool) intOpt[S] {
		return intOpt[S]{
			get: func(c S) (int, error) { return int(t(c).get(read).Milliseconds()), nil },
			set: func(c S, v int) error {
				timeout, ok := msDuration(v)
				if !ok {
					return errInval
				}
				t(c).set(d(c), read, timeout)
				return nil
			},
		}
	}
	return optTable[S]{soRcvTimeo: entry(true), soSndTimeo: entry(false)}
}

// setTOS checks an IP_TOS / IPV6_TCLASS value (-1: the default, 0) and sets it with set.
func setTOS(v int, set func(tos uint8) error) error {
	if v < -1 || v > 255 {
		return errInval
	}
	return set(uint8(max(v, 0)))
}

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

package tcp

import (
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/wire"
)

// The options Linux users set on a TCP socket beside Nagle and keepalive: TCP_MAXSEG,
// TCP_USER_TIMEOUT, TCP_CORK and TCP_NOTSENT_LOWAT, with Linux's semantics (tcp(7)). All
// are called in core context.

// MinUserMSS and MaxUserMSS bound SetMSS (Linux TCP_MIN_MSS; the largest IPv4 payload
// less headers).
const (
	MinUserMSS = 88
	MaxUserMSS = 65535 - wire.IPv4MinHeaderLen - wire.TCPMinHeaderLen
)

// corkLimit is how long TCP_CORK holds a partial segment (tcp(7): "a 200 millisecond
// ceiling on the time for which output is corked").
const corkLimit = 200 * time.Millisecond

// SetMSS caps the connection's maximum segment size (TCP_MAXSEG): before Connect or
// Listen it lowers the MSS announced in the SYN and caps what is sent; on a connection it
// caps what is sent from now on. 0 removes the cap for connections not yet made; on a
// connection the segment size does not grow back (a path MTU learned since may hold it).
// Values outside [MinUserMSS, MaxUserMSS] are errs.Val. A listener's connections inherit
// it.
func (c *PCB) SetMSS(n int) error {
	c.assertCore()
	if c.t == nil {
		return errs.Conn
	}
	if n != 0 && (n < MinUserMSS || n > MaxUserMSS) {
		return errs.Val
	}
	c.userMSS = n
	if n > 0 && c.mss > 0 {
		c.mss = min(c.mss, c.effMSS())
	}
	return nil
}

// MSS returns TCP_MAXSEG: on a connection that has settled it, the payload of a full
// segment (options excluded, as Linux's mss_cache); before, the cap SetMSS set, else the
// RFC 9293 default of 536.
func (c *PCB) MSS() int {
	c.assertCore()
	if c.t != nil && c.mss > 0 && c.state >= StateEstablished {
		return c.mss
	}
	if c.userMSS > 0 {
		return c.userMSS
	}
	return 536
}

// SetUserTimeout sets TCP_USER_TIMEOUT: the longest that sent data may stay
// unacknowledged, or queued data unsent behind a zero window, before the connection is
// dropped with errs.Timeout (counted in Timeouts); it also ends keepalive probing that
// long after the last segment received. It replaces TCPMaxRtx and TCPSynMaxRtx as the
// limit. 0 turns it off; negative durations count as 0.
func (c *PCB) SetUserTimeout(d time.Duration) {
	c.assertCore()
	c.userTimeout = max(d, 0)
	if c.t != nil && c.pcbCold != nil && c.rtoAt != 0 {
		c.clampToUserTimeout(&c.rtoAt)
		c.schedule()
	}
}

// UserTimeout returns what SetUserTimeout set.
func (c *PCB) UserTimeout() time.Duration { return getField(c, &c.userTimeout) }

// SetCork sets TCP_CORK: while on, a partial segment is held until more data fills it, for
// at most 200 ms; turning it off sends what waits.
func (c *PCB) SetCork(on bool) {
	c.assertCore()
	if on {
		c.flags |= fCork
		return
	}
	c.flags &^= fCork
	if c.pcbCold != nil {
		c.corkSince = 0
	}
	if c.t != nil && c.flags&fDying == 0 {
		gen := c.enter()
		c.output()
		c.leave(gen)
	}
}

// Cork reports whether TCP_CORK is on.
func (c *PCB) Cork() bool { return c.option(fCork) }

// SetNotSentLowat sets TCP_NOTSENT_LOWAT: SndBuf is 0 while n or more queued bytes are
// not yet sent, and the SentFunc runs (with 0) when they fall below n, so a writer keeps
// little more than the network takes queued. 0 (or negative) turns it off.
func (c *PCB) SetNotSentLowat(n int) {
	c.assertCore()
	c.notSentLowat = max(n, 0)
	if c.t != nil {
		gen := c.enter()
		c.notifyLowat(gen)
		c.leave(gen)
	}
}

// NotSentLowat returns what SetNotSentLowat set.
func (c *PCB) NotSentLowat() int { return getField(c, &c.notSentLowat) }

// notSent is the queued data not yet sent (the FIN excluded).
func (c *PCB) notSent() int { return max(int(int32(c.sndEnd-c.sndNxt)), 0) }

// lowatBlocks reports whether TCP_NOTSENT_LOWAT refuses more data now, remembering that a
// writer was refused.
func (c *PCB) lowatBlocks() bool {
	if c.notSentLowat == 0 || c.notSent() < c.notSentLowat {
		return false
	}
	c.flags |= fLowatWait
	return true
}

// notifyLowat runs the SentFunc once a writer refused for TCP_NOTSENT_LOWAT may write
// again (unsent data leaves at output, not when it is acknowledged, where the SentFunc
// usually runs). False when c is gone.
func (c *PCB) notifyLowat(gen uint32) bool {
	if c.flags&fLowatWait == 0 || c.notSentLowat > 0 && c.notSent() >= c.notSentLowat {
		return true
	}
	c.flags &^= fLowatWait
	if c.sentFn != nil && c.flags&(fAppClosed|fDying) == 0 {
		c.sentFn(c, 0)
	}
	return c.alive(gen)
}

// corkHolds reports whether TCP_CORK holds a partial segment now, arming the retry that
// sends it when corkLimit has passed.
func (c *PCB) corkHolds(ns int64) bool {
	if c.flags&fCork == 0 {
		return false
	}
	if c.corkSince == 0 {
		c.corkSince = max(ns, 1) // 0 means none
	}
	due := c.corkSince + int64(corkLimit)
	if ns >= due {
		return false
	}
	if c.retryAt == 0 || c.retryAt > due {
		c.retryAt = due
		c.schedule()
	}
	return true
}

// userTimedOut reports whether TCP_USER_TIMEOUT has passed since stuckSince.
func (c *PCB) userTimedOut(ns int64) bool {
	return c.userTimeout > 0 && c.stuckSince != 0 && ns-c.stuckSince >= int64(c.userTimeout)
}

// clampToUserTimeout moves a retransmission or probe deadline no later than the user
// timeout's end, so the connection is dropped when the timeout says (Linux
// tcp_clamp_rto_to_user_timeout).
func (c *PCB) clampToUserTimeout(at *int64) {
	if c.userTimeout > 0 && c.stuckSince != 0 {
		*at = min(*at, c.stuckSince+int64(c.userTimeout))
	}
}

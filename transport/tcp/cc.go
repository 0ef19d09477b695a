package tcp

import (
	"time"

	"github.com/wispstack/wisp/transport/tcp/cc"
	"github.com/wispstack/wisp/transport/tcp/secret"
)

// keys are the stack's secrets (package secret): ISNs, SYN cookies, ports, TS offsets.
type keys = secret.Keys

func newKeys(seed uint64) keys { return secret.NewKeys(seed) }

func tsCookie(tsval uint32, wscale uint8, sackOK bool) uint32 {
	return secret.TSCookie(tsval, wscale, sackOK)
}

func tsCookieDecode(tsecr uint32) (uint8, bool, bool) { return secret.TSCookieDecode(tsecr) }

// ccImpl holds both congestion controllers by value so a connection allocates nothing;
// PCB.cc points at the one Options.TCPCongestion names.
type ccImpl struct {
	cubic cc.CUBIC
	reno  cc.NewReno
}

// initCC starts the connection's congestion control (RFC 5681 §3.1, RFC 6928 initial
// window of TCPInitCwnd segments).
func (c *PCB) initCC(now time.Time) {
	if c.t.opts.TCPCongestion == "newreno" {
		c.cc = &c.ccImpl.reno
	} else {
		c.cc = &c.ccImpl.cubic
	}
	c.cc.Init(max(c.mss, 1), max(c.t.opts.TCPInitCwnd, 1), now)
}

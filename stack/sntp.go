package stack

import (
	"github.com/wispstack/wisp/apps/sntp"
	"github.com/wispstack/wisp/errs"
)

// StartSNTP starts an SNTP client (package apps/sntp) on core 0: its first request goes
// out at once, and Close stops it. The client's Offset and Now are what applications read
// for the servers' time; the stack's timers keep their own clock.
func (s *Stack) StartSNTP(cfg sntp.Config) (*sntp.Client, error) {
	s.core.Lock()
	defer s.core.Unlock()
	if s.closed {
		return nil, errs.Clsd
	}
	c, err := sntp.New(sntp.Env{UDP: s.udp, Timers: s.timers, Alloc: s.alloc, Lock: s}, cfg)
	if err != nil {
		return nil, err
	}
	s.OnClose(c.StopLocked)
	return c, nil
}

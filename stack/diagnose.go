package stack

import "github.com/wispstack/wisp/stats"

// timerStats fills snap's timer lateness from every core's timer queue; core 0's lock is
// held. (Stub: the doctor helper fills this file.)
func (s *Stack) timerStats(snap *stats.Snapshot) { _ = snap }

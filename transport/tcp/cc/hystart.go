package cc

import "time"

// RFC 9406 HyStart++ constants (§4.3, the recommended values).
const (
	hsMinRTTThresh  = 4 * time.Millisecond
	hsMaxRTTThresh  = 16 * time.Millisecond
	hsMinRTTDivisor = 8
	hsNRTTSample    = 8
	hsCSSGrowthDiv  = 4
	hsCSSRounds     = 5
	// hsL is §4.2's L for a sender that does not pace: in HyStart++'s slow start, "cwnd =
	// cwnd + min(N, L * SMSS)" with L = 8, so that stretch ACKs (a receiver that
	// acknowledges a GRO-merged or batched burst at once, as Linux and wisp do) still
	// double the window per round trip. Slow start after a timeout keeps RFC 3465's L = 2.
	hsL = 8
)

// hystart is RFC 9406 HyStart++: in the initial slow start, a round whose minimum RTT is
// clearly above the previous round's ends slow start early, through a few rounds of
// Conservative Slow Start (CSS), before the queue overflows.
//
// Rounds: RFC 9406 ends a round when the ACK for windowEnd = SND.NXT (at the round's
// start) arrives. The Controller does not see sequence numbers, so a round is counted in
// bytes instead: it ends once the bytes in flight at its start have been acknowledged.
// With no inflight information every ACK is a round and HyStart++ never fires (standard
// slow start).
type hystart struct {
	done      bool // slow start was left once (loss, timeout or CSS): not used again
	roundLeft int  // bytes of the current round still unacknowledged
	// lastMin and curMin are lastRoundMinRTT and currentRoundMinRTT; 0 means infinity.
	lastMin, curMin time.Duration
	samples         int           // rttSampleCount
	css             bool          // in Conservative Slow Start
	cssBaseline     time.Duration // cssBaselineMinRtt
	cssRounds       int
}

// onAck runs one slow start ACK of N = acked bytes for w and returns the bytes to add
// to cwnd; it sets ssthresh when CSS ends.
func (h *hystart) onAck(w *window, acked int, rtt time.Duration, inflight int) int {
	if h.done {
		return min(acked, abcL*w.mss) // RFC 3465: min(N, L*SMSS), L = 2
	}
	inc := min(acked, hsL*w.mss)
	if h.roundLeft <= 0 {
		// A round begins: "lastRoundMinRTT = currentRoundMinRTT; currentRoundMinRTT =
		// infinity; rttSampleCount = 0".
		h.lastMin, h.curMin, h.samples = h.curMin, 0, 0
		h.roundLeft = max(inflight, 0)
		if h.css {
			h.cssRounds++
			if h.cssRounds >= hsCSSRounds {
				// "If CSS_ROUNDS rounds are complete, enter congestion avoidance by
				// setting the ssthresh to the current cwnd."
				h.done, h.css = true, false
				w.ssthresh = w.clampSsthresh(int64(w.cwnd))
				return 0
			}
		}
	}
	h.roundLeft -= acked
	if rtt > 0 {
		if h.curMin == 0 || rtt < h.curMin {
			h.curMin = rtt
		}
		h.samples++
	}
	enough := h.samples >= hsNRTTSample && h.curMin > 0
	if !h.css {
		if enough && h.lastMin > 0 {
			// "RttThresh = max(MIN_RTT_THRESH, min(lastRoundMinRTT / MIN_RTT_DIVISOR,
			// MAX_RTT_THRESH)); if (currentRoundMinRTT >= (lastRoundMinRTT + RttThresh))
			// { cssBaselineMinRtt = currentRoundMinRTT; exit slow start and enter CSS }"
			thresh := max(hsMinRTTThresh, min(h.lastMin/hsMinRTTDivisor, hsMaxRTTThresh))
			if h.curMin-thresh >= h.lastMin { // lastMin+thresh could overflow

				h.css, h.cssBaseline, h.cssRounds = true, h.curMin, 0
			}
		}
		return inc
	}
	// "if (currentRoundMinRTT < cssBaselineMinRtt) { cssBaselineMinRtt = infinity;
	// resume slow start including HyStart++ }"
	if enough && h.curMin < h.cssBaseline {
		h.css, h.cssBaseline = false, 0
		return inc
	}
	// CSS: "cwnd = cwnd + (min(N, L * SMSS) / CSS_GROWTH_DIVISOR)".
	return inc / hsCSSGrowthDiv
}

// stop ends HyStart++ for good: "If loss or ECN-marking is observed anytime during
// standard slow start or CSS, enter congestion avoidance"; and "An implementation SHOULD
// use HyStart++ only for the initial slow start".
func (h *hystart) stop() { *h = hystart{done: true} }

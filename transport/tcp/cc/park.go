package cc

// A connection that goes idle gives its controller's memory back and keeps only cwnd and
// ssthresh (wisp's tcp parks it). Parked reports whether Resume rebuilds the controller
// exactly from those two; Resume starts it again from them. Neither is in Controller: the
// caller holds the concrete type.

// resume is init followed by the kept window.
func (w *window) resume(mss, initCwnd, cwnd, ssthresh int) {
	w.init(mss, initCwnd)
	w.cwnd = w.clampCwnd(int64(cwnd))
	w.ssthresh = w.clampSsthresh(int64(ssthresh))
}

// sameAs reports whether w equals r, ignoring the saved values Undo cannot use.
func (w window) sameAs(r window) bool {
	if !w.canUndo {
		w.priorCwnd, w.priorSsthresh = 0, 0
	}
	if !r.canUndo {
		r.priorCwnd, r.priorSsthresh = 0, 0
	}
	return w == r
}

// Resume starts c again from a parked window of mss and initCwnd segments.
func (c *CUBIC) Resume(mss, initCwnd, cwnd, ssthresh int) {
	*c = CUBIC{}
	c.resume(mss, initCwnd, cwnd, ssthresh)
	c.hs.done = c.ssthresh < MaxWindow // slow start was left once (HyStart++ runs only in the first)
}

// Parked returns cwnd and ssthresh, and whether Resume(mss, initCwnd, cwnd, ssthresh)
// rebuilds c exactly.
func (c *CUBIC) Parked(mss, initCwnd int) (cwnd, ssthresh int, exact bool) {
	var r CUBIC
	r.Resume(mss, initCwnd, c.cwnd, c.ssthresh)
	a := *c
	exact = a.window.sameAs(r.window)
	a.window, r.window = window{}, window{}
	return c.cwnd, c.ssthresh, exact && a == r
}

// Resume starts r again from a parked window of mss and initCwnd segments.
func (r *NewReno) Resume(mss, initCwnd, cwnd, ssthresh int) {
	*r = NewReno{}
	r.resume(mss, initCwnd, cwnd, ssthresh)
}

// Parked is CUBIC.Parked for NewReno.
func (r *NewReno) Parked(mss, initCwnd int) (cwnd, ssthresh int, exact bool) {
	var x NewReno
	x.Resume(mss, initCwnd, r.cwnd, r.ssthresh)
	return r.cwnd, r.ssthresh, r.window.sameAs(x.window)
}

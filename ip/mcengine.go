package ip

import (
	"net/netip"
	"time"

	"github.com/wispstack/wisp/wire"
)

// The family-neutral report engine: state changes on join and leave, queries, report
// suppression, compatibility modes and the one timer. Message formats live in igmp.go and
// mld6.go behind sendOld, sendRecord and sendAll; the v3 reports, alike in both, are built
// in mcast.go from their layouts (reports).

// The v3 group record types the engine sends (RFC 3376 §4.2.12, RFC 3810 §5.2.12).
const (
	recIsEx = wire.RecordIsExclude // current state, answers a query
	recToIn = wire.RecordToInclude // TO_IN{} is a leave
	recToEx = wire.RecordToExclude // TO_EX{} is a join
)

// mcQuery is a parsed IGMP or MLD query.
type mcQuery struct {
	version mcMode     // the querier's version, from the message's length
	group   netip.Addr // invalid: a general query
	maxResp time.Duration
	qrv     uint8         // v3: the querier's robustness variable (0: not given)
	qqi     time.Duration // v3: the querier's query interval (0: not given)
}

// stateChange reports a first join or a last leave of e on n and arms the repetitions.
func (l *Layer) stateChange(n *Netif, f *mcFamily, e *group, leave bool) {
	defer l.mcRearm()
	e.changeLeft, e.leaving = 0, false
	if leave {
		e.respAt = time.Time{}
	}
	if !reportable(e.addr) || !n.up {
		// Down netifs report their groups when they come up (mcUp).
		if leave {
			l.freeGroup(f, e)
		}
		return
	}
	v6 := e.addr.Is6()
	now := l.now()
	switch mode := f.mode(now); {
	case mode == modeV3:
		// RFC 3376 §5.1 / RFC 3810 §6.1: a State-Change Report at once, "retransmitted
		// [Robustness Variable] - 1 more times, at intervals chosen at random from the
		// range (0, [Unsolicited Report Interval])". Any-source only: a join is TO_EX{},
		// a leave TO_IN{}.
		typ := uint8(recToEx)
		if leave {
			typ = recToIn
		}
		l.sendRecord(n, v6, e.addr, typ)
		e.leaving = leave
		e.changeLeft = uint8(f.robustness() - 1)
		e.changeAt = now.Add(l.randDur(unsolicitedV3))
		if leave && e.changeLeft == 0 {
			l.freeGroup(f, e)
		}
	case leave:
		// RFC 2236 §3: on leaving, "if the flag saying we were the last host to report
		// is cleared, this action MAY be skipped"; and with an IGMPv1 querier "this
		// action SHOULD be skipped". RFC 2710 §4 has the same rule for Done.
		if mode == modeV2 && e.lastReporter {
			l.sendOld(n, v6, mode, e.addr, true)
		}
		l.freeGroup(f, e)
	default:
		// RFC 2236 §3: "immediately transmit an unsolicited Version 2 Membership Report
		// ... it is recommended that it be repeated once or twice after short delays
		// [Unsolicited Report Interval]". RFC 2710 §4 says the same of MLDv1.
		l.sendOld(n, v6, mode, e.addr, false)
		e.lastReporter = true
		e.changeLeft = uint8(f.robustness() - 1)
		e.changeAt = now.Add(l.randDur(unsolicitedV2))
	}
}

// mcQueryInput applies a query received on n.
func (l *Layer) mcQueryInput(n *Netif, v6 bool, q *mcQuery) {
	f, _, _ := l.mc(n, v6)
	now := l.now()
	before := f.mode(now)
	if q.version == modeV3 {
		// RFC 3376 §4.1.6-7 / RFC 3810 §5.1.8-9: a non-zero QRV and QQIC give the
		// querier's Robustness Variable and Query Interval, which hosts adopt too.
		if q.qrv != 0 {
			f.qrv = q.qrv
		}
		if q.qqi != 0 {
			f.qi = q.qqi
		}
	}
	// RFC 3376 §7.2.1: on an older query the host sets its Older Version Querier Present
	// timer to the Older Version Querier Present Timeout; the compatibility mode follows
	// the timers running.
	switch q.version {
	case modeV1:
		f.v1Until = now.Add(f.olderQuerierTimeout())
	case modeV2:
		f.v2Until = now.Add(f.olderQuerierTimeout())
	}
	mode := f.mode(now)
	if before == modeV3 && mode != modeV3 {
		// Leaving IGMPv3/MLDv2: the v3 timers (pending current-state and state-change
		// reports) are cancelled; v1/v2 reports answer queries from now on.
		l.mcDowngrade(f)
	}
	if mode != modeV3 {
		// RFC 2236 §3: a query sets a delay timer, random in (0, Max Response Time), for
		// each group queried; "if a timer for the group is already running, it is reset
		// to the random value only if the requested Max Response Time is less than the
		// remaining value of the running timer". RFC 2710 §4 likewise.
		for e := f.groups; e != nil; e = e.next {
			if !e.joined() || !reportable(e.addr) || q.group.IsValid() && q.group != e.addr {
				continue
			}
			if e.respAt.IsZero() || e.respAt.Sub(now) > q.maxResp {
				e.respAt = now.Add(l.randDur(q.maxResp))
			}
		}
		l.mcRearm()
		return
	}
	// RFC 3376 §5.2 / RFC 3810 §6.2, with a delay random in (0, Max Resp Time):
	at := now.Add(l.randDur(q.maxResp))
	switch {
	case !f.genAt.IsZero() && f.genAt.Before(at):
		// 1. "If there is a pending response to a previous General Query scheduled
		// sooner than the selected delay, no additional response needs to be scheduled."
	case !q.group.IsValid():
		// 2. A General Query sets the interface timer, replacing a previous one.
		f.genAt = at
	default:
		// 3-4. A Group-Specific (or Group-and-Source-Specific: the answer is the whole
		// any-source state, IS_EX{}) Query sets the group timer, or keeps the earlier of
		// the pending one and the new delay.
		if e := f.find(q.group); e != nil && e.joined() && reportable(e.addr) &&
			(e.respAt.IsZero() || at.Before(e.respAt)) {
			e.respAt = at
		}
	}
	l.mcRearm()
}

// mcReportHeard applies another host's v1/v2 report for g received on n: report
// suppression.
func (l *Layer) mcReportHeard(n *Netif, v6 bool, g netip.Addr) {
	f, _, _ := l.mc(n, v6)
	if f.mode(l.now()) == modeV3 {
		return // IGMPv3 and MLDv2 hosts do not suppress (RFC 3376 §5.2 / RFC 3810 §6.2).
	}
	// RFC 2236 §3: "If a host receives another host's Report (version 1 or 2) while it has
	// a timer running, it stops its timer for the specified group and does not send a
	// Report for that group"; it is then no longer the last reporter. RFC 2710 §4 alike.
	if e := f.find(g); e != nil && e.joined() && !e.respAt.IsZero() {
		e.respAt = time.Time{}
		e.lastReporter = false
		l.mcRearm()
	}
}

// mcDowngrade cancels what only IGMPv3/MLDv2 would send: the interface timer, group
// timers, state-change retransmissions (and memberships kept only for them).
func (l *Layer) mcDowngrade(f *mcFamily) {
	f.genAt = time.Time{}
	for e := f.groups; e != nil; {
		next := e.next
		e.respAt, e.changeLeft = time.Time{}, 0
		if !e.joined() {
			l.freeGroup(f, e)
		}
		e = next
	}
}

// freeGroup unlinks e from f and returns it to its pool.
func (l *Layer) freeGroup(f *mcFamily, e *group) {
	for pp := &f.groups; *pp != nil; pp = &(*pp).next {
		if *pp == e {
			*pp = e.next
			f.count--
			if e.heap {
				e.next = nil // a solicited-node element: the garbage collector takes it
				return
			}
			_, pool, _ := l.mc(e.n, e.addr.Is6())
			pool.Put(e)
			return
		}
	}
}

// mcUp reports every group of n when it comes up, as on a join (RFC 3376 §5.1 counts an
// interface coming up as a state change). A solicited-node group held only by addresses
// whose first DAD probe waits is reported when that probe goes (snmJoin).
func (l *Layer) mcUp(n *Netif) {
	for _, f := range [2]*mcFamily{&n.mc4, &n.mc6} {
		for e := f.groups; e != nil; {
			next := e.next
			switch {
			case !e.joined():
				l.freeGroup(f, e)
			case e.refs == 0 && e.snm:
				l.snmJoin(n, f, e)
			default:
				l.stateChange(n, f, e, false)
			}
			e = next
		}
	}
}

// delayedJoin schedules the state-change reports of a join of e to start at at instead of
// now: [Robustness Variable] of them, the first at at, from mcTimer.
func (l *Layer) delayedJoin(f *mcFamily, e *group, at time.Time) {
	e.leaving, e.respAt = false, time.Time{}
	e.changeLeft = uint8(f.robustness())
	e.changeAt = at
	l.mcRearm()
}

// mcDown forgets what n had pending and what it learned from queriers; its memberships
// stay.
func (l *Layer) mcDown(n *Netif) {
	for _, f := range [2]*mcFamily{&n.mc4, &n.mc6} {
		l.mcDowngrade(f)
		for e := f.groups; e != nil; e = e.next {
			e.lastReporter = false
		}
		f.v1Until, f.v2Until, f.qrv, f.qi = time.Time{}, time.Time{}, 0, 0
	}
	l.mcRearm()
}

// mcShutdown frees every membership of n (netif removal, Layer.Close).
func (l *Layer) mcShutdown(n *Netif) {
	for _, f := range [2]*mcFamily{&n.mc4, &n.mc6} {
		for f.groups != nil {
			l.freeGroup(f, f.groups)
		}
		*f = mcFamily{}
	}
	l.mcRearm()
}

// mcRearm points the multicast timer at the earliest pending report, or cancels it.
func (l *Layer) mcRearm() {
	if l.closed {
		return
	}
	var next time.Time
	take := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, n := range l.list {
		if !n.up {
			continue
		}
		for _, f := range [2]*mcFamily{&n.mc4, &n.mc6} {
			if !f.genAt.IsZero() {
				take(f.genAt)
			}
			for e := f.groups; e != nil; e = e.next {
				if e.changeLeft > 0 {
					take(e.changeAt)
				}
				if !e.respAt.IsZero() {
					take(e.respAt)
				}
			}
		}
	}
	if next.IsZero() {
		l.timers.Cancel(&l.mcTmo)
		return
	}
	if l.mcTmo.Pending() && l.mcTmo.When().Equal(next) {
		return
	}
	l.timers.Schedule(&l.mcTmo, max(next.Sub(l.now()), 0))
}

// mcTimer sends every report that is due, then re-arms.
func (l *Layer) mcTimer() {
	if l.closed {
		return
	}
	now := l.now()
	due := func(t time.Time) bool { return !t.IsZero() && !t.After(now) }
	for _, n := range l.list {
		if !n.up {
			continue
		}
		for i, f := range [2]*mcFamily{&n.mc4, &n.mc6} {
			v6 := i == 1
			mode := f.mode(now)
			if due(f.genAt) {
				f.genAt = time.Time{}
				if mode == modeV3 {
					// RFC 3376 §5.2: "If the expired timer is the interface timer ...
					// one Current-State Record is sent for each multicast address for
					// which the specified interface has reception state".
					l.sendAll(n, v6)
				}
			}
			for e := f.groups; e != nil; {
				next := e.next
				if due(e.respAt) {
					e.respAt = time.Time{}
					if e.joined() {
						if mode == modeV3 {
							l.sendRecord(n, v6, e.addr, recIsEx)
						} else {
							l.sendOld(n, v6, mode, e.addr, false)
							e.lastReporter = true
						}
					}
				}
				if e.changeLeft > 0 && due(e.changeAt) {
					e.changeLeft--
					uri := unsolicitedV2
					switch {
					case mode == modeV3 && e.leaving:
						uri = unsolicitedV3
						l.sendRecord(n, v6, e.addr, recToIn)
					case mode == modeV3:
						uri = unsolicitedV3
						l.sendRecord(n, v6, e.addr, recToEx)
					case !e.leaving:
						l.sendOld(n, v6, mode, e.addr, false)
						e.lastReporter = true
					}
					if e.changeLeft > 0 {
						e.changeAt = now.Add(l.randDur(uri))
					} else if !e.joined() {
						l.freeGroup(f, e)
					}
				}
				e = next
			}
		}
	}
	l.mcRearm()
	l.flushLinks()
}

// sendOld sends a v1/v2-style message for g on n: a report (IGMPv1, IGMPv2, MLDv1) or, with
// leave, a Leave Group / Done.
func (l *Layer) sendOld(n *Netif, v6 bool, mode mcMode, g netip.Addr, leave bool) {
	if n.follower {
		return // the leading netif reports
	}
	if v6 {
		l.mldSendV1(n, g, leave)
	} else {
		l.igmpSendOld(n, mode, g, leave)
	}
}

// sendAll sends the v3 current-state reports of every group of n (answering a general
// query).
func (l *Layer) sendAll(n *Netif, v6 bool) {
	l.sendRecord(n, v6, netip.Addr{}, recIsEx)
}

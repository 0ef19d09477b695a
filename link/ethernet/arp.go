package ethernet

import (
	"net/netip"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// ARP timing (spec constants and lwIP's choices).
const (
	// retryInterval separates requests for one address (lwIP's 1 s ARP timer tick).
	retryInterval = time.Second
	// maxRetries: a pending entry is given up, and its queue dropped, one interval after
	// the fifth retry (six requests in all).
	maxRetries = 5
	// refreshLead is how long before expiry a resolved entry still in use is refreshed by a
	// unicast request (lwIP's ARP_AGE_REREQUEST_USED_UNICAST); capped at MaxAge/2.
	refreshLead = 15 * time.Second
)

type state uint8

const (
	stateEmpty state = iota
	statePending
	stateStable
	// stateRefreshing is stable with a refresh request outstanding (lwIP's
	// ETHARP_STATE_STABLE_REREQUESTING): still used for output.
	stateRefreshing
)

func (s state) String() string {
	return [...]string{"empty", "pending", "stable", "stable-refreshing"}[s]
}

// entry is one ARP table row.
type entry struct {
	state      state
	static     bool
	used       bool // used for output since it was last confirmed
	refreshDue bool // past its refresh time: refresh at next use
	tries      uint8
	addr       netip.Addr
	src        netip.Addr // sender address of our requests
	mac        wire.MAC
	ctime      time.Time // pending: created; stable: last confirmed
	lastReq    time.Time
	q          pbuf.Queue // packets waiting for resolution, oldest first
}

// Lookup returns the MAC address of a resolved (or static) entry for addr.
func (e *Iface) Lookup(addr netip.Addr) ([6]byte, bool) {
	if i := e.find(addr); i >= 0 && e.table[i].state != statePending {
		return e.table[i].mac, true
	}
	return [6]byte{}, false
}

// AddStatic adds or replaces a static entry: it is never refreshed, never expires and never
// recycled, and ARP traffic does not change it. Packets queued for addr are sent.
func (e *Iface) AddStatic(addr netip.Addr, hw [6]byte) error {
	if e.closed {
		return errs.Clsd
	}
	if !addr.Is4() || addr.IsUnspecified() || addr.IsMulticast() || addr == broadcast4 || !wire.MAC(hw).IsUnicast() {
		return errs.Val
	}
	i := e.find(addr)
	if i < 0 {
		if i = e.newEntry(); i < 0 {
			return errs.Mem
		}
		e.table[i] = entry{addr: addr}
	}
	ent := &e.table[i]
	ent.static = true
	e.confirm(ent, hw, e.cfg.Timers.Now())
	e.rearm()
	return nil
}

// Flush drops every entry, static ones too, and every queued packet (counted), and cancels
// the timer: the netif went down.
func (e *Iface) Flush() {
	for i := range e.table {
		e.clear(&e.table[i])
	}
	e.cfg.Timers.Cancel(&e.timer)
}

// find returns the index of the entry for addr, or -1.
func (e *Iface) find(addr netip.Addr) int {
	if h := &e.table[e.hint]; h.state != stateEmpty && h.addr == addr {
		return e.hint
	}
	for i := range e.table {
		if e.table[i].state != stateEmpty && e.table[i].addr == addr {
			return i
		}
	}
	return -1
}

// newEntry returns the index of an entry to reuse, freed: an empty one, else the oldest
// resolved one, else the oldest pending one without queued packets, else the oldest pending
// one with a queue (whose packets are dropped). Static entries are never taken; -1 if all
// are static.
func (e *Iface) newEntry() int {
	best, bestRank := -1, 0
	for i := range e.table {
		ent := &e.table[i]
		var rank int
		switch {
		case ent.state == stateEmpty:
			return i
		case ent.static:
			continue
		case ent.state == stateStable || ent.state == stateRefreshing:
			rank = 3
		case ent.q.Empty():
			rank = 2
		default:
			rank = 1
		}
		if rank > bestRank || (rank == bestRank && ent.ctime.Before(e.table[best].ctime)) {
			best, bestRank = i, rank
		}
	}
	if best >= 0 {
		e.clear(&e.table[best])
	}
	return best
}

// clear frees ent's queue (counting each packet as a drop) and empties it.
func (e *Iface) clear(ent *entry) {
	e.st.Drop += uint64(ent.q.Clear(e.queue))
	*ent = entry{}
}

// enqueue holds p (taking ownership) until ent resolves. When the ARP_QUEUE pool is empty,
// the entry's own oldest packet makes room (counted); an entry with nothing queued drops p
// and reports errs.Mem.
func (e *Iface) enqueue(ent *entry, p *pbuf.Pbuf) error {
	d, err := ent.q.Push(e.queue, p)
	e.st.Drop += uint64(d)
	e.st.Memerr += uint64(d)
	return err
}

// confirm makes ent resolved to mac at now and sends what was queued for it.
func (e *Iface) confirm(ent *entry, mac wire.MAC, now time.Time) {
	ent.state = stateStable
	ent.mac = mac
	ent.ctime = now
	ent.used, ent.refreshDue, ent.tries = false, false, 0
	for p := ent.q.Pop(e.queue); p != nil; p = ent.q.Pop(e.queue) {
		e.Output(p, mac, uint16(wire.EtherTypeIPv4))
	}
}

// refresh asks a resolved entry's owner directly whether it still has the address.
func (e *Iface) refresh(ent *entry, now time.Time) {
	ent.state = stateRefreshing
	ent.lastReq = now
	e.request(ent, ent.mac)
	e.rearm()
}

// request sends an ARP request for ent's address to ethDst (broadcast, or the known MAC
// for a refresh).
func (e *Iface) request(ent *entry, ethDst wire.MAC) {
	src := ent.src
	if !src.Is4() {
		src = netip.AddrFrom4([4]byte{})
	}
	e.sendARP(wire.ARPRequest, ethDst, wire.MAC{}, src, ent.addr)
}

// sendARP builds and sends one ARP packet.
func (e *Iface) sendARP(op uint16, ethDst, tha wire.MAC, spa, tpa netip.Addr) {
	p, err := e.cfg.Alloc.Alloc(pbuf.LayerLink, wire.ARPLen, pbuf.RAM)
	if err != nil {
		e.st.Memerr++
		e.st.Drop++
		return
	}
	b, _ := p.Header(wire.ARPLen)
	if wire.EmitARP(b, op, e.hw, spa, tha, tpa) != nil {
		e.drop(p, &e.st.Err)
		return
	}
	e.st.Xmit++
	e.Output(p, ethDst, uint16(wire.EtherTypeARP))
}

// arpInput handles the ARP packet after the Ethernet header of frame p (borrowed).
func (e *Iface) arpInput(p *pbuf.Pbuf) {
	var b [wire.ARPLen]byte
	n := p.CopyOut(b[:], HeaderLen)
	if err := wire.CheckARP(b[:n]); err != nil {
		e.st.Drop++
		if err == wire.ErrTruncated {
			e.st.Lenerr++
		} else {
			e.st.Proterr++
		}
		return
	}
	e.st.Recv++
	a := wire.ARP(b[:])
	op, sha, spa, tpa := a.Operation(), a.SenderHardwareAddr(), a.SenderProtocolAddr(), a.TargetProtocolAddr()
	if op != wire.ARPRequest && op != wire.ARPReply {
		e.st.Drop++
		e.st.Proterr++
		return
	}
	if !sha.IsUnicast() || sha == e.hw {
		// A group or zero sender MAC is never a station's; our own MAC is a loop.
		e.st.Drop++
		e.st.Proterr++
		return
	}
	if e.watched(op, spa, tpa) {
		// After the packet is handled: fn may send (a DHCPDECLINE) or end the watch.
		defer e.watchFn(sha)
	}
	if e.up.HasIPv4(spa) {
		// Someone else claims one of our addresses (RFC 5227 §2.4 conflict): never learn it.
		e.st.Drop++
		e.st.Err++
		return
	}
	forUs := e.up.HasIPv4(tpa)
	now := e.cfg.Timers.Now()
	learnable := !spa.IsUnspecified() && !spa.IsMulticast() && spa != broadcast4
	// RFC 826: "If the pair <protocol type, sender protocol address> is already in my
	// translation table, update the sender hardware address field of the entry with the new
	// information in the packet and set Merge_flag to true." (RFC 5227 probes, with sender
	// 0.0.0.0, teach nothing.)
	merged := false
	if learnable {
		if i := e.find(spa); i >= 0 {
			merged = true
			if ent := &e.table[i]; !ent.static {
				e.confirm(ent, sha, now)
				e.rearm()
			}
		}
	}
	if !forUs {
		return
	}
	// RFC 826: "?Am I the target protocol address? Yes: If Merge_flag is false, add the
	// triplet <protocol type, sender protocol address, sender hardware address> to the
	// translation table."
	if learnable && !merged {
		if i := e.newEntry(); i >= 0 {
			ent := &e.table[i]
			*ent = entry{addr: spa}
			e.confirm(ent, sha, now)
			e.rearm()
		}
	}
	// RFC 826: "?Is the opcode ares_op$REQUEST? Yes: Swap hardware and protocol fields,
	// putting the local hardware and protocol addresses in the sender fields. Set the ar$op
	// field to ares_op$REPLY. Send the packet to the (new) target hardware address."
	if op == wire.ARPRequest && !e.cfg.Quiet {
		e.sendARP(wire.ARPReply, sha, sha, tpa, spa)
	}
}

// tick is the Iface's timer: retries for pending entries, refreshes and expiry for resolved
// ones. It runs in core context.
func (e *Iface) tick() {
	if e.closed {
		return
	}
	now := e.cfg.Timers.Now()
	for i := range e.table {
		ent := &e.table[i]
		if ent.static {
			continue
		}
		switch ent.state {
		case statePending:
			if now.Before(ent.lastReq.Add(retryInterval)) {
				continue
			}
			if int(ent.tries) > maxRetries {
				e.clear(ent) // no answer: drop the queue (counted)
				continue
			}
			ent.tries++
			ent.lastReq = now
			e.request(ent, wire.BroadcastMAC)
		case stateStable, stateRefreshing:
			if !now.Before(ent.ctime.Add(e.cfg.MaxAge)) {
				e.clear(ent)
				continue
			}
			if ent.state == stateRefreshing {
				if !now.Before(ent.lastReq.Add(retryInterval)) {
					// The unicast refresh went unanswered (the host may have a new
					// MAC): ask everyone.
					ent.lastReq = now
					e.request(ent, wire.BroadcastMAC)
				}
				continue
			}
			if !ent.refreshDue && !now.Before(ent.ctime.Add(e.cfg.MaxAge-e.lead)) {
				ent.refreshDue = true
				if ent.used {
					e.refresh(ent, now)
				}
			}
		}
	}
	e.rearm()
}

// rearm schedules the timer for the earliest deadline of a non-static entry, or cancels it
// when there is none: an idle table arms nothing.
func (e *Iface) rearm() {
	var next time.Time
	have := false
	for i := range e.table {
		ent := &e.table[i]
		var d time.Time
		switch {
		case ent.static || ent.state == stateEmpty:
			continue
		case ent.state == statePending:
			d = ent.lastReq.Add(retryInterval)
		case ent.state == stateRefreshing:
			d = ent.lastReq.Add(retryInterval)
			if exp := ent.ctime.Add(e.cfg.MaxAge); exp.Before(d) {
				d = exp
			}
		case ent.refreshDue:
			d = ent.ctime.Add(e.cfg.MaxAge)
		default:
			d = ent.ctime.Add(e.cfg.MaxAge - e.lead)
		}
		if !have || d.Before(next) {
			next, have = d, true
		}
	}
	if !have {
		e.cfg.Timers.Cancel(&e.timer)
		return
	}
	if e.timer.Pending() && e.timer.When().Equal(next) {
		return
	}
	e.cfg.Timers.Schedule(&e.timer, next.Sub(e.cfg.Timers.Now()))
}

// Request broadcasts an ARP request for target with sender protocol address sender; an
// unspecified sender makes it an RFC 5227 ARP Probe. It creates no table entry: the reply
// is learned (RFC 826) when it is addressed to one of our addresses. A Quiet Iface sends
// nothing.
func (e *Iface) Request(target, sender netip.Addr) {
	if e.closed || e.cfg.Quiet || !target.Is4() || !sender.Is4() {
		return
	}
	e.sendARP(wire.ARPRequest, wire.BroadcastMAC, wire.MAC{}, sender, target)
}

// Watch calls fn with the sender MAC of every ARP packet from another station whose sender
// address is addr, or that probes for addr (sender 0.0.0.0, target addr): RFC 5227 §2.1.1's
// conflicts while an address is probed. One watch per Iface; an invalid addr or a nil fn
// ends it. fn runs in core context, after the packet has been handled.
func (e *Iface) Watch(addr netip.Addr, fn func(hw [6]byte)) {
	if !addr.Is4() || fn == nil {
		e.watch, e.watchFn = netip.Addr{}, nil
		return
	}
	e.watch, e.watchFn = addr, fn
}

// watched reports whether an ARP packet (from another station) conflicts with the watched
// address.
func (e *Iface) watched(op uint16, spa, tpa netip.Addr) bool {
	if e.watchFn == nil {
		return false
	}
	return spa == e.watch || op == wire.ARPRequest && spa.IsUnspecified() && tpa == e.watch
}

package doctor

import (
	"fmt"
	"math/bits"
	"strconv"
	"time"

	"github.com/wispstack/wisp/opt"
)

// pcbExhaustion: TCP_PCB refused a connection, or is full now; how much of it TIME-WAIT
// holds decides between a shorter TCPMSL and a larger pool (lwIP's guide: MEMP_NUM_TCP_PCB
// counts TIME_WAIT PCBs too).
func pcbExhaustion(d *delta) []Finding {
	p, refused, ok := d.pool("TCP_PCB")
	if !ok || p.Avail == 0 {
		return nil
	}
	exhausted := diff(d.s.TCPExt.PCBExhausted, d.ps.TCPExt.PCBExhausted)
	recycled := diff(d.s.TCPExt.TimeWaitRecycled, d.ps.TCPExt.TimeWaitRecycled)
	if refused == 0 && exhausted == 0 && p.Used < p.Avail {
		return nil
	}
	tw := 0
	for _, c := range d.cur.Conns {
		if c.Proto == "tcp" && c.State == "TIME-WAIT" {
			tw++
		}
	}
	f := Finding{Severity: Error, Title: "TCP connections ran out of PCBs (pool TCP_PCB)"}
	if exhausted == 0 {
		f.Severity = Warn
		f.Title = "the TCP_PCB pool is full"
	}
	f.Detail = fmt.Sprintf("%d of %d PCBs in use, %d of them in TIME-WAIT; %s the pool refused %d allocations, %d TIME-WAIT PCBs were recycled and %d connections were refused (TCPExt.PCBExhausted).",
		p.Used, p.Avail, tw, d.since, refused, recycled, exhausted)
	msl := d.o.TCPMSL
	if 2*tw >= p.Used && tw > 0 && msl > time.Second {
		// TIME-WAIT lasts 2 × TCPMSL and holds its PCB: at the same rate of closes, a
		// shorter MSL keeps proportionally fewer; aim at a quarter of the pool.
		want := max(time.Duration(float64(msl)*float64(p.Avail)/(4*float64(tw))), time.Second).Truncate(time.Second)
		if want < msl {
			f.Title += fmt.Sprintf(", %d%% of them held by TIME-WAIT", 100*tw/max(p.Used, 1))
			f.Detail += fmt.Sprintf(" TIME-WAIT lasts 2 × TCPMSL = %v; TCPMSL = %v keeps about a quarter of the pool in TIME-WAIT at this rate of closes (or raise MempNumTCPPCB to %d).",
				2*msl, want, roundUp(p.Avail+tw, 16))
			f.Option, f.Value = "TCPMSL", want.String()
			return []Finding{f}
		}
	}
	f.Option, f.Value = "MempNumTCPPCB", strconv.Itoa(roundUp(max(p.Avail*3/2, p.Avail+int(refused)), 16))
	f.Detail += " More concurrent connections need a larger pool."
	return []Finding{f}
}

// pbufStarvation: received frames found no POOL pbuf.
func pbufStarvation(d *delta) []Finding {
	p, refused, ok := d.pool("PBUF_POOL")
	memerr := diff(d.s.Link.Memerr, d.ps.Link.Memerr)
	if !ok || refused == 0 && memerr == 0 {
		return nil
	}
	pruned := diff(d.s.TCPExt.RcvPruned, d.ps.TCPExt.RcvPruned)
	clamped := diff(d.s.TCPExt.RcvWndClamped, d.ps.TCPExt.RcvWndClamped)
	want := roundUp(max(2*p.Avail, p.Avail+int(max(refused, memerr))), 64)
	windows := 0
	for _, c := range d.cur.Conns {
		windows += c.RcvWnd
	}
	detail := fmt.Sprintf("%s %d received frames were dropped for want of a POOL pbuf (Link.Memerr %d, PBUF_POOL err %d); the pool has %d pbufs of %d bytes, at most %d were in use at once. TCP cut windows %d times and dropped %d segments to keep the pool's reserve.",
		d.since, memerr, memerr, refused, p.Avail, d.o.PbufPoolBufSize, p.Max, clamped, pruned)
	if bs := d.o.PbufPoolBufSize; bs > 0 && windows > 0 {
		detail += fmt.Sprintf(" The windows open now would need %d pbufs.", (windows+bs-1)/bs)
	}
	detail += " Drops look like loss to the peers: they retransmit and slow down."
	return []Finding{{Severity: Error, Title: "the pbuf pool ran dry: received frames were dropped",
		Detail: detail, Option: "PbufPoolSize", Value: strconv.Itoa(want)}}
}

// poolOptions names the option that sizes each pool (TCP_PCB and PBUF_POOL have rules
// of their own).
var poolOptions = map[string]string{
	"RAW_PCB": "MempNumRawPCB", "UDP_PCB": "MempNumUDPPCB", "TCP_PCB_LISTEN": "MempNumTCPPCBListen",
	"TCP_SEG": "MempNumTCPSeg", "REASSDATA": "MempNumReassData", "FRAG_PBUF": "MempNumFragPbuf",
	"ARP_QUEUE": "MempNumARPQueue", "IGMP_GROUP": "MempNumIGMPGroup", "ND6_QUEUE": "MempNumND6Queue",
	"MLD6_GROUP": "MempNumMLD6Group", "PBUF": "MempNumPbuf", "PBUF_RAM": "MempNumPbufRAM",
	"REASS_FRAG": "IPReassMaxPbufs",
}

// poolExhaustion: any other pool that refused an allocation.
func poolExhaustion(d *delta) []Finding {
	var fs []Finding
	for _, p := range d.s.Pools {
		name, ok := poolOptions[p.Name]
		if !ok {
			continue
		}
		_, refused, _ := d.pool(p.Name)
		if refused == 0 {
			continue
		}
		fs = append(fs, Finding{Severity: Error, Title: fmt.Sprintf("pool %s ran out", p.Name),
			Detail: fmt.Sprintf("%s it refused %d allocations; %d elements, at most %d in use at once.", d.since, refused, p.Avail, p.Max),
			Option: name, Value: strconv.Itoa(roundUp(max(2*p.Avail, p.Avail+int(refused)), 8))})
	}
	return fs
}

// heapMem: the heap refused allocations (ERR_MEM on write): exhausted, or fragmented when
// it refused while it was never close to full.
func heapMem(d *delta) []Finding {
	h, ph := d.s.Heap, d.ps.Heap
	refused := diff(h.Err, ph.Err)
	memerr := diff(d.s.TCP.Memerr, d.ps.TCP.Memerr)
	// TCP's Memerr also counts connections refused for want of a PCB (the pcbs rule's):
	// only what is left is the heap's or the segment pool's.
	pcbRefused := diff(d.s.TCPExt.PCBExhausted, d.ps.TCPExt.PCBExhausted) +
		diff(d.s.TCPExt.SynRefused, d.ps.TCPExt.SynRefused) + diff(d.s.TCPExt.CookieRefused, d.ps.TCPExt.CookieRefused)
	memerr -= min(memerr, pcbRefused)
	clamped := diff(d.s.TCPExt.SndShareClamped, d.ps.TCPExt.SndShareClamped)
	if h.Avail == 0 || refused == 0 && memerr == 0 && clamped == 0 {
		return nil
	}
	queued := 0
	for _, c := range d.cur.Conns {
		queued += c.Heap
	}
	free := h.Avail - h.Max // the least the heap ever had free
	if refused > 0 && free >= h.Avail/4 {
		return []Finding{{Severity: Warn, Title: "the heap is fragmented: it refused allocations while a quarter of it was free",
			Detail: fmt.Sprintf("%s the heap (MemSize %d) refused %d allocations, yet at its fullest it had %d bytes free: no free block was large enough (a buddy heap splits blocks in powers of two; many small writes held for long scatter it). A larger heap leaves more large blocks; writing in larger pieces helps too.",
				d.since, h.Avail, refused, free),
			Option: "MemSize", Value: strconv.Itoa(pow2(2 * h.Avail))}}
	}
	want := pow2(max(2*h.Avail, h.Max+2*queued))
	title := "writes failed with ERR_MEM: the heap (MemSize) is full"
	if refused == 0 && memerr == 0 {
		title = "connections' send buffers were cut to a share of a full heap"
	}
	return []Finding{{Severity: Error, Title: title,
		Detail: fmt.Sprintf("%s the heap refused %d allocations, TCP counted %d ERR_MEM and cut %d send buffers to their share of the heap; at its fullest %d of %d bytes were in use, connections hold %d now. Outgoing data waits in the heap: the sum of the send buffers must fit in it.",
			d.since, refused, memerr, clamped, h.Max, h.Avail, queued),
		Option: "MemSize", Value: strconv.Itoa(want)}}
}

// mailboxes: netconn's accept mailbox, the datagram mailboxes (stats.Conn.Drops, as
// netconn reports them) and TCP's listen backlog overflowed.
func mailboxes(d *delta) []Finding {
	var fs []Finding
	if n := diff(d.s.TCPExt.AcceptOverflows, d.ps.TCPExt.AcceptOverflows); n > 0 {
		fs = append(fs, Finding{Severity: Error, Title: "the accept mailbox overflowed: established connections were reset",
			Detail: fmt.Sprintf("%s %d connections completed their handshake while the listener's accept mailbox (AcceptMboxSize %d) was full, and were reset: the application does not call Accept fast enough, or the mailbox is too small for bursts.",
				d.since, n, d.o.AcceptMboxSize),
			Option: "AcceptMboxSize", Value: strconv.Itoa(roundUp(max(2*d.o.AcceptMboxSize, d.o.AcceptMboxSize+int(n)), 8))})
	}
	var drops uint64
	var boxes int
	for i := range d.cur.Conns {
		c := &d.cur.Conns[i]
		if c.Proto == "tcp" || c.Drops == 0 {
			continue
		}
		n := c.Drops
		if p := d.prevConn(c); p != nil {
			n = diff(c.Drops, p.Drops)
		} else if d.prev != nil {
			continue // new since the earlier input: its drops may be older than it
		}
		if n > 0 {
			drops += n
			boxes++
		}
	}
	if drops > 0 {
		fs = append(fs, Finding{Severity: Error, Title: "datagram mailboxes overflowed: received datagrams were dropped",
			Detail: fmt.Sprintf("%s %d datagrams found the mailbox of %d sockets full (UDPRecvMboxSize %d): the application reads slower than they arrive, or in bursts larger than the mailbox.",
				d.since, drops, boxes, d.o.UDPRecvMboxSize),
			Option: "UDPRecvMboxSize", Value: strconv.Itoa(roundUp(max(2*d.o.UDPRecvMboxSize, d.o.UDPRecvMboxSize+int(drops)), 8))})
	}
	if n := diff(d.s.TCPExt.ListenOverflows, d.ps.TCPExt.ListenOverflows); n > 0 {
		fs = append(fs, Finding{Severity: Warn, Title: "SYNs found a listener's backlog full",
			Detail: fmt.Sprintf("%s %d SYNs arrived with the backlog (TCPListenBacklog %d unless the listener set its own) full; %s",
				d.since, n, d.o.TCPListenBacklog, map[bool]string{true: "they were answered with SYN cookies.", false: "they were dropped and the clients retry after a second."}[d.o.TCPSynCookies]),
			Option: "TCPListenBacklog", Value: strconv.Itoa(roundUp(max(2*d.o.TCPListenBacklog, d.o.TCPListenBacklog+int(n)), 16))})
	}
	return fs
}

// windowLimits: a connection whose rate is its window over its round trip — the peer's
// window, ours, or its send buffer — while the other limits allow more. Needs two inputs.
func windowLimits(d *delta) []Finding {
	if d.prev == nil || d.dt < 100*time.Millisecond {
		return nil
	}
	var fs []Finding
	secs := d.dt.Seconds()
	for i := range d.cur.Conns {
		c := &d.cur.Conns[i]
		p := d.prevConn(c)
		if c.Proto != "tcp" || p == nil || c.RTT <= 0 {
			continue
		}
		rtt := c.RTT.Seconds()
		tx := float64(c.BytesAcked-p.BytesAcked) / secs
		rx := float64(c.BytesReceived-p.BytesReceived) / secs
		// Sending: the least of the send buffer, the peer's window and cwnd bounds what
		// is in flight; at rate ≈ limit / RTT that limit is what holds it back.
		if lim := min(c.SndBufSize, c.SndWnd, c.Cwnd); tx > 0 && lim > 0 && tx*rtt >= 0.5*float64(lim) && c.SndQueued >= lim/2 {
			switch {
			case lim == c.Cwnd:
				// Congestion control's business, not a setting.
			case lim == c.SndBufSize:
				want := roundUp(2*max(min(c.SndWnd, c.Cwnd), c.SndBufSize), 1024)
				field := "TCPSndBuf"
				if d.o.TCPMaxSndBuf > d.o.TCPSndBuf && c.SndBufSize >= d.o.TCPSndBuf {
					field = "TCPMaxSndBuf" // autotuning reached its limit
				}
				fs = append(fs, Finding{Severity: Warn,
					Title: fmt.Sprintf("%v→%v is held back by its send buffer (writes wait or fail with ERR_MEM)", c.Local, c.Remote),
					Detail: fmt.Sprintf("%s it sent %s/s with an RTT of %v: %d bytes per round trip, the whole send buffer (%d bytes), while the peer's window (%d) and cwnd (%d) allow more. The buffer should hold what may be in flight, twice that to keep writers ahead.",
						d.since, rate(tx), c.RTT.Round(time.Millisecond), int(tx*rtt), c.SndBufSize, c.SndWnd, c.Cwnd),
					Option: field, Value: strconv.Itoa(want)})
				if f := &fs[len(fs)-1]; 2*want > d.o.MemSize {
					f.Detail += fmt.Sprintf(" MemSize cannot hold that twice: raise it to %d too.", pow2(2*want))
				}
			default: // the peer's window
				want := windowFor(c.SndWnd, c.Cwnd)
				fs = append(fs, Finding{Severity: Warn,
					Title: fmt.Sprintf("%v→%v is limited by the peer's receive window: raise the peer's TCPWnd/TCPMaxWnd", c.Local, c.Remote),
					Detail: fmt.Sprintf("%s it sent %s/s with an RTT of %v, %d bytes per round trip: the peer's window of %d bytes allows no more (rate = window / RTT), while cwnd (%d) would. A window of %d bytes would carry %s/s.",
						d.since, rate(tx), c.RTT.Round(time.Millisecond), int(tx*rtt), c.SndWnd, c.Cwnd, want, rate(float64(want)/rtt)),
					Option: "TCPMaxWnd (the peer's)", Value: strconv.Itoa(want)})
			}
		}
		// Receiving: our window (autotuned up to TCPMaxWnd) bounds what the peer may have
		// in flight; the reader keeping up (little unread), rate ≈ window / RTT says it is
		// the window.
		if maxWnd := max(d.o.TCPMaxWnd, d.o.TCPWnd); rx > 0 && maxWnd > 0 && rx*rtt >= 0.5*float64(maxWnd) && c.RcvQueued < maxWnd/2 {
			want := windowFor(maxWnd, 0)
			f := Finding{Severity: Warn,
				Title: fmt.Sprintf("%v←%v is limited by our receive window", c.Local, c.Remote),
				Detail: fmt.Sprintf("%s it received %s/s with an RTT of %v, %d bytes per round trip: our window (TCPMaxWnd %d) allows no more (rate = window / RTT) while the reader keeps up. A window of %d bytes would carry %s/s.",
					d.since, rate(rx), c.RTT.Round(time.Millisecond), int(rx*rtt), maxWnd, want, rate(float64(want)/rtt)),
				Option: "TCPMaxWnd", Value: strconv.Itoa(want)}
			if want > 0xffff && !d.o.TCPWndScale {
				f.Detail += " Windows above 65535 bytes need TCPWndScale = true."
			}
			if need := poolFor(want, c.MSS, d.o.PbufPoolBufSize); need > d.o.PbufPoolSize {
				f.Detail += fmt.Sprintf(" A full window of %d-byte segments takes %d POOL pbufs: raise PbufPoolSize to %d too.", max(c.MSS, 536), need, roundUp(need, 64))
			}
			fs = append(fs, f)
		}
	}
	return fs
}

// windowFor is the window to suggest in place of a limiting window w: four times it (the
// path's capacity is unknown; the rate grows with the window up to it), at least 64 KiB,
// at least the sender's cwnd, at most the largest window TCP can announce.
func windowFor(w, cwnd int) int {
	return min(pow2(max(4*w, 64<<10, cwnd)), opt.MaxTCPWnd)
}

// poolFor is how many POOL pbufs a window of w bytes takes when it arrives in segments of
// mss bytes (each frame with its IP and TCP headers and link header room, chained over
// pbufs of bufSize bytes).
func poolFor(w, mss, bufSize int) int {
	mss = max(mss, 536)
	if bufSize <= 0 {
		return 0
	}
	frame := mss + 40 + 16
	return (w + mss - 1) / mss * ((frame + bufSize - 1) / bufSize)
}

// lateTimers: wakeups of the timer queue that ran LateTimer or more after their deadline:
// the core was held (a callback or Stack.Lock across slow work) or the process starved.
func lateTimers(d *delta) []Finding {
	n := diff(d.s.TimerLate, d.ps.TimerLate)
	if n == 0 {
		return nil
	}
	cores := max(d.cur.Cores, 1)
	f := Finding{Severity: Warn, Title: fmt.Sprintf("timers ran late, up to %v: the core was held too long", d.s.TimerMaxLate.Round(time.Millisecond)),
		Detail: fmt.Sprintf("%s %d timer wakeups ran 100 ms or more after their deadline (the worst %v late). While the core is held nothing moves: ACKs, retransmissions and delayed ACKs wait, and peers time out. Find what holds it — a callback that blocks, Stack.Lock or Callback around slow work; a busy stack spreads its connections over more cores (stack.Config.Cores, now %d).",
			d.since, n, d.s.TimerMaxLate.Round(time.Millisecond), cores),
		Option: "Cores", Value: strconv.Itoa(2 * cores)}
	return []Finding{f}
}

// retransmissions: a large share of the segments sent are retransmissions.
func retransmissions(d *delta) []Finding {
	rtx := diff(d.s.TCPExt.Retransmits, d.ps.TCPExt.Retransmits)
	xmit := diff(d.s.TCP.Xmit, d.ps.TCP.Xmit)
	if rtx < 10 || xmit == 0 || 20*rtx < xmit { // 5% or more
		return nil
	}
	rtos := diff(d.s.TCPExt.RTOs, d.ps.TCPExt.RTOs)
	spurious := diff(d.s.TCPExt.SpuriousRTOs, d.ps.TCPExt.SpuriousRTOs)
	f := Finding{Severity: Warn, Title: fmt.Sprintf("retransmission storm: %d%% of the segments sent were retransmissions", 100*rtx/xmit),
		Detail: fmt.Sprintf("%s %d of %d segments sent were retransmissions (%d after an RTO, %d fast, %d RTOs proven spurious).",
			d.since, rtx, xmit, rtos, diff(d.s.TCPExt.FastRetransmits, d.ps.TCPExt.FastRetransmits), spurious)}
	switch {
	case !d.o.TCPSACK:
		f.Detail += " Without SACK every loss costs a round trip or an RTO."
		f.Option, f.Value = "TCPSACK", "true"
	case rtos > 0 && 3*spurious >= rtos:
		f.Detail += fmt.Sprintf(" Many RTOs fired for segments that were not lost: the RTO floor (TCPMinRTO %v) is below what the path's delay varies by.", d.o.TCPMinRTO)
		f.Option, f.Value = "TCPMinRTO", (2 * max(d.o.TCPMinRTO, 100*time.Millisecond)).String()
	default:
		f.Detail += " The path loses packets (a full queue, a lossy link, a peer short of buffers: see its PbufPoolSize); congestion control slows down for each loss."
		if d.o.TCPCongestion != "cubic" {
			f.Option, f.Value = "TCPCongestion", "cubic"
		}
	}
	return []Finding{f}
}

// dnsServers: names failed while the resolver had one server to ask.
func dnsServers(d *delta) []Finding {
	var fs []Finding
	failed := diff(d.s.DNS.Failures, d.ps.DNS.Failures)
	if failed > 0 && d.s.DNS.Servers <= 1 {
		f := Finding{Severity: Error, Title: "DNS lookups failed and the resolver has one server",
			Detail: fmt.Sprintf("%s %d names failed (no answer after DNSMaxRetries %d tries, or a server error) with %d server configured: a second server answers when the first is down (Resolver.SetServer(1, …), or DHCP's list).",
				d.since, failed, d.o.DNSMaxRetries, d.s.DNS.Servers)}
		if d.o.DNSMaxServers < 2 {
			f.Option, f.Value = "DNSMaxServers", "2"
		} else {
			f.Option, f.Value = "DNSMaxServers", fmt.Sprintf("%d (and configure a second server)", d.o.DNSMaxServers)
		}
		fs = append(fs, f)
	}
	if n := diff(d.s.DNS.Mem, d.ps.DNS.Mem); n > 0 {
		fs = append(fs, Finding{Severity: Error, Title: "DNS lookups failed with ERR_MEM: the resolver's table was full",
			Detail: fmt.Sprintf("%s %d lookups found every one of the DNSTableSize %d entries in flight.", d.since, n, d.o.DNSTableSize),
			Option: "DNSTableSize", Value: strconv.Itoa(roundUp(max(2*d.o.DNSTableSize, d.o.DNSTableSize+int(n)), 4))})
	}
	return fs
}

// roundUp rounds n up to a multiple of m.
func roundUp(n, m int) int { return (n + m - 1) / m * m }

// pow2 rounds n up to a power of two.
func pow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// rate prints bytes per second.
func rate(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.2f GB", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.2f MB", bps/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%.1f kB", bps/1e3)
	}
	return fmt.Sprintf("%.0f B", bps)
}

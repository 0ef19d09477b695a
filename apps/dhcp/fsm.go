package dhcp

import (
	"net/netip"
	"slices"
	"time"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/udp"
	"github.com/wispstack/wisp/wire/dhcpv4"
)

// discover starts (again) from INIT: a DISCOVER now, retransmitted with backoff.
func (c *Client) discover() {
	c.xid = c.rand32()
	c.tries = 0
	c.offerAddr, c.offerServer = netip.Addr{}, netip.Addr{}
	c.setState(Selecting)
	c.sendDiscover()
}

func (c *Client) sendDiscover() {
	c.st.Discovers++
	c.send(dhcpv4.Discover, bcast4, netip.Addr{}, netip.Addr{}, netip.Addr{}, true)
	c.env.Timers.Schedule(&c.timer, c.backoff(c.tries))
	c.tries++
	c.publish()
}

// restartAfter goes to INIT and sends a DISCOVER after d (0: now).
func (c *Client) restartAfter(d time.Duration) {
	if d <= 0 {
		c.discover()
		return
	}
	c.setState(Init)
	c.env.Timers.Schedule(&c.timer, d)
}

// reboot is INIT-REBOOT (RFC 2131 §3.2): a broadcast REQUEST for the remembered address,
// without a server identifier.
func (c *Client) reboot() {
	c.setState(InitReboot)
	c.xid = c.rand32()
	c.tries = 0
	c.offerAddr, c.offerServer = c.cfg.Addr, netip.Addr{}
	c.setState(Rebooting)
	c.sendRequest()
}

// sendRequest sends the REQUEST of SELECTING or INIT-REBOOT: broadcast, ciaddr 0, the
// requested address, and (SELECTING) the chosen server (RFC 2131 §4.3.2).
func (c *Client) sendRequest() {
	c.st.Requests++
	if c.tries == 0 {
		c.reqSent = c.env.Timers.Now()
	}
	c.send(dhcpv4.Request, bcast4, netip.Addr{}, c.offerAddr, c.offerServer, true)
	c.env.Timers.Schedule(&c.timer, c.backoff(c.tries))
	c.tries++
	c.publish()
}

// tick is the client's one timer.
func (c *Client) tick() {
	now := c.env.Timers.Now()
	switch c.state {
	case Init:
		c.discover()
	case Selecting:
		c.st.Timeouts++
		c.sendDiscover()
	case Requesting, Rebooting:
		c.st.Timeouts++
		limit := requestTries
		if c.state == Rebooting {
			limit = rebootTries
		}
		if c.tries >= limit {
			c.discover()
			return
		}
		c.sendRequest()
	case Checking:
		c.probe()
	case Bound:
		if !c.announce.IsZero() && !now.Before(c.announce) {
			// RFC 5227 §2.3: ANNOUNCE_NUM (2) announcements ANNOUNCE_INTERVAL apart; the
			// first went when the address was installed (ip announces every new address).
			c.announce = time.Time{}
			_ = c.env.Netif.ARPAnnounce(c.lease.Addr.Addr())
			c.scheduleBound()
			return
		}
		if c.lease.Lease != Infinite && !now.Before(c.t1) {
			c.enterRenewing()
			return
		}
		c.scheduleBound()
	case Renewing, Rebinding:
		if !now.Before(c.end) {
			c.expire()
			return
		}
		if c.state == Renewing && !now.Before(c.t2) {
			// RFC 2131 §4.4.5: at T2 the client "moves to REBINDING state and broadcasts
			// a DHCPREQUEST message to extend its lease".
			c.st.Rebinds++
			c.xid = c.rand32()
			c.tries = 0
			c.setState(Rebinding)
			c.retransmitBound()
			return
		}
		c.st.Timeouts++
		c.retransmitBound()
	}
}

// enterRenewing starts RENEWING: a REQUEST unicast to the server that gave the lease.
func (c *Client) enterRenewing() {
	c.st.Renews++
	c.xid = c.rand32()
	c.tries = 0
	c.setState(Renewing)
	c.retransmitBound()
}

// retransmitBound sends the REQUEST of RENEWING (unicast) or REBINDING (broadcast), with
// ciaddr set and neither requested address nor server identifier (RFC 2131 §4.3.2), and
// arms the next try: "one-half of the remaining time until T2 (in RENEWING state) and
// one-half of the remaining time until expiration (in REBINDING state), down to a minimum
// of 60 seconds" (§4.4.5), never past T2 or the end.
func (c *Client) retransmitBound() {
	now := c.env.Timers.Now()
	if c.tries == 0 {
		c.reqSent = now
	}
	c.tries++
	c.st.Requests++
	a := c.lease.Addr.Addr()
	limit := c.end
	if c.state == Renewing {
		c.send(dhcpv4.Request, c.lease.Server, a, netip.Addr{}, netip.Addr{}, false)
		limit = c.t2
	} else {
		c.send(dhcpv4.Request, bcast4, a, netip.Addr{}, netip.Addr{}, false)
	}
	next := max(limit.Sub(now)/2, minRetransmit)
	if at := now.Add(next); at.After(limit) {
		next = limit.Sub(now)
	}
	c.env.Timers.Schedule(&c.timer, next)
	c.publish()
}

// scheduleBound arms T1 (nothing for an infinite lease).
func (c *Client) scheduleBound() {
	at := c.t1
	if c.lease.Lease == Infinite {
		at = time.Time{}
	}
	if !c.announce.IsZero() && (at.IsZero() || c.announce.Before(at)) {
		at = c.announce
	}
	if at.IsZero() {
		c.env.Timers.Cancel(&c.timer)
		return
	}
	c.env.Timers.Schedule(&c.timer, at.Sub(c.env.Timers.Now()))
}

// recv is the PCB's receive function: a reply for this netif's transaction moves the
// state machine; anything else is dropped. Takes ownership of p.
func (c *Client) recv(_ *udp.PCB, p *pbuf.Pbuf, info *udp.RecvInfo) {
	n := p.CopyOut(c.buf[:], 0)
	tooLong := p.TotLen() > len(c.buf)
	p.Free()
	if info.IfIndex != c.env.Netif.Index() {
		return // another netif's client hears it too
	}
	if tooLong || info.Src.Port() != dhcpv4.ServerPort || c.rx.Parse(c.buf[:n]) != nil ||
		c.rx.Op != dhcpv4.OpReply || c.rx.XID != c.xid || c.rx.CHAddr != c.hw {
		c.st.Drops++
		c.publish()
		return
	}
	r := &c.rx
	server := r.ServerID
	if !server.IsValid() {
		server = info.Src.Addr()
	}
	switch {
	case r.Type == dhcpv4.Offer && c.state == Selecting:
		// RFC 2131 §4.4.1: the client "MAY choose to collect several DHCPOFFER messages";
		// like lwIP it takes the first.
		if !r.YIAddr.IsValid() || !r.YIAddr.Is4() {
			c.st.Drops++
			break
		}
		c.st.Offers++
		c.offerAddr, c.offerServer = r.YIAddr, server
		c.tries = 0
		c.setState(Requesting)
		c.sendRequest()
	case r.Type == dhcpv4.Ack && (c.state == Requesting || c.state == Rebooting || c.state == Renewing || c.state == Rebinding):
		if !r.YIAddr.IsValid() || c.state == Requesting && server != c.offerServer {
			c.st.Drops++
			break
		}
		c.st.Acks++
		l := c.leaseOf(r, server)
		if c.state == Requesting && c.env.ACD {
			c.check(l)
			break
		}
		c.bind(l)
	case r.Type == dhcpv4.Nak && (c.state == Requesting || c.state == Rebooting || c.state == Renewing || c.state == Rebinding):
		if c.state == Requesting && server != c.offerServer {
			c.st.Drops++
			break
		}
		// RFC 2131 §4.4.4: "If the client receives a DHCPNAK message, the client restarts
		// the configuration process"; NAKs in a row back off as retransmissions do.
		c.st.Naks++
		if c.have {
			c.unbind()
		}
		c.naks++
		d := time.Duration(0)
		if c.naks > 1 {
			d = c.backoff(c.naks - 2)
		}
		c.restartAfter(d)
	default:
		c.st.Drops++
	}
	c.publish()
}

// leaseOf turns an ACK into a Lease (it copies what it keeps).
func (c *Client) leaseOf(r *dhcpv4.Repr, server netip.Addr) Lease {
	bits := dhcpv4.MaskBits(r.SubnetMask)
	if bits < 0 {
		bits = classful(r.YIAddr)
	}
	l := Lease{Addr: netip.PrefixFrom(r.YIAddr, bits), Server: server, Acquired: c.reqSent}
	if len(r.Routers) > 0 {
		l.Router = r.Routers[0]
	}
	if len(r.DNS) > 0 {
		l.DNS = slices.Clone(r.DNS)
	}
	switch r.LeaseTime {
	case 0, 0xffffffff:
		// No lease time: as lwIP, one that does not end.
		l.Lease = Infinite
		l.T1, l.T2 = Infinite, Infinite
		return l
	}
	l.Lease = time.Duration(r.LeaseTime) * time.Second
	// RFC 2131 §4.4.5: T1 "defaults to (0.5 * duration_of_lease)", T2 "to (0.875 *
	// duration_of_lease)".
	l.T1, l.T2 = time.Duration(r.T1)*time.Second, time.Duration(r.T2)*time.Second
	if l.T2 == 0 || l.T2 > l.Lease {
		l.T2 = l.Lease * 7 / 8
	}
	if l.T1 == 0 || l.T1 > l.T2 {
		l.T1 = min(l.Lease/2, l.T2)
	}
	return l
}

// classful is the mask a lease without option 1 gets (lwIP does the same).
func classful(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	}
	return 24
}

// check starts RFC 5227 probing of the ACKed address (CHECKING): PROBE_WAIT, then PROBE_NUM
// probes PROBE_MIN..PROBE_MAX apart, then ANNOUNCE_WAIT.
func (c *Client) check(l Lease) {
	c.pending = l
	c.probes = 0
	if err := c.env.Netif.WatchARP(l.Addr.Addr(), c.conflict); err != nil {
		c.bind(l)
		return
	}
	c.setState(Checking)
	// RFC 5227 §2.1.1: "the host should first wait for a random time interval selected
	// uniformly in the range zero to PROBE_WAIT seconds".
	c.env.Timers.Schedule(&c.timer, c.randDur(0, probeWait))
}

// probe is the CHECKING timer: the next probe, or the address is ours.
func (c *Client) probe() {
	if c.probes == probeNum {
		_ = c.env.Netif.WatchARP(netip.Addr{}, nil)
		c.bind(c.pending)
		return
	}
	c.probes++
	_ = c.env.Netif.ARPRequest(c.pending.Addr.Addr(), netip.IPv4Unspecified())
	if c.probes < probeNum {
		c.env.Timers.Schedule(&c.timer, c.randDur(probeMin, probeMax))
	} else {
		c.env.Timers.Schedule(&c.timer, announceWait)
	}
}

// conflict hears another station use or probe the address being checked: RFC 2131
// §3.1.5, "the client MUST send a DHCPDECLINE message to the server and restarts the
// configuration process ... SHOULD wait a minimum of ten seconds".
func (c *Client) conflict([6]byte) {
	if c.state != Checking {
		return
	}
	_ = c.env.Netif.WatchARP(netip.Addr{}, nil)
	c.st.Declines++
	c.xid = c.rand32()
	c.send(dhcpv4.Decline, bcast4, netip.Addr{}, c.pending.Addr.Addr(), c.pending.Server, true)
	c.pending = Lease{}
	c.restartAfter(declineWait)
}

// bind installs l (replacing a different lease) and arms T1: BOUND.
func (c *Client) bind(l Lease) {
	if c.have && (c.lease.Router != l.Router || !slices.Equal(c.lease.DNS, l.DNS)) && c.lease.Addr == l.Addr && c.env.Change != nil {
		c.env.Change(c.lease, l)
	} else if c.have && (c.lease.Addr != l.Addr || c.lease.Router != l.Router || !slices.Equal(c.lease.DNS, l.DNS)) {
		c.unbind()
	}
	if !c.have && c.env.Install != nil {
		if err := c.env.Install(l); err != nil {
			c.restartAfter(declineWait)
			return
		}
	}
	c.lease, c.have = l, true
	c.naks = 0
	c.t1, c.t2, c.end = l.Acquired.Add(l.T1), l.Acquired.Add(l.T2), l.Acquired.Add(l.Lease)
	if l.Lease == Infinite {
		c.t1, c.t2, c.end = time.Time{}, time.Time{}, time.Time{}
	}
	c.announce = time.Time{}
	if c.state == Checking {
		c.announce = c.env.Timers.Now().Add(announceGap)
	}
	c.setState(Bound)
	c.scheduleBound()
	// Learn the server's MAC now (its reply is for our new address): the unicast REQUEST
	// of RENEWING and the RELEASE at Stop then need no resolution.
	if l.Addr.Contains(l.Server) {
		_ = c.env.Netif.ARPRequest(l.Server, l.Addr.Addr())
	}
	if c.cfg.OnChange != nil {
		c.cfg.OnChange(l)
	}
}

// unbind removes the installed lease and says so.
func (c *Client) unbind() {
	old := c.lease
	c.lease, c.have = Lease{}, false
	if c.env.Remove != nil {
		c.env.Remove(old)
	}
	c.publish()
	if c.cfg.OnChange != nil {
		c.cfg.OnChange(Lease{})
	}
}

// expire: the lease ran out in REBINDING. RFC 2131 §4.4.5: "the client MUST immediately
// stop any other network processing and requests network initialization parameters as if
// the client were uninitialized".
func (c *Client) expire() {
	c.st.Expiries++
	c.unbind()
	c.discover()
}

var bcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// params is option 55: subnet mask, router, DNS, host name, lease time, T1, T2.
var params = []byte{dhcpv4.OptSubnetMask, dhcpv4.OptRouter, dhcpv4.OptDNS, dhcpv4.OptHostname,
	dhcpv4.OptLeaseTime, dhcpv4.OptRenewalTime, dhcpv4.OptRebindingTime}

// send builds a client message of the current transaction and sends it to dst:67, from
// ciaddr (RENEWING, REBINDING, RELEASE) or from 0.0.0.0 out of the netif: RFC 2131 Table 5
// decides the fields. Failures are counted by UDP; retransmission covers them.
func (c *Client) send(typ dhcpv4.MessageType, dst, ciaddr, requested, server netip.Addr, broadcastFlag bool) {
	r := &c.tx
	*r = dhcpv4.Repr{Op: dhcpv4.OpRequest, XID: c.xid, Broadcast: broadcastFlag, CIAddr: ciaddr, CHAddr: c.hw,
		Type: typ, RequestedIP: requested, ServerID: server, ClientID: c.cid}
	if typ == dhcpv4.Discover || typ == dhcpv4.Request {
		r.ParamRequest = params
		r.MaxSize = uint16(min(max(c.env.Netif.MTU(), 576), len(c.buf)))
		r.Hostname = c.host
	}
	n := r.Len()
	p, err := c.env.Alloc.Alloc(pbuf.LayerTransport, n, pbuf.RAM)
	if err != nil {
		return
	}
	if _, err := r.Emit(p.Payload()); err != nil {
		p.Free()
		return
	}
	to := netip.AddrPortFrom(dst, dhcpv4.ServerPort)
	if dst == bcast4 {
		_ = c.pcb.SendToFrom(p, to, netip.Addr{}, c.env.Netif.Index())
		return
	}
	_ = c.pcb.SendToFrom(p, to, ciaddr, 0)
}

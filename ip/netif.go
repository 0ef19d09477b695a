package ip

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/ethernet"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
)

// NetifConfig configures a netif.
type NetifConfig struct {
	Name string // "" names it after its medium and index ("eth1", "ip2")
	MTU  int    // 0: the endpoint's MTU
	// Follower makes the netif one of several views of a link that another Layer's netif
	// speaks for (a stack with several cores: core 0's netif leads, the other cores'
	// follow). A follower learns neighbours from the ARP and ND messages it is given and
	// resolves its own next hops, but never answers a solicitation or an ARP request, never
	// announces an address or runs duplicate address detection (its addresses are usable at
	// once), never solicits routers, never reports multicast membership and never sets a
	// link.AddrFilter's addresses.
	Follower bool
	// Shared says other Layers view the same link (a stack with several cores; a Follower
	// is always shared): a neighbour advertisement with no entry to update is learned,
	// since it answers another view's solicitation and every view is given it.
	Shared bool
	// Intercept, when set, makes the netif deliver unicast packets to addresses it does not
	// own to the transports (Header.Intercepted) instead of forwarding or dropping them.
	Intercept *Intercept
}

// Netif is one network interface: a link endpoint, its addresses and its batch of frames
// waiting for Flush (lwIP's struct netif).
type Netif struct {
	l        *Layer
	name     string
	index    int
	mtu      int
	ep       link.Endpoint
	medium   link.Medium
	hw       [6]byte
	eth      *ethernet.Iface
	up       bool
	addrs    []*ifAddr
	batch    []*pbuf.Pbuf
	stats    stats.Proto
	roomer   link.TxRoomer   // ep, when its transmit queue can fill
	congests bool            // ep's full queue is congestion (link.TxCongester)
	off      link.Offloads   // what ep offers (link.Offloader), made consistent (gso.go)
	follower bool            // NetifConfig.Follower
	shared   bool            // NetifConfig.Shared or Follower
	icept    *Intercept      // NetifConfig.Intercept, SetIntercept (a copy; nil: off)
	filter   link.AddrFilter // ep, when it receives only its addresses' traffic (and n leads)

	// Learned from router advertisements (RFC 4861 §6.3.4); zero: use the defaults.
	mtu6      int
	hopLimit  uint8
	reachable time.Duration
	retrans   time.Duration

	// Router solicitations still to send and when the next is due (RFC 4861 §6.3.7).
	rsLeft int
	// onRA hears the M and O flags of every accepted Router Advertisement (SetRAHook).
	onRA   func(managed, other bool)
	rsNext time.Time

	// Multicast memberships and IGMP / MLD state (mcast.go).
	mc4, mc6 mcFamily

	// acceptUDP is the UDP port taken for any address while n has no IPv4 address
	// (SetAcceptUDPPort, dhcphook.go); 0: off.
	acceptUDP uint16
}

// AddNetif adds a netif over ep with the lowest free index (1..255). An Ethernet endpoint
// gets an ethernet.Iface (ARP) whose frames join the netif's batch. The netif starts down.
// The caller attaches ep to a dispatcher that feeds Netif.Input.
func (l *Layer) AddNetif(ep link.Endpoint, c NetifConfig) (*Netif, error) {
	l.timers.AssertCore()
	if l.closed {
		return nil, errs.Clsd
	}
	if ep == nil || c.MTU < 0 {
		return nil, errs.Val
	}
	idx := 0
	for i := 1; i < len(l.netifs); i++ {
		if l.netifs[i] == nil {
			idx = i
			break
		}
	}
	if idx == 0 {
		return nil, errs.Mem
	}
	n := &Netif{l: l, name: c.Name, index: idx, mtu: c.MTU, ep: ep, medium: ep.Medium(),
		batch: make([]*pbuf.Pbuf, 0, link.MaxBatch), follower: c.Follower, shared: c.Shared || c.Follower}
	if err := n.setIntercept(c.Intercept); err != nil {
		return nil, err
	}
	if !c.Follower {
		n.filter, _ = ep.(link.AddrFilter)
	}
	if n.mtu == 0 {
		n.mtu = ep.MTU()
	}
	n.roomer, _ = ep.(link.TxRoomer)
	if tc, ok := ep.(link.TxCongester); ok {
		n.congests = tc.TxFullIsCongestion()
	}
	if n.mtu < minMTU4 {
		return nil, errs.Val
	}
	n.setOffloads(ep)
	switch n.medium {
	case link.MediumIP:
		if n.name == "" {
			n.name = fmt.Sprintf("ip%d", idx)
		}
	case link.MediumEthernet:
		if n.name == "" {
			n.name = fmt.Sprintf("eth%d", idx)
		}
		n.hw = ep.HardwareAddr()
		eth, err := ethernet.New(n.hw, (*ethUpper)(n), ethernet.Config{
			Alloc: l.alloc, Timers: l.timers, Pools: l.pools,
			TableSize: l.opts.ARPTableSize, QueueLen: l.opts.MempNumARPQueue,
			MaxAge: l.opts.ARPMaxAge, Transmit: n.xmit, Quiet: c.Follower,
		})
		if err != nil {
			return nil, err
		}
		n.eth = eth
	default:
		return nil, errs.Val
	}
	for _, o := range l.list {
		if o.name == n.name {
			if n.eth != nil {
				n.eth.Close()
			}
			return nil, errs.Use
		}
	}
	l.netifs[idx] = n
	l.list = append(l.list, nil)
	i := len(l.list) - 1
	for ; i > 0 && l.list[i-1].index > idx; i-- {
		l.list[i] = l.list[i-1]
	}
	l.list[i] = n
	l.changed() // its name and index now resolve zones
	return n, nil
}

// RemoveNetif takes n down, removes its addresses, routes and neighbours, and closes its
// ethernet interface. Frames still batched are freed. The endpoint is not closed.
func (l *Layer) RemoveNetif(n *Netif) error {
	l.timers.AssertCore()
	if n == nil || n.l != l || l.netifs[n.index] != n {
		return errs.Val
	}
	n.shutdown()
	l.netifs[n.index] = nil
	l.changed()
	for i, o := range l.list {
		if o == n {
			l.list = append(l.list[:i], l.list[i+1:]...)
			break
		}
	}
	l.removeRoutes(n)
	l.rearm()
	return nil
}

// shutdown takes n down for good: flushes everything it holds and closes its Iface.
func (n *Netif) shutdown() {
	n.SetUp(false)
	n.l.mcShutdown(n)
	n.addrs = nil
	n.l.changed()
	n.syncFilter()
	if n.eth != nil {
		n.eth.Close()
	}
	for i, p := range n.batch {
		p.Free()
		n.batch[i] = nil
	}
	n.batch = n.batch[:0]
}

// Netifs returns the netifs in index order (a new slice).
func (l *Layer) Netifs() []*Netif {
	l.timers.AssertCore()
	return append([]*Netif(nil), l.list...)
}

// NetifByIndex returns the netif with index i, or nil.
func (l *Layer) NetifByIndex(i int) *Netif {
	l.timers.AssertCore()
	if i <= 0 || i >= len(l.netifs) {
		return nil
	}
	return l.netifs[i]
}

// NetifByName returns the netif named name, or nil.
func (l *Layer) NetifByName(name string) *Netif {
	l.timers.AssertCore()
	for _, n := range l.list {
		if n.name == name {
			return n
		}
	}
	return nil
}

// Name returns the netif's name.
func (n *Netif) Name() string { return n.name }

// Index returns the netif's index, 1..255.
func (n *Netif) Index() int { return n.index }

// MTU returns the IP MTU.
func (n *Netif) MTU() int { return n.mtu }

// mtuFor returns the MTU for a family: an RA's MTU option may lower the IPv6 one.
func (n *Netif) mtuFor(v6 bool) int {
	if v6 && n.mtu6 > 0 && n.mtu6 < n.mtu {
		return n.mtu6
	}
	return n.mtu
}

const minMTU4 = 68 // RFC 791: "Every internet module must be able to forward a datagram of 68 octets"

// SetMTU sets the IP MTU: at least 68, at most the endpoint's MTU. IPv6 needs 1280 (RFC
// 8200 §5); below that IPv6 output on n fails.
func (n *Netif) SetMTU(mtu int) error {
	n.l.timers.AssertCore()
	if mtu < minMTU4 || mtu > n.ep.MTU() {
		return errs.Val
	}
	n.mtu = mtu
	return nil
}

// Medium returns the link medium.
func (n *Netif) Medium() link.Medium { return n.medium }

// HardwareAddr returns the MAC address (zero for MediumIP).
func (n *Netif) HardwareAddr() [6]byte { return n.hw }

// Endpoint returns the link endpoint.
func (n *Netif) Endpoint() link.Endpoint { return n.ep }

// Up reports whether the netif is up.
func (n *Netif) Up() bool { return n.up }

// Stats returns the netif's LINK record: frames received, transmitted and dropped.
func (n *Netif) Stats() *stats.Proto { return &n.stats }

// SetUp brings the netif up or down. Up on Ethernet: an IPv6 link-local address from the MAC
// (modified EUI-64, RFC 4291 Appendix A), duplicate address detection for tentative
// addresses, router solicitations when Options.IPv6AutoConfig, a gratuitous ARP for each
// IPv4 address. Down: neighbour caches and queued packets are flushed.
func (n *Netif) SetUp(up bool) {
	n.l.timers.AssertCore()
	l := n.l
	if up == n.up || l.closed && up {
		return
	}
	n.up = up
	l.changed()
	if !up {
		if n.eth != nil {
			n.eth.Flush()
		}
		l.nd.flush(n)
		n.rsLeft = 0
		n.mtu6, n.hopLimit, n.reachable, n.retrans = 0, 0, 0, 0
		// Autoconfigured addresses and RA state go with the link; manual addresses stay and
		// are checked again (DAD) when the netif comes back up.
		kept := n.addrs[:0]
		for _, a := range n.addrs {
			if a.origin == SLAAC || a.origin == LinkLocal {
				l.removeConnected(n, a.prefix)
				continue
			}
			kept = append(kept, a)
		}
		for i := len(kept); i < len(n.addrs); i++ {
			n.addrs[i] = nil
		}
		n.addrs = kept
		l.changed()
		n.syncFilter()
		l.snmSync(n, true) // down: the groups of the addresses gone are freed unreported
		l.removeAutoRoutes(n)
		l.rearm()
		l.mcDown(n)
		return
	}
	if n.eth != nil {
		// RFC 4862 §5.3: a link-local address is formed when an interface is enabled.
		ll := netip.PrefixFrom(linkLocalFromMAC(n.hw), 64)
		if n.findAddr(ll.Addr()) == nil {
			n.addAddr(ll, LinkLocal, time.Time{}, time.Time{})
		}
		for _, a := range n.addrs {
			if a.prefix.Addr().Is6() {
				l.nd.startDAD(n, a, true)
			} else {
				n.eth.Announce(a.prefix.Addr())
			}
		}
		if l.opts.IPv6AutoConfig && !n.follower {
			// RFC 4861 §6.3.7: up to MAX_RTR_SOLICITATIONS, the first after a random delay
			// of up to MAX_RTR_SOLICITATION_DELAY.
			n.rsLeft = maxRtrSolicitations
			n.rsNext = l.now().Add(l.randDur(maxRtrSolicitationDelay))
		}
	}
	l.snmSync(n, false) // mcUp reports them
	l.rearm()
	l.mcUp(n)
}

// Input takes ownership of one received frame: an Ethernet frame or a bare IP packet,
// per the medium. Core context.
func (n *Netif) Input(p *pbuf.Pbuf) {
	n.l.timers.AssertCore()
	if p == nil {
		return
	}
	n.stats.Recv++
	if !n.up || n.l.closed {
		p.Free()
		n.stats.Drop++
		n.stats.Err++
		return
	}
	p.SetIfIndex(n.index)
	if n.eth != nil {
		n.eth.Input(p)
		return
	}
	p.SetFlags(p.Flags() &^ (pbuf.FlagLinkBroadcast | pbuf.FlagLinkMulticast))
	n.l.ipInput(n, p, false)
}

// Unframe removes the Ethernet header of a received frame that is a unicast IP packet to
// the netif (ethernet.Iface.Unframe) and reports whether it did; it borrows p. False on an
// IP-medium netif. Core context.
func (n *Netif) Unframe(p *pbuf.Pbuf) bool {
	return n.eth != nil && n.eth.Unframe(p)
}

// InputIP takes ownership of one received IP packet of an Ethernet netif that Unframe has
// unframed, so that software GRO can work on the IP packets of a batch. Core context.
func (n *Netif) InputIP(p *pbuf.Pbuf) {
	n.l.timers.AssertCore()
	n.stats.Recv++
	if !n.up || n.l.closed {
		p.Free()
		n.stats.Drop++
		n.stats.Err++
		return
	}
	p.SetIfIndex(n.index)
	p.SetFlags(p.Flags() &^ (pbuf.FlagLinkBroadcast | pbuf.FlagLinkMulticast))
	n.l.ipInput(n, p, false)
}

// xmit takes ownership of one complete frame and adds it to the batch written at Flush
// (a full batch is written at once), cut into segments or with its checksum completed
// first where the link will not do it (gso.go).
func (n *Netif) xmit(p *pbuf.Pbuf) {
	if typ, _ := p.GSO(); typ != pbuf.GSONone || p.Flags()&pbuf.FlagChecksumPartial != 0 {
		if p = n.txReady(p); p == nil {
			return
		}
	}
	n.xmitFrame(p)
}

// xmitFrame adds frame p (taken), as the link takes it, to the batch.
func (n *Netif) xmitFrame(p *pbuf.Pbuf) {
	if len(n.batch) == cap(n.batch) {
		n.flush()
	}
	n.batch = append(n.batch, p)
}

// full reports whether the link would refuse another frame at the next flush: its queue
// has no room beyond the frames already batched (link.TxRoomer). Links that do not say are
// never full.
func (n *Netif) full() bool {
	return n.roomer != nil && n.roomer.TxRoom() <= len(n.batch)
}

// flush writes the batch to the endpoint, which takes ownership of every frame.
func (n *Netif) flush() {
	if len(n.batch) == 0 {
		return
	}
	k, err := n.ep.WritePackets(n.batch)
	n.stats.Xmit += uint64(k)
	if rest := len(n.batch) - k; rest > 0 {
		n.stats.Drop += uint64(rest)
		if err == errs.WouldBlock {
			n.stats.Memerr += uint64(rest)
		} else {
			n.stats.Err += uint64(rest)
		}
	}
	clear(n.batch)
	n.batch = n.batch[:0]
}

// ethUpper is the netif as seen by its ethernet.Iface.
type ethUpper Netif

// InputIP implements ethernet.Upper; it takes ownership of p.
func (u *ethUpper) InputIP(p *pbuf.Pbuf) { n := (*Netif)(u); n.l.ipInput(n, p, false) }

// HasIPv4 implements ethernet.Upper.
func (u *ethUpper) HasIPv4(a netip.Addr) bool {
	return a.Is4() && (*Netif)(u).findAddr(a) != nil
}

// linkLocalFromMAC forms fe80::/64 with the modified EUI-64 interface identifier of mac
// (RFC 4291 Appendix A: insert ff:fe in the middle and invert the universal/local bit).
func linkLocalFromMAC(mac [6]byte) netip.Addr {
	var b [16]byte
	b[0], b[1] = 0xfe, 0x80
	iid := eui64(mac)
	copy(b[8:], iid[:])
	return netip.AddrFrom16(b)
}

func eui64(mac [6]byte) [8]byte {
	return [8]byte{mac[0] ^ 0x02, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]}
}

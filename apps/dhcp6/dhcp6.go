package dhcp6

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/udp"
	"github.com/wispstack/wisp/wire/dhcpv6"
)

// Transmission and refresh parameters (RFC 8415 §7.6, §21.23).
const (
	InfMaxDelay     = time.Second         // INF_MAX_DELAY: the first request waits up to this
	InfTimeout      = time.Second         // INF_TIMEOUT: IRT of an Information-Request
	InfMaxRT        = 3600 * time.Second  // INF_MAX_RT: its MRT
	IRTDefault      = 86400 * time.Second // IRT_DEFAULT: refresh when the server names none
	IRTMinimum      = 600 * time.Second   // IRT_MINIMUM: the shortest refresh accepted
	infiniteRefresh = 0xffffffff
)

// Config configures a Client.
type Config struct {
	// Always sends an Information-Request as soon as the netif has a usable link-local
	// address, without waiting for a Router Advertisement with O set.
	Always bool
	// DUID is the Client Identifier; nil: a DUID-LL of the netif's MAC (RFC 8415 §11.4).
	DUID []byte
	// OnChange, when set, hears every Reply installed, in core context.
	OnChange func(Info)
}

// Info is what the last Reply said.
type Info struct {
	DNS      []netip.Addr
	Domains  []string
	Refresh  time.Duration // 0: never (the server said infinity)
	Server   []byte        // its DUID
	Acquired time.Time
}

// State is where the client is.
type State uint8

// The states.
const (
	Idle       State = iota // waiting for a Router Advertisement with O or M
	Requesting              // an Information-Request is out, retransmitted until a Reply
	Informed                // a Reply was installed; the refresh timer runs
	Off                     // stopped
)

func (s State) String() string {
	return [...]string{"IDLE", "REQUESTING", "INFORMED", "OFF"}[s]
}

// Stats counts what the client did.
type Stats struct {
	Requests    uint64 // Information-Requests sent, retransmissions included
	Retransmits uint64
	Replies     uint64 // Replies installed
	Bogus       uint64 // datagrams refused (type, transaction, identifiers, status, malformed)
	Refreshes   uint64 // exchanges started by the refresh timer
	NoLinkLocal uint64 // sends postponed for want of a preferred link-local address
	SendErrs    uint64
}

// Env is what the client runs on: core 0's UDP, timer queue and allocator, the netif, and
// where the DNS servers go.
type Env struct {
	UDP    *udp.Proto
	Timers *clock.Timeouts
	Alloc  *pbuf.Allocator
	Netif  *ip.Netif
	Seed   uint64
	// SetDNS installs the Reply's DNS servers and search list (nil, nil removes them).
	SetDNS func(servers []netip.Addr, domains []string)
}

// Client is one netif's stateless DHCPv6 client.
type Client struct {
	env  Env
	cfg  Config
	pcb  *udp.PCB
	src  netip.Addr // the link-local address pcb is bound to
	tmo  clock.Timeout
	rnd  *rand.Rand
	duid []byte

	xid   uint32
	start time.Time     // first transmission of this exchange (Elapsed Time)
	rt    time.Duration // the current retransmission timeout
	mrt   time.Duration // INF_MAX_RT, or the server's option 83
	sent  bool          // the exchange has sent its first message
	buf   [2048]byte    // a received message

	mu    sync.Mutex // guards the fields below
	state State
	info  Info
	st    Stats
}

// New makes a client for env.Netif and installs its RA hook (ip.Netif.SetRAHook). Core
// context. With Config.Always it starts at once.
func New(env Env, cfg Config) (*Client, error) {
	env.Timers.AssertCore()
	c := &Client{env: env, cfg: cfg, mrt: InfMaxRT, rnd: rand.New(rand.NewPCG(env.Seed, 0x646863703600))}
	c.duid = cfg.DUID
	if c.duid == nil {
		c.duid = dhcpv6.DUIDLL(make([]byte, 10), env.Netif.HardwareAddr())
	}
	c.tmo.Init(c.fire)
	env.Netif.SetRAHook(c.RouterAdvertised)
	if cfg.Always {
		c.begin(true)
	}
	return c, nil
}

// RouterAdvertised is the RA hook: M or O starts an exchange unless one is running or a
// Reply's information is still fresh (RFC 8415 §18.2.6). Core context.
func (c *Client) RouterAdvertised(managed, other bool) {
	if (managed || other) && c.State() == Idle {
		c.begin(true)
	}
}

// State returns the client's state. Safe for concurrent use.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Info returns what the last Reply said, and false before any. Safe for concurrent use.
func (c *Client) Info() (Info, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info, !c.info.Acquired.IsZero()
}

// Stats returns the counters. Safe for concurrent use.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// Stop stops the client: its RA hook, timer and PCB go, and the DNS servers it installed
// are removed. Core context; stopping twice is harmless.
func (c *Client) Stop() {
	if c.State() == Off {
		return
	}
	c.setState(Off)
	c.env.Netif.SetRAHook(nil)
	c.env.Timers.Cancel(&c.tmo)
	if c.pcb != nil {
		c.pcb.Close()
		c.pcb = nil
	}
	if c.env.SetDNS != nil {
		c.env.SetDNS(nil, nil)
	}
}

func (c *Client) setState(s State) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
}

func (c *Client) count(fn func(*Stats)) {
	c.mu.Lock()
	fn(&c.st)
	c.mu.Unlock()
}

// jitter returns d·(1 + RAND), RAND uniform in [-0.1, 0.1] (RFC 8415 §15).
func (c *Client) jitter(d time.Duration) time.Duration {
	return d + time.Duration((c.rnd.Float64()*0.2-0.1)*float64(d))
}

// begin starts an exchange with a new transaction ID; the first message waits a random
// time up to INF_MAX_DELAY when delay is set (RFC 8415 §18.2.6).
func (c *Client) begin(delay bool) {
	c.setState(Requesting)
	c.xid = c.rnd.Uint32() & 0xffffff
	c.sent = false
	c.rt = 0
	d := time.Duration(0)
	if delay {
		d = time.Duration(c.rnd.Int64N(int64(InfMaxDelay)))
	}
	c.env.Timers.Schedule(&c.tmo, d)
}

// fire sends or retransmits while Requesting, and refreshes when Informed.
func (c *Client) fire() {
	switch c.State() {
	case Requesting:
		c.transmit()
	case Informed:
		// RFC 8415 §18.2.6: when the refresh time expires, get new information.
		c.count(func(st *Stats) { st.Refreshes++ })
		c.begin(false)
	}
}

// linkLocal returns the netif's preferred link-local address.
func (c *Client) linkLocal() (netip.Addr, bool) {
	for _, a := range c.env.Netif.Addrs() {
		if a.Prefix.Addr().IsLinkLocalUnicast() && a.State == ip.Preferred {
			return a.Prefix.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// transmit sends the Information-Request and schedules the next retransmission: RT = IRT·
// (1+RAND) at first, then 2·RT·(1+RAND), capped at MRT·(1+RAND); no MRC or MRD (§15).
func (c *Client) transmit() {
	src, ok := c.linkLocal()
	if !ok {
		// Duplicate address detection still runs on it (or the netif has none yet).
		c.count(func(st *Stats) { st.NoLinkLocal++ })
		c.env.Timers.Schedule(&c.tmo, InfTimeout)
		return
	}
	if c.pcb != nil && c.src != src {
		c.pcb.Close()
		c.pcb = nil
	}
	if c.pcb == nil {
		pcb, err := c.env.UDP.NewPCB()
		if err == nil {
			if err = pcb.Bind(netip.AddrPortFrom(src, dhcpv6.ClientPort)); err != nil {
				pcb.Close()
			}
		}
		if err != nil {
			c.count(func(st *Stats) { st.SendErrs++ })
			c.env.Timers.Schedule(&c.tmo, InfTimeout)
			return
		}
		pcb.OnRecv(c.recv)
		c.pcb, c.src = pcb, src
	}
	now := c.env.Timers.Now()
	if !c.sent {
		c.start = now
	}
	// RFC 8415 §21.9: hundredths of a second since the first message of the exchange, 0
	// in the first, 0xffff when it does not fit.
	el := now.Sub(c.start) / (10 * time.Millisecond)
	if el > 0xffff {
		el = 0xffff
	}
	m := dhcpv6.Repr{Type: dhcpv6.InformationRequest, TransactionID: c.xid, ClientID: c.duid,
		// RFC 8415 §21.23 and §21.25: a client MUST ask for options 32 and 83.
		ORO:         []uint16{dhcpv6.OptDNSServers, dhcpv6.OptDomainList, dhcpv6.OptInfoRefreshTime, dhcpv6.OptInfMaxRT},
		ElapsedTime: uint16(el), HasElapsed: true}
	pb, err := c.env.Alloc.Alloc(pbuf.LayerTransport, m.Len(), pbuf.RAM)
	if err == nil {
		if err = m.Emit(pb.Payload()); err != nil {
			pb.Free()
		} else {
			err = c.pcb.SendToFrom(pb, netip.AddrPortFrom(dhcpv6.AllServers, dhcpv6.ServerPort), src, c.env.Netif.Index())
		}
	}
	retrans := c.sent
	c.sent = true
	if err != nil {
		c.count(func(st *Stats) { st.SendErrs++ })
	} else {
		c.count(func(st *Stats) {
			st.Requests++
			if retrans {
				st.Retransmits++
			}
		})
	}
	if c.rt == 0 {
		c.rt = c.jitter(InfTimeout)
	} else {
		c.rt = c.jitter(2 * c.rt)
	}
	if c.rt > c.mrt {
		c.rt = c.jitter(c.mrt)
	}
	c.env.Timers.Schedule(&c.tmo, c.rt)
}

// recv takes a Reply (RFC 8415 §16.10, §18.2.10). It takes pb.
func (c *Client) recv(_ *udp.PCB, pb *pbuf.Pbuf, info *udp.RecvInfo) {
	buf := c.buf[:]
	n := pb.CopyOut(buf, 0)
	tot := pb.TotLen()
	pb.Free()
	if c.State() != Requesting || n != tot || info.IfIndex != c.env.Netif.Index() {
		c.count(func(st *Stats) { st.Bogus++ })
		return
	}
	var r dhcpv6.Repr
	// A Reply to our transaction, naming us and the server; a status other than Success
	// (UnspecFail, UseMulticast …) leaves the request to be retransmitted.
	if r.Parse(buf[:n]) != nil || r.Type != dhcpv6.Reply || r.TransactionID != c.xid ||
		!slices.Equal(r.ClientID, c.duid) || len(r.ServerID) == 0 ||
		r.HasStatus && r.Status != dhcpv6.StatusSuccess {
		c.count(func(st *Stats) { st.Bogus++ })
		return
	}
	refresh := IRTDefault
	if r.HasRefresh {
		// RFC 8415 §21.23: at least IRT_MINIMUM; 0xffffffff is infinity.
		refresh = max(time.Duration(r.InfoRefreshTime)*time.Second, IRTMinimum)
		if r.InfoRefreshTime == infiniteRefresh {
			refresh = 0
		}
	}
	if r.HasInfMaxRT && r.InfMaxRT >= 60 && r.InfMaxRT <= 86400 {
		// RFC 8415 §18.2.10: "the client MUST update its INF_MAX_RT value" from option
		// 83 (§21.25: ignored outside 60..86400).
		c.mrt = time.Duration(r.InfMaxRT) * time.Second
	}
	inf := Info{DNS: r.DNSServers, Domains: r.DomainList, Refresh: refresh, Server: r.ServerID,
		Acquired: c.env.Timers.Now()}
	c.mu.Lock()
	c.state = Informed
	c.info = inf
	c.st.Replies++
	c.mu.Unlock()
	c.env.Timers.Cancel(&c.tmo)
	if refresh > 0 {
		c.env.Timers.Schedule(&c.tmo, refresh)
	}
	if c.env.SetDNS != nil {
		c.env.SetDNS(inf.DNS, inf.Domains)
	}
	if c.cfg.OnChange != nil {
		c.cfg.OnChange(inf)
	}
}

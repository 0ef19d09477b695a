package dhcp

import (
	"errors"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/udp"
	"github.com/wispstack/wisp/wire/dhcpv4"
)

// Config is what a program chooses about its client; the zero value is a client that asks
// for any address, with the client identifier made of the MAC.
type Config struct {
	Hostname string // option 12, optional
	// ClientID is option 61; nil: hardware type 1 and the MAC (RFC 2132 §9.14).
	ClientID []byte
	// Addr, when valid, is a remembered address: the client starts in INIT-REBOOT and asks
	// for it back (RFC 2131 §3.2).
	Addr netip.Addr
	// OnChange runs in core context after a lease is installed or renewed, and after it is
	// lost (Lease.Addr invalid).
	OnChange func(Lease)
}

// Lease is what a DHCPACK gave.
type Lease struct {
	Addr   netip.Prefix // yiaddr with the subnet mask's length
	Router netip.Addr   // the first router (option 3), invalid when none
	DNS    []netip.Addr // option 6
	Server netip.Addr   // the server identifier (option 54)
	// Lease is the lease time (Infinite for 0xffffffff); T1 and T2 when renewing and
	// rebinding begin, counted from Acquired.
	Lease, T1, T2 time.Duration
	// Acquired is when the REQUEST that the ACK answered was sent: the lease's times count
	// from there (RFC 2131 §4.4.1).
	Acquired time.Time
}

// Infinite is the Lease.Lease of a lease that never ends.
const Infinite = time.Duration(math.MaxInt64)

// Env is what a Client needs from its stack. Everything but Core is core context.
type Env struct {
	UDP    *udp.Proto
	Timers *clock.Timeouts
	Netif  *ip.Netif // an Ethernet netif
	Alloc  *pbuf.Allocator
	// Core is the core lock: Renew, called from outside core context, takes it. Nil: the
	// caller of Renew holds it.
	Core sync.Locker
	// Seed seeds the client's randomness (transaction IDs, backoff jitter, probe delays).
	Seed uint64
	// ACD probes an offered address before using it (opt.DHCPDoesACDCheck).
	ACD bool
	// Install puts a lease's address, router and DNS servers on the netif; Remove takes
	// them off. Core context. An Install error makes the client give the lease up (and
	// start again after ten seconds).
	Install func(Lease) error
	Remove  func(Lease)
	// Change, when set, takes a renewed lease whose address is the same but whose router
	// or DNS servers changed, so that the address (and the connections on it) stays; nil:
	// Remove, then Install.
	Change func(old, new Lease)
}

// State is the client's state (RFC 2131 Figure 5, with RFC 5227's check and Off).
type State uint8

// States.
const (
	Off State = iota
	Init
	Selecting
	Requesting
	Checking // probing the offered address (RFC 5227)
	Bound
	Renewing
	Rebinding
	InitReboot
	Rebooting
)

func (s State) String() string {
	names := [...]string{"OFF", "INIT", "SELECTING", "REQUESTING", "CHECKING", "BOUND", "RENEWING", "REBINDING",
		"INIT-REBOOT", "REBOOTING"}
	if int(s) < len(names) {
		return names[s]
	}
	return "UNKNOWN"
}

// Stats counts messages and events.
type Stats struct {
	Discovers, Offers, Requests, Acks, Naks, Declines, Releases uint64
	Renews, Rebinds                                             uint64 // times RENEWING and REBINDING were entered
	Timeouts                                                    uint64 // retransmissions and give-ups
	Expiries                                                    uint64 // leases that ran out
	Drops                                                       uint64 // received messages not for us or malformed
}

// Client is one netif's DHCPv4 client.
type Client struct {
	env  Env
	cfg  Config
	hw   [6]byte
	cid  []byte // option 61
	host []byte // option 12
	pcb  *udp.PCB

	timer  clock.Timeout
	rng    uint64
	state  State
	xid    uint32
	tries  int // sends of the current message
	naks   int // NAKs in a row: the restart's backoff
	probes int // ARP probes sent (CHECKING)

	// The offer being requested, and when the REQUEST went.
	offerAddr, offerServer netip.Addr
	reqSent                time.Time
	pending                Lease // ACKed, being checked
	lease                  Lease // installed when have
	have                   bool
	t1, t2, end            time.Time // of the installed lease
	announce               time.Time // the second ARP announcement is due (zero: none)
	st                     Stats

	rx  dhcpv4.Repr
	tx  dhcpv4.Repr
	buf [1500]byte

	// What State, Lease and Stats return, published in core context.
	mu     sync.Mutex
	pState State
	pLease Lease
	pHave  bool
	pStats Stats
}

// RFC 2131 and RFC 5227 timing.
const (
	declineWait   = 10 * time.Second // RFC 2131 §3.1.5: "wait a minimum of ten seconds"
	minRetransmit = 60 * time.Second // RFC 2131 §4.4.5, RENEWING and REBINDING
	probeWait     = time.Second      // RFC 5227 PROBE_WAIT
	probeNum      = 3                // PROBE_NUM
	probeMin      = time.Second      // PROBE_MIN
	probeMax      = 2 * time.Second  // PROBE_MAX
	announceWait  = 2 * time.Second  // ANNOUNCE_WAIT
	announceGap   = 2 * time.Second  // ANNOUNCE_INTERVAL
	requestTries  = 5                // REQUESTs in SELECTING before starting over (lwIP)
	rebootTries   = 2                // REQUESTs in INIT-REBOOT before DISCOVER (lwIP)
)

// New creates a client on env.Netif; it sends nothing until Start. Core context.
func New(env Env, cfg Config) (*Client, error) {
	switch {
	case env.UDP == nil || env.Timers == nil || env.Netif == nil || env.Alloc == nil:
		return nil, errors.New("dhcp: incomplete Env")
	case env.Netif.Medium() != link.MediumEthernet:
		return nil, errors.New("dhcp: needs an Ethernet link (a TUN has no broadcast; use a TAP)")
	case cfg.Addr.IsValid() && (!cfg.Addr.Is4() || cfg.Addr.IsUnspecified()):
		return nil, errs.Val
	case len(cfg.Hostname) > 255 || len(cfg.ClientID) > 255:
		return nil, errs.Val
	}
	c := &Client{env: env, cfg: cfg, hw: env.Netif.HardwareAddr(), rng: env.Seed | 1}
	c.cid = cfg.ClientID
	c.host = []byte(cfg.Hostname)
	if c.cid == nil {
		c.cid = append([]byte{dhcpv4.HTypeEthernet}, c.hw[:]...)
	}
	c.rx.Routers = make([]netip.Addr, 0, 4)
	c.rx.DNS = make([]netip.Addr, 0, 8)
	c.timer.Init(c.tick)
	return c, nil
}

// Start opens the client's PCB (port 68, SO_BROADCAST) and begins: INIT-REBOOT with
// Config.Addr, else INIT. errs.Use if port 68 is taken by a PCB without SO_REUSEADDR. Core
// context.
func (c *Client) Start() error {
	if c.state != Off {
		return errs.IsConn
	}
	pcb, err := c.env.UDP.NewPCB()
	if err != nil {
		return err
	}
	pcb.SetReuseAddr(true) // one client per netif, each with its PCB on port 68
	pcb.SetBroadcast(true)
	if err := pcb.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), dhcpv4.ClientPort)); err != nil {
		pcb.Close()
		return err
	}
	pcb.OnRecv(c.recv)
	c.pcb = pcb
	c.env.Netif.SetAcceptUDPPort(dhcpv4.ClientPort)
	if c.cfg.Addr.IsValid() {
		c.reboot()
	} else {
		c.discover()
	}
	return nil
}

// Stop ends the client: a RELEASE to the server when a lease is held (RFC 2131 §4.4.6),
// everything the lease installed removed, the PCB closed. Core context. Stopping twice is
// harmless.
func (c *Client) Stop() { c.stop(true) }

// Close ends the client like Stop, but sends nothing and removes nothing: its stack is
// closing. Core context.
func (c *Client) Close() { c.stop(false) }

func (c *Client) stop(release bool) {
	if c.state == Off {
		return
	}
	c.env.Timers.Cancel(&c.timer)
	_ = c.env.Netif.WatchARP(netip.Addr{}, nil)
	if release && c.have {
		// RFC 2131 Table 5: DHCPRELEASE has ciaddr, the server identifier, no requested
		// address; unicast to the server.
		c.xid = c.rand32()
		c.st.Releases++
		c.send(dhcpv4.Release, c.lease.Server, c.lease.Addr.Addr(), netip.Addr{}, c.lease.Server, false)
		c.unbind()
	}
	if release {
		c.env.Netif.SetAcceptUDPPort(0)
	}
	c.pcb.Close()
	c.pcb = nil
	c.have = false
	c.setState(Off)
}

// Renew asks the server to extend the lease now (lwIP's dhcp_renew): a unicast REQUEST as in
// RENEWING. errs.Conn without a lease. It takes Env.Core; do not call it in core context
// unless Env.Core is nil.
func (c *Client) Renew() error {
	if c.env.Core != nil {
		c.env.Core.Lock()
		defer c.env.Core.Unlock()
	}
	switch c.state {
	case Bound, Renewing:
		c.enterRenewing()
		return nil
	case Rebinding:
		c.tries = 0
		c.retransmitBound()
		return nil
	}
	return errs.Conn
}

// State returns the client's state. Safe for concurrent use.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pState
}

// Lease returns the installed lease. Safe for concurrent use.
func (c *Client) Lease() (Lease, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pLease, c.pHave
}

// Stats returns the client's counters. Safe for concurrent use.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pStats
}

// publish copies what the concurrent readers see.
func (c *Client) publish() {
	c.mu.Lock()
	c.pState, c.pLease, c.pHave, c.pStats = c.state, c.lease, c.have, c.st
	c.mu.Unlock()
}

func (c *Client) setState(s State) {
	c.state = s
	c.publish()
}

// rand64 is splitmix64 over the client's state.
func (c *Client) rand64() uint64 {
	c.rng += 0x9e3779b97f4a7c15
	z := c.rng
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (c *Client) rand32() uint32 { return uint32(c.rand64() >> 32) }

// randDur returns a duration in [lo, hi].
func (c *Client) randDur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(c.rand64()%uint64(hi-lo+1))
}

// backoff is RFC 2131 §4.1's retransmission delay after the n-th send (0-based): "4
// seconds before the first retransmission ... doubled on subsequent retransmissions up to
// a maximum of 64 seconds ... randomized by the value of a uniform random number chosen
// from the range -1 to +1".
func (c *Client) backoff(n int) time.Duration {
	base := 4 * time.Second << min(n, 4)
	return base + c.randDur(-time.Second, time.Second)
}

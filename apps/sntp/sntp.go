package sntp

import (
	"net/netip"
	"sync"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/udp"
	"github.com/wispstack/wisp/wire/ntp"
)

// Defaults of Config.
const (
	// DefaultInterval is the poll interval once synchronised (lwIP SNTP_UPDATE_DELAY).
	DefaultInterval = time.Hour
	// DefaultMinInterval is the shortest time between two requests to one server, the first
	// retry delay after silence; RFC 4330 §10 asks clients not to poll more often than
	// about once a minute, lwIP allows 15 s.
	DefaultMinInterval = 15 * time.Second
	// DefaultTimeout is how long a request waits for its reply (lwIP SNTP_RECV_TIMEOUT is
	// 15 s; a reply on any path that matters comes within one).
	DefaultTimeout = 3 * time.Second
	// MaxInterval caps every backoff: RFC 5905's largest poll exponent, 2^17 s (36 h).
	MaxInterval = 1 << 17 * time.Second
)

// Config configures a Client.
type Config struct {
	// Servers are asked in turn (lwIP SNTP_MAX_SERVERS); port 0 means 123.
	Servers []netip.AddrPort
	// Interval between polls once a reply came (0: DefaultInterval).
	Interval time.Duration
	// MinInterval is the first delay after a request got no reply; it doubles with every
	// silent one up to Interval (0: DefaultMinInterval).
	MinInterval time.Duration
	// Timeout is how long a request waits for its reply (0: DefaultTimeout).
	Timeout time.Duration
	// OnSync, when set, hears every accepted reply, in core context.
	OnSync func(Sample)
}

// Sample is what one reply taught (RFC 5905 §8).
type Sample struct {
	Server  netip.AddrPort
	Offset  time.Duration // θ = ((T2 − T1) + (T3 − T4)) / 2: add it to the local clock
	Delay   time.Duration // δ = (T4 − T1) − (T3 − T2)
	Stratum uint8
	Leap    ntp.Leap
	At      time.Time // T4 on the local clock
}

// Stats counts what the client did.
type Stats struct {
	Requests  uint64 // requests sent
	Replies   uint64 // replies accepted (samples)
	Timeouts  uint64 // requests that got no reply in time
	Bogus     uint64 // datagrams refused by the checks (source, origin, mode, stratum, LI)
	KoDRate   uint64 // RATE kisses: that server's interval doubled
	KoDDeny   uint64 // DENY and RSTR kisses: that server dropped
	KoDOther  uint64 // other kiss codes, ignored
	SendErrs  uint64 // sends that failed (no memory, no route)
	Servers   int    // servers still in use
	Backoff   time.Duration
	LastError error // the last send error, nil when none
}

// Env is what the client runs on: core 0's UDP, timer queue and allocator, and the lock of
// that core (the stack), which Stop takes.
type Env struct {
	UDP    *udp.Proto
	Timers *clock.Timeouts
	Alloc  *pbuf.Allocator
	Lock   interface {
		Lock()
		Unlock()
	}
}

type server struct {
	addr     netip.AddrPort
	dropped  bool          // DENY or RSTR
	interval time.Duration // after RATE kisses: at least this between polls (0: none)
}

// Client is a running SNTP client.
type Client struct {
	env     Env
	cfg     Config
	pcb     *udp.PCB
	tmo     clock.Timeout
	servers []server
	cur     int           // index of the server asked next / being asked
	waiting bool          // a request is out: tmo is its timeout
	xmit    ntp.Timestamp // the Transmit Timestamp of the request out (its origin check)
	t1      time.Time
	retry   time.Duration // the next delay after silence
	stopped bool
	buf     [ntp.HeaderLen]byte

	mu     sync.Mutex // guards the fields below, read by any goroutine
	offset time.Duration
	synced bool
	st     Stats
}

// New starts a client: its first request goes out at once. Core context. errs.Val without
// servers, errs.Mem when no UDP PCB is free.
func New(env Env, cfg Config) (*Client, error) {
	env.Timers.AssertCore()
	if len(cfg.Servers) == 0 {
		return nil, errs.Val
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = DefaultMinInterval
	}
	if cfg.MinInterval > cfg.Interval {
		cfg.MinInterval = cfg.Interval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	c := &Client{env: env, cfg: cfg, retry: cfg.MinInterval}
	for _, s := range cfg.Servers {
		if s.Port() == 0 {
			s = netip.AddrPortFrom(s.Addr(), ntp.Port)
		}
		c.servers = append(c.servers, server{addr: s})
	}
	pcb, err := env.UDP.NewPCB()
	if err != nil {
		return nil, err
	}
	if err := pcb.Bind(netip.AddrPort{}); err != nil {
		pcb.Close()
		return nil, err
	}
	c.pcb = pcb
	pcb.OnRecv(c.recv)
	c.tmo.Init(c.fire)
	c.st.Servers = len(c.servers)
	c.poll()
	return c, nil
}

// Offset is the last accepted sample's offset (add it to the stack's clock to get the
// servers' time) and whether there has been one. Safe for concurrent use.
func (c *Client) Offset() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset, c.synced
}

// Now is the stack's clock corrected by the offset: the time applications should use. Before
// the first sample it is the stack's clock. Safe for concurrent use.
func (c *Client) Now() time.Time {
	off, _ := c.Offset()
	return c.env.Timers.Clock().Now().Add(off)
}

// Stats returns the counters. Safe for concurrent use.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// Stop stops the client: no request goes out after it and its PCB and timer are freed.
// Safe for concurrent use; it takes the core lock (inside core context use StopLocked).
func (c *Client) Stop() {
	c.env.Lock.Lock()
	defer c.env.Lock.Unlock()
	c.StopLocked()
}

// StopLocked is Stop in core context. Stopping twice is harmless.
func (c *Client) StopLocked() {
	if c.stopped {
		return
	}
	c.stopped = true
	c.env.Timers.Cancel(&c.tmo)
	c.pcb.Close()
	c.pcb = nil
}

// fire is the one timer: the reply timeout while a request is out, else the next poll.
func (c *Client) fire() {
	if c.stopped {
		return
	}
	if !c.waiting {
		c.poll()
		return
	}
	// RFC 4330 §10: back off while a server is silent; try the next one.
	c.waiting = false
	c.count(func(st *Stats) { st.Timeouts++ })
	c.next()
	c.backoff()
}

// backoff schedules the next poll after the retry delay and doubles it, up to Interval.
func (c *Client) backoff() {
	d := c.retry
	c.retry = min(2*c.retry, c.cfg.Interval)
	c.count(func(st *Stats) { st.Backoff = d })
	c.env.Timers.Schedule(&c.tmo, d)
}

// next moves to the next server still in use.
func (c *Client) next() {
	for range c.servers {
		c.cur = (c.cur + 1) % len(c.servers)
		if !c.servers[c.cur].dropped {
			return
		}
	}
}

// poll sends a request to the current server and arms the reply timeout.
func (c *Client) poll() {
	s := &c.servers[c.cur]
	if s.dropped {
		return
	}
	pb, err := c.env.Alloc.Alloc(pbuf.LayerTransport, ntp.HeaderLen, pbuf.RAM)
	if err == nil {
		c.t1 = c.env.Timers.Now()
		c.xmit = ntp.FromTime(c.t1)
		// RFC 4330 §5: a client sets only VN, Mode and the Transmit Timestamp; the rest is 0.
		r := ntp.Repr{Version: ntp.Version, Mode: ntp.ModeClient, TransmitTime: c.xmit}
		_ = r.Emit(pb.Payload())
		err = c.pcb.SendTo(pb, s.addr)
	}
	if err != nil {
		c.count(func(st *Stats) { st.SendErrs++; st.LastError = err })
		c.next()
		c.backoff()
		return
	}
	c.count(func(st *Stats) { st.Requests++ })
	c.waiting = true
	c.env.Timers.Schedule(&c.tmo, c.cfg.Timeout)
}

// recv checks a reply (RFC 4330 §5, RFC 5905 §8) and takes its sample. It takes pb.
func (c *Client) recv(_ *udp.PCB, pb *pbuf.Pbuf, info *udp.RecvInfo) {
	n := pb.CopyOut(c.buf[:], 0)
	pb.Free()
	if c.stopped {
		return
	}
	t4 := c.env.Timers.Now()
	s := &c.servers[c.cur]
	src := netip.AddrPortFrom(info.Src.Addr().Unmap(), info.Src.Port())
	h := ntp.Header(c.buf[:])
	// A reply must come from the server asked, answer our request (its Originate Timestamp
	// is our Transmit Timestamp: RFC 5905 §8's bogus check), and be a server's (mode 4).
	if !c.waiting || n < ntp.HeaderLen || src != netip.AddrPortFrom(s.addr.Addr().Unmap(), s.addr.Port()) ||
		h.OriginTime() != c.xmit || h.Mode() != ntp.ModeServer || h.Version() < 1 || h.Version() > 4 {
		c.count(func(st *Stats) { st.Bogus++ })
		return
	}
	if code, kiss := h.KissCode(); kiss {
		c.kiss(s, code)
		return
	}
	// RFC 4330 §5: discard a reply with LI 3 (unsynchronised), stratum 0 or above 15, or a
	// zero Transmit Timestamp.
	if h.Leap() == ntp.LeapAlarm || h.Stratum() > 15 || h.TransmitTime() == 0 {
		c.count(func(st *Stats) { st.Bogus++ })
		return
	}
	c.waiting = false
	t1 := c.t1
	t2 := h.ReceiveTime().Time(t1)
	t3 := h.TransmitTime().Time(t1)
	smp := Sample{
		Server:  s.addr,
		Offset:  (t2.Sub(t1) + t3.Sub(t4)) / 2,
		Delay:   t4.Sub(t1) - t3.Sub(t2),
		Stratum: h.Stratum(),
		Leap:    h.Leap(),
		At:      t4,
	}
	c.retry = c.cfg.MinInterval
	c.mu.Lock()
	c.offset, c.synced = smp.Offset, true
	c.st.Replies++
	c.st.Backoff = 0
	c.mu.Unlock()
	c.sleep(max(c.cfg.Interval, s.interval))
	if c.cfg.OnSync != nil {
		c.cfg.OnSync(smp)
	}
}

// kiss handles a Kiss-o'-Death from the server asked (RFC 5905 §7.4).
func (c *Client) kiss(s *server, code ntp.KissCode) {
	switch code {
	case ntp.KissRATE:
		// "the client MUST immediately reduce its polling interval to that server and
		// continue to reduce it each time it receives a RATE kiss code": double it.
		c.waiting = false
		s.interval = min(2*max(s.interval, c.cfg.Interval), MaxInterval)
		c.count(func(st *Stats) { st.KoDRate++; st.Backoff = s.interval })
		c.sleep(s.interval)
	case ntp.KissDENY, ntp.KissRSTR:
		// "the client MUST demobilize any associations to that server and stop sending
		// packets to that server."
		c.waiting = false
		s.dropped = true
		left := 0
		for _, o := range c.servers {
			if !o.dropped {
				left++
			}
		}
		c.count(func(st *Stats) { st.KoDDeny++; st.Servers = left })
		c.env.Timers.Cancel(&c.tmo)
		if left > 0 {
			c.next()
			c.poll()
		}
	default:
		// Other codes are ignored: the request stays out until its timeout.
		c.count(func(st *Stats) { st.KoDOther++ })
	}
}

// sleep schedules the next poll d from now. The reply timeout is cancelled first: the queue
// keeps its clock timer armed for an earlier deadline it no longer has (it re-arms on
// firing), which would wake the stack once between polls for nothing.
func (c *Client) sleep(d time.Duration) {
	c.env.Timers.Cancel(&c.tmo)
	c.env.Timers.Schedule(&c.tmo, d)
}

func (c *Client) count(fn func(*Stats)) {
	c.mu.Lock()
	fn(&c.st)
	c.mu.Unlock()
}

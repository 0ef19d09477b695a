package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wispstack/wisp/forwarder"
	"github.com/wispstack/wisp/internal/socks5"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/tun"
	"github.com/wispstack/wisp/stack"
)

// proxyDialTimeout bounds an upstream dial (or SOCKS handshake) per flow: a deferred
// client's SYN waits that long at most before its RST.
const proxyDialTimeout = 10 * time.Second

// proxyConfig is `wisp proxy`'s command line, checked.
type proxyConfig struct {
	tun       string
	socks     string         // SOCKS5 server HOST:PORT; "" with direct
	socksAddr netip.AddrPort // its address (excluded from interception)
	udp       bool
	exclude   prefixList
	direct    bool
	icmp      forwarder.EchoMode
	deferred  bool
	stats     string // --stats HOST:PORT
	mtu       int
	noOffload bool
	queues    int
	cores     int
	preset    string
	verbose   bool
}

func parseProxy(args []string, stderr io.Writer) (*proxyConfig, error) {
	fs := newFlags("proxy", stderr)
	var c proxyConfig
	fs.StringVar(&c.tun, "tun", "", "TUN device to create or attach to (required); route what should be proxied into it")
	fs.StringVar(&c.socks, "socks5", "", "SOCKS5 server, IP:PORT: TCP flows become CONNECT requests, UDP sessions (--udp) UDP ASSOCIATE\n(this or --direct is required)")
	fs.BoolVar(&c.udp, "udp", false, "proxy UDP too, one UDP ASSOCIATE per session (without it, UDP gets ICMP port unreachable)")
	fs.Var(&c.exclude, "exclude", "never intercept destinations in this prefix (repeatable); the SOCKS server's address is always excluded")
	fs.BoolVar(&c.direct, "direct", false, "dial out from this host instead of through a SOCKS server (TCP, UDP, and --icmp host)")
	icmp := fs.String("icmp", "local", "echo requests (ping) to any address: local (answered at once by wisp), drop,\n"+
		"or host (--direct only: a real ping through the host's ICMP socket, answered when the host's is)")
	fs.BoolVar(&c.deferred, "deferred", true, "complete a client's TCP handshake only once the upstream connection is up, and answer a refused\n"+
		"one with a RST (no phantom connections); --deferred=false: handshake at once (early), as tun2socks")
	fs.IntVar(&c.mtu, "mtu", 1500, "MTU of the TUN device")
	fs.BoolVar(&c.noOffload, "no-offload", false, "open the TUN device without offloads (virtio-net headers, TSO, checksum offload)")
	fs.IntVar(&c.queues, "queues", 1, "TUN queues (IFF_MULTI_QUEUE), each with its own reader")
	fs.IntVar(&c.cores, "cores", 1, "stack cores: TCP flows spread over them by their 4-tuple")
	presetName := presetFlag(fs, "tunnel")
	fs.BoolVar(&c.verbose, "v", false, "log every flow that fails upstream")
	fs.StringVar(&c.stats, "stats", "", statsUsage)
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if err := checkStats(c.stats); err != nil {
		return nil, err
	}
	c.preset = *presetName
	switch {
	case c.tun == "":
		return nil, fmt.Errorf("%w: --tun NAME is required", errUsage)
	case c.socks == "" && !c.direct:
		return nil, fmt.Errorf("%w: --socks5 IP:PORT is required (or --direct)", errUsage)
	case c.socks != "" && c.direct:
		return nil, fmt.Errorf("%w: --socks5 and --direct exclude each other", errUsage)
	case c.mtu < 1280 || c.mtu > 65535:
		return nil, fmt.Errorf("%w: --mtu %d out of range [1280, 65535]", errUsage, c.mtu)
	case c.queues < 1 || c.queues > 256:
		return nil, fmt.Errorf("%w: --queues %d out of range [1, 256]", errUsage, c.queues)
	case c.cores < 1 || c.cores > stack.MaxCores:
		return nil, fmt.Errorf("%w: --cores %d out of range [1, %d]", errUsage, c.cores, stack.MaxCores)
	}
	if c.socks != "" {
		ap, err := netip.ParseAddrPort(c.socks)
		if err != nil || ap.Port() == 0 {
			return nil, fmt.Errorf("%w: --socks5 %q is not IP:PORT (like 198.18.0.1:1080 or [fd42:5eed::1]:1080)", errUsage, c.socks)
		}
		c.socksAddr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	switch *icmp {
	case "local":
		c.icmp = forwarder.EchoLocal
	case "drop":
		c.icmp = forwarder.EchoDrop
	case "host":
		if !c.direct {
			return nil, fmt.Errorf("%w: --icmp host needs --direct (a SOCKS server carries no ICMP)", errUsage)
		}
		c.icmp = forwarder.EchoHost
	default:
		return nil, fmt.Errorf("%w: --icmp %q: want local, drop or host", errUsage, *icmp)
	}
	for i, p := range c.exclude {
		c.exclude[i] = p.Masked()
	}
	if c.direct {
		c.udp = true
	}
	return &c, nil
}

func cmdProxy(args []string, stdout, stderr io.Writer) error {
	c, err := parseProxy(args, stderr)
	if err != nil {
		return err
	}
	o, err := preset(c.preset)
	if err != nil {
		return err
	}
	if c.icmp == forwarder.EchoHost {
		if err := checkPingSocket(); err != nil {
			return err
		}
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "wisp: "+format+"\n", args...) }
	fmt.Fprintf(stdout, "memory budget of preset %q (every byte is reserved when the stack starts; nothing grows)\n\n", c.preset)
	if err := stack.BudgetFor(o).WriteTable(stdout); err != nil {
		return err
	}
	if !c.noOffload {
		if ok, why := offloadsFit(o, c.queues); !ok {
			logf("preset %s: %s", c.preset, why)
			c.noOffload = true
		}
	}
	dev, err := tun.OpenConfig(tun.Config{Name: c.tun, MTU: c.mtu, Offload: !c.noOffload, Queues: c.queues, Logf: logf})
	if err != nil {
		return err
	}
	how := fmt.Sprintf("mtu %d, offloads on (TSO, checksum)", c.mtu)
	if dev.Offloads() == (link.Offloads{}) {
		how = fmt.Sprintf("mtu %d, offloads off", c.mtu)
	}
	s, err := stack.New(stack.Config{Options: o, Cores: c.cores})
	if err != nil {
		dev.Close()
		return err
	}
	defer s.Close()
	nif, err := s.AddNetif(dev, stack.NetifConfig{Name: c.tun})
	if err != nil {
		dev.Close()
		return err
	}
	f, p, err := startProxy(s, nif, c, logf)
	if err != nil {
		return err
	}
	// Runs before s.Close: flows end on a live stack, then their relays are waited for.
	defer func() {
		f.Close()
		if p.close() > 0 {
			// The clients' RSTs are in the kernel's receive backlog of the TUN device,
			// which drops what it holds when the device goes: let it take them first.
			time.Sleep(100 * time.Millisecond)
		}
	}()
	if c.stats != "" {
		stop, err := startStats(s, c.stats, "wisp proxy on "+c.tun, stdout)
		if err != nil {
			return err
		}
		// Runs before the proxy ends and the stack closes.
		defer stop()
	}
	upstream := "SOCKS5 " + c.socks
	if c.direct {
		upstream = "direct (this host's sockets)"
	}
	mode := "deferred"
	if !c.deferred {
		mode = "early"
	}
	fmt.Fprintf(stdout, "wisp: proxy on %s (%s) to %s: TCP (%s handshake)%s, ICMP echo %s; excluded %v;"+
		" SIGUSR1 prints stats, SIGINT/SIGTERM stops\n", c.tun, how, upstream, mode,
		map[bool]string{true: ", UDP", false: ", no UDP"}[c.udp], icmpName(c.icmp), nif.Intercept().Exclude)

	// The forwarder's counters follow the stack's table, on SIGUSR1 and at exit.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGUSR1)
	defer signal.Stop(sig)
	done := make(chan struct{})
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for {
			select {
			case <-sig:
				// waitSignals prints the stack's table on the same signal: let it go first.
				time.Sleep(50 * time.Millisecond)
				p.printStats(stdout, f)
			case <-done:
				return
			}
		}
	}()
	err = waitSignals(s, stdout)
	close(done)
	<-printed
	p.printStats(stdout, f)
	return err
}

// startProxy makes nif intercept every destination but c's exclusions and the SOCKS
// server's address, routes both families' defaults through it (replies to a client at
// any address leave there), and starts a forwarder whose flows the returned proxy runs.
// The caller closes the forwarder, then the proxy.
func startProxy(s *stack.Stack, nif *stack.Netif, c *proxyConfig, logf func(string, ...any)) (*forwarder.Forwarder, *proxy, error) {
	ic := &ip.Intercept{Exclude: append([]netip.Prefix(nil), c.exclude...)}
	if c.socksAddr.IsValid() {
		ic.Exclude = append(ic.Exclude, netip.PrefixFrom(c.socksAddr.Addr(), c.socksAddr.Addr().BitLen()))
	}
	if err := nif.SetIntercept(ic); err != nil {
		return nil, nil, err
	}
	for _, dst := range []string{"0.0.0.0/0", "::/0"} {
		if err := s.AddRoute(stack.Route{Dst: netip.MustParsePrefix(dst), Netif: nif}); err != nil {
			return nil, nil, fmt.Errorf("route %s: %w", dst, err)
		}
	}
	p := newProxy(c, logf)
	fc := forwarder.Config{
		// A deferred SYN waits for the dial: give it the dial's bound and a margin, so a
		// dial that succeeds in time always gets its handshake completed.
		TCP:  forwarder.TCPConfig{Handler: p.tcp, Deferred: c.deferred, DeferTimeout: proxyDialTimeout + 5*time.Second},
		ICMP: forwarder.ICMPConfig{Mode: c.icmp},
	}
	if c.udp {
		fc.UDP.Handler = p.udp
	}
	if c.icmp == forwarder.EchoHost {
		fc.ICMP.Handler = pingHost
	}
	f, err := forwarder.New(s, fc)
	if err != nil {
		return nil, nil, err
	}
	return f, p, nil
}

func icmpName(m forwarder.EchoMode) string {
	switch m {
	case forwarder.EchoHost:
		return "through the host"
	case forwarder.EchoDrop:
		return "dropped"
	}
	return "answered locally"
}

// proxy runs the flows of `wisp proxy`: each TCP flow and UDP session on its own goroutine.
type proxy struct {
	c      *proxyConfig
	socks  *socks5.Client
	dialer net.Dialer
	logf   func(string, ...any)
	wg     sync.WaitGroup // flows running
	out    sync.Mutex     // serialises the stats block

	mu     sync.Mutex
	closed bool                   // shutting down: no new flow
	open   map[io.Closer]struct{} // connections and sockets of running flows
	// Counters of upstream failures, by kind.
	tcpFailed, udpFailed atomic.Uint64
}

func newProxy(c *proxyConfig, logf func(string, ...any)) *proxy {
	p := &proxy{c: c, logf: logf, open: map[io.Closer]struct{}{}}
	p.dialer.Timeout = proxyDialTimeout
	if c.socks != "" {
		p.socks = &socks5.Client{Server: c.socks, HandshakeTimeout: proxyDialTimeout, DialServer: p.dialer.DialContext}
	}
	return p
}

// enter starts a flow (p.wg), false once the proxy is closing.
func (p *proxy) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	return true
}

// hold registers the connections of a flow, for close to end it; false (and nothing
// held) once the proxy is closing.
func (p *proxy) hold(cs ...io.Closer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range cs {
		p.open[c] = struct{}{}
	}
	return true
}

func (p *proxy) release(cs ...io.Closer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.open, c)
	}
}

// close ends every flow (closing its connections ends its relay), waits for them and
// returns how many connections and sockets it closed. The
// clients' TCP connections are reset, not closed: the RST leaves at once, before the
// stack and the TUN device go, so no client waits on a connection that is gone.
func (p *proxy) close() (closed int) {
	p.mu.Lock()
	p.closed = true
	closed = len(p.open)
	for c := range p.open {
		if a, ok := c.(interface{ Abort() }); ok {
			a.Abort()
		}
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return closed
}

func (p *proxy) printStats(w io.Writer, f *forwarder.Forwarder) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "wisp: forwarder\n%v", f.Stats())
	fmt.Fprintf(&b, "wisp: upstream failures: tcp %d (answered with a RST), udp %d (port unreachable), echo %d (no reply)\n",
		p.tcpFailed.Load(), p.udpFailed.Load(), pingFailed.Load())
	p.out.Lock()
	defer p.out.Unlock()
	_, _ = w.Write(b.Bytes())
}

// dial opens the upstream connection of a TCP flow.
func (p *proxy) dial(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
	if p.socks != nil {
		return p.socks.DialAddrPort(ctx, dst)
	}
	return p.dialer.DialContext(ctx, "tcp", dst.String())
}

// tcp handles one intercepted connection: dial upstream first (deferred: the client's SYN
// waits), then complete the handshake and relay; a failed dial is a RST to the client.
func (p *proxy) tcp(r *forwarder.TCPRequest) {
	if !p.enter() {
		r.Reject(true)
		return
	}
	defer p.wg.Done()
	id := r.ID()
	ctx, cancel := context.WithTimeout(context.Background(), proxyDialTimeout)
	defer cancel()
	up, err := p.dial(ctx, id.Dst)
	if err != nil {
		r.Reject(true)
		p.tcpFailed.Add(1)
		if p.c.verbose {
			p.logf("tcp %v → %v: %v", id.Src, id.Dst, err)
		}
		return
	}
	conn, err := r.Accept(ctx)
	if err != nil {
		up.Close()
		if p.c.verbose {
			p.logf("tcp %v → %v: accept: %v", id.Src, id.Dst, err)
		}
		return
	}
	cancel()
	if !p.hold(conn, up) {
		conn.Close()
		up.Close()
		return
	}
	// The relay runs on a fresh goroutine: this one's stack grew with the dial (a SOCKS
	// handshake), and a parked goroutine keeps its stack for the connection's whole life.
	p.wg.Add(1) // inside this handler's own count: close's Wait cannot have returned
	go func() {
		defer p.wg.Done()
		defer p.release(conn, up)
		forwarder.Relay(conn, up)
	}()
}

// udpUpstream is where a UDP session's datagrams go: a SOCKS5 association or a host socket.
type udpUpstream interface {
	WriteToAddrPort(b []byte, dst netip.AddrPort) (int, error)
	ReadFromAddrPort(b []byte) (int, netip.AddrPort, error)
	Close() error
}

// hostUDP is a host UDP socket (dual stack) as an udpUpstream.
type hostUDP struct{ *net.UDPConn }

func (h hostUDP) WriteToAddrPort(b []byte, dst netip.AddrPort) (int, error) {
	return h.WriteToUDPAddrPort(b, dst)
}

func (h hostUDP) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, from, err := h.ReadFromUDPAddrPort(b)
	return n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), err
}

// udp handles one session: an upstream for it (full cone: replies from any address are
// passed back from that address), datagrams both ways until the session ends (idle
// timeout) or the upstream does.
func (p *proxy) udp(s *forwarder.UDPSession) {
	if !p.enter() {
		s.Reject()
		return
	}
	defer p.wg.Done()
	id := s.ID()
	var up udpUpstream
	var err error
	if p.socks != nil {
		ctx, cancel := context.WithTimeout(context.Background(), proxyDialTimeout)
		up, err = p.socks.Associate(ctx)
		cancel()
	} else {
		var uc *net.UDPConn
		uc, err = net.ListenUDP("udp", nil)
		up = hostUDP{uc}
	}
	if err != nil {
		s.Reject()
		p.udpFailed.Add(1)
		if p.c.verbose {
			p.logf("udp %v → %v: %v", id.Src, id.Dst, err)
		}
		return
	}
	if !p.hold(s, up) {
		up.Close()
		s.Close()
		return
	}
	defer p.release(s, up)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, socks5.MaxUDPHeader+65535)
		for {
			n, from, err := up.ReadFromAddrPort(buf)
			if err != nil {
				s.Close()
				return
			}
			_, _ = s.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	buf := make([]byte, 65535)
	for {
		n, dst, err := s.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		if _, err := up.WriteToAddrPort(buf[:n], dst); err != nil && p.c.verbose {
			p.logf("udp %v → %v: %v", id.Src, dst, err)
		}
	}
	up.Close()
	s.Close()
	<-done
}

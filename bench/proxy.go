package main

// The proxy family (proxy/*): whole TUN-to-SOCKS5 proxies, each a separate program, in the
// harness TUN proxies are measured with: two namespaces joined by a veth pair, a TUN with
// MTU 8500 in the client's, the same SOCKS5 server behind every engine in the server's.
//
//	namespace wispbench-<pid>-pxc                      namespace wispbench-<pid>-pxs
//	  iperf3 / bench sockets 198.18.0.1                  SOCKS5 server 198.18.1.2:1080
//	    └─▶ pxtun (TUN, MTU 8500; route 198.18.3.0/24)     │ (hev-socks5-server; microsocks as fallback)
//	          └─fd─▶ engine ──SOCKS5── pxc 198.18.1.1 ═══ pxs ─▶ targets 198.18.3.1 (lo):
//	                                                              iperf3 -s, echo, sink, UDP echo
//
// Columns (the bench's engine names are fixed, so the family maps its engines onto them, as
// the xdp family does): wisp = `wisp proxy` built from this tree; netstack = tun2socks
// (gVisor; xjasonlyu/tun2socks built by scripts/bench-peers); kernel = hev-socks5-tunnel
// (lwIP, the C anchor); netstack-tuned has no engine here. The wisp/ns quotient column is
// wisp/tun2socks; the "÷ hev-socks5-tunnel" rows are each engine over hev.
//
// The harness creates the TUN (persistent, MTU 8500, 198.18.0.1/32, up, the route to the
// targets through it) before the engine starts; every engine attaches to it by name. The
// engine, the SOCKS5 server and iperf3 are child processes (`ip netns exec`), killed with
// the network and by the kernel if the bench dies (PR_SET_PDEATHSIG). The bench's own
// sockets (the echo, sink and UDP echo servers, the connection-rate and memory clients) are
// opened inside the namespaces by this process's goroutines.
//
// What is measured per engine, with a fresh network for each scenario: iperf3 up (client →
// target) and down (-R) with 1 and 10 streams; connect-send-close rate; UDP echo rate
// through SOCKS5 UDP ASSOCIATE; the engine's resident set (VmRSS, VmHWM from
// /proc/PID/status) at idle, with N open connections and at its peak, and its CPU
// (/proc/PID/stat) per GB moved.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// The proxy network's namespaces, devices and addresses (all inside 198.18.0.0/15).
var (
	proxyNSC = fmt.Sprintf("wispbench-%d-pxc", os.Getpid())
	proxyNSS = fmt.Sprintf("wispbench-%d-pxs", os.Getpid())

	proxyTUNAddr    = netip.MustParseAddr("198.18.0.1")      // the client's source, on pxtun
	proxyVethC      = netip.MustParseAddr("198.18.1.1")      // the engine's way to the SOCKS5 server
	proxyVethS      = netip.MustParseAddr("198.18.1.2")      // the SOCKS5 server
	proxyTarget     = netip.MustParseAddr("198.18.3.1")      // the targets, on the server's lo
	proxyTargetNet  = netip.MustParsePrefix("198.18.3.0/24") // routed through the TUN
	proxySOCKS      = netip.AddrPortFrom(proxyVethS, 1080)
	proxyIperfPort  = uint16(5201)
	proxyEchoPort   = uint16(9001) // TCP echo: the readiness probe, the open connections
	proxySinkPort   = uint16(9002) // TCP sink: the connection rate
	proxyUDPEchoPrt = uint16(9003) // UDP echo
	proxyClosedPort = uint16(9004) // nothing listens: the target refuses
)

const (
	proxyTUNDev  = "pxtun"
	proxyVethCDv = "pxc"
	proxyVethSDv = "pxs"
	proxyMTU     = 8500
)

// proxyTest is what a proxy scenario measures.
type proxyTest int

const (
	proxyIperf proxyTest = iota
	proxyConnRate
	proxyUDPEcho
	proxyMem
	proxyRefused
)

// proxyCase is one proxy scenario.
type proxyCase struct {
	test    proxyTest
	down    bool // iperf3 -R: the target sends
	streams int
}

// proxyColumns says which program runs in which column.
const proxyColumns = "wisp = wisp proxy, netstack = tun2socks (gVisor), kernel = hev-socks5-tunnel (lwIP)"

func proxyScenarios() []scenario {
	var out []scenario
	for _, down := range []bool{false, true} {
		for _, streams := range []int{1, 10} {
			dir, what := "up", "client → target"
			if down {
				dir, what = "down", "target → client (-R)"
			}
			id := fmt.Sprintf("proxy/tcp-%s/%d", dir, streams)
			tp := mThroughput(goal{})
			ofHev := metric{key: "ofhev", label: "÷ hev-socks5-tunnel (the kernel column), same run", unit: "×", higher: true, prec: 2,
				derive: proxyOverHev(id, "gbps")}
			if streams == 1 {
				tp.goal = ratio(2)  // ≥ 2× tun2socks
				ofHev.goal = abs(1) // ≥ hev
			}
			out = append(out, proxyScenario(proxyCase{test: proxyIperf, down: down, streams: streams}, id,
				fmt.Sprintf("proxy family: iperf3 TCP %s, %d stream%s, TUN MTU 8500 (%s)", what, streams, plural(streams), proxyColumns),
				[]metric{tp, ofHev,
					{key: "cpu", label: "engine CPU per GB (the engine process alone)", unit: "s/GB", prec: 2},
					{key: "peak", label: "engine resident set, peak (VmHWM)", unit: "MiB", prec: 1},
				}))
		}
	}
	out = append(out,
		proxyScenario(proxyCase{test: proxyConnRate}, "proxy/connrate",
			"proxy family: connect, send 64 bytes, close (8 clients; counted when the target read them and EOF)",
			[]metric{
				{key: "rate", label: "connections", unit: "conn/s", higher: true, prec: 0},
				{key: "ofhev", label: "÷ hev-socks5-tunnel (the kernel column), same run", unit: "×", higher: true, prec: 2,
					derive: proxyOverHev("proxy/connrate", "rate")},
				{key: "lost", label: "connections that never reached the target", unit: "", prec: 0},
				{key: "peak", label: "engine resident set, peak (VmHWM)", unit: "MiB", prec: 1},
			}),
		proxyScenario(proxyCase{test: proxyUDPEcho}, "proxy/udp-echo",
			"proxy family: UDP echo through SOCKS5 UDP ASSOCIATE, 64-byte datagrams, 4 clients in lockstep",
			[]metric{
				{key: "pps", label: "echoes", unit: "echo/s", higher: true, prec: 0},
				{key: "ofhev", label: "÷ hev-socks5-tunnel (the kernel column), same run", unit: "×", higher: true, prec: 2,
					derive: proxyOverHev("proxy/udp-echo", "pps")},
				{key: "lost", label: "datagrams without an echo (200 ms each)", unit: "", prec: 0},
			}),
		proxyScenario(proxyCase{test: proxyRefused}, "proxy/refused",
			"proxy family: a flood of connections to a port the target refuses (100 at a time): how each ends",
			[]metric{
				{key: "reset", label: "refused at connect (the client saw a RST to its SYN)", unit: "%", higher: true, prec: 1},
				{key: "phantom", label: "accepted, then closed (a phantom connection)", unit: "%", prec: 1},
				{key: "hung", label: "no answer within 5 s", unit: "%", goal: abs(0), prec: 1},
				{key: "p50", label: "time to the end of a connection, median", unit: "ms", prec: 1},
				{key: "peak", label: "engine resident set, peak (VmHWM)", unit: "MiB", prec: 1},
			}),
		proxyScenario(proxyCase{test: proxyMem}, "proxy/mem",
			"proxy family: the engine's resident set (open connections: each echoed one byte, then held)",
			[]metric{
				{key: "idle", label: "at idle (after one probe connection)", unit: "MiB", goal: ratio(0.5), prec: 1},
				{key: "open", label: "with the open connections (the notes say how many)", unit: "MiB", goal: abs(12), prec: 1},
				{key: "perconn", label: "per open connection, over idle", unit: "KiB", prec: 1},
				{key: "idleAnon", label: "at idle, anonymous (RssAnon: VmRSS less the program's file pages)", unit: "MiB", prec: 1},
				{key: "openAnon", label: "with the open connections, anonymous (RssAnon)", unit: "MiB", prec: 1},
				{key: "peak", label: "peak (VmHWM), after the connections closed", unit: "MiB", prec: 1},
			}),
	)
	return out
}

func proxyScenario(c proxyCase, id, title string, metrics []metric) scenario {
	return scenario{
		id: id, title: title, metrics: metrics,
		cfg:  func(sizes) netConfig { return netConfig{MTU: proxyMTU, Conns: max(c.streams, 1)} },
		open: func(e engine, _ netConfig) (network, error) { return openProxy(e.name(), c) },
		run: func(n network, sz sizes) (map[string]float64, []string, error) {
			p, ok := n.(*proxyNet)
			if !ok {
				return nil, nil, errors.New("not a proxy network")
			}
			return p.run(c, sz)
		},
		skip: func(e engine) string { return proxySkip(e.name(), c) },
		// One run each: the engine, the SOCKS5 server and iperf3 are other processes, which
		// the bench's busy-machine check counts as foreign work (it would re-run every
		// attempt); the family's notes give each run's own figures.
		once: true,
	}
}

// proxyOverHev derives a row: the engine's figure of key in scenario id over
// hev-socks5-tunnel's (the kernel column).
func proxyOverHev(id, key string) func(r *report, engine string) (float64, string) {
	return func(r *report, engine string) (float64, string) {
		if engine == "kernel" {
			return 0, "n/a"
		}
		x, why := r.valueOf(id, key, engine)
		if why != "" {
			return 0, why
		}
		y, why := r.valueOf(id, key, "kernel")
		if why != "" {
			return 0, why
		}
		if y == 0 {
			return 0, "n/a (hev-socks5-tunnel: 0)"
		}
		return x / y, ""
	}
}

// proxyMissing says why the family cannot run here at all ("" when it can).
func proxyMissing() string {
	if os.Geteuid() != 0 {
		return "needs root (namespaces, a TUN)"
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return "no /dev/net/tun"
	}
	for _, tool := range []string{"ip", "iperf3"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "no " + tool + " (apt-get install iproute2 iperf3)"
		}
	}
	if _, why := socksServer(); why != "" {
		return why
	}
	return ""
}

// proxySkip says why engine column col does not run case c ("" when it does).
func proxySkip(col string, c proxyCase) string {
	if why := proxyMissing(); why != "" {
		return "n/a (" + why + ")"
	}
	pe := proxyEngineOf(col)
	if pe == nil {
		return "n/a (no engine in this column of the proxy family: " + proxyColumns + ")"
	}
	if _, why := pe.binary(); why != "" {
		return "n/a (" + why + ")"
	}
	if c.test == proxyUDPEcho {
		if s, _ := socksServer(); !s.udp {
			return "n/a (" + s.name + " has no UDP ASSOCIATE)"
		}
	}
	return ""
}

// proxyNet is one engine in the proxy network, with the SOCKS5 server and the targets.
type proxyNet struct {
	engine *proxyEngine
	nsC    *namespace
	nsS    *namespace
	procs  []*proxyProc // the SOCKS5 server, iperf3 -s, the engine (last)
	eng    *proxyProc
	srv    *proxyTargets
	adjust []string
	// clientCPU is the CPU time of the iperf3 clients that finished.
	clientCPU time.Duration

	closeOnce sync.Once
	closeErr  error
}

// openProxy builds the network and starts the SOCKS5 server, the targets and the engine of
// column col, and waits until a connection through the engine is echoed.
func openProxy(col string, c proxyCase) (network, error) {
	pe := proxyEngineOf(col)
	if pe == nil {
		return nil, notAvailable("no engine in this column")
	}
	bin, why := pe.binary()
	if why != "" {
		return nil, notAvailable(why)
	}
	socks, why := socksServer()
	if why != "" {
		return nil, notAvailable(why)
	}
	cleanupProxy()
	n := &proxyNet{engine: pe}
	ok := false
	defer func() {
		if !ok {
			n.close()
		}
	}()
	var err error
	if n.nsC, err = newNamespace(proxyNSC); err != nil {
		return nil, err
	}
	if n.nsS, err = newNamespace(proxyNSS); err != nil {
		return nil, err
	}
	cn, sn := proxyNSC, proxyNSS
	for _, args := range [][]string{
		{"-n", cn, "link", "add", proxyVethCDv, "type", "veth", "peer", "name", proxyVethSDv, "netns", sn},
		{"-n", cn, "addr", "add", proxyVethC.String() + "/24", "dev", proxyVethCDv},
		{"-n", sn, "addr", "add", proxyVethS.String() + "/24", "dev", proxyVethSDv},
		{"-n", cn, "link", "set", proxyVethCDv, "up"},
		{"-n", sn, "link", "set", proxyVethSDv, "up"},
		{"-n", sn, "addr", "add", proxyTarget.String() + "/32", "dev", "lo"},
		{"-n", cn, "tuntap", "add", "dev", proxyTUNDev, "mode", "tun"},
		{"-n", cn, "link", "set", proxyTUNDev, "mtu", fmt.Sprint(proxyMTU)},
		{"-n", cn, "addr", "add", proxyTUNAddr.String() + "/32", "dev", proxyTUNDev},
		{"-n", cn, "link", "set", proxyTUNDev, "up"},
		{"-n", cn, "route", "add", proxyTargetNet.String(), "dev", proxyTUNDev, "src", proxyTUNAddr.String()},
	} {
		if err := ipCmd(args...); err != nil {
			return nil, err
		}
	}
	// Many short connections: reuse TIME-WAIT ports, use them all (both namespaces).
	for _, ns := range []string{cn, sn} {
		if err := nsSysctl(ns, "net/ipv4/tcp_tw_reuse", "1"); err != nil {
			return nil, err
		}
		if err := nsSysctl(ns, "net/ipv4/ip_local_port_range", "1024 65000"); err != nil {
			return nil, err
		}
	}
	if n.srv, err = startTargets(n.nsS); err != nil {
		return nil, err
	}
	sp, err := socks.start()
	if err != nil {
		return nil, err
	}
	n.procs = append(n.procs, sp)
	if err := waitListen(n.nsS, proxySOCKS, sp); err != nil {
		return nil, err
	}
	if c.test == proxyIperf {
		ip, err := startProc("iperf3", proxyNSS, "iperf3", "-s", "-B", proxyTarget.String(), "-p", fmt.Sprint(proxyIperfPort))
		if err != nil {
			return nil, err
		}
		n.procs = append(n.procs, ip)
		if err := waitListen(n.nsS, netip.AddrPortFrom(proxyTarget, proxyIperfPort), ip); err != nil {
			return nil, err
		}
	}
	if n.eng, err = pe.start(bin); err != nil {
		return nil, err
	}
	n.procs = append(n.procs, n.eng)
	if err := n.probe(); err != nil {
		return nil, fmt.Errorf("%s: no connection through it: %w (its output: %s)", pe.label, err, n.eng.tail())
	}
	n.adjust = append(n.adjust, fmt.Sprintf("SOCKS5 server: %s; engine: %s", socks.note, pe.commandLine(bin)))
	ok = true
	return n, nil
}

// nsSysctl writes a sysctl of namespace ns (path below /proc/sys).
func nsSysctl(ns, path, value string) error {
	out, err := exec.Command("ip", "netns", "exec", ns, "sh", "-c", "echo "+value+" > /proc/sys/"+path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sysctl %s in %s: %v: %s", path, ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (n *proxyNet) listen(uint16) (listener, error)      { return nil, errUnsupported }
func (n *proxyNet) dial(uint16) (conn, error)            { return nil, errUnsupported }
func (n *proxyNet) listenUDP(uint16) (packetConn, error) { return nil, errUnsupported }
func (n *proxyNet) dialUDP(uint16) (packetConn, error)   { return nil, errUnsupported }
func (n *proxyNet) packets() uint64                      { return 0 }
func (n *proxyNet) memory() engineMemory                 { return engineMemory{} }
func (n *proxyNet) notes() []string                      { return n.adjust }

func (n *proxyNet) linkSummary() string {
	if n.eng == nil {
		return ""
	}
	return n.engine.label + ": " + n.eng.tail()
}

// close stops the engine first, then the servers, the targets and the namespaces.
func (n *proxyNet) close() error {
	n.closeOnce.Do(func() {
		for i := len(n.procs) - 1; i >= 0; i-- {
			n.procs[i].stop()
		}
		if n.srv != nil {
			n.srv.close()
		}
		if n.nsC != nil {
			n.nsC.close()
		}
		if n.nsS != nil {
			n.nsS.close()
		}
	})
	return n.closeErr
}

// cleanupProxy deletes this process's proxy namespaces if they exist (a run that timed out
// or failed half-way; others' are cleanupStale's).
func cleanupProxy() {
	kernelMu.Lock()
	defer kernelMu.Unlock()
	for _, ns := range []string{proxyNSC, proxyNSS} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			_ = ipCmd("netns", "del", ns)
		}
	}
}

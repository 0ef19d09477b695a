package main

// The AF_XDP scenarios (xdp/*): a veth pair between two namespaces, the kernel (and the
// bench's own small-packet sender) on one end, the engine on the other through AF_XDP.
//
//	namespace wispbench-<pid>-wxb-k            namespace wispbench-<pid>-wxb-e
//	  sender (AF_PACKET, qdisc bypass) ─┐        ┌─ XDP program ─▶ AF_XDP socket(s) ─▶ engine 198.18.0.2
//	  kernel TCP 198.18.0.1 ─────────── wxbk ═══ wxbe (native XDP, copy mode; no address)
//
// Columns: wisp is wisp on its xdp link (one socket per queue, its own address-filtering
// program); netstack is gVisor on its own pkg/tcpip/link/xdp endpoint (queue 0, the bench's
// plain redirect program, xdp_prog.go); netstack-tuned the same stack tuned (TCP only);
// kernel is the limit: in the UDP rows the kernel's XDP_DROP on wxbe counting every frame
// per CPU; in the TCP rows the kernel's own TCP on wxbe (198.18.0.2) behind the same
// redirect program with no socket (every frame passes), TSO/GSO off on wxbe: the path's
// per-packet limit without AF_XDP (an XDP program on a veth already takes GSO from its
// peer). The Nq rows use N queues on both veth ends (N = the vCPUs, 2 to 4) and spread the
// sender's flows over them by the flow hash.
//
// xdp/udp-*/tun are the reference through a kernel TUN (the TUN namespace of tun.go): the
// same sender writes the same datagrams (without the Ethernet header) with AF_PACKET into
// the TUN device, whose transmit is the engine's read — the kernel hands them to the
// engine as it hands the veth's to XDP, one device hop, no routing.
//
// Checksums: the kernel's end has TX offload turned off (ethtool -K wxbk tx off), so its
// TCP segments arrive with complete checksums and every engine verifies them in software
// (neither AF_XDP engine honours CHECKSUM_PARTIAL; AF_XDP copy mode carries no flag that
// would say so). The sender computes its checksums itself.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/xdp"
)

// The xdp network's namespaces, devices and the engine's address.
var (
	xdpNSK         = fmt.Sprintf("wispbench-%d-wxb-k", os.Getpid())
	xdpNSE         = fmt.Sprintf("wispbench-%d-wxb-e", os.Getpid())
	xdpKernelAddr  = addrA
	xdpEngineAddr  = addrB
	xdpMaxQueues   = 4
	xdpFrameSizes  = []int{60, 1514}
	xdpTCPStreamsN = 4 // streams of the Nq TCP rows: the flow hash spreads them over the queues
)

const (
	xdpKernelDev = "wxbk"
	xdpEngineDev = "wxbe"
	xdpMTU       = 1500
)

// xdpTest is what an xdp scenario measures.
type xdpTest int

const (
	xdpUDP    xdpTest = iota // small-UDP receive rate into the engine
	xdpTCPIn                 // TCP bulk kernel → engine
	xdpTCPOut                // TCP bulk engine → kernel
)

// xdpCase is one xdp scenario.
type xdpCase struct {
	test    xdpTest
	queues  int // 0: the TUN reference
	size    int // UDP frame size on the wire
	streams int // TCP
}

// xdpQueuesN is the N of the Nq rows.
func xdpQueuesN() int { return max(2, min(runtime.NumCPU(), xdpMaxQueues)) }

func qid(q int) string {
	if q == 0 {
		return "tun"
	}
	return fmt.Sprintf("%dq", q)
}

func xdpScenarios() []scenario {
	var out []scenario
	n := xdpQueuesN()
	for _, size := range xdpFrameSizes {
		for _, q := range []int{1, n, 0} {
			c := xdpCase{test: xdpUDP, queues: q, size: size}
			id := fmt.Sprintf("xdp/udp-%d/%s", size, qid(q))
			how := fmt.Sprintf("AF_XDP, %d queue%s", q, plural(q))
			if q == 0 {
				how = "reference: through a TUN (the sender writes into it)"
			}
			metrics := []metric{
				{key: "pps", label: "datagrams the engine's UDP socket received (kernel: XDP_DROP)", unit: "pkt/s", higher: true, prec: 0},
				{key: "ofdrop", label: "÷ the kernel's XDP_DROP, same veth and queues", unit: "×", higher: true, prec: 2,
					derive: xdpQuotient(id, id, "kernel")},
				{key: "linkpps", label: "frames XDP put in the engine's AF_XDP rings", unit: "pkt/s", higher: true, prec: 0},
				{key: "sentpps", label: "frames the sender put on the device", unit: "pkt/s", higher: true, prec: 0},
			}
			switch q {
			case 1:
				metrics[0].goal = ratio(2) // ≥ 2× gVisor's XDP link
				metrics[1].goal = abs(0.7) // ≥ 70 % of XDP_DROP
			case n:
				metrics = append(metrics, metric{key: "scale", label: fmt.Sprintf("÷ the same engine on 1 queue (%d vCPUs)", runtime.NumCPU()),
					unit: "×", higher: true, prec: 2, derive: xdpQuotient(id, fmt.Sprintf("xdp/udp-%d/1q", size), "")})
			case 0:
				metrics = metrics[:1]
				metrics = append(metrics, metric{key: "sentpps", label: "datagrams the sender wrote into the TUN", unit: "pkt/s", higher: true, prec: 0})
			}
			out = append(out, xdpScenario(c, id, fmt.Sprintf("AF_XDP family: UDP receive, %d-byte frames, %s; kernel = XDP_DROP on the veth", size, how), metrics))
		}
	}
	for _, d := range []struct {
		test xdpTest
		id   string
		tun  string
		lbl  string
	}{{xdpTCPIn, "in", "tun/in", "kernel → engine"}, {xdpTCPOut, "out", "tun/out", "engine → kernel"}} {
		for _, q := range []int{1, n} {
			streams := 1
			if q > 1 {
				streams = xdpTCPStreamsN
			}
			id := fmt.Sprintf("xdp/tcp-%s/%s", d.id, qid(q))
			metrics := []metric{mThroughput(goal{}), mCPU,
				{key: "ofkernel", label: "÷ the kernel's TCP on the same veth and XDP program", unit: "×", higher: true, prec: 2,
					derive: xdpQuotient(id, id, "kernel")}}
			if q == 1 {
				metrics = append(metrics, metric{key: "oftun", label: "÷ wisp on TUN with offloads (" + d.tun + ", same run)", unit: "×", higher: true,
					goal: abs(1), prec: 2, derive: xdpTUNQuotient(id, d.tun)})
			} else {
				metrics = append(metrics, metric{key: "scale", label: "÷ the same engine on 1 queue, 1 stream", unit: "×", higher: true, prec: 2,
					derive: xdpQuotient(id, fmt.Sprintf("xdp/tcp-%s/1q", d.id), "")})
			}
			c := xdpCase{test: d.test, queues: q, streams: streams}
			out = append(out, xdpScenario(c, id, fmt.Sprintf("AF_XDP family: TCP bulk %s, %d stream%s, AF_XDP %d queue%s, MTU 1500", d.lbl, streams, plural(streams), q, plural(q)), metrics))
		}
	}
	return out
}

func xdpScenario(c xdpCase, id, title string, metrics []metric) scenario {
	return scenario{
		id: id, title: title, metrics: metrics,
		cfg:  func(sizes) netConfig { return netConfig{MTU: xdpMTU, Conns: max(c.streams, 1)} },
		open: func(e engine, _ netConfig) (network, error) { return openXDP(e, c) },
		run: func(n network, sz sizes) (map[string]float64, []string, error) {
			x, ok := n.(*xdpNet)
			if !ok {
				return nil, nil, errors.New("not an xdp network")
			}
			if c.test == xdpUDP {
				return runXDPUDP(x, sz)
			}
			r, err := runBulk(x, c.streams, sz.bulkWarm, sz.bulkDur)
			return r.values(), stalledNote(r), err
		},
		skip: xdpSkip(c),
	}
}

// xdpQuotient derives a row: the engine's figure (pps or gbps) in scenario num divided by
// that in den of the engine itself (other "") or of engine other.
func xdpQuotient(num, den, other string) func(r *report, engine string) (float64, string) {
	return func(r *report, engine string) (float64, string) {
		if engine == "kernel" && other == "kernel" {
			return 0, "n/a"
		}
		key := "pps"
		if strings.HasPrefix(num, "xdp/tcp") {
			key = "gbps"
		}
		x, why := r.valueOf(num, key, engine)
		if why != "" {
			return 0, why
		}
		e := engine
		if other != "" {
			e = other
		}
		y, why := r.valueOf(den, key, e)
		if why != "" {
			return 0, why
		}
		if y == 0 {
			return 0, "n/a (" + den + ": 0)"
		}
		return x / y, ""
	}
}

// xdpTUNQuotient divides an engine's AF_XDP bulk figure by wisp's own through the TUN
// with offloads in the same run (the bar: AF_XDP must not be slower than the door
// it replaces).
func xdpTUNQuotient(num, tunID string) func(r *report, engine string) (float64, string) {
	return func(r *report, engine string) (float64, string) {
		if engine == "kernel" {
			return 0, "n/a"
		}
		x, why := r.valueOf(num, "gbps", engine)
		if why != "" {
			return 0, why
		}
		y, why := r.valueOf(tunID, "gbps", "wisp")
		if why != "" {
			return 0, why + " (add " + tunID + " to -run)"
		}
		if y == 0 {
			return 0, "n/a (" + tunID + ": 0 Gbit/s)"
		}
		return x / y, ""
	}
}

// xdpMissing says why the family cannot run here ("" when it can).
func xdpMissing() string {
	if why := (kernelEngine{}).missing(); why != "" {
		return why + ": veth in namespaces"
	}
	if _, err := exec.LookPath("ethtool"); err != nil {
		return "no ethtool(8): queues and TX offload of the veth"
	}
	return ""
}

// xdpSkip says why an engine has no figure in a case.
func xdpSkip(c xdpCase) func(e engine) string {
	return func(e engine) string {
		if why := xdpMissing(); why != "" {
			return "n/a (" + why + ")"
		}
		switch e.name() {
		case "kernel":
			if c.queues == 0 {
				return "n/a (XDP_DROP is the veth rows' kernel column)"
			}
		case "netstack":
			if c.queues > 1 {
				return "n/a (gVisor's xdp link binds one queue, queue 0)"
			}
		case "netstack-tuned":
			if c.test == xdpUDP {
				return "n/a (UDP receive: the same path as netstack)"
			}
			if c.queues > 1 {
				return "n/a (gVisor's xdp link binds one queue, queue 0)"
			}
		}
		return ""
	}
}

// xdpSide is an engine behind the AF_XDP (or TUN) door.
type xdpSide interface {
	// listenUDP opens a UDP socket on the engine's address (nil for the drop program).
	listenUDP(port uint16) (net.PacketConn, error)
	listen(port uint16) (listener, error)
	dial(to netip.AddrPort) (conn, error)
	// dropped is the drop program's count (the kernel column), else 0.
	dropped() uint64
	summary() string
	memory() engineMemory
	close()
}

// xdpNet is one xdp network: the veth pair (or the TUN network) and the engine's side.
type xdpNet struct {
	c          xdpCase
	nsK, nsE   *namespace
	kMAC, eMAC [6]byte
	side       xdpSide
	tun        *tunNet // the TUN reference instead of the veth
	adjust     []string
}

// openXDP builds the network of case c for engine e.
func openXDP(e engine, c xdpCase) (network, error) {
	if c.queues == 0 {
		var open func(ns *namespace) (tunSide, []string, error)
		switch e.name() {
		case "wisp":
			open = openWispTUN(true)
		case "netstack":
			open = openGVisorTUN(false, true)
		default:
			return nil, notAvailable("no TUN reference for " + e.name())
		}
		tn, err := openTUN(netConfig{MTU: tunMTU, Conns: 1, TUN: tunIn, Offload: true}, open)
		if err != nil {
			return nil, err
		}
		t := tn.(*tunNet)
		return &xdpNet{c: c, tun: t, side: tunUDPSide{t.side}, adjust: t.adjust}, nil
	}
	x, err := openVeth(c.queues)
	if err != nil {
		return nil, err
	}
	var side xdpSide
	var notes []string
	switch e.name() {
	case "kernel":
		if c.test == xdpUDP {
			side, err = openDropSide(x.nsE)
		} else {
			side, notes, err = openKernelPassSide(x.nsE, c.test)
		}
	case "wisp":
		side, notes, err = openWispXDP(x.nsE, c.queues)
	case "netstack", "netstack-tuned":
		side, notes, err = openGVisorXDP(x.nsE, e.name() == "netstack-tuned", x.eMAC)
	default:
		err = notAvailable("no AF_XDP side for " + e.name())
	}
	if err != nil {
		x.close()
		if noXDP(err) {
			return nil, notAvailable("the kernel lacks AF_XDP or BPF: " + err.Error())
		}
		return nil, err
	}
	x.c, x.side, x.adjust = c, side, append(x.adjust, notes...)
	if c.test != xdpUDP {
		if err := x.waitTCP(); err != nil {
			x.close()
			return nil, err
		}
	}
	return x, nil
}

// noXDP tells a kernel without AF_XDP or BPF (or without the permission) from a failure.
func noXDP(err error) bool {
	for _, e := range []error{unix.EAFNOSUPPORT, unix.EPROTONOSUPPORT, unix.ENOSYS, unix.EPERM, unix.EOPNOTSUPP, ebpf.ErrNotSupported} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// openVeth creates the namespaces and the veth pair with queues queues on each end, the
// kernel's end addressed and its TX offload off, the engine's end up without an address.
func openVeth(queues int) (*xdpNet, error) {
	cleanupXDP()
	nsK, err := newNamespace(xdpNSK)
	if err != nil {
		return nil, err
	}
	x := &xdpNet{nsK: nsK}
	if x.nsE, err = newNamespace(xdpNSE); err != nil {
		x.close()
		return nil, err
	}
	q := strconv.Itoa(queues)
	steps := [][]string{
		{"-n", xdpNSK, "link", "add", xdpKernelDev, "numtxqueues", q, "numrxqueues", q, "type", "veth",
			"peer", "name", xdpEngineDev, "netns", xdpNSE, "numtxqueues", q, "numrxqueues", q},
		{"-n", xdpNSK, "addr", "add", netip.PrefixFrom(xdpKernelAddr, 24).String(), "dev", xdpKernelDev},
		{"-n", xdpNSK, "link", "set", xdpKernelDev, "mtu", strconv.Itoa(xdpMTU), "up"},
		{"-n", xdpNSE, "link", "set", xdpEngineDev, "mtu", strconv.Itoa(xdpMTU), "up"},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			x.close()
			return nil, err
		}
	}
	eth := [][]string{{xdpNSK, "-K", xdpKernelDev, "tx", "off"}}
	if queues > 1 {
		eth = append(eth, []string{xdpNSK, "-L", xdpKernelDev, "rx", q, "tx", q}, []string{xdpNSE, "-L", xdpEngineDev, "rx", q, "tx", q})
	}
	for _, s := range eth {
		if err := ethtoolCmd(s[0], s[1:]...); err != nil {
			x.close()
			return nil, err
		}
	}
	for _, d := range []struct {
		ns  *namespace
		dev string
		mac *[6]byte
	}{{x.nsK, xdpKernelDev, &x.kMAC}, {x.nsE, xdpEngineDev, &x.eMAC}} {
		err := d.ns.in(func() error {
			ifi, err := net.InterfaceByName(d.dev)
			if err != nil {
				return err
			}
			copy(d.mac[:], ifi.HardwareAddr)
			return nil
		})
		if err != nil {
			x.close()
			return nil, err
		}
	}
	return x, nil
}

func ethtoolCmd(ns string, args ...string) error {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "ethtool"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ethtool %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// vethXDPStats sums the engine end's per-queue XDP counters (ethtool -S).
func (x *xdpNet) vethXDPStats() (redirect, drops uint64) {
	out, err := exec.Command("ip", "netns", "exec", xdpNSE, "ethtool", "-S", xdpEngineDev).Output()
	if err != nil {
		return 0, 0
	}
	return parseVethXDPStats(string(out))
}

// parseVethXDPStats reads a veth's `ethtool -S` output: the frames its XDP program
// redirected (into AF_XDP sockets) and the frames dropped (by XDP, or a full queue), summed
// over the receive queues. Lines it does not know are skipped.
func parseVethXDPStats(out string) (redirect, drops uint64) {
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(k, "rx_queue_") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasSuffix(k, "_xdp_redirect"):
			redirect += n
		case strings.HasSuffix(k, "_drops"): // _xdp_drops and _drops
			drops += n
		}
	}
	return redirect, drops
}

// waitTCP waits until the kernel reaches the engine (ARP resolved, listener answering).
func (x *xdpNet) waitTCP() error {
	l, err := x.side.listen(9)
	if err != nil {
		return err
	}
	defer l.close()
	go func() {
		for {
			c, err := l.accept()
			if err != nil {
				return
			}
			c.close()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var c net.Conn
		err := x.nsK.in(func() (err error) {
			d := net.Dialer{Timeout: 300 * time.Millisecond}
			c, err = d.Dial("tcp4", netip.AddrPortFrom(xdpEngineAddr, 9).String())
			return err
		})
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("engine not reachable over AF_XDP: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (x *xdpNet) listen(port uint16) (listener, error) {
	if x.c.test == xdpTCPOut {
		return kernelListen(x.nsK.fd, netip.AddrPortFrom(xdpKernelAddr, port))
	}
	return x.side.listen(port)
}

func (x *xdpNet) dial(port uint16) (conn, error) {
	if x.c.test == xdpTCPOut {
		return x.side.dial(netip.AddrPortFrom(xdpKernelAddr, port))
	}
	return kernelDial(x.nsK.fd, netip.AddrPortFrom(xdpEngineAddr, port))
}

func (x *xdpNet) listenUDP(uint16) (packetConn, error) { return nil, errUnsupported }
func (x *xdpNet) dialUDP(uint16) (packetConn, error)   { return nil, errUnsupported }
func (x *xdpNet) packets() uint64                      { return 0 }
func (x *xdpNet) memory() engineMemory {
	if x.side == nil {
		return engineMemory{}
	}
	return x.side.memory()
}
func (x *xdpNet) notes() []string { return x.adjust }

func (x *xdpNet) linkSummary() string {
	if x.side == nil {
		return ""
	}
	s := x.side.summary()
	if x.nsE != nil {
		r, d := x.vethXDPStats()
		s += fmt.Sprintf("; veth %s: %d frames redirected by XDP, %d dropped", xdpEngineDev, r, d)
	}
	return s
}

func (x *xdpNet) close() error {
	if x.side != nil {
		x.side.close()
		x.side = nil
	}
	if x.tun != nil {
		return x.tun.close()
	}
	if x.nsE != nil {
		x.nsE.close()
	}
	if x.nsK != nil {
		x.nsK.close()
	}
	return nil
}

// cleanupXDP deletes the xdp namespaces (and with them the veth). Safe to call anytime.
func cleanupXDP() {
	kernelMu.Lock()
	defer kernelMu.Unlock()
	for _, ns := range []string{xdpNSK, xdpNSE} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			_ = ipCmd("netns", "del", ns)
		}
	}
}

// runXDPUDP floods the engine with the case's frames for warm+dur and counts, over dur,
// what its UDP socket received, what XDP handed to its sockets and what the sender sent.
func runXDPUDP(x *xdpNet, sz sizes) (map[string]float64, []string, error) {
	spec := frameSpec{eth: x.tun == nil, srcMAC: x.kMAC, dstMAC: x.eMAC, src: xdpKernelAddr, dst: xdpEngineAddr,
		dport: portUDP, size: x.c.size}
	pc, err := x.side.listenUDP(portUDP)
	if err != nil {
		return nil, nil, err
	}
	var got atomic.Uint64
	rdone := make(chan struct{})
	if pc != nil {
		go func() {
			defer close(rdone)
			buf := make([]byte, 2048)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						continue
					}
					return
				}
				got.Add(1)
			}
		}()
	} else {
		close(rdone)
	}
	count := func() uint64 {
		if pc == nil {
			return x.side.dropped()
		}
		return got.Load()
	}
	nsfd, dev := -1, xdpKernelDev
	if x.tun != nil {
		nsfd, dev = x.tun.ns.fd, tunDevName
	} else {
		nsfd = x.nsK.fd
	}
	f, err := startFlood(nsfd, dev, spec, sz.bulkWarm+sz.udpDur+5*time.Second)
	if err != nil {
		if pc != nil {
			pc.Close()
		}
		<-rdone
		return nil, nil, err
	}
	time.Sleep(sz.bulkWarm)
	g0, s0, t0 := count(), f.sent.Load(), time.Now()
	r0, _ := x.redirected()
	time.Sleep(sz.udpDur)
	g1, s1, t1 := count(), f.sent.Load(), time.Now()
	r1, _ := x.redirected()
	ferr := f.halt()
	if pc != nil {
		pc.Close()
	}
	<-rdone
	if ferr != nil {
		return nil, nil, ferr
	}
	secs := t1.Sub(t0).Seconds()
	v := map[string]float64{"pps": float64(g1-g0) / secs, "sentpps": float64(s1-s0) / secs}
	if x.tun == nil && pc != nil {
		v["linkpps"] = float64(r1-r0) / secs
	}
	var notes []string
	if fails := f.fails.Load(); fails > 0 {
		notes = append(notes, fmt.Sprintf("sender: %d sendmmsg calls refused (device queue full)", fails))
	}
	if g1 == g0 {
		return v, notes, errors.New("nothing received")
	}
	return v, notes, nil
}

// redirected reads the veth's XDP redirect counter (0 on the TUN reference).
func (x *xdpNet) redirected() (uint64, uint64) {
	if x.nsE == nil {
		return 0, 0
	}
	return x.vethXDPStats()
}

// kernelPassSide is the kernel column of the TCP rows: the kernel's TCP on the engine's
// end, behind xdp.RedirectProgram with no socket (everything passes).
type kernelPassSide struct {
	ns   *namespace
	prog *xdpRedirect
}

func openKernelPassSide(ns *namespace, test xdpTest) (xdpSide, []string, error) {
	if err := ipCmd("-n", ns.name, "addr", "add", netip.PrefixFrom(xdpEngineAddr, 24).String(), "dev", xdpEngineDev); err != nil {
		return nil, nil, err
	}
	if err := ethtoolCmd(ns.name, "-K", xdpEngineDev, "tso", "off", "gso", "off"); err != nil {
		return nil, nil, err
	}
	k := &kernelPassSide{ns: ns}
	err := ns.in(func() error {
		ifi, err := net.InterfaceByName(xdpEngineDev)
		if err != nil {
			return err
		}
		k.prog, err = attachRedirect(ifi.Index, nil, nil)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return k, []string{"kernel: its own TCP on wxbe behind xdp.RedirectProgram without sockets (all frames pass), TSO/GSO off on wxbe"}, nil
}

func (k *kernelPassSide) listenUDP(uint16) (net.PacketConn, error) { return nil, errUnsupported }
func (k *kernelPassSide) listen(port uint16) (listener, error) {
	return kernelListen(k.ns.fd, netip.AddrPortFrom(xdpEngineAddr, port))
}
func (k *kernelPassSide) dial(to netip.AddrPort) (conn, error) { return kernelDial(k.ns.fd, to) }
func (k *kernelPassSide) dropped() uint64                      { return 0 }
func (k *kernelPassSide) summary() string                      { return "" }
func (k *kernelPassSide) memory() engineMemory                 { return engineMemory{} }
func (k *kernelPassSide) close()                               { k.prog.close() }

// dropSide is the kernel column of the UDP rows: xdp.Dropper on the engine's end.
type dropSide struct{ d *xdp.Dropper }

func openDropSide(ns *namespace) (xdpSide, error) {
	var d *xdp.Dropper
	err := ns.in(func() (err error) {
		d, err = xdp.NewDropper(xdpEngineDev, xdp.AttachDriver)
		return err
	})
	if err != nil {
		return nil, err
	}
	return dropSide{d}, nil
}

func (s dropSide) listenUDP(uint16) (net.PacketConn, error) { return nil, nil }
func (s dropSide) listen(uint16) (listener, error)          { return nil, errUnsupported }
func (s dropSide) dial(netip.AddrPort) (conn, error)        { return nil, errUnsupported }
func (s dropSide) dropped() uint64                          { n, _ := s.d.Count(); return n }
func (s dropSide) summary() string {
	return fmt.Sprintf("XDP_DROP (%s): %d frames", s.d.Mode, s.dropped())
}
func (s dropSide) memory() engineMemory { return engineMemory{} }
func (s dropSide) close()               { s.d.Close() }

// tunUDPSide is a TUN network's engine as an xdpSide (the UDP reference rows).
type tunUDPSide struct{ t tunSide }

func (s tunUDPSide) listenUDP(port uint16) (net.PacketConn, error) {
	return tunListenUDP(s.t, netip.AddrPortFrom(tunEngineAddr, port))
}
func (s tunUDPSide) listen(port uint16) (listener, error) { return s.t.listen(port) }
func (s tunUDPSide) dial(to netip.AddrPort) (conn, error) { return s.t.dial(to) }
func (s tunUDPSide) dropped() uint64                      { return 0 }
func (s tunUDPSide) summary() string                      { return s.t.summary() }
func (s tunUDPSide) memory() engineMemory                 { return s.t.memory() }
func (s tunUDPSide) close()                               {} // the tunNet closes it

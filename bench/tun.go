package main

// The TUN scenarios (tun/*): the kernel's TCP as the peer of one stack of the engine's kind
// through a kernel TUN, the door every TUN proxy, WireGuard client and sandbox sits
// behind.
//
//	namespace wispbench-<pid>-tun (lo, wbtun; no default route)
//	  kernel TCP socket 198.18.0.1 ──▶ wbtun ──/dev/net/tun fd──▶ engine stack 198.18.0.2 (this process)
//
// tun/in: the kernel sends, the engine receives; tun/out: the engine sends, the kernel
// receives. With offloads (tun/in, tun/out) the TUN carries a virtio-net header and takes
// TUNSETOFFLOAD CSUM|TSO4|TSO6, so 64 KiB segments cross it both ways: wisp through
// link/tun's offload path, gVisor through host GSO (gvtun.go, Tailscale's configuration).
// Without (tun/*-no-offload) it moves one MTU-sized packet per system call: wisp's
// tun.Open, gVisor's fdbased endpoint. The kernel column of tun/in and tun/out is the
// kernel over veth (kernelEngine): the limit. The kernel's side of the transfer runs in this
// process's goroutines (sockets opened in the namespace), so the CPU per GB row covers
// both peers, as it does for the kernel engine.

import (
	"fmt"
	"net/netip"
	"os"
	"sync"

	"github.com/wispstack/wisp/link/tun"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
)

// tunDir is the direction of a TUN scenario's transfer.
type tunDir int

const (
	tunNone tunDir = iota
	tunIn          // the kernel sends, the engine receives
	tunOut         // the engine sends, the kernel receives
)

// The TUN network: the kernel's address on wbtun and the engine's behind it.
var (
	tunKernelAddr = addrA
	tunEngineAddr = addrB
)

const (
	tunDevName = "wbtun"
	tunMTU     = 1500
)

func tunScenarios() []scenario {
	var out []scenario
	dirs := []struct {
		dir   tunDir
		id    string
		label string
	}{{tunIn, "in", "kernel → engine"}, {tunOut, "out", "engine → kernel"}}
	bulk := func(n network, sz sizes) (map[string]float64, []string, error) {
		r, err := runBulk(n, 1, sz.bulkWarm, sz.bulkDur)
		return r.values(), stalledNote(r), err
	}
	for _, d := range dirs {
		id, plain := "tun/"+d.id, "tun/"+d.id+"-no-offload"
		out = append(out, scenario{
			id:    id,
			title: fmt.Sprintf("TUN with offloads (virtio-net header, GSO), %s: TCP bulk, 1 stream, MTU 1500; kernel = over veth", d.label),
			metrics: []metric{
				mThroughput(ratio(1.5)),
				mCPU,
				{key: "gain", label: "throughput ÷ the same engine without offloads", unit: "×", higher: true,
					goal: abs(3), prec: 2, derive: tunQuotient(id, plain, "")},
				{key: "ofkernel", label: "throughput ÷ the kernel over veth", unit: "×", higher: true,
					goal: abs(0.7), prec: 2, derive: tunQuotient(id, id, "kernel")},
			},
			cfg:  func(sizes) netConfig { return netConfig{MTU: tunMTU, Conns: 1, TUN: d.dir, Offload: true} },
			run:  bulk,
			skip: tunSkip(""),
		})
	}
	for _, d := range dirs {
		// Eight streams: with -wisp-cores N, wisp opens N TUN queues (the kernel spreads the
		// flows over them) and N cores, a queue's reader delivering to every core.
		out = append(out, scenario{
			id:      "tun/" + d.id + "-8",
			title:   fmt.Sprintf("TUN with offloads, %s: TCP bulk, 8 streams, MTU 1500; kernel = over veth", d.label),
			metrics: []metric{mThroughput(goal{}), mCPU},
			cfg:     func(sizes) netConfig { return netConfig{MTU: tunMTU, Conns: 8, TUN: d.dir, Offload: true} },
			run: func(n network, sz sizes) (map[string]float64, []string, error) {
				r, err := runBulk(n, 8, sz.bulkWarm, sz.bulkDur)
				return r.values(), stalledNote(r), err
			},
			skip: tunSkip(""),
		})
	}
	for _, d := range dirs {
		out = append(out, scenario{
			id:      "tun/" + d.id + "-no-offload",
			title:   fmt.Sprintf("TUN without offloads (one packet per system call), %s: TCP bulk, 1 stream, MTU 1500", d.label),
			metrics: []metric{mThroughput(goal{}), mCPU},
			cfg:     func(sizes) netConfig { return netConfig{MTU: tunMTU, Conns: 1, TUN: d.dir} },
			run:     bulk,
			skip:    tunSkip("n/a (the kernel over veth is the kernel column of tun/" + d.id + ")"),
		})
	}
	return out
}

// tunQuotient derives a row: the engine's throughput in scenario num divided by the
// throughput in scenario den of the engine itself (other "") or of engine other.
func tunQuotient(num, den, other string) func(r *report, engine string) (float64, string) {
	return func(r *report, engine string) (float64, string) {
		if engine == "kernel" {
			return 0, "n/a"
		}
		x, why := r.valueOf(num, "gbps", engine)
		if why != "" {
			return 0, why
		}
		e := engine
		if other != "" {
			e = other
		}
		y, why := r.valueOf(den, "gbps", e)
		if why != "" {
			return 0, why
		}
		if y == 0 {
			return 0, "n/a (" + den + ": 0 Gbit/s)"
		}
		return x / y, ""
	}
}

// tunSkip says why an engine does not run a TUN scenario: the userspace engines need what
// the kernel engine needs (root, ip) and /dev/net/tun; the kernel runs the veth unless
// kernelWhy says why not.
func tunSkip(kernelWhy string) func(e engine) string {
	return func(e engine) string {
		if e.name() == "kernel" {
			return kernelWhy
		}
		if why := (kernelEngine{}).missing(); why != "" {
			return "n/a (" + why + ": a TUN in a network namespace)"
		}
		if _, err := os.Stat("/dev/net/tun"); err != nil {
			return "n/a (no /dev/net/tun)"
		}
		return ""
	}
}

// tunSide is an engine's stack behind the TUN.
type tunSide interface {
	// listen opens a TCP listener on tunEngineAddr; dial connects to the kernel's to.
	listen(port uint16) (listener, error)
	dial(to netip.AddrPort) (conn, error)
	packets() uint64
	summary() string
	memory() engineMemory
	close()
}

// tunNet is a TUN network: the namespace with the kernel's end, and the engine's side.
type tunNet struct {
	ns     *namespace
	dir    tunDir
	side   tunSide
	adjust []string
}

// openTUN creates the namespace, lets open build the engine's side (it opens the TUN
// inside ns) and gives the kernel's end its address.
func openTUN(cfg netConfig, open func(ns *namespace) (tunSide, []string, error)) (network, error) {
	ns, err := newNamespace(tunNSName)
	if err != nil {
		return nil, err
	}
	side, notes, err := open(ns)
	if err != nil {
		ns.close()
		return nil, err
	}
	n := &tunNet{ns: ns, dir: cfg.TUN, side: side, adjust: notes}
	for _, s := range [][]string{
		{"-n", ns.name, "addr", "add", netip.PrefixFrom(tunKernelAddr, 24).String(), "dev", tunDevName},
		{"-n", ns.name, "link", "set", tunDevName, "mtu", fmt.Sprint(cfg.MTU), "up"},
	} {
		if err := ipCmd(s...); err != nil {
			n.close()
			return nil, err
		}
	}
	return n, nil
}

func (n *tunNet) listen(port uint16) (listener, error) {
	if n.dir == tunIn {
		return n.side.listen(port)
	}
	return kernelListen(n.ns.fd, netip.AddrPortFrom(tunKernelAddr, port))
}

func (n *tunNet) dial(port uint16) (conn, error) {
	if n.dir == tunIn {
		return kernelDial(n.ns.fd, netip.AddrPortFrom(tunEngineAddr, port))
	}
	return n.side.dial(netip.AddrPortFrom(tunKernelAddr, port))
}

func (n *tunNet) listenUDP(uint16) (packetConn, error) { return nil, errUnsupported }
func (n *tunNet) dialUDP(uint16) (packetConn, error)   { return nil, errUnsupported }
func (n *tunNet) packets() uint64                      { return n.side.packets() }
func (n *tunNet) linkSummary() string                  { return n.side.summary() }
func (n *tunNet) memory() engineMemory                 { return n.side.memory() }
func (n *tunNet) notes() []string                      { return n.adjust }

func (n *tunNet) close() error {
	n.side.close()
	n.ns.close()
	return nil
}

// wispTUN is wisp (opt.Tunnel()) on link/tun.
type wispTUN struct {
	s   *stack.Stack
	dev *tun.Device
}

// openWispTUN opens wisp's side: link/tun with offloads (OpenConfig) or without (Open).
func openWispTUN(offload bool) func(ns *namespace) (tunSide, []string, error) {
	return func(ns *namespace) (tunSide, []string, error) {
		s, err := stack.New(stack.Config{Options: opt.Tunnel(), Cores: coresOf()})
		if err != nil {
			return nil, nil, err
		}
		var logs tunLog
		var dev *tun.Device
		err = ns.in(func() (err error) {
			dev, err = openWispDevice(offload, &logs)
			return err
		})
		if err != nil {
			s.Close()
			return nil, nil, err
		}
		if _, err := s.AddNetif(dev, stack.NetifConfig{Name: "tun0", Addrs: []netip.Prefix{netip.PrefixFrom(tunEngineAddr, 24)}}); err != nil {
			dev.Close()
			s.Close()
			return nil, nil, err
		}
		return &wispTUN{s: s, dev: dev}, logs.lines(), nil
	}
}

func (w *wispTUN) listen(port uint16) (listener, error) {
	return wispListen(w.s, netip.AddrPortFrom(tunEngineAddr, port))
}

func (w *wispTUN) dial(to netip.AddrPort) (conn, error) { return wispDial(w.s, to) }

func (w *wispTUN) packets() uint64 {
	rx, _, tx, _ := w.dev.Stats()
	return rx + tx
}

func (w *wispTUN) summary() string {
	rx, rxDrop, tx, txDrop := w.dev.Stats()
	o := w.s.Stats().Offload
	return fmt.Sprintf("tun: %d frames in (%d dropped, %d coalesced), %d out (%d dropped, %d TSO, %d cut in software), %d merged by GRO",
		rx, rxDrop, o.RxGSO, tx, txDrop, o.TSOOut, o.GSOSoft, o.GROMerged)
}

func (w *wispTUN) memory() engineMemory {
	var m engineMemory
	m.add(w.s)
	return m
}

func (w *wispTUN) close() { w.s.Close() } // closes the device too

// tunLog collects what a link logs while it opens (a fallback to the path without
// offloads, say) for the table's notes.
type tunLog struct {
	mu sync.Mutex
	ls []string // guarded by mu
}

func (l *tunLog) logf(format string, args ...any) {
	l.mu.Lock()
	l.ls = append(l.ls, "link/tun: "+fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *tunLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ls...)
}

// openWispDevice opens wisp's TUN in the calling thread's namespace: with offloads through
// OpenConfig (a refusal by the kernel is logged into the notes), without through Open,
// today's path.
func openWispDevice(offload bool, l *tunLog) (*tun.Device, error) {
	if !offload {
		return tun.Open(tunDevName, tunMTU)
	}
	return tun.OpenConfig(tun.Config{Name: tunDevName, MTU: tunMTU, Offload: true, Queues: coresOf(), Logf: l.logf})
}

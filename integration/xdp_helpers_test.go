package integration

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/xdp"
)

// xdpNet is a veth pair between two namespaces of a test: the kernel peer on vA in a
// (198.18.<subnet>.1/24, fd42:5eed:0:<subnet>::1/64), and vB in b, where wisp takes .2 and ::2
// through AF_XDP while b's own kernel keeps 198.18.<subnet>.3/24 on vB (the host's traffic
// the XDP program passes). vA sends with its checksums complete (`ethtool -K vA tx off`):
// the frames of a local sender otherwise reach vB's AF_XDP socket with CHECKSUM_PARTIAL's
// unfinished checksums.
type xdpNet struct {
	a, b       *netns
	queues     int
	wisp, kern [2]netip.Addr // [0] IPv4, [1] IPv6
	host       netip.Addr    // b's kernel, on vB
	mac        net.HardwareAddr
}

// newXDPNet builds the pair with queues RX and TX queues on each end; the namespaces
// (and with them the veth) are removed when the test ends.
func newXDPNet(t *testing.T, subnet, queues int) *xdpNet {
	t.Helper()
	requireTool(t, "ethtool")
	n := &xdpNet{a: newNetns(t), b: newNetns(t), queues: queues}
	n.wisp[0] = netip.MustParseAddr(fmt.Sprintf("198.18.%d.2", subnet))
	n.kern[0] = netip.MustParseAddr(fmt.Sprintf("198.18.%d.1", subnet))
	n.host = netip.MustParseAddr(fmt.Sprintf("198.18.%d.3", subnet))
	n.wisp[1] = netip.MustParseAddr(fmt.Sprintf("fd42:5eed:0:%x::2", subnet))
	n.kern[1] = netip.MustParseAddr(fmt.Sprintf("fd42:5eed:0:%x::1", subnet))
	q := strconv.Itoa(queues)
	n.a.run(t, "ip", "link", "add", "vA", "numtxqueues", q, "numrxqueues", q, "type", "veth",
		"peer", "name", "vB", "numtxqueues", q, "numrxqueues", q, "netns", n.b.name)
	if queues > 1 {
		n.a.run(t, "ethtool", "-L", "vA", "rx", q, "tx", q)
		n.b.run(t, "ethtool", "-L", "vB", "rx", q, "tx", q)
	}
	n.a.run(t, "ethtool", "-K", "vA", "tx", "off")
	n.a.run(t, "ip", "addr", "add", n.kern[0].String()+"/24", "dev", "vA")
	n.a.run(t, "ip", "-6", "addr", "add", n.kern[1].String()+"/64", "dev", "vA", "nodad")
	n.a.run(t, "ip", "link", "set", "vA", "up")
	// b's kernel gets no IPv6 address on vB: its link-local would be wisp's (both are made
	// from vB's MAC).
	n.b.run(t, "ip", "link", "set", "vB", "addrgenmode", "none")
	n.b.run(t, "ip", "addr", "add", n.host.String()+"/24", "dev", "vB")
	n.b.run(t, "ip", "link", "set", "vB", "up")
	n.b.do(t, func() {
		ifc, err := net.InterfaceByName("vB")
		if err != nil {
			t.Errorf("vB: %v", err)
			return
		}
		n.mac = ifc.HardwareAddr
	})
	if n.mac == nil {
		t.FailNow()
	}
	return n
}

// prefixes returns wisp's addresses with their prefix lengths.
func (n *xdpNet) prefixes() []netip.Prefix {
	return []netip.Prefix{netip.PrefixFrom(n.wisp[0], 24), netip.PrefixFrom(n.wisp[1], 64)}
}

// requireXDP skips the test when err says the kernel has no AF_XDP (or no BPF); in CI,
// whose kernel has both, it fails instead. Other errors fail the test.
func requireXDP(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.ENOSYS) {
		if os.Getenv("CI") != "" {
			t.Fatalf("AF_XDP: %v (CI's kernel has AF_XDP)", err)
		}
		t.Skipf("the kernel lacks AF_XDP or BPF: %v", err)
	}
	t.Fatalf("xdp.Open: %v", err)
}

// open opens an AF_XDP link on vB inside b (cfg.Interface is set; cfg.Addrs defaults to
// wisp's addresses). When the test ends — after whoever owns the link closed it, if they
// registered their cleanup later — it checks that no XDP program is left on vB.
func (n *xdpNet) open(t *testing.T, cfg xdp.Config) *xdp.Link {
	t.Helper()
	cfg.Interface = "vB"
	if cfg.Addrs == nil {
		cfg.Addrs = n.wisp[:]
	}
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	var l *xdp.Link
	var err error
	n.b.do(t, func() { l, err = xdp.Open(cfg) })
	requireXDP(t, err)
	t.Cleanup(func() { n.noXDP(t) })
	t.Logf("xdp: %v", l.Info())
	return l
}

// xdpAttached reports whether ip shows an XDP program on vB, and what it says.
func (n *xdpNet) xdpAttached(t *testing.T) (bool, string) {
	t.Helper()
	out := n.b.run(t, "ip", "-d", "link", "show", "vB")
	return strings.Contains(out, "xdp"), out
}

// noXDP fails the test if an XDP program is still attached to vB (the kernel detaches a
// BPF link's program when its last descriptor closes: allow it a moment).
func (n *xdpNet) noXDP(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		on, out := n.xdpAttached(t)
		if !on {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("an XDP program is still attached to vB after Close:\n%s", out)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// xdpEnv is a wisp stack on an AF_XDP link on vB: a tcpEnv whose namespace is the kernel
// peer's (a), so the TCP helpers (dial, listen, kernelPeer, evidence) work unchanged.
type xdpEnv struct {
	*tcpEnv
	net *xdpNet
	x   *xdp.Link
	nif *stack.Netif
}

// newXDPEnv builds an xdpNet with queues queues and a stack of cores cores on an AF_XDP
// link bound to all of them. The stack is closed, its pools checked, the program's
// removal checked and the goroutines counted when the test ends.
func newXDPEnv(t *testing.T, subnet, queues, cores int) *xdpEnv {
	t.Helper()
	return newXDPEnvWith(t, subnet, queues, cores, xdp.Config{})
}

// newXDPEnvWith is newXDPEnv with the link's configuration (Queues is set from queues;
// with RxZeroCopy, Alloc is the stack's allocator).
func newXDPEnvWith(t *testing.T, subnet, queues, cores int, cfg xdp.Config) *xdpEnv {
	t.Helper()
	n := newXDPNet(t, subnet, queues)
	stacktest.NoGoroutineLeak(t)
	s, err := stack.New(stack.Config{Options: opt.Tunnel(), Cores: cores})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Queues = queues
	if cfg.RxZeroCopy {
		cfg.Alloc = s.Allocator()
	}
	x := n.open(t, cfg) // its check that the program is gone runs after the stack closed
	stacktest.Closed(t, s)
	e := &xdpEnv{net: n, x: x, tcpEnv: &tcpEnv{ns: n.a, s: s, link: x, wisp: n.wisp, kern: n.kern}}
	if e.nif, err = s.AddNetif(x, stack.NetifConfig{Name: "vB", Addrs: n.prefixes()}); err != nil {
		x.Close()
		t.Fatal(err)
	}
	stacktest.WaitReady(t, e.nif)
	return e
}

// evidence registers the evidence of a test that moves data: wisp's connections and
// counters, the AF_XDP link's per-queue counters and vB's (b's ethtool -S, ip -s link),
// and the kernel peer's sockets and links. Register it after the dials and listeners.
func (e *xdpEnv) evidence(t *testing.T) {
	t.Helper()
	stacktest.OnFail(t,
		stacktest.Side{Name: "wisp on AF_XDP (namespace " + e.net.b.name + ")", Stack: e.s, More: e.writeWisp},
		stacktest.Side{Name: "kernel (namespace " + e.ns.name + ")", More: e.ns.writeKernel})
}

func (e *xdpEnv) writeWisp(w io.Writer) {
	fmt.Fprintf(w, "xdp link: %v\n", e.x.Info())
	writeQueues(w, e.x.DeviceStats(nil))
	for _, args := range [][]string{{"ip", "-s", "-d", "link", "show", "vB"}, {"ethtool", "-S", "vB"}} {
		out, err := e.net.b.cmd(args...).CombinedOutput()
		fmt.Fprintf(w, "$ %s\n%s", strings.Join(args, " "), out)
		if err != nil {
			fmt.Fprintf(w, "(%v)\n", err)
		}
	}
}

// writeQueues prints device counters, one line per queue.
func writeQueues(w io.Writer, qs []stats.Queue) {
	for i, q := range qs {
		fmt.Fprintf(w, "queue %d: %+v\n", i, q)
	}
}

// coreOpens returns each core's TCP connections opened so far, passive plus active: the
// spread of connections over the cores, as the cores themselves counted it.
func coreOpens(s *stack.Stack) []uint64 {
	var n []uint64
	for _, c := range s.Cores() {
		c.Callback(func() {
			var snap stats.Snapshot
			c.TCP().Stats(&snap)
			n = append(n, snap.TCPExt.PassiveOpens+snap.TCPExt.ActiveOpens)
		})
	}
	return n
}

// kernelTCP is one family's transfers between the kernel and a wisp stack, each a subtest:
// t.Run(name, r.kernelToWisp), t.Run(name, r.wispToKernel). Both check the bytes (SHA-256)
// and that the sender's segments are acknowledged normally, and log the rate.
type kernelTCP struct {
	e        *tcpEnv
	fam      int    // index in families
	n        int64  // bytes each way
	seed     uint64 // the pattern's
	port     uint16 // the kernel sink's port (wisp's sink listens on 9)
	timeout  time.Duration
	label    string              // appended to the rates' names (" over AF_XDP")
	evidence func(tb *testing.T) // registers the evidence (tcpEnv.evidence or a link's own)
}

// kernelToWisp: a kernel socket writes n bytes to a wisp sink; `ss -ti` during the
// transfer and nstat around it show the kernel's segments acknowledged normally.
func (r kernelTCP) kernelToWisp(t *testing.T) {
	e, f := r.e, families[r.fam]
	ctx, deadline := withDeadline(t, r.timeout)
	srv := serveTCP(t, e.s, netip.AddrPortFrom(e.wisp[f.idx], 9), 0, 0)
	before := kernelSegs(t, e.ns)
	start := time.Now()
	c := e.ns.dial(t, f.net, srv.Addr())
	r.evidence(t)
	ss := watchSS(e.ns, "dst "+bracket(e.wisp[f.idx])+":9")
	kres := make(chan peerResult, 1)
	go func() { kres <- kernelPeer(c, r.n, r.seed, deadline) }()
	tr, err := srv.Accept(ctx)
	if err != nil {
		ss.stop()
		t.Fatal(err)
	}
	got, sum := waitTransfer(t, ctx, "kernel→wisp", tr)
	res := <-kres
	ss.stop()
	logRate(t, f.name+" kernel→wisp"+r.label, r.n, time.Since(start))
	checkSum(t, "kernel→wisp", got, sum, r.n, patternSum(r.n, r.seed))
	checkPeer(t, "kernel→wisp", res, 0, patternSum(0, 0))
	ss.check(t, r.n) // a fast transfer may end between two samples: check knows
	checkRetrans(t, before, kernelSegs(t, e.ns))
}

// wispToKernel: wisp sends n bytes to a kernel sink; wisp's retransmissions stay few.
func (r kernelTCP) wispToKernel(t *testing.T) {
	e, f := r.e, families[r.fam]
	ctx, deadline := withDeadline(t, r.timeout)
	l := e.ns.listen(t, f.net, netip.AddrPortFrom(e.kern[f.idx], r.port))
	kres := kernelServe(t, l, 0, 0, deadline)
	r.evidence(t)
	x0 := e.s.Stats()
	start := time.Now()
	tr := tcpapp.Send(e.s, netip.AddrPortFrom(e.kern[f.idx], r.port), r.n, r.seed)
	got, _ := waitTransfer(t, ctx, "wisp→kernel", tr)
	res := <-kres
	logRate(t, f.name+" wisp→kernel"+r.label, r.n, time.Since(start))
	checkPeer(t, "wisp→kernel", res, r.n, patternSum(r.n, r.seed))
	if got != 0 {
		t.Fatalf("wisp received %d bytes from a kernel sink", got)
	}
	x1 := e.s.Stats()
	xmit, rexmit := x1.TCP.Xmit-x0.TCP.Xmit, x1.TCPExt.Retransmits-x0.TCPExt.Retransmits
	t.Logf("wisp: %d TCP segments out, %d retransmitted", xmit, rexmit)
	if rexmit*100 > xmit+100 {
		t.Errorf("wisp retransmitted %d of %d segments", rexmit, xmit)
	}
}

package integration

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/apps/dhcp"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link/tun"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
)

// dhcpEnv is a DHCP test's world: a namespace whose bridge wbr0 (198.18.<subnet>.1/24)
// has dnsmasq on it as DHCP and DNS server, and a TAP port wtap0 on which a wisp stack
// runs its DHCP client (NetifConfig{DHCP: true}). With conflict, a veth port leads to a
// second namespace whose kernel holds conflictAddr (.50) on the same segment.
//
//	wisp ── TAP wtap0 ─┐
//	                   ├─ bridge wbr0 198.18.S.1 (dnsmasq: DHCP .100–.149, DNS)
//	ns2 .50 ── veth ───┘   (conflict only)
type dhcpEnv struct {
	ns       *netns
	subnet   int
	mac      [6]byte // wisp's (the TAP's Config.HardwareAddr)
	dev      *tun.Device
	s        *stack.Stack
	nif      *stack.Netif
	dir      string // dnsmasq's lease file, hosts file and pid file
	leases   string
	hosts    string
	args     []string
	dnsmasq  *proc
	log      *syncBuffer // dnsmasq's log, all its runs
	ev       *stacktest.Evidence
	removed  bool // RemoveNetif was called
	ns2      *netns
	conflict netip.Addr
}

// dhcpOpts are a test's choices.
type dhcpOpts struct {
	t1, t2   int  // seconds, options 58 and 59 (0: dnsmasq's default: half and 7/8 of the lease)
	keepConn bool // opt.Options.TCPKeepConnWhenIPChanges
	conflict bool // the second namespace holding .50, and a dhcp-host that hands .50 to wisp;
	// only then does the client probe offers with ARP (DHCPDoesACDCheck: some 5 s a lease),
	// which the other tests leave to TestDHCPDecline and apps/dhcp's tests
	fixed int // a dhcp-host that hands 198.18.S.<fixed> to wisp (0: none)
}

// server is dnsmasq's address on the bridge.
func (e *dhcpEnv) server() netip.Addr { return e.addr(1) }

// addr is 198.18.<subnet>.<host>.
func (e *dhcpEnv) addr(host int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, byte(e.subnet), byte(host)})
}

// macString is wisp's MAC as dnsmasq writes it.
func (e *dhcpEnv) macString() string {
	m := e.mac
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// newDHCPEnv builds the world and starts dnsmasq and then the stack; everything is
// removed when the test ends (stack closed and its pools checked, processes killed,
// namespaces deleted, no goroutine left). A failure prints the DHCP client's state,
// lease and counters, the stack's connections and counters, dnsmasq's log and lease
// file, and the kernel's view of the segment.
func newDHCPEnv(t *testing.T, subnet int, o dhcpOpts) *dhcpEnv {
	t.Helper()
	e := newDHCPServer(t, subnet, o)
	e.startStack(t, o)
	return e
}

// newDHCPServer is newDHCPEnv without the stack: the namespace, the bridge, dnsmasq (and
// the conflicting host), for a test that brings its own DHCP client.
func newDHCPServer(t *testing.T, subnet int, o dhcpOpts) *dhcpEnv {
	t.Helper()
	requireTool(t, "dnsmasq")
	ns := newNamedNetns(t, "wisp-dhcp")
	stacktest.NoGoroutineLeak(t)
	e := &dhcpEnv{ns: ns, subnet: subnet, mac: [6]byte{0x02, 0x42, 0xc6, 0x12, byte(subnet), 0x02},
		dir: t.TempDir(), log: newSyncBuffer()}
	e.leases = filepath.Join(e.dir, "leases")
	e.hosts = filepath.Join(e.dir, "hosts")
	br := e.server().String() + "/24"
	ns.run(t, "ip", "link", "add", "wbr0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
	ns.run(t, "ip", "addr", "add", br, "dev", "wbr0")
	ns.run(t, "ip", "link", "set", "wbr0", "up")
	if o.conflict {
		e.conflict = e.addr(50)
		e.ns2 = newNamedNetns(t, "wisp-dhcp2")
		ns.run(t, "ip", "link", "add", "wveth0", "type", "veth", "peer", "name", "wveth1", "netns", e.ns2.name)
		ns.run(t, "ip", "link", "set", "wveth0", "master", "wbr0", "up")
		e.ns2.run(t, "ip", "addr", "add", e.conflict.String()+"/24", "dev", "wveth1")
		e.ns2.run(t, "ip", "link", "set", "wveth1", "up")
		e.writeHosts(t, e.conflict)
	} else if o.fixed != 0 {
		e.writeHosts(t, e.addr(o.fixed))
	} else {
		e.writeHosts(t, netip.Addr{})
	}
	e.args = []string{"dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--user=root", "--log-facility=-", "--log-dhcp", "--log-queries",
		"--pid-file=" + filepath.Join(e.dir, "pid"),
		"--interface=wbr0", "--bind-dynamic", "--except-interface=lo",
		fmt.Sprintf("--dhcp-range=%s,%s,255.255.255.0,2m", e.addr(100), e.addr(149)),
		"--dhcp-leasefile=" + e.leases, "--dhcp-hostsfile=" + e.hosts,
		"--dhcp-authoritative", "--no-ping",
		"--address=/wisp.test/" + e.addr(7).String()}
	if o.t1 > 0 {
		e.args = append(e.args, fmt.Sprintf("--dhcp-option=option:T1,%d", o.t1))
	}
	if o.t2 > 0 {
		e.args = append(e.args, fmt.Sprintf("--dhcp-option=option:T2,%d", o.t2))
	}
	e.startServer(t)
	return e
}

// startStack opens the TAP wtap0 in the namespace with wisp's MAC, joins it to the bridge,
// and attaches a wisp stack with NetifConfig{DHCP: true} to it.
func (e *dhcpEnv) startStack(t *testing.T, o dhcpOpts) {
	t.Helper()
	ns := e.ns
	opts := opt.Tunnel()
	opts.TCPKeepConnWhenIPChanges = o.keepConn
	opts.DHCPDoesACDCheck = o.conflict
	var err error
	ns.do(t, func() {
		e.dev, err = tun.OpenConfig(tun.Config{Name: "wtap0", MTU: 1500, TAP: true, HardwareAddr: e.mac})
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.run(t, "ip", "link", "set", "wtap0", "master", "wbr0", "up")
	if e.s, err = stack.New(stack.Config{Options: opts}); err != nil {
		e.dev.Close()
		t.Fatal(err)
	}
	stacktest.Closed(t, e.s)
	e.ev = stacktest.OnFail(t,
		stacktest.Side{Name: "wisp", Stack: e.s, Links: []any{e.dev}, More: e.writeClient},
		stacktest.Side{Name: "kernel and dnsmasq (namespace " + ns.name + ")", More: e.writeServer})
	if e.nif, err = e.s.AddNetif(e.dev, stack.NetifConfig{Name: "tap0", DHCP: true}); err != nil {
		e.dev.Close()
		t.Fatal(err)
	}
}

// writeHosts writes dnsmasq's hosts file: wisp's MAC gets a, or nothing when a is invalid
// (then the range does). dnsmasq reads it again on SIGHUP (reloadServer).
func (e *dhcpEnv) writeHosts(t *testing.T, a netip.Addr) {
	t.Helper()
	line := ""
	if a.IsValid() {
		line = e.macString() + "," + a.String() + "\n"
	}
	if err := os.WriteFile(e.hosts, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startServer starts dnsmasq (again) and waits until it serves DHCP.
func (e *dhcpEnv) startServer(t *testing.T) {
	t.Helper()
	fmt.Fprintf(e.log, "---- test: starting dnsmasq at %s\n", time.Now().Format("15:04:05.000"))
	mark := len(e.log.String())
	c := e.ns.cmd(e.args...)
	c.Stdout, c.Stderr = e.log, e.log
	e.dnsmasq = startProc(t, c)
	e.within(t, 10*time.Second, "dnsmasq to start", func() bool {
		select {
		case <-e.dnsmasq.done:
			t.Fatalf("dnsmasq exited: %v\n%s", e.dnsmasq.err, e.log.String())
		default:
		}
		return strings.Contains(e.log.String()[mark:], "DHCP, IP range")
	})
}

// stopServer stops dnsmasq (SIGTERM) and waits for it.
func (e *dhcpEnv) stopServer(t *testing.T) {
	t.Helper()
	fmt.Fprintf(e.log, "---- test: stopping dnsmasq at %s\n", time.Now().Format("15:04:05.000"))
	e.dnsmasq.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.dnsmasq.done:
	case <-time.After(10 * time.Second):
		t.Fatal("dnsmasq did not stop on SIGTERM")
	}
}

// reloadServer makes dnsmasq read its hosts file again (SIGHUP) and waits until it did.
func (e *dhcpEnv) reloadServer(t *testing.T) {
	t.Helper()
	mark := len(e.log.String())
	e.dnsmasq.cmd.Process.Signal(syscall.SIGHUP)
	e.within(t, 10*time.Second, "dnsmasq to read its hosts file again", func() bool {
		return strings.Contains(e.log.String()[mark:], "read "+e.hosts)
	})
}

// client returns wisp's DHCP client (stack.Netif.DHCP).
func (e *dhcpEnv) client(t *testing.T) *dhcp.Client {
	t.Helper()
	c := e.nif.DHCP()
	if c == nil {
		t.Fatal("NetifConfig{DHCP: true} and no DHCP client")
	}
	return c
}

// within polls cond every 50 ms until it holds, and fails the test after d.
func (e *dhcpEnv) within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bound waits until the client is BOUND to a lease for which ok holds (nil: any), and
// the netif has the lease's address; it returns the lease.
func (e *dhcpEnv) bound(t *testing.T, d time.Duration, what string, ok func(dhcp.Lease) bool) dhcp.Lease {
	t.Helper()
	c := e.client(t)
	var l dhcp.Lease
	e.within(t, d, what, func() bool {
		var have bool
		l, have = c.Lease()
		return have && c.State() == dhcp.Bound && (ok == nil || ok(l)) && e.hasAddr(l.Addr.Addr())
	})
	return l
}

// hasAddr reports whether wisp's netif has a.
func (e *dhcpEnv) hasAddr(a netip.Addr) bool {
	return slices.ContainsFunc(e.nif.Addrs(), func(i ip.AddrInfo) bool { return i.Prefix.Addr() == a })
}

// leaseEntry is a line of dnsmasq's lease file: "expiry mac ip hostname client-id".
type leaseEntry struct {
	expiry int64
	mac    string
	addr   netip.Addr
}

// leaseOf returns dnsmasq's lease for wisp's MAC, if the lease file has one.
func (e *dhcpEnv) leaseOf(t *testing.T) (leaseEntry, bool) {
	t.Helper()
	f, err := os.Open(e.leases)
	if os.IsNotExist(err) {
		return leaseEntry{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 || fs[1] != e.macString() {
			continue
		}
		exp, err1 := strconv.ParseInt(fs[0], 10, 64)
		a, err2 := netip.ParseAddr(fs[2])
		if err1 != nil || err2 != nil {
			t.Fatalf("lease file line %q", sc.Text())
		}
		return leaseEntry{expiry: exp, mac: fs[1], addr: a}, true
	}
	return leaseEntry{}, false
}

// serverLease waits until dnsmasq's lease file holds wisp's MAC with ok (nil: any).
func (e *dhcpEnv) serverLease(t *testing.T, d time.Duration, what string, ok func(leaseEntry) bool) leaseEntry {
	t.Helper()
	var le leaseEntry
	e.within(t, d, what, func() bool {
		var have bool
		le, have = e.leaseOf(t)
		return have && (ok == nil || ok(le))
	})
	return le
}

// writeClient prints the DHCP client's state, lease and counters.
func (e *dhcpEnv) writeClient(w io.Writer) {
	if e.nif == nil || e.removed {
		fmt.Fprintln(w, "DHCP client: none (netif removed)")
		return
	}
	c := e.nif.DHCP()
	if c == nil {
		fmt.Fprintln(w, "DHCP client: nil")
		return
	}
	l, have := c.Lease()
	fmt.Fprintf(w, "DHCP client: state %v, lease %v %+v\nDHCP stats: %+v\nnetif addresses: %v\n",
		c.State(), have, l, c.Stats(), e.nif.Addrs())
}

// writeServer prints dnsmasq's log and lease file and the kernel's view of the segment.
func (e *dhcpEnv) writeServer(w io.Writer) {
	b, err := os.ReadFile(e.leases)
	fmt.Fprintf(w, "dnsmasq lease file (%v):\n%s\ndnsmasq log:\n%s\n", err, b, e.log.String())
	for _, args := range [][]string{{"ip", "neigh"}, {"bridge", "fdb", "show", "br", "wbr0"}, {"ip", "-s", "link"}, {"ss", "-tino"}} {
		out, err := e.ns.cmd(args...).CombinedOutput()
		fmt.Fprintf(w, "$ %s\n%s", strings.Join(args, " "), out)
		if err != nil {
			fmt.Fprintf(w, "(%v)\n", err)
		}
	}
}

package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/internal/httpapp"
)

// The proxy environment (TestProxy*): two namespaces joined by a veth pair.
//
//	client ns                                          server ns
//	curl, dig, ping, iperf3 -c                         danted / microsocks :1080
//	  │ routes 198.19.0.0/16, fd42:5eed:0:99::/64        targets on lo, "the internet":
//	  ▼                                                  198.19.1.1 / fd42:5eed:0:99::1
//	wpxtun ── wisp proxy --socks5 ───── veth ──────   HTTP :80 (this test process),
//	             198.18.170.1 ⇄ 198.18.170.2             iperf3 -s :5201; nothing on :81
//	             fd42:5eed:0:170::1 ⇄ ::2                  198.19.1.53 / fd42:5eed:0:99::53
//	                                                     dnsmasq :53
//
// The client's kernel sends from its TUN addresses (198.18.171.1, fd42:5eed:0:171::1); wisp
// intercepts every destination and carries each flow over the SOCKS server, which reaches
// the targets in its own namespace. Neither namespace has a default route.
const (
	proxySocks4 = "198.18.170.2"
	proxySocks6 = "fd42:5eed:0:170::2"
	proxyTun    = "wpxtun"
	target4     = "198.19.1.1"
	target6     = "fd42:5eed:0:99::1"
	dns4        = "198.19.1.53"
	dns6        = "fd42:5eed:0:99::53"
)

var proxyTargets = [2]string{target4, "[" + target6 + "]"}

type proxyEnv struct {
	client, server *netns
	proxy          *servedWisp
	socks          string // "dante" or "microsocks"
}

// startGroup is startProc for a program that forks (danted): it runs in its own process
// group, and the whole group is killed at cleanup.
func startGroup(t *testing.T, c *exec.Cmd) *proc {
	t.Helper()
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := startProc(t, c)
	t.Cleanup(func() { _ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL) })
	return p
}

// newProxyEnv builds the namespaces, the targets and the SOCKS server socks ("dante":
// danted, CONNECT and UDP ASSOCIATE; "microsocks": CONNECT only), and starts `wisp proxy`
// with args after --tun and --socks5.
func newProxyEnv(t *testing.T, socks string, args ...string) *proxyEnv {
	t.Helper()
	requireTool(t, map[string]string{"dante": "danted", "microsocks": "microsocks"}[socks])
	e := &proxyEnv{client: newNamedNetns(t, "wisp-px-c"), server: newNamedNetns(t, "wisp-px-s"), socks: socks}
	e.join(t, e.client)
	e.startTargets(t)
	e.startSocks(t)
	e.startProxy(t, e.client, append([]string{"--socks5", proxySocks4 + ":1080"}, args...)...)
	e.evidence(t)
	return e
}

// newProxyEnvDirect is the environment of `wisp proxy --direct`: wisp runs in a third
// namespace, joined to the server's by the veth pair and routing the targets' prefixes
// there, and its TUN device is moved into the client namespace once created (the process
// keeps its file descriptor), so that wisp's own sockets do not loop back into it.
// pingSockets allows root's unprivileged ICMP sockets there (net.ipv4.ping_group_range);
// without, --icmp host falls back to raw sockets.
func newProxyEnvDirect(t *testing.T, pingSockets bool, args ...string) *proxyEnv {
	t.Helper()
	e := &proxyEnv{client: newNamedNetns(t, "wisp-px-c"), server: newNamedNetns(t, "wisp-px-s"), socks: "direct"}
	p := newNamedNetns(t, "wisp-px-p")
	e.join(t, p)
	p.run(t, "ip", "route", "add", "198.19.0.0/16", "via", proxySocks4)
	p.run(t, "ip", "-6", "route", "add", "fd42:5eed:0:99::/64", "via", proxySocks6)
	if pingSockets {
		p.run(t, "sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647")
	}
	e.startTargets(t)
	e.startProxy(t, p, append([]string{"--direct"}, args...)...)
	e.evidence(t)
	return e
}

// join links ns to the server namespace with a veth pair: ns has 198.18.170.1/24 and
// fd42:5eed:0:170::1/64, the server .2 and ::2; the server's loopback gets the targets.
func (e *proxyEnv) join(t *testing.T, ns *netns) {
	t.Helper()
	s := e.server
	n := nsSeq.Add(1)
	veth0, veth1 := fmt.Sprintf("wpxv%da", n), fmt.Sprintf("wpxv%db", n)
	ns.run(t, "ip", "link", "add", veth0, "type", "veth", "peer", "name", veth1, "netns", s.name)
	ns.run(t, "ip", "addr", "add", "198.18.170.1/24", "dev", veth0)
	ns.run(t, "ip", "addr", "add", "fd42:5eed:0:170::1/64", "dev", veth0, "nodad")
	ns.run(t, "ip", "link", "set", veth0, "up")
	s.run(t, "ip", "addr", "add", proxySocks4+"/24", "dev", veth1)
	s.run(t, "ip", "addr", "add", proxySocks6+"/64", "dev", veth1, "nodad")
	s.run(t, "ip", "link", "set", veth1, "up")
	for _, a := range []string{target4 + "/32", dns4 + "/32", target6 + "/128", dns6 + "/128"} {
		s.run(t, "ip", "addr", "add", a, "dev", "lo")
	}
}

// evidence logs the sockets of the client and server namespaces when the test fails.
func (e *proxyEnv) evidence(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			for _, ns := range []*netns{e.client, e.server} {
				out, _ := ns.cmd("ss", "-tuanp").CombinedOutput()
				t.Logf("=== ss -tuanp in %s ===\n%s", ns.name, out)
			}
		}
	})
}

// startTargets serves HTTP (the pattern of internal/httpapp, /bytes/N) on the targets'
// port 80 from this process, with sockets of the server namespace, and runs iperf3 -s and
// dnsmasq there when installed.
func (e *proxyEnv) startTargets(t *testing.T) {
	t.Helper()
	var lns []net.Listener
	e.server.do(t, func() {
		for _, a := range []string{target4 + ":80", "[" + target6 + "]:80"} {
			l, err := net.Listen("tcp", a)
			if err != nil {
				t.Errorf("listen %s: %v", a, err)
				return
			}
			lns = append(lns, l)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	srv := httpapp.NewServer(httpapp.Handler("wisp proxy target"))
	done := make(chan struct{}, len(lns))
	for _, l := range lns {
		go func() {
			srv.Serve(l)
			done <- struct{}{}
		}()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		for range lns {
			<-done
		}
	})
	if _, err := exec.LookPath("iperf3"); err == nil {
		startProc(t, e.server.cmd("iperf3", "-s", "--bind", target4))
		startProc(t, e.server.cmd("iperf3", "-s", "-p", "5202", "--bind", target6))
	}
	if _, err := exec.LookPath("dnsmasq"); err == nil {
		pid := filepath.Join(t.TempDir(), "dnsmasq.pid")
		out := newSyncBuffer()
		cmd := e.server.cmd("dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
			"--bind-interfaces", "--listen-address="+dns4, "--listen-address="+dns6, "--port=53", "--user=root",
			"--pid-file="+pid, "--log-facility=-", "--host-record=proxy.test,"+target4+","+target6)
		cmd.Stdout, cmd.Stderr = out, out
		p := startProc(t, cmd)
		t.Cleanup(func() {
			if t.Failed() {
				select {
				case <-p.done:
					t.Logf("=== dnsmasq exited: %v ===\n%s", p.err, out.String())
				default:
				}
			}
		})
	}
}

// danteConf is danted's configuration: no authentication, CONNECT and UDP ASSOCIATE from
// the client's veth addresses to anywhere, out from the targets' addresses.
const danteConf = `logoutput: stderr
internal: 198.18.170.2 port = 1080
internal: fd42:5eed:0:170::2 port = 1080
external: 198.19.1.1
external: fd42:5eed:0:99::1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: root
client pass { from: 0/0 to: 0/0 }
socks pass { from: 0/0 to: 0/0 command: connect udpassociate udpreply }
`

// startSocks runs the SOCKS server e.socks ("dante" or "microsocks") in the server
// namespace on port 1080 and waits until it listens.
func (e *proxyEnv) startSocks(t *testing.T) {
	t.Helper()
	out := newSyncBuffer()
	var p *proc
	switch e.socks {
	case "dante":
		danted := requireTool(t, "danted")
		conf := filepath.Join(t.TempDir(), "danted.conf")
		if err := os.WriteFile(conf, []byte(danteConf), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := e.server.cmd(danted, "-f", conf, "-p", filepath.Join(t.TempDir(), "danted.pid"))
		cmd.Stdout, cmd.Stderr = out, out
		p = startGroup(t, cmd)
	case "microsocks":
		cmd := e.server.cmd(requireTool(t, "microsocks"), "-i", "::", "-p", "1080")
		cmd.Stdout, cmd.Stderr = out, out
		p = startProc(t, cmd)
	default:
		t.Fatalf("no SOCKS server %q", e.socks)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("=== %s ===\n%s", e.socks, out.String())
		}
	})
	waitFor(t, func() bool {
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v\n%s", e.socks, p.err, out.String())
		default:
		}
		o, _ := e.server.cmd("ss", "-tln", "sport", "= :1080").CombinedOutput()
		return strings.Count(string(o), ":1080") >= 1 && (e.socks != "dante" || strings.Contains(string(o), proxySocks6))
	}, e.socks+" to listen on :1080")
}

// startProxy runs `wisp proxy --tun wpxtun -v args...` in ns, moves the TUN device to
// the client namespace if ns is another, gives it the client's addresses and routes the
// targets' prefixes into it.
func (e *proxyEnv) startProxy(t *testing.T, ns *netns, args ...string) {
	t.Helper()
	c := e.client
	w := &servedWisp{out: newSyncBuffer()}
	cmd := ns.cmd(append([]string{buildWisp(t), "proxy", "--tun", proxyTun, "-v"}, args...)...)
	cmd.Stdout, cmd.Stderr = w.out, w.out
	w.proc = startProc(t, cmd)
	w.onFail(t)
	e.proxy = w
	ns.waitLink(t, proxyTun)
	waitFor(t, func() bool { return strings.Contains(w.out.String(), "wisp: proxy on") }, "wisp proxy to start:\n"+w.out.String())
	if ns != c {
		ns.run(t, "ip", "link", "set", proxyTun, "netns", c.name)
		c.waitLink(t, proxyTun)
	}
	c.run(t, "ip", "addr", "add", "198.18.171.1/32", "dev", proxyTun)
	c.run(t, "ip", "-6", "addr", "add", "fd42:5eed:0:171::1/128", "dev", proxyTun, "nodad")
	c.run(t, "ip", "link", "set", proxyTun, "up")
	c.run(t, "ip", "route", "add", "198.19.0.0/16", "dev", proxyTun, "src", "198.18.171.1")
	c.run(t, "ip", "-6", "route", "add", "fd42:5eed:0:99::/64", "dev", proxyTun, "src", "fd42:5eed:0:171::1")
}

// stats sends SIGUSR1 to wisp proxy and returns what it printed (the stack's table and
// the forwarder's counters).
func (e *proxyEnv) stats(t *testing.T) string {
	t.Helper()
	before := len(e.proxy.out.String())
	if err := e.proxy.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(e.proxy.out.String()[before:], "upstream failures") },
		"wisp proxy's stats after SIGUSR1")
	return e.proxy.out.String()[before:]
}

// curlExit runs curl in the client namespace and returns its exit code and how long it
// took.
func curlExit(ns *netns, args ...string) (int, time.Duration, string) {
	start := time.Now()
	out, err := curl(ns, args...).CombinedOutput()
	d := time.Since(start)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), d, string(out)
	}
	if err != nil {
		return -1, d, err.Error()
	}
	return 0, d, string(out)
}

// getOK fetches url from the client namespace with curl and fails unless it answers.
func getOK(t *testing.T, ns *netns, url string) string {
	t.Helper()
	out, err := curl(ns, "--max-time", "20", url).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", url, err, out)
	}
	return string(out)
}

package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// `wisp proxy` between a client namespace and microsocks (CONNECT) from Debian: curl
// byte-exact over IPv4 and IPv6 (64 MiB), handshakes without SYN retransmissions, 1,000 parallel
// requests, a refused upstream as an immediate RST, pings to any address answered
// locally, iperf3 both ways, stats on SIGUSR1, the budget at start, a clean exit on
// SIGTERM.
func TestProxySOCKS5(t *testing.T) {
	requireTool(t, "curl")
	requireTool(t, "ss")
	e := newProxyEnv(t, "microsocks")
	c := e.client

	t.Run("curl", func(t *testing.T) {
		// microsocks relays through a 1 KiB buffer (about 200 Mbit/s here): the 1 GiB
		// transfers go through danted (TestProxyDante) and --direct.
		n := scaled[int64](64<<20, 16<<20)
		for _, f := range families {
			host := proxyTargets[f.idx]
			if page := getOK(t, c, "http://"+host+"/"); !strings.Contains(page, "wisp proxy target") {
				t.Fatalf("%s: index page:\n%s", f.name, page)
			}
			curlBytes(t, c, host, n, uint64(170+f.idx), f.name+" curl → wisp proxy → "+e.socks+" (sha256 verified)")
		}
	})

	t.Run("parallel", func(t *testing.T) {
		// 1,000 requests at once: four curl processes of 250 parallel transfers, each a new
		// connection, both families.
		const procs, per = 4, 250
		var wg sync.WaitGroup
		results := make([]string, procs)
		errs := make([]error, procs)
		start := time.Now()
		for i := range procs {
			args := []string{"--parallel", "--parallel-immediate", "--parallel-max", strconv.Itoa(per),
				"--max-time", "60", "-w", "%{http_code} %{time_connect}\n"}
			for j := range per {
				url := fmt.Sprintf("http://%s/bytes/%d?seed=%d", proxyTargets[(i+j)%2], 1000+j, j)
				args = append(args, "-o", "/dev/null", url)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := curl(c, args...).Output()
				results[i], errs[i] = string(out), err
			}()
		}
		wg.Wait()
		ok := 0
		var connect []float64
		for i := range procs {
			for _, l := range strings.Split(results[i], "\n") {
				code, tc, _ := strings.Cut(l, " ")
				if code == "200" {
					ok++
				}
				if v, err := strconv.ParseFloat(tc, 64); err == nil {
					connect = append(connect, v)
				}
			}
			if errs[i] != nil {
				t.Errorf("curl %d: %v", i, errs[i])
			}
		}
		slices.Sort(connect)
		if len(connect) > 0 {
			t.Logf("curl's connect times: median %.3fs, 90%% %.3fs, max %.3fs", connect[len(connect)/2],
				connect[len(connect)*9/10], connect[len(connect)-1])
		}
		t.Logf("%d of %d parallel requests answered in %v", ok, procs*per, time.Since(start).Round(time.Millisecond))
		if ok != procs*per {
			t.Errorf("%d of %d requests answered", ok, procs*per)
		}
	})

	t.Run("connect", func(t *testing.T) {
		// One connection at a time: the handshake (deferred until upstream has connected)
		// completes on the client's first SYN, well before its retransmission at 1 s.
		for _, f := range families {
			for range 3 {
				code, d, out := curlExit(c, "--max-time", "10", "-o", "/dev/null", "-w", "%{time_connect}", "http://"+proxyTargets[f.idx]+"/")
				tc, _ := strconv.ParseFloat(out, 64)
				if code != 0 || tc > 0.5 {
					t.Errorf("%s: curl exit %d after %v, connect time %ss", f.name, code, d, out)
				}
			}
		}
	})

	t.Run("refused", func(t *testing.T) { refused(t, e) })
	t.Run("ping", func(t *testing.T) {
		requireTool(t, "ping")
		// Addresses nobody has: wisp answers them itself (--icmp local).
		for _, dst := range []string{"198.19.200.7", "198.19.1.1", "fd42:5eed:0:99::1234", target6} {
			out, err := c.cmd("ping", "-c", "3", "-i", "0.2", "-W", "3", dst).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "3 received") {
				t.Errorf("ping %s: %v\n%s", dst, err, out)
			}
		}
	})

	t.Run("iperf3", func(t *testing.T) {
		iperf := requireTool(t, "iperf3")
		secs := "5"
		if testing.Short() {
			secs = "2"
		}
		for _, f := range families {
			port := []string{"5201", "5202"}[f.idx]
			for _, rev := range []bool{false, true} {
				args := []string{iperf, "-c", strings.Trim(proxyTargets[f.idx], "[]"), "-p", port, "-t", secs, "-J"}
				if rev {
					args = append(args, "-R")
				}
				out, err := exec.CommandContext(t.Context(), "timeout", append([]string{"60", "ip", "netns", "exec", c.name}, args...)...).Output()
				if err != nil {
					t.Errorf("%s iperf3 reverse=%v: %v\n%s", f.name, rev, err, out)
					continue
				}
				t.Logf("%s iperf3 %s: %s", f.name, map[bool]string{false: "up", true: "down"}[rev], iperfRate(string(out)))
			}
		}
	})

	t.Run("stats", func(t *testing.T) {
		out := e.stats(t)
		for _, want := range []string{"TCP connections", "TCPRequests", "upstream failures: tcp"} {
			if !strings.Contains(out, want) {
				t.Errorf("SIGUSR1 output lacks %q:\n%s", want, out)
			}
		}
		t.Logf("wisp proxy stats:\n%s", out)
		// ip netns exec execs wisp: the process is the command's.
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.proxy.cmd.Process.Pid)); err == nil {
			for _, l := range strings.Split(string(st), "\n") {
				if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "VmHWM") {
					t.Logf("wisp proxy %s", strings.Join(strings.Fields(l), " "))
				}
			}
		}
	})

	e.proxy.stop(t)
	if out := e.proxy.out.String(); !strings.Contains(out, "memory budget") {
		t.Errorf("no budget printed at start:\n%s", out)
	}
}

// iperfRate pulls the receiver's rate out of iperf3 -J.
func iperfRate(j string) string {
	i := strings.Index(j, `"sum_received"`)
	if i < 0 {
		return "?"
	}
	k := strings.Index(j[i:], `"bits_per_second":`)
	if k < 0 {
		return "?"
	}
	v := j[i+k+len(`"bits_per_second":`):]
	v = strings.TrimSpace(v[:strings.IndexAny(v, ",}")])
	bps, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return v
	}
	return fmt.Sprintf("%.2f Gbit/s", bps/1e9)
}

// Bad command lines exit 2 with a clear message, before anything is opened.
func TestProxyCLIBadInput(t *testing.T) {
	bin := buildWisp(t)
	checkBadFlags(t, bin, []string{"proxy"}, []badFlags{
		{[]string{}, "--tun NAME is required"},
		{[]string{"--tun", "wpxx"}, "--socks5 IP:PORT is required"},
		{[]string{"--tun", "wpxx", "--socks5", "nope"}, "is not IP:PORT"},
		{[]string{"--tun", "wpxx", "--socks5", "198.18.0.1:1080", "--exclude", "198.18.0.0/33"}, "prefix length"},
	})
}

// refused checks that a refused upstream reaches the client as an immediate RST. Nothing
// listens on the targets' port 81: the SOCKS server's connect is refused, and curl must
// fail at once with exit 7 ("couldn't connect"), not hang, nor see a connection that
// closes after its handshake.
func refused(t *testing.T, e *proxyEnv) {
	for _, f := range families {
		code, d, out := curlExit(e.client, "--max-time", "10", "http://"+proxyTargets[f.idx]+":81/")
		if code != 7 || d > time.Second {
			t.Errorf("%s: curl exit %d after %v, want 7 within 1s\n%s", f.name, code, d, out)
		} else {
			t.Logf("%s: refused in %v: %s", f.name, d.Round(time.Millisecond), strings.TrimSpace(out))
		}
	}
}

// `wisp proxy --udp` with danted (CONNECT and UDP ASSOCIATE): curl of 1 GiB (-short: 64 MiB)
// byte-exact over both families, a
// refused upstream as a RST, and DNS queries (dig, to a dnsmasq in the server namespace)
// over IPv4 and IPv6, each a UDP session carried by an association.
func TestProxyDante(t *testing.T) {
	requireTool(t, "curl")
	requireTool(t, "ss")
	requireTool(t, "dig")
	requireTool(t, "dnsmasq")
	e := newProxyEnv(t, "dante", "--udp")
	c := e.client
	t.Run("curl", func(t *testing.T) {
		for _, f := range families {
			curlBytes(t, c, proxyTargets[f.idx], scaled[int64](1<<30, 64<<20), uint64(180+f.idx), f.name+" curl → wisp proxy → danted (sha256 verified)")
		}
	})
	t.Run("refused", func(t *testing.T) { refused(t, e) })
	t.Run("dig", func(t *testing.T) {
		for _, q := range []struct{ server, typ, want string }{
			{dns4, "A", target4}, {dns4, "AAAA", target6}, {dns6, "A", target4}, {dns6, "AAAA", target6},
		} {
			out, err := c.cmd("dig", "+time=3", "+tries=2", "+short", "@"+q.server, "proxy.test", q.typ).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != q.want {
				t.Errorf("dig @%s proxy.test %s: %v: %q, want %q", q.server, q.typ, err, out, q.want)
			}
		}
		out := e.stats(t)
		if !strings.Contains(out, "UDPSessions") {
			t.Errorf("stats lack the UDP sessions:\n%s", out)
		}
	})
	e.proxy.stop(t)
}

// `wisp proxy --direct --icmp host`: wisp dials out with its host's own sockets (from a
// namespace of its own, its TUN device moved into the client's): curl over both families,
// a refused connection as a RST, DNS over host UDP sockets, and pings answered only when
// the host's own ping is — an address nobody has stays silent.
// It runs on one core, pinging through ping sockets, and on two (two TUN queues: intercepted
// TCP is spread over the cores by its 4-tuple, UDP and echo stay on core 0), pinging
// through raw sockets.
func TestProxyDirect(t *testing.T) {
	requireTool(t, "curl")
	requireTool(t, "ss")
	requireTool(t, "ping")
	t.Run("1core", func(t *testing.T) { proxyDirect(t, true) })
	t.Run("2cores", func(t *testing.T) { proxyDirect(t, false, "--queues", "2", "--cores", "2") })
}

func proxyDirect(t *testing.T, pingSockets bool, args ...string) {
	e := newProxyEnvDirect(t, pingSockets, append([]string{"--icmp", "host"}, args...)...)
	c := e.client
	t.Run("curl", func(t *testing.T) {
		for _, f := range families {
			curlBytes(t, c, proxyTargets[f.idx], scaled[int64](1<<30, 64<<20), uint64(190+f.idx), f.name+" curl → wisp proxy --direct (sha256 verified)")
		}
	})
	t.Run("refused", func(t *testing.T) { refused(t, e) })
	t.Run("dig", func(t *testing.T) {
		requireTool(t, "dig")
		requireTool(t, "dnsmasq")
		for _, q := range []struct{ server, typ, want string }{{dns4, "A", target4}, {dns6, "AAAA", target6}} {
			out, err := c.cmd("dig", "+time=3", "+tries=2", "+short", "@"+q.server, "proxy.test", q.typ).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != q.want {
				t.Errorf("dig @%s proxy.test %s: %v: %q, want %q", q.server, q.typ, err, out, q.want)
			}
		}
	})
	t.Run("ping", func(t *testing.T) {
		for _, dst := range []string{target4, target6} {
			out, err := c.cmd("ping", "-c", "3", "-i", "0.2", "-W", "3", dst).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "3 received") {
				t.Errorf("ping %s: %v\n%s", dst, err, out)
			}
		}
		for _, dst := range []string{"198.19.200.7", "fd42:5eed:0:99::1234"} {
			out, _ := c.cmd("ping", "-c", "2", "-i", "0.2", "-W", "1", dst).CombinedOutput()
			if !strings.Contains(string(out), " 0 received") {
				t.Errorf("ping %s (nobody has it) was answered:\n%s", dst, out)
			}
		}
		if out := e.stats(t); !strings.Contains(out, "EchoHost") {
			t.Errorf("stats lack EchoHost:\n%s", out)
		}
	})
	// SIGTERM ends the flows still running (a slow download and a UDP session) and exits.
	// curl's --limit-rate paces its reads, not the wire: the kernel's receive buffer
	// (autotuned up to tcp_rmem's maximum, 32 MiB on this host) fills at line rate
	// meanwhile, and after the RST curl still reads what it holds at 1 MB/s before it
	// sees the reset (Linux keeps the received data of a reset socket readable). A small
	// maximum here bounds that to a fraction of a second, so that the deadline below
	// measures the RST and not the backlog.
	c.run(t, "sysctl", "-q", "-w", "net.ipv4.tcp_rmem=4096 65536 262144")
	slowErr := newSyncBuffer()
	slow := curl(c, "--limit-rate", "1M", "-o", "/dev/null", "http://"+target4+"/bytes/1073741824")
	slow.Stderr = slowErr
	p := startProc(t, slow)
	udp := c.cmd("dig", "+time=1", "+tries=1", "@"+dns4, "proxy.test")
	udp.Run()
	time.Sleep(500 * time.Millisecond)
	select {
	case <-p.done:
		t.Fatalf("the slow download ended before SIGTERM: %v: %s", p.err, slowErr.String())
	default:
	}
	before, _ := c.cmd("ss", "-tnie", "dport", "= :80").CombinedOutput()
	e.proxy.stop(t)
	start := time.Now()
	select {
	case <-p.done:
		// curl exits 56, "Recv failure: Connection reset by peer": the RST, not a timeout.
		var ee *exec.ExitError
		if !errors.As(p.err, &ee) || ee.ExitCode() != 56 || !strings.Contains(slowErr.String(), "reset") {
			t.Errorf("the slow download ended %v after SIGTERM with %v, want exit 56 (reset): %s",
				time.Since(start).Round(time.Millisecond), p.err, slowErr.String())
		} else {
			t.Logf("the slow download was reset %v after SIGTERM", time.Since(start).Round(time.Millisecond))
		}
	case <-time.After(10 * time.Second):
		after, _ := c.cmd("ss", "-tnaie").CombinedOutput()
		counters, _ := c.cmd("nstat", "-azs", "TcpEstabResets", "TcpExtTCPChallengeACK").CombinedOutput()
		t.Errorf("the client's download outlived wisp proxy by 10 s\n"+
			"=== its socket at SIGTERM ===\n%s=== client sockets now ===\n%s=== client counters ===\n%s",
			before, after, counters)
	}
}

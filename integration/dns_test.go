package integration

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/apps/dns"
	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/opt"
)

// The stack's resolver against two dnsmasq servers in the namespace, the first one dead
// (stopped): wisp on a TUN has 198.18.183.2, the kernel .1, dnsmasq listens on .53 (then
// stopped) and .54. The answer comes within DNSMaxRetries × DNSRetryInterval, from the
// second server after one interval; dnsmasq's TTL of 2 s (--local-ttl) runs out and the
// name is asked again; the raw call answers from the table in the same call; netconn's
// blocking LookupHost and the socket layer's LookupHost answer too.
func TestDNSResolverDnsmasq(t *testing.T) {
	requireTool(t, "dnsmasq")
	o := opt.Tunnel()
	o.DNSRetryInterval = 500 * time.Millisecond
	o.DNSMaxRetries = 4
	e := newTCPEnvWith(t, 183, o, nil)
	e.evidence(t)
	const (
		name = "host.dns.wisp.test"
		ttl  = 2 * time.Second
	)
	want4 := netip.MustParseAddr("198.18.183.7")
	want6 := netip.MustParseAddr("fd42:5eed:0:183::7")
	servers := []string{"198.18.183.53", "198.18.183.54"}
	var procs []*proc
	for i, a := range servers {
		e.ns.run(t, "ip", "addr", "add", a+"/32", "dev", "lo")
		out := newSyncBuffer()
		cmd := e.ns.cmd("dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
			"--bind-interfaces", "--listen-address="+a, "--port=53", "--user=root",
			fmt.Sprintf("--pid-file=%s/dnsmasq%d.pid", t.TempDir(), i), "--log-facility=-", "--log-queries",
			"--local-ttl="+fmt.Sprint(int(ttl/time.Second)),
			"--address=/dns.wisp.test/"+want4.String(), "--address=/dns.wisp.test/"+want6.String())
		cmd.Stdout, cmd.Stderr = out, out
		p := startProc(t, cmd)
		procs = append(procs, p)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("=== dnsmasq %s ===\n%s", a, out.String())
			}
		})
		waitUDPListen(t, e, a+":53")
	}
	// The first server dies.
	_ = procs[0].cmd.Process.Kill()
	<-procs[0].done

	s := e.s
	s.Lock()
	r := s.DNS()
	for i, a := range servers {
		if err := r.SetServer(i, netip.AddrPortFrom(netip.MustParseAddr(a), 53)); err != nil {
			t.Fatal(err)
		}
	}
	s.Unlock()

	type result struct {
		addrs []netip.Addr
		err   error
		at    time.Time
	}
	raw := func(fam dns.AddrType) ([]netip.Addr, error, <-chan result) {
		ch := make(chan result, 1)
		s.Lock()
		addrs, err := r.GetHostByName(name, fam, func(_ string, a []netip.Addr, err error) {
			ch <- result{slices.Clone(a), err, time.Now()}
		})
		addrs = slices.Clone(addrs)
		s.Unlock()
		return addrs, err, ch
	}
	bound := time.Duration(o.DNSMaxRetries) * o.DNSRetryInterval
	wait := func(ch <-chan result) result {
		t.Helper()
		select {
		case res := <-ch:
			return res
		case <-time.After(bound + 5*time.Second):
			t.Fatalf("no callback within %v; stats %+v", bound+5*time.Second, s.Stats().DNS)
			return result{}
		}
	}

	// 1. Dead first server: the answer comes from the second after one retry interval,
	// within DNSMaxRetries × DNSRetryInterval.
	start := time.Now()
	_, err, ch := raw(dns.IPv4)
	if !errors.Is(err, errs.InProgress) {
		t.Fatalf("first lookup: %v", err)
	}
	res := wait(ch)
	took := res.at.Sub(start)
	if res.err != nil || !slices.Equal(res.addrs, []netip.Addr{want4}) {
		t.Fatalf("answer %v, %v", res.addrs, res.err)
	}
	if took < o.DNSRetryInterval-50*time.Millisecond || took > bound {
		t.Errorf("answered after %v: want one retry interval (%v), within %v", took, o.DNSRetryInterval, bound)
	}
	t.Logf("answer %v after %v (dead first server, retry interval %v)", res.addrs, took.Round(time.Millisecond), o.DNSRetryInterval)
	st := s.Stats().DNS
	if st.Queries != 2 || st.Retries != 1 || st.Answers != 1 {
		t.Errorf("stats %+v: want 2 queries, 1 retry", st)
	}

	// 2. The raw call answers from the table in the same call; the callback is not called.
	addrs, err, ch := raw(dns.IPv4)
	if err != nil || !slices.Equal(addrs, []netip.Addr{want4}) {
		t.Fatalf("cached: %v, %v", addrs, err)
	}
	select {
	case res := <-ch:
		t.Errorf("callback of a cache hit: %+v", res)
	case <-time.After(100 * time.Millisecond):
	}

	// 3. The TTL runs out: the name is asked again (of the live server, the rotation
	// starting over with the first).
	time.Sleep(ttl - time.Since(res.at) + 100*time.Millisecond)
	before := s.Stats().DNS
	_, err, ch = raw(dns.IPv4)
	if !errors.Is(err, errs.InProgress) {
		t.Fatalf("after the TTL: %v (want a new query)", err)
	}
	if res := wait(ch); res.err != nil || !slices.Equal(res.addrs, []netip.Addr{want4}) {
		t.Fatalf("refetch: %v, %v", res.addrs, res.err)
	}
	if after := s.Stats().DNS; after.Queries <= before.Queries || after.Answers != before.Answers+1 {
		t.Errorf("refetch stats %+v → %+v", before, after)
	}

	// 4. netconn's blocking lookup (both families) and the socket layer's.
	ctx, cancel := context.WithTimeout(context.Background(), bound+5*time.Second)
	defer cancel()
	got, err := netconn.LookupHost(s, ctx, name)
	if err != nil || !slices.Equal(got, []netip.Addr{want4, want6}) {
		t.Errorf("netconn.LookupHost = %v, %v", got, err)
	}
	strs, err := endpoint.New(s).LookupHost(ctx, name)
	if err != nil || !slices.Equal(strs, []string{want4.String(), want6.String()}) {
		t.Errorf("endpoint LookupHost = %v, %v", strs, err)
	}
	if _, err := endpoint.New(s).LookupHost(ctx, "other.wisp.test"); err == nil {
		t.Errorf("a name dnsmasq does not know resolved")
	}
	t.Logf("DNS stats %+v", s.Stats().DNS)
}

// waitUDPListen waits until the namespace has a UDP socket on addr.
func waitUDPListen(t *testing.T, e *tcpEnv, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := e.ns.cmd("ss", "-Huln").CombinedOutput()
		if strings.Contains(string(out), addr) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s:\n%s", addr, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

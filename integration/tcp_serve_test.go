package integration

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// `wisp serve --echo 7 --discard 9 --queues 2 --cores 2` in a namespace: kernel clients get
// their bytes echoed exactly (IPv4 and IPv6) and can pour bytes into discard over the two
// queues of a TUN with offloads, into a stack whose connections spread over two cores; the
// stats printed at exit count TCP and the offloads.
func TestWispServeTCP(t *testing.T) {
	ns := newNetns(t)
	srv := startServe(t, ns, "198.18.14.1/24", "fd42:5eed:0:14::1/64",
		"--addr", "198.18.14.2/24", "--addr", "fd42:5eed:0:14::2/64", "--echo", "7", "--discard", "9", "--queues", "2", "--cores", "2")
	out := srv.out
	waitFor(t, func() bool { return strings.Contains(out.String(), "serving on") }, "wisp serve to start:\n"+out.String())

	n := scaled[int64](16<<20, 2<<20)
	_, deadline := withDeadline(t, 30*time.Second)
	for _, f := range families {
		wisp := netip.MustParseAddr([]string{"198.18.14.2", "fd42:5eed:0:14::2"}[f.idx])
		start := time.Now()
		c := ns.dial(t, f.net, netip.AddrPortFrom(wisp, 7))
		checkPeer(t, f.name+" echo", kernelPeer(c, n, 51, deadline), n, patternSum(n, 51))
		logRate(t, f.name+" wisp serve echo (each way)", n, time.Since(start))

		start = time.Now()
		c = ns.dial(t, f.net, netip.AddrPortFrom(wisp, 9))
		// Discard closes when the client does: the client then reads end of file.
		checkPeer(t, f.name+" discard", kernelPeer(c, n, 52, deadline), 0, patternSum(0, 0))
		logRate(t, f.name+" wisp serve discard", n, time.Since(start))
	}

	srv.stop(t)
	s := out.String()
	for _, want := range []string{"tcp echo on port 7", "tcp discard on port 9", "TCP", "PassiveOpens",
		"offloads on", "offload:", "RxGSO", "TSOOut"} {
		if !strings.Contains(s, want) {
			t.Errorf("wisp serve output lacks %q:\n%s", want, s)
		}
	}
}

// Bad --echo/--discard values exit with status 2 and say what is wrong.
func TestWispServeTCPBadFlags(t *testing.T) {
	bin := buildWisp(t)
	base := []string{"serve", "--tun", "x", "--addr", "198.18.0.1/24"}
	checkBadFlags(t, bin, base, []badFlags{
		{[]string{"--echo", "0"}, "out of range [1, 65535]"},
		{[]string{"--echo", "65536"}, "out of range [1, 65535]"},
		{[]string{"--discard", "-9"}, "out of range [1, 65535]"},
		{[]string{"--echo", "echo"}, "not a port number"},
		{[]string{"--discard", ""}, "not a port number"},
		{[]string{"--echo", "7", "--discard", "7"}, "port 7 is given twice"},
	})
}

package integration

// Issue 11: stalled readers must not starve other connections. Real peers hold many
// connections that ask for a big body and never read it, so wisp's send heap (wisp serve:
// wisp is the sender) or its receive pool (wisp wg --socks5: wisp receives from the tunnel
// and relays to a client that does not read) fills with data nobody takes; a live client
// must still be served, quickly and byte-exact, beside them.

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/internal/httpapp"
	"github.com/wispstack/wisp/stack/stacktest"
)

// The sizes of the stall tests; -short and -race use the smaller ones.
const (
	stallClients      = 100 // clients that request stallBody and read nothing
	stallClientsShort = 20
	stallBody         = 1_000_000_000 // what each stalled client asks for (1 GB)
	stallLive         = 100_000       // the live client's small request
	stallLiveDeadline = 10 * time.Second
	stallBig          = 64 << 20 // the live client's large request
	stallBigShort     = 16 << 20
	stallBigDeadline  = 120 * time.Second
	stallResume       = 1 << 20          // what one stalled client reads when it resumes
	stallSettleMin    = 3 * time.Second  // how long the stalled clients get to fill wisp
	stallSettleMax    = 30 * time.Second // and at most, if the queues keep moving
)

// stallSizes returns the number of stalled clients and the live client's large body.
func stallSizes() (clients int, big int64) {
	return scaled(stallClients, stallClientsShort), scaled[int64](stallBig, stallBigShort)
}

// `wisp serve --http 80` on a TUN; the kernel side of the TUN opens stallClients
// connections that each GET /bytes/1000000000 and never read, and waits until the
// queues stop moving (wisp's send heap holds what their windows refuse). Then:
//
//   - a live curl fetches /bytes/100000 byte-exact (sha256) within stallLiveDeadline, and
//     its time is logged beside the same request's time before the stall;
//   - a second live curl fetches stallBig bytes byte-exact within stallBigDeadline;
//   - every stalled connection is still established afterwards, and one of them, when it
//     starts reading, gets its response and the first stallResume bytes byte-exact;
//   - once the stalled connections are closed, wisp still serves, and stops cleanly.
func TestStallServeHTTP(t *testing.T) {
	requireTool(t, "curl")
	requireTool(t, "ss")
	clients, big := stallSizes()
	ns := newNetns(t)
	stacktest.NoGoroutineLeak(t)
	srv := startServe(t, ns, "198.18.70.1/24", "fd42:5eed:0:70::1/64",
		"--addr", "198.18.70.2/24", "--addr", "fd42:5eed:0:70::2/64", "--http", "80")
	waitFor(t, func() bool { return strings.Contains(srv.out.String(), "serving on") }, "wisp serve to start:\n"+srv.out.String())
	stalled := newStallGroup(t)
	logEvidenceOnFailure(t, srv, ns)
	wispAddr := netip.MustParseAddrPort("198.18.70.2:80")
	base := "http://" + wispAddr.String()
	start := time.Now()

	before := timedCurl(ns, stallLiveDeadline, "", fmt.Sprintf("%s/bytes/%d?seed=1", base, stallLive))
	checkFetch(t, "live /bytes/100000 before the stall", before, stallLive, 1, stallLiveDeadline)
	largeBefore := timedCurl(ns, stallBigDeadline, "", fmt.Sprintf("%s/bytes/%d?seed=6", base, big))
	checkFetch(t, fmt.Sprintf("live /bytes/%d before the stall", big), largeBefore, big, 6, stallBigDeadline)
	logRate(t, "live curl ← wisp serve before the stall (sha256 verified)", big, largeBefore.took)

	dialStart := time.Now()
	stalled.dial(t, ns, "tcp4", wispAddr, clients, nil,
		httpGet(wispAddr.String(), fmt.Sprintf("/bytes/%d?seed=7", stallBody)))
	t.Logf("%d stalled clients connected and asked for %d bytes each in %v", clients, stallBody, time.Since(dialStart).Round(time.Millisecond))
	waitStalled(t, stallSettleMin, stallSettleMax, ssWatch{ns, "( dport = :80 )"})
	t.Logf("wisp during the stall:\n%s", statsLines(wispStats(srv)))

	during := timedCurl(ns, stallLiveDeadline, "", fmt.Sprintf("%s/bytes/%d?seed=2", base, stallLive))
	checkFetch(t, fmt.Sprintf("live /bytes/100000 beside %d stalled readers", clients), during, stallLive, 2, stallLiveDeadline)
	t.Logf("live /bytes/100000: %v before the stall, %v beside %d stalled readers",
		before.took.Round(time.Millisecond), during.took.Round(time.Millisecond), clients)

	large := timedCurl(ns, stallBigDeadline, "", fmt.Sprintf("%s/bytes/%d?seed=3", base, big))
	checkFetch(t, fmt.Sprintf("live /bytes/%d beside %d stalled readers", big, clients), large, big, 3, stallBigDeadline)
	logRate(t, fmt.Sprintf("live curl ← wisp serve beside %d stalled readers (sha256 verified)", clients), big, large.took)

	// The stalled ones were left alone, not reset to make room.
	waitConns(t, ns, "( dport = :80 )", clients, 5*time.Second)
	if n, err := readPatternResponse(stalled.conns[0], 7, stallResume, stallLiveDeadline); err != nil || n != stallBody {
		t.Fatalf("stalled client 0, reading again: %v (Content-Length %d)", err, n)
	}
	t.Logf("wisp after the live fetches, stalled readers still open:\n%s", statsLines(wispStats(srv)))

	stalled.close()
	waitConns(t, ns, "( dport = :80 )", 0, 10*time.Second)
	after := timedCurl(ns, stallLiveDeadline, "", fmt.Sprintf("%s/bytes/%d?seed=4", base, stallLive))
	checkFetch(t, "live /bytes/100000 after the stalled readers closed", after, stallLive, 4, stallLiveDeadline)
	t.Logf("live /bytes/100000 after the stall: %v", after.took.Round(time.Millisecond))
	t.Logf("wisp at the end:\n%s", wispStats(srv))
	srv.stop(t)
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// `wisp wg --socks5` in namespace B, a wireguard-go peer on a kernel TUN in namespace A
// (as TestWispWGKernel sets them up) with a net/http server on A's tunnel address.
// stallClients clients in B CONNECT through wisp's proxy to that server, GET
// /bytes/1000000000 and never read: the proxy's relays stop reading wisp's sockets, so
// wisp's receive pool holds what the tunnel brought for them. Then:
//
//   - a new SOCKS5 CONNECT (greeting, request, reply after wisp's dial through the tunnel)
//     completes within stallLiveDeadline and carries a small GET byte-exact;
//   - a live curl through the proxy fetches /bytes/100000 byte-exact within
//     stallLiveDeadline, and its time is logged beside the same request's before the stall;
//   - a live curl fetches stallBig bytes byte-exact within stallBigDeadline;
//   - every stalled connection is still established afterwards; once they are closed, the
//     proxy still serves, and wisp stops cleanly.
func TestStallWireGuardSOCKS(t *testing.T) {
	requireTool(t, "curl")
	requireTool(t, "ss")
	clients, big := stallSizes()
	nsA, nsB := newNetns(t), newNetns(t)
	stacktest.NoGoroutineLeak(t)
	conf := kernelTunnel(t, nsA, nsB, "stva", "stvb", 71, "")

	server := netip.MustParseAddrPort("198.18.72.1:8080")
	var hl net.Listener
	var err error
	nsA.do(t, func() { hl, err = net.Listen("tcp4", server.String()) })
	if err != nil {
		t.Fatalf("listen in A: %v", err)
	}
	hs := httpapp.NewServer(httpapp.Handler("the kernel side of the tunnel"))
	served := make(chan error, 1)
	go func() { served <- hs.Serve(hl) }()
	t.Cleanup(func() {
		hs.Close()
		<-served
	})

	proxy := netip.MustParseAddrPort("198.18.71.2:1080")
	w := startWispWG(t, nsB, conf, "--socks5", proxy.String())
	stalled := newStallGroup(t)
	logEvidenceOnFailure(t, &w.servedWisp, nsA, nsB)
	socksURL := "socks5://" + proxy.String()
	base := "http://" + server.String()
	start := time.Now()

	// One connection through the tunnel before the timed one: the WireGuard handshake.
	c, took, err := socksDial(nsB, proxy, server, stallLiveDeadline)
	if err != nil {
		t.Fatalf("SOCKS5 CONNECT before the stall: %v (after %v)", err, took)
	}
	c.Close()
	c, connectBefore, err := socksDial(nsB, proxy, server, stallLiveDeadline)
	if err != nil {
		t.Fatalf("SOCKS5 CONNECT before the stall: %v", err)
	}
	c.Close()
	before := timedCurl(nsB, stallLiveDeadline, socksURL, fmt.Sprintf("%s/bytes/%d?seed=1", base, stallLive))
	checkFetch(t, "live /bytes/100000 through the proxy before the stall", before, stallLive, 1, stallLiveDeadline)
	largeBefore := timedCurl(nsB, stallBigDeadline, socksURL, fmt.Sprintf("%s/bytes/%d?seed=6", base, big))
	checkFetch(t, fmt.Sprintf("live /bytes/%d through the proxy before the stall", big), largeBefore, big, 6, stallBigDeadline)
	logRate(t, "live curl → wisp wg --socks5 → tunnel → kernel before the stall (sha256 verified)", big, largeBefore.took)

	socksReady := func(c net.Conn) error { return socksConnect(c, server, 10*time.Second) }
	dialStart := time.Now()
	stalled.dial(t, nsB, "tcp4", proxy, clients, socksReady,
		httpGet(server.String(), fmt.Sprintf("/bytes/%d?seed=7", stallBody)))
	t.Logf("%d stalled clients connected through the proxy and asked for %d bytes each in %v", clients, stallBody, time.Since(dialStart).Round(time.Millisecond))
	waitStalled(t, stallSettleMin, stallSettleMax,
		ssWatch{nsB, "( dport = :1080 )"}, ssWatch{nsB, "( sport = :1080 )"}, ssWatch{nsA, "( sport = :8080 )"})
	t.Logf("wisp during the stall:\n%s", statsLines(wispStats(&w.servedWisp)))

	c, took, err = socksDial(nsB, proxy, server, stallLiveDeadline)
	if err != nil {
		t.Fatalf("SOCKS5 CONNECT beside %d stalled readers: %v (after %v)", clients, err, took.Round(time.Millisecond))
	}
	c.SetWriteDeadline(time.Now().Add(stallLiveDeadline))
	_, err = c.Write([]byte(httpGet(server.String(), "/bytes/1000?seed=5")))
	if err == nil {
		_, err = readPatternResponse(c, 5, 1000, stallLiveDeadline)
	}
	c.Close()
	if err != nil {
		t.Fatalf("GET /bytes/1000 on a new SOCKS5 connection beside %d stalled readers: %v", clients, err)
	}
	t.Logf("SOCKS5 CONNECT: %v before the stall, %v beside %d stalled readers",
		connectBefore.Round(time.Millisecond), took.Round(time.Millisecond), clients)

	during := timedCurl(nsB, stallLiveDeadline, socksURL, fmt.Sprintf("%s/bytes/%d?seed=2", base, stallLive))
	checkFetch(t, fmt.Sprintf("live /bytes/100000 through the proxy beside %d stalled readers", clients), during, stallLive, 2, stallLiveDeadline)
	t.Logf("live /bytes/100000 through the proxy: %v before the stall, %v beside %d stalled readers",
		before.took.Round(time.Millisecond), during.took.Round(time.Millisecond), clients)

	large := timedCurl(nsB, stallBigDeadline, socksURL, fmt.Sprintf("%s/bytes/%d?seed=3", base, big))
	checkFetch(t, fmt.Sprintf("live /bytes/%d through the proxy beside %d stalled readers", big, clients), large, big, 3, stallBigDeadline)
	logRate(t, fmt.Sprintf("live curl → wisp wg --socks5 → tunnel → kernel beside %d stalled readers (sha256 verified)", clients), big, large.took)

	waitConns(t, nsB, "( dport = :1080 )", clients, 5*time.Second)
	t.Logf("wisp after the live fetches, stalled readers still open:\n%s", statsLines(wispStats(&w.servedWisp)))

	stalled.close()
	waitConns(t, nsB, "( dport = :1080 )", 0, 10*time.Second)
	waitConns(t, nsA, "( sport = :8080 )", 0, 20*time.Second)
	after := timedCurl(nsB, stallLiveDeadline, socksURL, fmt.Sprintf("%s/bytes/%d?seed=4", base, stallLive))
	checkFetch(t, "live /bytes/100000 through the proxy after the stalled readers closed", after, stallLive, 4, stallLiveDeadline)
	t.Logf("live /bytes/100000 through the proxy after the stall: %v", after.took.Round(time.Millisecond))
	t.Logf("wisp at the end:\n%s", wispStats(&w.servedWisp))
	w.stop(t)
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

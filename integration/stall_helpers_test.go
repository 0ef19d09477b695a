package integration

// The tools of the stalled-reader tests (issue 11): clients that ask for a big body and
// never read it, a wait until the queues on both sides stop moving, timed live fetches,
// and the evidence a failure prints (wisp's stats on SIGUSR1, the kernel's `ss -tin`).

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/internal/socks5"
	"github.com/wispstack/wisp/internal/tcpapp"
)

// cmdCtx is ns.cmd bounded by ctx: the process is killed when ctx ends. `ip netns exec`
// execs the command, so the process killed is the command itself.
func (ns *netns) cmdCtx(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.name}, args...)...)
}

// fetch is one timed download by curl.
type fetch struct {
	n    int64
	sum  [32]byte
	took time.Duration
	err  error
}

// timedCurl downloads url with curl in ns (through proxy, a socks5:// URL, unless empty)
// within d, hashing the body as curl writes it.
func timedCurl(ns *netns, d time.Duration, proxy, url string) fetch {
	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Second)
	defer cancel()
	args := []string{"curl", "--globoff", "--silent", "--show-error", "--fail",
		"--max-time", strconv.FormatFloat(d.Seconds(), 'f', 1, 64)}
	if proxy != "" {
		args = append(args, "-x", proxy)
	} else {
		args = append(args, "--noproxy", "*")
	}
	w := newSumWriter()
	var stderr bytes.Buffer
	c := ns.cmdCtx(ctx, append(args, url)...)
	c.Stdout, c.Stderr = w, &stderr
	start := time.Now()
	err := c.Run()
	f := fetch{n: w.n, sum: w.sum(), took: time.Since(start)}
	if err != nil {
		f.err = fmt.Errorf("curl %s: %v after %d bytes: %s", url, err, w.n, strings.TrimSpace(stderr.String()))
	}
	return f
}

// checkFetch fails the test unless f is n bytes of the pattern of seed, fetched within d.
func checkFetch(t *testing.T, what string, f fetch, n int64, seed uint64, d time.Duration) {
	t.Helper()
	if f.err != nil {
		t.Fatalf("%s: %v (after %v)", what, f.err, f.took.Round(time.Millisecond))
	}
	if f.n != n || f.sum != patternSum(n, seed) {
		t.Fatalf("%s: %d bytes (sha256 %x), want %d (%x)", what, f.n, f.sum[:8], n, patternSum(n, seed))
	}
	if f.took > d {
		t.Fatalf("%s: took %v, over the %v allowed", what, f.took.Round(time.Millisecond), d)
	}
}

// ssTotals sums the Recv-Q and Send-Q of the established TCP sockets of ns that match the
// ss filter (like "( dport = :80 )").
func ssTotals(ns *netns, filter string) (conns int, recvQ, sendQ int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := ns.cmdCtx(ctx, "ss", "-tnH", "state", "established", filter).Output()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("ss %s: %v", filter, err)
	}
	// With a state given, ss leaves the State column out: Recv-Q Send-Q Local Peer.
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		r, err1 := strconv.ParseInt(f[0], 10, 64)
		s, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, 0, 0, fmt.Errorf("ss: cannot read %q", line)
		}
		conns++
		recvQ += r
		sendQ += s
	}
	return conns, recvQ, sendQ, nil
}

// ssDump is `ss -tin` in ns, for a failure's evidence.
func ssDump(ns *netns) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := ns.cmdCtx(ctx, "ss", "-tin").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("ss -tin: %v\n%s", err, out)
	}
	return string(out)
}

// ssWatch is a set of sockets whose queues waitStalled watches.
type ssWatch struct {
	ns     *netns
	filter string
}

// waitStalled waits until the queues of every watch have not changed for a second, and at
// least least has passed; at most gives up (the test goes on: a stall not reached is
// logged, it is not what the tests assert). It logs the queues it ends with.
func waitStalled(t *testing.T, least, most time.Duration, watches ...ssWatch) {
	t.Helper()
	start := time.Now()
	var last string
	stableSince := time.Now()
	for {
		var b strings.Builder
		for _, w := range watches {
			n, r, s, err := ssTotals(w.ns, w.filter)
			if err != nil {
				t.Fatalf("waiting for the stall: %v", err)
			}
			fmt.Fprintf(&b, "%s %s: %d established, Recv-Q %d, Send-Q %d; ", w.ns.name, w.filter, n, r, s)
		}
		now := b.String()
		if now != last {
			last, stableSince = now, time.Now()
		}
		switch {
		case time.Since(stableSince) >= time.Second && time.Since(start) >= least:
			t.Logf("stalled after %v: %s", time.Since(start).Round(time.Millisecond), now)
			return
		case time.Since(start) > most:
			t.Logf("queues still moving after %v (going on): %s", most, now)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitConns waits up to d until want sockets of ns match filter (established).
func waitConns(t *testing.T, ns *netns, filter string, want int, d time.Duration) {
	t.Helper()
	var n int
	var err error
	if _, ok := pollUntil(d, func() bool {
		n, _, _, err = ssTotals(ns, filter)
		return err == nil && n == want
	}); !ok {
		t.Fatalf("%s %s: %d established (%v), want %d", ns.name, filter, n, err, want)
	}
}

// wispStats asks a running wisp (serve or wg) for its stats (SIGUSR1) and returns the table
// it prints, waiting at most 5 s.
func wispStats(s *servedWisp) string {
	from := len(s.out.String())
	if err := s.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return fmt.Sprintf("(no stats: %v)", err)
	}
	last := -1
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		out := s.out.String()[from:]
		if strings.Contains(out, "MEMP_") && len(out) == last {
			return out
		}
		last = len(out)
	}
	return s.out.String()[from:] + "\n(the stats did not come within 5 s)"
}

// statsLines picks from a stats table the lines that show who holds the memory and what
// was dropped: the heap, the receive pool, the PCBs, the link's and TCP's counters.
func statsLines(table string) string {
	var b strings.Builder
	tcpExt := false
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			tcpExt = false
			continue
		}
		switch {
		case tcpExt, f[0] == "proto", f[0] == "LINK", f[0] == "TCP", f[0] == "TCP:",
			f[0] == "memory", f[0] == "MEM_HEAP", f[0] == "MEMP_PBUF_POOL", f[0] == "MEMP_TCP_PCB":
			b.WriteString("  " + line + "\n")
		}
		if f[0] == "TCP:" {
			tcpExt = true
		}
	}
	return b.String()
}

// logEvidenceOnFailure registers a cleanup that, if the test failed, logs wisp's stats and
// output and `ss -tin` of each namespace. Register it after the wisp process is started and
// the stallGroup created, so that it runs before the process is killed and the stalled
// clients are closed.
func logEvidenceOnFailure(t *testing.T, w *servedWisp, nss ...*netns) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("wisp stats at failure:\n%s", wispStats(w))
		for _, ns := range nss {
			t.Logf("ss -tin in %s at failure:\n%s", ns.name, ssDump(ns))
		}
		t.Logf("wisp output:\n%s", w.out.String())
	})
}

// stallGroup is the stalled clients of a test. Create it before logEvidenceOnFailure, so
// that its cleanup (which closes them) runs after the evidence is taken.
type stallGroup struct {
	conns []*net.TCPConn
}

func newStallGroup(t *testing.T) *stallGroup {
	g := &stallGroup{}
	t.Cleanup(g.close)
	return g
}

// close closes every stalled client; idempotent.
func (g *stallGroup) close() {
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
}

// dial dials n kernel connections from ns to addr (each within 10 s). ready, if not nil,
// runs on each (a SOCKS5 handshake); then each sends req and is never read.
func (g *stallGroup) dial(t *testing.T, ns *netns, network string, addr netip.AddrPort, n int, ready func(net.Conn) error, req string) {
	t.Helper()
	for i := range n {
		c, err := dialFrom(ns, network, addr, 10*time.Second)
		if err != nil {
			t.Fatalf("stalled client %d: dial %v: %v", i, addr, err)
		}
		g.conns = append(g.conns, c)
		if ready != nil {
			if err := ready(c); err != nil {
				t.Fatalf("stalled client %d: %v", i, err)
			}
		}
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatalf("stalled client %d: write the request: %v", i, err)
		}
	}
}

// httpGet is an HTTP/1.1 request for path that asks the server to close after it.
func httpGet(host, path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
}

// readPatternResponse reads an HTTP response from c (which has been sent a GET of
// /bytes/N?seed=seed) and checks that its first n body bytes are the pattern, all within d.
// It returns the response's Content-Length.
func readPatternResponse(c net.Conn, seed uint64, n int64, d time.Duration) (int64, error) {
	c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, fmt.Errorf("read the response: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %s", resp.Status)
	}
	got := make([]byte, 64<<10)
	want := make([]byte, 64<<10)
	for off := int64(0); off < n; {
		k, err := io.ReadFull(resp.Body, got[:min(int64(len(got)), n-off)])
		tcpapp.FillPattern(want[:k], seed, off)
		if !bytes.Equal(got[:k], want[:k]) {
			return resp.ContentLength, fmt.Errorf("body differs from the pattern in bytes %d..%d", off, off+int64(k))
		}
		off += int64(k)
		if err != nil {
			return resp.ContentLength, fmt.Errorf("body after %d of %d bytes: %w", off, n, err)
		}
	}
	return resp.ContentLength, nil
}

// socksConnect does a SOCKS5 handshake (RFC 1928: no authentication, CONNECT to dst) on c
// within d and leaves c ready to carry the stream.
func socksConnect(c net.Conn, dst netip.AddrPort, d time.Duration) error {
	c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte{socks5.Version, 1, socks5.MethodNoAuth}); err != nil {
		return fmt.Errorf("socks5 greeting: %w", err)
	}
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil {
		return fmt.Errorf("socks5 method selection: %w", err)
	}
	if sel != [2]byte{socks5.Version, socks5.MethodNoAuth} {
		return fmt.Errorf("socks5 method selection % x", sel)
	}
	req := socks5.Request{Cmd: socks5.CmdConnect, Addr: dst.Addr(), Port: dst.Port()}
	if _, err := c.Write(req.Append(nil)); err != nil {
		return fmt.Errorf("socks5 request: %w", err)
	}
	// VER REP RSV ATYP BND.ADDR BND.PORT (§6).
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fmt.Errorf("socks5 reply: %w", err)
	}
	if hdr[0] != socks5.Version || socks5.Reply(hdr[1]) != socks5.Succeeded {
		return fmt.Errorf("socks5 reply: version %d, %v", hdr[0], socks5.Reply(hdr[1]))
	}
	var rest int
	switch hdr[3] {
	case socks5.AtypIPv4:
		rest = 4 + 2
	case socks5.AtypIPv6:
		rest = 16 + 2
	default:
		return fmt.Errorf("socks5 reply: address type %d", hdr[3])
	}
	if _, err := io.ReadFull(c, make([]byte, rest)); err != nil {
		return fmt.Errorf("socks5 reply's address: %w", err)
	}
	return nil
}

// socksDial dials the proxy from ns and CONNECTs to dst through it, all within d; it
// returns how long the two took.
func socksDial(ns *netns, proxy, dst netip.AddrPort, d time.Duration) (*net.TCPConn, time.Duration, error) {
	start := time.Now()
	c, err := dialFrom(ns, "tcp4", proxy, d)
	if err != nil {
		return nil, time.Since(start), fmt.Errorf("dial the proxy: %w", err)
	}
	if err := socksConnect(c, dst, d-time.Since(start)); err != nil {
		c.Close()
		return nil, time.Since(start), err
	}
	return c, time.Since(start), nil
}

package integration

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/dns/dnstest"
	"github.com/wispstack/wisp/internal/httpapp"
)

// wgTransfer is the size of the downloads through the WireGuard tunnel: both ends are
// userspace WireGuard here, so they are kept to seconds.
func wgTransfer() int64 { return scaled[int64](64<<20, 8<<20) }

// The kernel side (namespace A) runs wireguard-go on a kernel TUN, configured with `wg set`
// and `ip addr`; `wisp wg --config` runs in namespace B; a veth pair carries the UDP
// underlay (198.18.30.0/24). Inside the tunnel A is 198.18.31.1 / fd42:5eed:0:31::1 and
// wisp 198.18.31.2 / fd42:5eed:0:31::2.
//
//   - curl in A fetches /bytes/N from wisp's --http server through the tunnel, over IPv4 and
//     IPv6, byte-exact by sha256;
//   - curl in B, through wisp's --socks5 proxy (a host socket in B), fetches from an HTTP
//     server in A through the tunnel: IPv4 and IPv6 literals with socks5, a name resolved by
//     the tunnel's DNS (a server in A) with socks5h; a closed port is refused;
//   - wisp prints stats on SIGUSR1 and stops cleanly on SIGTERM.
func TestWispWGKernel(t *testing.T) {
	requireTool(t, "curl")
	nsA, nsB := newNetns(t), newNetns(t)
	conf := kernelTunnel(t, nsA, nsB, "wgva", "wgvb", 30, "DNS = 198.18.31.1\n")

	// A's HTTP server (the kernel's sockets, dual-stack on :8080) and DNS server, run by
	// this process on threads inside A.
	var hl net.Listener
	var dns net.PacketConn
	nsA.do(t, func() {
		var err error
		if hl, err = net.Listen("tcp", ":8080"); err != nil {
			t.Errorf("listen in A: %v", err)
			return
		}
		if dns, err = net.ListenPacket("udp", "198.18.31.1:53"); err != nil {
			t.Errorf("DNS in A: %v", err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	hs := httpapp.NewServer(httpapp.Handler("the kernel side of the tunnel"))
	go hs.Serve(hl)
	t.Cleanup(func() { hs.Close() })
	(&dnstest.Server{Zone: map[string][]netip.Addr{
		"kernel.wisp.test.": {netip.MustParseAddr("198.18.31.1"), netip.MustParseAddr("fd42:5eed:0:31::1")},
	}}).ServeUDP(t, dns)

	w := startWispWG(t, nsB, conf, "--http", "80", "--socks5", "198.18.30.2:1080")

	n := wgTransfer()
	t.Run("curl-to-wisp-http", func(t *testing.T) {
		for _, f := range families {
			host := []string{"198.18.31.2", "[fd42:5eed:0:31::2]"}[f.idx]
			curlBytes(t, nsA, host, n, uint64(70+f.idx), f.name+" kernel curl → wireguard-go → wisp wg --http")
		}
	})

	t.Run("curl-socks5-through-wisp", func(t *testing.T) {
		for i, c := range []struct{ proxy, host string }{
			{"socks5", "198.18.31.1"},
			{"socks5", "[fd42:5eed:0:31::1]"},
			{"socks5h", "kernel.wisp.test"},
		} {
			seed := uint64(80 + i)
			url := fmt.Sprintf("http://%s:8080/bytes/%d?seed=%d", c.host, n, seed)
			start := time.Now()
			got, sum := socksCurlSum(t, nsB, c.proxy+"://198.18.30.2:1080", url)
			d := time.Since(start)
			if got != n || sum != patternSum(n, seed) {
				t.Fatalf("%s %s: %d bytes (sha256 %x), want %x", c.proxy, url, got, sum[:8], patternSum(n, seed))
			}
			logRate(t, c.proxy+" "+c.host+": curl → wisp wg --socks5 → tunnel → kernel", n, d)
		}
		// Nothing listens on port 9 in A: the kernel answers RST, the proxy X'05'
		// "connection refused". A name the tunnel's DNS does not know: X'04' "host
		// unreachable". curl 7.88 prints the code in parentheses, newer ones its words.
		for _, c := range []struct{ proxy, url, code, words string }{
			{"socks5", "http://198.18.31.1:9/", "(5)", "connection refused"},
			{"socks5h", "http://nx.wisp.test:8080/", "(4)", "host unreachable"},
		} {
			out, err := socksCurl(nsB, c.proxy+"://198.18.30.2:1080", c.url).CombinedOutput()
			msg := strings.ToLower(string(out))
			if err == nil || !strings.Contains(msg, c.code) && !strings.Contains(msg, c.words) {
				t.Errorf("%s: %v\n%s", c.url, err, out)
			}
			if !strings.Contains(w.out.String(), "("+c.words+")") {
				t.Errorf("%s: wisp's log does not say %q", c.url, c.words)
			}
		}
	})

	w.cmd.Process.Signal(syscall.SIGUSR1)
	waitFor(t, func() bool { return strings.Contains(w.out.String(), "PassiveOpens") }, "stats on SIGUSR1:\n"+w.out.String())
	w.stop(t)
	if s := w.out.String(); !strings.Contains(s, "http on port 80") || !strings.Contains(s, "socks5 on 198.18.30.2:1080") {
		t.Errorf("wisp wg output:\n%s", s)
	}
	if t.Failed() {
		t.Logf("wisp wg output:\n%s", w.out.String())
	}
}

// socksCurl runs curl in ns through a SOCKS proxy (curl's -x with a socks5:// or
// socks5h:// URL; no --noproxy, which would bypass it).
func socksCurl(ns *netns, proxy, url string) *exec.Cmd {
	return ns.cmd("curl", "-x", proxy, "--globoff", "--silent", "--show-error", "--fail", "--max-time", "120", url)
}

func socksCurlSum(t *testing.T, ns *netns, proxy, url string) (int64, [32]byte) {
	t.Helper()
	w := newSumWriter()
	var stderr bytes.Buffer
	c := socksCurl(ns, proxy, url)
	c.Stdout, c.Stderr = w, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("curl -x %s %s: %v after %d bytes\n%s", proxy, url, err, w.n, stderr.String())
	}
	return w.n, w.sum()
}

// Bad configuration files and flags make `wisp wg` exit with status 2 and a message that
// says what is wrong (and where).
func TestWispWGBadConfig(t *testing.T) {
	bin := buildWisp(t)
	dir := t.TempDir()
	priv, _ := wgKeys(t)
	_, peer := wgKeys(t)
	good := fmt.Sprintf("[Interface]\nPrivateKey = %s\nAddress = 198.18.40.2/24\n[Peer]\nPublicKey = %s\nAllowedIPs = 198.18.40.0/24\n", priv, peer)
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	checkBadFlags(t, bin, []string{"wg"}, []badFlags{
		{[]string{}, "--config FILE is required"},
		{[]string{"--config", filepath.Join(dir, "missing.conf")}, "no such file"},
		{[]string{"--config", dir}, "is a directory"},
		{[]string{"--config", write("key.conf", strings.Replace(good, priv.String(), "c2hvcnQ=", 1))},
			"key.conf: line 2: PrivateKey: a key is 44 characters"},
		{[]string{"--config", write("b64.conf", strings.Replace(good, priv.String(), strings.Repeat("!", 43)+"=", 1))},
			"line 2: PrivateKey: not valid base64"},
		{[]string{"--config", write("peer.conf", strings.Replace(good, peer.String(), "nope", 1))},
			"line 5: PublicKey: a key is 44 characters"},
		{[]string{"--config", write("addr.conf", strings.Replace(good, "198.18.40.2/24", "198.18.40.300/24", 1))},
			`line 3: Address: "198.18.40.300/24" is not an address with a prefix length`},
		{[]string{"--config", write("noaddr.conf", strings.Replace(good, "Address = 198.18.40.2/24\n", "", 1))},
			"has no Address"},
		{[]string{"--config", write("allowed.conf", strings.Replace(good, "198.18.40.0/24", "198.18.40.0/99", 1))},
			"line 6: AllowedIPs"},
		{[]string{"--config", write("endpoint.conf", good+"Endpoint = 198.18.40.1\n")}, "line 7: Endpoint"},
		{[]string{"--config", write("key2.conf", good+"Colour = blue\n")}, `line 7: unknown key "Colour"`},
		{[]string{"--config", write("mtu.conf", strings.Replace(good, "Address", "MTU = 60\nAddress", 1))}, "line 3: MTU: 60 out of range"},
		{[]string{"--config", write("mtu6.conf", strings.Replace(good, "Address = 198.18.40.2/24", "MTU = 1000\nAddress = fd42:5eed:0:40::2/64", 1))}, "below IPv6's minimum"},
		{[]string{"--config", write("ok.conf", good), "--socks5", "nonsense"}, "--socks5"},
		{[]string{"--config", write("ok2.conf", good), "--socks5", "198.18.40.2:99999"}, "out of range"},
		{[]string{"--config", write("ok3.conf", good), "--http", "80", "--echo", "80"}, "port 80 is given twice"},
		{[]string{"--config", write("ok4.conf", good), "--preset", "huge"}, "preset"},
		{[]string{"--config", write("ok5.conf", good), "extra"}, "unexpected argument"},
	})
}

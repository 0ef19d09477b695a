package integration

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/internal/httpapp"
	"github.com/wispstack/wisp/internal/tcpapp"
)

var httpBytes = flag.Int64("wisp.http-bytes", 0, "size of the HTTP downloads checked by sha256 (0: 1 GiB, 16 MiB under -short or -race)")

// httpTransfer is the size of the HTTP downloads and uploads.
func httpTransfer() int64 {
	if *httpBytes > 0 {
		return *httpBytes
	}
	return scaled[int64](1<<30, 16<<20)
}

// curl runs curl in ns: no proxy from the environment, no URL globbing (IPv6 brackets),
// failure on HTTP errors, and a time bound.
func curl(ns *netns, args ...string) *exec.Cmd {
	return ns.cmd(append([]string{"curl", "--noproxy", "*", "--globoff", "--silent", "--show-error",
		"--fail", "--max-time", "300"}, args...)...)
}

// sumWriter hashes and counts what is written to it.
type sumWriter struct {
	h hash.Hash
	n int64
}

func newSumWriter() *sumWriter { return &sumWriter{h: sha256.New()} }

func (w *sumWriter) Write(b []byte) (int, error) {
	w.h.Write(b)
	w.n += int64(len(b))
	return len(b), nil
}

func (w *sumWriter) sum() (s [32]byte) {
	w.h.Sum(s[:0])
	return s
}

// curlSum downloads url with curl in ns and returns the length and SHA-256 of the body,
// hashed as curl writes it to its standard output.
func curlSum(t *testing.T, ns *netns, url string) (int64, [32]byte) {
	t.Helper()
	w := newSumWriter()
	var stderr bytes.Buffer
	c := curl(ns, url)
	c.Stdout, c.Stderr = w, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("curl %s: %v after %d bytes\n%s", url, err, w.n, stderr.String())
	}
	return w.n, w.sum()
}

// curlBytes fetches /bytes/n?seed=seed from the wisp HTTP server at host with curl in ns,
// fails the test unless the body is n bytes of the pattern of seed (sha256), and logs the
// rate as what.
func curlBytes(t *testing.T, ns *netns, host string, n int64, seed uint64, what string) {
	t.Helper()
	url := fmt.Sprintf("http://%s/bytes/%d?seed=%d", host, n, seed)
	start := time.Now()
	got, sum := curlSum(t, ns, url)
	d := time.Since(start)
	if got != n || sum != patternSum(n, seed) {
		t.Fatalf("%s: %d bytes (sha256 %x), want %d (%x)", url, got, sum[:8], n, patternSum(n, seed))
	}
	logRate(t, what, n, d)
}

// The kernel's curl fetches from `wisp serve --http`: the index page and /bytes/N
// (byte-exact by sha256, 1 GiB by default) over IPv4 and IPv6, a second port, an upload
// checked by the server, and errors as HTTP statuses.
func TestWispServeHTTP(t *testing.T) {
	requireTool(t, "curl")
	ns := newNetns(t)
	srv := startServe(t, ns, "198.18.20.1/24", "fd42:5eed:0:20::1/64",
		"--addr", "198.18.20.2/24", "--addr", "fd42:5eed:0:20::2/64", "--http", "80", "--http", "8080")
	out := srv.out
	waitFor(t, func() bool { return strings.Contains(out.String(), "serving on") }, "wisp serve to start:\n"+out.String())

	n := httpTransfer()
	for _, f := range families {
		host := []string{"198.18.20.2", "[fd42:5eed:0:20::2]"}[f.idx]
		page, err := curl(ns, "http://"+host+"/").CombinedOutput()
		if err != nil || !strings.Contains(string(page), "userspace TCP/IP stack") {
			t.Fatalf("%s: curl /: %v\n%s", f.name, err, page)
		}

		seed := uint64(60 + f.idx)
		curlBytes(t, ns, host, n, seed, f.name+" curl ← wisp serve --http /bytes/N (sha256 verified)")

		if got, sum := curlSum(t, ns, "http://"+host+":8080/bytes/100000"); got != 100000 || sum != patternSum(100000, 0) {
			t.Fatalf("%s: port 8080: %d bytes", f.name, got)
		}

		// Upload: the server hashes what it receives.
		up := int64(8 << 20)
		body := make([]byte, up)
		tcpapp.FillPattern(body, seed, 0)
		c := curl(ns, "--data-binary", "@-", "-H", "Content-Type: application/octet-stream", "http://"+host+"/sum")
		c.Stdin = bytes.NewReader(body)
		reply, err := c.CombinedOutput()
		if want := fmt.Sprintf("%d %x\n", up, patternSum(up, seed)); err != nil || string(reply) != want {
			t.Fatalf("%s: curl POST /sum: %v: %q, want %q", f.name, err, reply, want)
		}

		code, err := ns.cmd("curl", "--noproxy", "*", "--globoff", "-s", "-o", "/dev/null", "-w", "%{http_code}",
			"http://"+host+"/bytes/x").Output()
		if err != nil || string(code) != "400" {
			t.Fatalf("%s: /bytes/x: %v %q, want 400", f.name, err, code)
		}
	}

	srv.stop(t)
	s := out.String()
	for _, want := range []string{"http on port 80:", "http on port 8080:", "PassiveOpens"} {
		if !strings.Contains(s, want) {
			t.Errorf("wisp serve output lacks %q:\n%s", want, s)
		}
	}
}

// `wisp serve --http 80 --http-root DIR` serves the files of DIR.
func TestWispServeHTTPRoot(t *testing.T) {
	requireTool(t, "curl")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from a file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := newNetns(t)
	srv := startServe(t, ns, "198.18.25.1/24", "fd42:5eed:0:25::1/64",
		"--addr", "198.18.25.2/24", "--addr", "fd42:5eed:0:25::2/64", "--http", "80", "--http-root", dir)
	waitFor(t, func() bool { return strings.Contains(srv.out.String(), "serving on") }, "wisp serve to start:\n"+srv.out.String())
	for _, host := range []string{"198.18.25.2", "[fd42:5eed:0:25::2]"} {
		got, err := curl(ns, "http://"+host+"/hello.txt").CombinedOutput()
		if err != nil || string(got) != "hello from a file\n" {
			t.Fatalf("curl %s/hello.txt: %v %q", host, err, got)
		}
		listing, err := curl(ns, "http://"+host+"/").CombinedOutput()
		if err != nil || !strings.Contains(string(listing), "hello.txt") {
			t.Fatalf("curl %s/: %v\n%s", host, err, listing)
		}
	}
	srv.stop(t)
}

// Bad --http, --http-root and --udp-echo values exit with status 2 and say what is wrong.
func TestWispServeAppsBadFlags(t *testing.T) {
	bin := buildWisp(t)
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"serve", "--tun", "x", "--addr", "198.18.0.1/24"}
	checkBadFlags(t, bin, base, []badFlags{
		{[]string{"--http", "0"}, "out of range [1, 65535]"},
		{[]string{"--http", "http"}, "not a port number"},
		{[]string{"--udp-echo", "70000"}, "out of range [1, 65535]"},
		{[]string{"--udp-echo", "x"}, "not a port number"},
		{[]string{"--echo", "80", "--http", "80"}, "port 80 is given twice"},
		{[]string{"--http", "80", "--http", "80"}, "port 80 is given twice"},
		{[]string{"--udp-echo", "7", "--udp-echo", "7"}, "port 7 is given twice"},
		{[]string{"--http-root", "/"}, "--http-root needs --http"},
		{[]string{"--http", "80", "--http-root", "/nonexistent/wisp"}, "no such file"},
		{[]string{"--http", "80", "--http-root", file}, "is not a directory"},
	})
	// --echo 7 and --udp-echo 7 are different protocols: accepted (and then fail on the
	// missing permission or device, not on the flags).
	out, _ := exec.Command(bin, append(append([]string{}, base...), "--echo", "7", "--udp-echo", "7", "--tun", "")...).CombinedOutput()
	if strings.Contains(string(out), "given twice") {
		t.Errorf("--echo 7 --udp-echo 7 rejected:\n%s", out)
	}
}

// A net/http client on wisp (endpoint.Net's DialContext as its transport's dialer) fetches
// from and uploads to a net/http server on kernel sockets of the namespace, byte-exact, over
// IPv4 and IPv6.
func TestHTTPClientOnWisp(t *testing.T) {
	e := newTCPEnv(t, 21, nil)
	for _, f := range families {
		l := e.ns.listen(t, f.net, netip.AddrPortFrom(e.kern[f.idx], 8080))
		hs := httpapp.NewServer(httpapp.Handler("the kernel"))
		done := make(chan error, 1)
		go func() { done <- hs.Serve(l) }()
		t.Cleanup(func() {
			hs.Close()
			<-done
		})
	}
	n := endpoint.New(e.s)
	tr := &http.Transport{DialContext: n.DialContext, Proxy: nil, MaxIdleConnsPerHost: 2}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Minute}

	// The 1 GiB download is TestWispServeHTTP's; here 256 MiB keeps the default run short.
	size := min(httpTransfer(), 256<<20)
	if *httpBytes > 0 {
		size = *httpBytes
	}
	for _, f := range families {
		base := "http://" + netip.AddrPortFrom(e.kern[f.idx], 8080).String()
		resp, err := client.Get(base + "/")
		if err != nil {
			t.Fatalf("%s: GET /: %v", f.name, err)
		}
		page, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !strings.Contains(string(page), "the kernel") {
			t.Fatalf("%s: GET /: %v %v\n%s", f.name, resp.Status, err, page)
		}

		seed := uint64(70 + f.idx)
		start := time.Now()
		resp, err = client.Get(fmt.Sprintf("%s/bytes/%d?seed=%d", base, size, seed))
		if err != nil {
			t.Fatalf("%s: GET /bytes: %v", f.name, err)
		}
		w := newSumWriter()
		_, err = io.Copy(w, resp.Body)
		resp.Body.Close()
		if err != nil || w.n != size || w.sum() != patternSum(size, seed) {
			t.Fatalf("%s: GET /bytes/%d: %v, %d bytes (sha256 %x)", f.name, size, err, w.n, w.sum())
		}
		logRate(t, f.name+" net/http on wisp ← kernel server (sha256 verified)", size, time.Since(start))

		up := min(size, 64<<20)
		start = time.Now()
		resp, err = client.Post(base+"/sum", "application/octet-stream", io.LimitReader(tcpapp.NewPattern(seed), up))
		if err != nil {
			t.Fatalf("%s: POST /sum: %v", f.name, err)
		}
		reply, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("%d %x\n", up, patternSum(up, seed)); err != nil || string(reply) != want {
			t.Fatalf("%s: POST /sum: %v %q, want %q", f.name, err, reply, want)
		}
		logRate(t, f.name+" net/http on wisp → kernel server (sha256 verified)", up, time.Since(start))
	}
}

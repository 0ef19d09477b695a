package httpapp

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/stack/stacktest"
)

func get(t *testing.T, srv *httptest.Server, method, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestIndexAndBytes(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	srv := httptest.NewServer(Handler("test <server>"))
	defer srv.Close()

	resp, body := get(t, srv, "GET", "/", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "test &lt;server&gt;") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("index: %v %q\n%s", resp.Status, resp.Header.Get("Content-Type"), body)
	}

	for _, c := range []struct {
		path string
		n    int64
		seed uint64
	}{{"/bytes/0", 0, 0}, {"/bytes/1", 1, 0}, {"/bytes/1000003", 1000003, 0}, {"/bytes/4097?seed=9", 4097, 9}} {
		resp, body := get(t, srv, "GET", c.path, nil)
		if resp.StatusCode != 200 || int64(len(body)) != c.n || resp.ContentLength != c.n {
			t.Fatalf("%s: %v, %d bytes, Content-Length %d", c.path, resp.Status, len(body), resp.ContentLength)
		}
		if sha256.Sum256(body) != tcpapp.PatternSum(c.n, c.seed) {
			t.Fatalf("%s: body is not the pattern", c.path)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Fatalf("%s: Content-Type %q", c.path, ct)
		}
	}

	// A range is the pattern at that offset.
	resp, body = get(t, srv, "GET", "/bytes/100000?seed=3", map[string]string{"Range": "bytes=70001-70100"})
	want := make([]byte, 100)
	tcpapp.FillPattern(want, 3, 70001)
	if resp.StatusCode != http.StatusPartialContent || string(body) != string(want) {
		t.Fatalf("range: %v, %d bytes", resp.Status, len(body))
	}
	// HEAD gives the length and no body.
	resp, body = get(t, srv, "HEAD", "/bytes/12345", nil)
	if resp.StatusCode != 200 || resp.ContentLength != 12345 || len(body) != 0 {
		t.Fatalf("HEAD: %v, length %d, %d body bytes", resp.Status, resp.ContentLength, len(body))
	}

	for _, c := range []struct {
		path string
		code int
	}{
		{"/bytes/-1", 400}, {"/bytes/x", 400}, {"/bytes/1099511627777", 400},
		{"/bytes/5?seed=-2", 400}, {"/nothing", 404}, {"/bytes/", 404},
	} {
		if resp, _ := get(t, srv, "GET", c.path, nil); resp.StatusCode != c.code {
			t.Errorf("%s: %v, want %d", c.path, resp.Status, c.code)
		}
	}
	// POST /sum reports what it received.
	up := make([]byte, 300001)
	tcpapp.FillPattern(up, 4, 0)
	resp, err := srv.Client().Post(srv.URL+"/sum", "application/octet-stream", bytes.NewReader(up))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %x\n", len(up), tcpapp.PatternSum(int64(len(up)), 4)); string(body) != want {
		t.Fatalf("POST /sum: %v %q, want %q", resp.Status, body, want)
	}
	if resp, _ := get(t, srv, "POST", "/bytes/5", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %v", resp.Status)
	}
}

func TestPatternFileSeek(t *testing.T) {
	f := &patternFile{seed: 1, size: 10}
	if off, err := f.Seek(-3, io.SeekEnd); off != 7 || err != nil {
		t.Fatalf("SeekEnd: %d %v", off, err)
	}
	b := make([]byte, 8)
	if n, err := f.Read(b); n != 3 || err != nil {
		t.Fatalf("read at 7: %d %v", n, err)
	}
	if n, err := f.Read(b); n != 0 || err != io.EOF {
		t.Fatalf("read at end: %d %v", n, err)
	}
	if _, err := f.Seek(-20, io.SeekCurrent); err == nil {
		t.Fatal("negative offset accepted")
	}
	if _, err := f.Seek(0, 7); err == nil {
		t.Fatal("bad whence accepted")
	}
}

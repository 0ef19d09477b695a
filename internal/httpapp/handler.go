package httpapp

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/wispstack/wisp/internal/tcpapp"
)

// MaxBytes bounds /bytes/N: 1 TiB, far beyond any test and small enough that offsets never
// overflow.
const MaxBytes = 1 << 40

// Handler returns the built-in site: "/" an index page that names the server (title), and
// "/bytes/N" (optionally "?seed=S", default 0) N bytes of tcpapp's pattern of seed S as
// application/octet-stream, with Content-Length, HEAD and Range support; "POST /sum" reads
// the request body and answers "LENGTH SHA256-HEX\n" (for uploads). Anything else is 404.
// title is shown on the index page (HTML-escaped).
func Handler(title string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, indexPage, html.EscapeString(title))
	})
	mux.HandleFunc("GET /bytes/{n}", serveBytes)
	mux.HandleFunc("POST /sum", serveSum)
	return mux
}

const indexPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>wisp</title></head>
<body>
<h1>wisp</h1>
<p>This page is served by net/http on a listener of wisp, a userspace TCP/IP stack: %s.</p>
<p><a href="/bytes/1048576">/bytes/N</a> streams N bytes of a seeded pattern
(add <code>?seed=S</code> to pick the seed, default 0); its SHA-256 is
<code>tcpapp.PatternSum(N, S)</code>.
<code>POST /sum</code> answers the length and SHA-256 of the request body.</p>
</body></html>
`

// serveBytes answers /bytes/N through http.ServeContent, which brings HEAD, Range and
// conditional requests for free.
func serveBytes(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
	if err != nil || n < 0 || n > MaxBytes {
		http.Error(w, fmt.Sprintf("/bytes/N: N must be an integer in [0, %d]", int64(MaxBytes)), http.StatusBadRequest)
		return
	}
	var seed uint64
	if s := r.URL.Query().Get("seed"); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			http.Error(w, "seed must be an unsigned 64-bit integer", http.StatusBadRequest)
			return
		}
	}
	// Set so that ServeContent does not sniff (a read and a seek back).
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, &patternFile{seed: seed, size: n})
}

// serveSum answers the length and SHA-256 of the request body.
func serveSum(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, http.MaxBytesReader(w, r.Body, MaxBytes))
	if err != nil {
		http.Error(w, fmt.Sprintf("reading the body after %d bytes: %v", n, err), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%d %x\n", n, h.Sum(nil))
}

// patternFile is the first size bytes of the pattern of seed as an io.ReadSeeker.
type patternFile struct {
	seed      uint64
	off, size int64
}

var errWhence = errors.New("httpapp: bad whence or negative offset")

func (f *patternFile) Read(b []byte) (int, error) {
	if f.off >= f.size {
		return 0, io.EOF
	}
	if rest := f.size - f.off; int64(len(b)) > rest {
		b = b[:rest]
	}
	tcpapp.FillPattern(b, f.seed, f.off)
	f.off += int64(len(b))
	return len(b), nil
}

func (f *patternFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += f.off
	case io.SeekEnd:
		off += f.size
	default:
		return f.off, errWhence
	}
	if off < 0 {
		return f.off, errWhence
	}
	f.off = off
	return off, nil
}

// NewServer returns an http.Server for h with header and idle timeouts (a slow client
// cannot hold a connection forever) and no write timeout (a 1 GB download over a slow
// link must be allowed to finish).
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
}

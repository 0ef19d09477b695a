package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/wispstack/wisp/metrics"
	"github.com/wispstack/wisp/stack"
)

// statsFlag registers --stats on a command that runs a stack.
func statsFlag(fs *flag.FlagSet) *string { return fs.String("stats", "", statsUsage) }

const statsUsage = "serve the stack's stats over HTTP on this host address (HOST:PORT, a kernel socket):\n" +
	"/metrics (Prometheus), / (a live page), /snapshot.json and /diagnose (what `wisp doctor --url` reads)"

// checkStats validates --stats before anything is opened.
func checkStats(addr string) error {
	if addr == "" {
		return nil
	}
	if err := checkHostPort(addr); err != nil {
		return fmt.Errorf("%w: --stats: %v", errUsage, err)
	}
	return nil
}

// startStats serves metrics.Handler(s) on addr (a socket of this host, not of the stack)
// and prints its URL. stop closes the server and waits for it; call it before the stack
// closes.
func startStats(s *stack.Stack, addr, title string, stdout io.Writer) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--stats: %w", err)
	}
	srv := &http.Server{Handler: metrics.Handler(s, metrics.Title(title)), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stdout, "wisp: stats server: %v\n", err)
		}
	}()
	fmt.Fprintf(stdout, "wisp: stats on %s (/metrics, /snapshot.json, /diagnose)\n", statsURL(l.Addr()))
	return func() {
		srv.Close()
		<-done
	}, nil
}

// statsURL is the URL of the page served on a; an unspecified address is shown as loopback.
func statsURL(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String() + "/"
	}
	ap := ta.AddrPort()
	if ap.Addr().IsUnspecified() {
		if ap.Addr().Unmap().Is4() {
			return fmt.Sprintf("http://127.0.0.1:%d/", ap.Port())
		}
		return fmt.Sprintf("http://[::1]:%d/", ap.Port())
	}
	return "http://" + ap.String() + "/"
}

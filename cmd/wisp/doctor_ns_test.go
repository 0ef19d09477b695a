package main

import (
	"bytes"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/internal/netnstest"
	"golang.org/x/sys/unix"
)

// lockedBuffer is a bytes.Buffer for a process's output, read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// buildWisp builds this command into the test's directory.
func buildWisp(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wisp")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// exitCode runs c and returns its exit status and output.
func exitCode(t *testing.T, c *exec.Cmd) (int, string) {
	t.Helper()
	out, err := c.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("%v: %v\n%s", c.Args, err, out)
	return -1, ""
}

// End to end: `wisp serve --preset embedded --stats` on a TUN device in a namespace, and
// `wisp doctor --url` against it: healthy at first (status 0, "no findings"); then the
// kernel opens more TCP connections than the embedded preset has PCBs (5) while the doctor
// samples, and it finds the exhaustion and names MempNumTCPPCB (status 1); --save keeps
// the snapshot and --file reads it back with the same verdict.
func TestDoctorAgainstServe(t *testing.T) {
	ns := netnstest.New(t, "wisp-cmd")
	bin := buildWisp(t)
	const stats = "127.0.0.1:9464" // the namespace's own loopback
	out := &lockedBuffer{}
	srv := ns.Cmd(bin, "serve", "--tun", "wdoc0", "--addr", "198.18.77.2/24", "--echo", "7",
		"--preset", "embedded", "--no-offload", "--stats", stats)
	srv.Stdout, srv.Stderr = out, out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	t.Cleanup(func() {
		srv.Process.Kill()
		<-done
	})
	fail := func(format string, args ...any) {
		t.Helper()
		srv.Process.Signal(unix.SIGUSR1)
		time.Sleep(300 * time.Millisecond)
		t.Fatalf(format+"\n=== wisp serve ===\n%s", append(args, out.String())...)
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "wisp: stats on http://127.0.0.1:9464/"); {
		if time.Now().After(deadline) {
			fail("wisp serve did not start its stats server")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ns.Run(t, "ip", "addr", "add", "198.18.77.1/24", "dev", "wdoc0")
	ns.Run(t, "ip", "link", "set", "wdoc0", "up")

	url := "http://" + stats
	if code, text := exitCode(t, ns.Cmd(bin, "doctor", "--url", url, "--interval", "300ms")); code != 0 || !strings.Contains(text, "no findings:") {
		fail("healthy: exit %d, want 0 and no findings:\n%s", code, text)
	}

	// The doctor samples over 3 s; the kernel opens 12 connections in between.
	saved := filepath.Join(t.TempDir(), "snap.json")
	doc := ns.Cmd(bin, "doctor", "--url", url, "--interval", "3s", "--save", saved)
	docOut := &lockedBuffer{}
	doc.Stdout, doc.Stderr = docOut, docOut
	if err := doc.Start(); err != nil {
		t.Fatal(err)
	}
	docDone := make(chan error, 1)
	go func() { docDone <- doc.Wait() }()
	time.Sleep(500 * time.Millisecond)
	var conns []net.Conn
	refused := 0
	ns.Do(t, func() {
		for range 12 {
			c, err := net.DialTimeout("tcp4", "198.18.77.2:7", 2*time.Second)
			if err != nil {
				refused++
				continue
			}
			conns = append(conns, c)
		}
	})
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var err error
	select {
	case err = <-docDone:
	case <-time.After(30 * time.Second):
		doc.Process.Kill()
		<-docDone
		fail("wisp doctor --url did not end")
	}
	var ee *exec.ExitError
	text := docOut.String()
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(text, "TCP connections ran out of PCBs") ||
		!strings.Contains(text, "MempNumTCPPCB") {
		fail("exhausted (%d connections open, %d refused): %v, want exit 1 and the PCB finding:\n%s", len(conns), refused, err, text)
	}
	if len(conns) != 5 || refused != 7 {
		t.Errorf("%d connections open and %d refused, want 5 and 7 (the embedded preset's 5 PCBs)", len(conns), refused)
	}
	code, again := exitCode(t, exec.Command(bin, "doctor", "--file", saved))
	if code != 1 || !strings.Contains(again, "TCP connections ran out of PCBs") {
		t.Errorf("--file %s: exit %d, want 1 and the PCB finding:\n%s", saved, code, again)
	}
	if testing.Verbose() {
		t.Logf("wisp doctor --url %s --interval 3s:\n%s", url, text)
	}
}

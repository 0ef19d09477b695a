package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wispstack/wisp/stack/stacktest"
)

// The default demo: two wireguard-go peers over wisp in this process, channel binds (no
// sockets), pings and a transfer through the tunnel, the budget; nothing left running.
func TestDemoWireGuard(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	var out, errOut bytes.Buffer
	if code := run([]string{"demo", "--tcp-mib", "8", "--count", "2"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	s := out.String()
	for _, want := range []string{"two WireGuard peers", "64 bytes from 198.18.0.2: seq=2", "64 bytes from fd42:5eed::2: seq=2",
		"includes the WireGuard handshake", "TCP 198.18.0.2:5001: 8 MiB in", "sha256 verified", "TOTAL", "peer b: TCP segments"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

// --plain keeps the Ethernet demo and its flags.
func TestDemoPlain(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	var out, errOut bytes.Buffer
	if code := run([]string{"demo", "--plain", "--tcp-mib", "1", "--count", "1"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	s := out.String()
	for _, want := range []string{"in-memory Ethernet pipe", "fragmented and reassembled", "TCP [fd42:5eed::2]:5001: 1 MiB"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

func TestDemoBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--tcp-mib", "-1"}, "--tcp-mib -1 out of range"},
		{[]string{"demo", "--plain", "--tcp-mib", "x"}, "not a number"},
		{[]string{"demo", "--count", "0"}, "--count 0 out of range"},
		{[]string{"demo", "--preset", "nope"}, "nope"},
	} {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, errOut.String(), c.want)
		}
	}
}

// `wisp wg` rejects bad flags and files before it opens anything (exit 2, with the file
// and line).
func TestWgBadInput(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(conf, []byte("[Interface]\nPrivateKey = AAAA\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"wg"}, "--config FILE is required"},
		{[]string{"wg", "--config", filepath.Join(dir, "none")}, "no such file"},
		{[]string{"wg", "--config", conf}, conf + ": line 2: PrivateKey: a key is 44 characters"},
		{[]string{"wg", "--config", conf, "--socks5", "1080"}, `--socks5: "1080" is not HOST:PORT`},
		{[]string{"wg", "--config", conf, "--socks5", "host.example:1080"}, "is not an IP address"},
		{[]string{"wg", "--config", conf, "--http-root", dir}, "--http-root needs --http"},
		{[]string{"wg", "--bogus"}, "flag provided but not defined"},
	} {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, errOut.String(), c.want)
		}
	}
}

func TestCheckHostPort(t *testing.T) {
	for _, ok := range []string{"198.18.0.1:1080", "[fd42:5eed::1]:1080", ":1080", "localhost:1080"} {
		if err := checkHostPort(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"1080", "198.18.0.1:0", "198.18.0.1:x", "fd42::1:1080"} {
		if err := checkHostPort(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

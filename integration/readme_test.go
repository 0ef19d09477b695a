package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readmeGo returns the README's first Go code block (the quick start).
func readmeGo(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```go\n")
	if !ok {
		t.Fatal("README.md has no ```go block")
	}
	code, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("README.md's ```go block does not end")
	}
	return code
}

// The README's Go quick start builds, and does what it says: run in a namespace, it serves
// HTTP on wisp to the kernel's curl over IPv4 and IPv6.
func TestReadmeQuickStart(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(readmeGo(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "quickstart")
	// Built from the module root, the file's imports resolve in this module.
	build := exec.Command("go", "build", "-o", bin, src)
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the README's Go quick start does not build: %v\n%s", err, out)
	}
	requireTool(t, "curl")
	ns := newNetns(t)
	out := newSyncBuffer()
	c := ns.cmd(bin)
	c.Stdout, c.Stderr = out, out
	startProc(t, c)
	ns.waitLink(t, "wisp0")
	ns.run(t, "ip", "addr", "add", "198.18.0.1/24", "dev", "wisp0")
	ns.run(t, "ip", "-6", "addr", "add", "fd42:5eed::1/64", "dev", "wisp0", "nodad")
	ns.run(t, "ip", "link", "set", "wisp0", "up")
	for _, url := range []string{"http://198.18.0.2/", "http://[fd42:5eed::2]/"} {
		var got []byte
		var err error
		for range 20 { // the listener may come up after the link
			if got, err = curl(ns, "--max-time", "5", url).CombinedOutput(); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || !strings.HasPrefix(string(got), "hello from wisp") {
			t.Fatalf("curl %s: %v %q\nquick start said:\n%s", url, err, got, out.String())
		}
	}
}

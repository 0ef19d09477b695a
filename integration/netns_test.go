package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireRoot skips the test unless it runs as root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("integration tests must run as root in CI")
		}
		t.Skip("needs root (network namespaces and TUN)")
	}
}

// requireTool skips (or, in CI, fails) when a program is not installed.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; the README's test command installs it", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

var nsSeq atomic.Int32

// netns is a network namespace owned by one test.
type netns struct {
	name string
}

// newNetns creates a namespace with only a loopback interface (up) and no routes; it is
// deleted when the test ends, whatever happens.
func newNetns(t *testing.T) *netns {
	t.Helper()
	return newNamedNetns(t, "wisp-it")
}

// newNamedNetns is newNetns with a name that starts with prefix (a test's own, so that what
// it leaves behind is recognisable).
func newNamedNetns(t *testing.T, prefix string) *netns {
	t.Helper()
	requireRoot(t)
	requireTool(t, "ip")
	ns := &netns{name: fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), nsSeq.Add(1))}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", ns.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", ns.name, err, out)
		}
	})
	ns.run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// run runs a command inside the namespace and fails the test if it fails.
func (ns *netns) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := ns.cmd(args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (ns *netns) cmd(args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...)
}

// proc is a process a test runs (startProc): done closes once it has exited, and err is then
// what Wait returned.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startProc starts c (ns.cmd: in a namespace) and, when the test ends, kills it and waits
// for it to exit.
func startProc(t *testing.T, c *exec.Cmd) *proc {
	t.Helper()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: c, done: make(chan struct{})}
	go func() {
		p.err = c.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		c.Process.Kill()
		<-p.done
	})
	return p
}

// do runs fn on an OS thread that has entered the namespace, so that sockets and devices
// fn creates belong to it.
func (ns *netns) do(t *testing.T, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread's namespace is changed for good: let it exit with the goroutine
		// instead of unlocking it.
		target, err := unix.Open("/var/run/netns/"+ns.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		fn()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// waitLink waits until a link exists in the namespace.
func (ns *netns) waitLink(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ns.cmd("ip", "link", "show", name).Run(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("link %s did not appear in %s", name, ns.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

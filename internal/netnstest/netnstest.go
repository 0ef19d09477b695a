package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RequireRoot skips the test unless it runs as root; under CI (CI set) it fails instead.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("kernel tests must run as root in CI")
		}
		t.Skip("needs root (network namespaces and TUN)")
	}
}

// RequireTool returns the path of a program; without it the test skips, or under CI fails
// (the README's test command installs what the tests use).
func RequireTool(t testing.TB, name string) string {
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

var seq atomic.Int32

// NS is a network namespace owned by one test.
type NS struct {
	Name string
}

// New creates a namespace named prefix-PID-N. It skips (fails under CI) without root or ip.
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "ip")
	ns := &NS{Name: fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", ns.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", ns.Name, err, out)
		}
	})
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// Cmd returns a command that runs inside the namespace.
func (ns *NS) Cmd(args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name}, args...)...)
}

// Run runs a command inside the namespace and fails the test if it fails; it returns the
// command's combined output.
func (ns *NS) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := ns.Cmd(args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

// Do runs fn on an OS thread that has entered the namespace, so that the sockets and
// devices fn creates belong to it. The thread's namespace is changed for good: it exits
// with its goroutine instead of returning to the scheduler.
func (ns *NS) Do(t testing.TB, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		target, err := unix.Open("/var/run/netns/"+ns.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
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

// WaitLink waits up to 10 s until a link exists in the namespace.
func (ns *NS) WaitLink(t testing.TB, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ns.Cmd("ip", "link", "show", name).Run() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("link %s did not appear in %s", name, ns.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

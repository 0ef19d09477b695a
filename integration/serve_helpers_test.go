package integration

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// servedWisp is a `wisp serve` process on TUN device wisp1 inside a namespace.
type servedWisp struct {
	*proc
	out *syncBuffer
}

// startServe runs `wisp serve --tun wisp1 args...` in ns, gives the kernel side of wisp1
// kernel4 and kernel6 (prefixes) and brings it up. The process is killed at cleanup.
func startServe(t *testing.T, ns *netns, kernel4, kernel6 string, args ...string) *servedWisp {
	t.Helper()
	s := &servedWisp{out: newSyncBuffer()}
	c := ns.cmd(append([]string{buildWisp(t), "serve", "--tun", "wisp1"}, args...)...)
	c.Stdout, c.Stderr = s.out, s.out
	s.proc = startProc(t, c)
	s.onFail(t)
	ns.waitLink(t, "wisp1")
	ns.run(t, "ip", "addr", "add", kernel4, "dev", "wisp1")
	ns.run(t, "ip", "-6", "addr", "add", kernel6, "dev", "wisp1", "nodad")
	ns.run(t, "ip", "link", "set", "wisp1", "up")
	return s
}

// onFail registers the evidence of the wisp process for a test that fails: SIGUSR1 makes
// it print every TCP connection (state, sequence numbers, windows, timers, queues) and its
// counters, which are logged. It runs before the process is killed (cleanups run last
// registered first).
func (s *servedWisp) onFail(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		select {
		case <-s.done:
			t.Logf("=== wisp process: exited (%v) ===\n%s", s.err, s.out.String())
			return
		default:
		}
		before := len(s.out.String())
		_ = s.cmd.Process.Signal(syscall.SIGUSR1)
		// The dump is a connection list and a counter table, written at once: wait until
		// output stops growing.
		last, deadline := before, time.Now().Add(5*time.Second)
		for time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			n := len(s.out.String())
			if n > before && n == last {
				break
			}
			last = n
		}
		t.Logf("=== wisp process (SIGUSR1) ===\n%s", s.out.String()[before:])
	})
}

// stop sends SIGTERM and requires a clean exit within 10 s.
func (s *servedWisp) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if s.err != nil {
			t.Fatalf("wisp serve exited with %v:\n%s", s.err, s.out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("wisp serve did not stop on SIGTERM:\n%s", s.out.String())
	}
}

// badFlags is a wrong command line and a piece of what the error must say.
type badFlags struct {
	args []string
	want string
}

// checkBadFlags runs bin with prefix and then each case's args, and fails the test unless
// it exits with status 2 (a usage error) and says what the case wants. Each run is bounded
// (30 s): a command line wrongly accepted may start something that runs until killed.
func checkBadFlags(t *testing.T, bin string, prefix []string, cases []badFlags) {
	t.Helper()
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		out, err := exec.CommandContext(ctx, bin, append(slices.Clone(prefix), c.args...)...).CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v: exit %v, want 2\n%s", c.args, err, out)
		}
		if !strings.Contains(string(out), c.want) {
			t.Errorf("%v: output lacks %q:\n%s", c.args, c.want, out)
		}
	}
}

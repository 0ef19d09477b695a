package integration

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// servedWisp is a `wisp serve` process on TUN device wisp1 inside a namespace.
type servedWisp struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan error
}

// startServe runs `wisp serve --tun wisp1 args...` in ns, gives the kernel side of wisp1
// kernel4 and kernel6 (prefixes) and brings it up. The process is killed at cleanup.
func startServe(t *testing.T, ns *netns, kernel4, kernel6 string, args ...string) *servedWisp {
	t.Helper()
	s := &servedWisp{out: newSyncBuffer(), exited: make(chan error, 1)}
	s.cmd = ns.cmd(append([]string{buildWisp(t), "serve", "--tun", "wisp1"}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.exited
	})
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
		case err := <-s.exited:
			s.exited <- err
			t.Logf("=== wisp process: exited (%v) ===\n%s", err, s.out.String())
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
	case err := <-s.exited:
		s.exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("wisp serve exited with %v:\n%s", err, s.out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("wisp serve did not stop on SIGTERM:\n%s", s.out.String())
	}
}

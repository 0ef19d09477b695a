package integration

import (
	"bytes"
	"os/exec"
	"sync/atomic"
	"testing"

	"github.com/wispstack/wisp/internal/netnstest"
)

// requireRoot skips the test unless it runs as root (fails under CI).
func requireRoot(t *testing.T) { t.Helper(); netnstest.RequireRoot(t) }

// requireTool skips (or, in CI, fails) when a program is not installed.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	return netnstest.RequireTool(t, name)
}

// nsSeq numbers the kernel objects (veths, devices) tests name on their own.
var nsSeq atomic.Int32

// netns is a network namespace owned by one test (netnstest.NS under the names this
// package's tests use).
type netns struct {
	*netnstest.NS
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
	ns := netnstest.New(t, prefix)
	return &netns{NS: ns, name: ns.Name}
}

// run runs a command inside the namespace and fails the test if it fails.
func (ns *netns) run(t *testing.T, args ...string) string {
	t.Helper()
	return ns.Run(t, args...)
}

func (ns *netns) cmd(args ...string) *exec.Cmd { return ns.Cmd(args...) }

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

// do runs fn on an OS thread that has entered the namespace (netnstest.NS.Do).
func (ns *netns) do(t *testing.T, fn func()) {
	t.Helper()
	ns.Do(t, fn)
}

// waitLink waits until a link exists in the namespace.
func (ns *netns) waitLink(t *testing.T, name string) {
	t.Helper()
	ns.WaitLink(t, name)
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

package gvisor_test

import (
	"testing"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"

	"github.com/wispstack/wisp/adapter/gvisor"
	"github.com/wispstack/wisp/stack/stacktest"
)

// TestLinkCloseUnattached: gVisor's fdbased starts its packet processor goroutines in New
// and stops them only when detached after an attach; a Link closed before wisp ever
// attached must still leave no goroutine behind.
func TestLinkCloseUnattached(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	ep, err := fdbased.New(&fdbased.Options{FDs: []int{fds[0]}, MTU: 1500, ProcessorsPerChannel: 2})
	if err != nil {
		t.Fatal(err)
	}
	l, err := gvisor.NewLink(ep, gvisor.LinkConfig{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

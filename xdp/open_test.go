package xdp

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestOpenUnprivileged: without root, Open fails with a clear error naming the interface
// (on Linux: no permission for BPF or AF_XDP; elsewhere: unsupported).
func TestOpenUnprivileged(t *testing.T) {
	if runtime.GOOS == "linux" && os.Geteuid() == 0 {
		t.Skip("runs without root only")
	}
	_, err := Open(Config{Interface: "lo"})
	if err == nil || !strings.Contains(err.Error(), "lo") {
		t.Fatalf("Open: %v", err)
	}
	if runtime.GOOS != "linux" && !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Open off Linux: %v", err)
	}
	t.Log(err)
}

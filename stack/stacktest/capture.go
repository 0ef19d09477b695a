package stacktest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pcap"
)

// CaptureTo wraps l so that every frame it sends and receives is written, truncated to
// snaplen bytes, to <dir>/<test name>.pcap, when dir is not empty (a debugging aid that a
// test switches on with an environment variable); with dir empty it returns l. The file
// closes when the test ends.
func CaptureTo(t testing.TB, l link.Endpoint, dir string, snaplen int, opts ...pcap.Option) link.Endpoint {
	t.Helper()
	if dir == "" {
		return l
	}
	f, err := os.Create(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".pcap"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	w, err := pcap.Wrap(l, f, snaplen, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

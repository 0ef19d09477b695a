package wisp_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/wispstack/wisp"

// layerOf returns the layer of a package path inside the module, as STYLE.md orders them.
func layerOf(pkg string) (int, bool) {
	top, _, _ := strings.Cut(pkg, "/")
	switch top {
	case "":
		return 13, true // the module root: docs and this test
	case "opt", "stats", "clock", "errs", "ring":
		return 0, true
	case "wire":
		return 1, true
	case "memp":
		return 2, true
	case "pbuf":
		return 3, true
	case "link":
		return 4, true
	case "ip":
		return 5, true
	case "transport":
		return 6, true
	case "apps": // lwIP's core apps (DHCP, DNS, SNTP, the doctor's rules): the stack starts them
		return 7, true
	case "stack":
		return 8, true
	case "endpoint":
		return 9, true
	case "internal", "forwarder", "metrics": // helpers for adapters, tools and tests; TUN-proxy interception; the stats server
		return 10, true
	case "adapter", "xdp":
		return 11, true
	case "bench", "integration", "cmd":
		return 12, true
	}
	return 0, false
}

// exclusive third-party modules: only the named package tree may import them.
var exclusive = map[string]string{
	"gvisor.dev/gvisor":          "adapter/gvisor",
	"golang.zx2c4.com/wireguard": "adapter/wireguard",
	"github.com/cilium/ebpf":     "xdp",
	"github.com/prometheus":      "metrics",
}

// Modules the engine (layers up to endpoint) may import besides the standard library.
var engineAllowed = []string{"golang.org/x/sys/"}

func TestImportDirection(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil // tests may import anything
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if dir == "." {
			dir = ""
		}
		from, ok := layerOf(dir)
		if !ok {
			t.Errorf("%s: package %q is in no layer; add it to STYLE.md's order and to layerOf", path, dir)
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			ip, _ := strconv.Unquote(imp.Path.Value)
			checkImport(t.Errorf, path, dir, from, ip)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("checked only %d files: is the walk broken?", checked)
	}
}

func checkImport(errorf func(string, ...any), file, dir string, from int, imp string) {
	for mod, owner := range exclusive {
		if imp == mod || strings.HasPrefix(imp, mod+"/") {
			// bench compares wisp with the real gVisor and wireguard-go: it may import both.
			// The wisp command runs wisp inside wireguard-go (wisp wg, wisp demo): it may
			// import wireguard-go's device and binds, never gVisor or cilium/ebpf.
			wgApp := mod == "golang.zx2c4.com/wireguard" && dir == "cmd/wisp"
			if dir != owner && !strings.HasPrefix(dir, owner+"/") && !isBench(dir) && !wgApp {
				errorf("%s imports %s: only %s may", file, imp, owner)
			}
			return
		}
	}
	if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
		to, known := layerOf(rel)
		if !known {
			errorf("%s imports %s, which is in no layer", file, imp)
			return
		}
		topFrom, _, _ := strings.Cut(dir, "/")
		topTo, _, _ := strings.Cut(rel, "/")
		switch {
		case to < from:
		case to == from && topFrom == topTo: // within one tree, e.g. link/pipe → link
		default:
			errorf("%s (layer %d) imports %s (layer %d): a layer imports only the layers before it", file, from, imp, to)
		}
		if strings.HasPrefix(dir, "xdp") && to >= 5 {
			errorf("%s imports %s: xdp may use link, pbuf and memp, never ip/transport/stack", file, imp)
		}
		return
	}
	if !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
		return // standard library
	}
	if from <= 9 || dir == "forwarder" || strings.HasPrefix(dir, "forwarder/") {
		for _, ok := range engineAllowed {
			if strings.HasPrefix(imp, ok) {
				return
			}
		}
		errorf("%s imports %s: the engine (up to endpoint, and forwarder) uses only the standard library and %v", file, imp, engineAllowed)
	}
}

// The checker itself must catch violations.
func isBench(dir string) bool { return dir == "bench" || strings.HasPrefix(dir, "bench/") }

func TestImportDirectionCatches(t *testing.T) {
	cases := []struct {
		dir, imp string
		bad      bool
	}{
		{"ip", module + "/link", false},
		{"link/pipe", module + "/link", false},
		{"link", module + "/ip", true},
		{"pbuf", module + "/stack", true},
		{"ip", "gvisor.dev/gvisor/pkg/tcpip", true},
		{"adapter/gvisor", "gvisor.dev/gvisor/pkg/tcpip", false},
		{"adapter/wireguard", "gvisor.dev/gvisor/pkg/tcpip", true},
		{"bench", "gvisor.dev/gvisor/pkg/tcpip/stack", false},
		{"bench/engines", "golang.zx2c4.com/wireguard/tun/netstack", false},
		{"integration", "gvisor.dev/gvisor/pkg/tcpip", true},
		{"cmd/wisp", "golang.zx2c4.com/wireguard/device", false},
		{"cmd/wisp", "gvisor.dev/gvisor/pkg/tcpip", true},
		{"internal/wgconf", "golang.zx2c4.com/wireguard/device", true},
		{"xdp", module + "/stack", true},
		{"xdp", "github.com/cilium/ebpf", false},
		{"stack", "github.com/cilium/ebpf", true},
		{"link/tun", "golang.org/x/sys/unix", false},
		{"wire", "github.com/gopacket/gopacket", true},
		{"wire", module + "/memp", true},
		{"memp", module + "/wire", false},
	}
	for _, c := range cases {
		flagged := false
		from, _ := layerOf(c.dir)
		checkImport(func(string, ...any) { flagged = true }, "x.go", c.dir, from, c.imp)
		if flagged != c.bad {
			t.Errorf("%s importing %s: flagged=%v, want %v", c.dir, c.imp, flagged, c.bad)
		}
	}
}

package wireguard

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/tun/netstack"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"

	"github.com/wispstack/wisp/endpoint"
)

// mapped maps netstack's (and gonet's) types to wisp's.
var mapped = map[reflect.Type]reflect.Type{
	reflect.TypeFor[*netstack.Net]():      reflect.TypeFor[*Net](),
	reflect.TypeFor[*netstack.PingConn](): reflect.TypeFor[*PingConn](),
	reflect.TypeFor[*netstack.PingAddr](): reflect.TypeFor[*PingAddr](),
	reflect.TypeFor[netstack.PingAddr]():  reflect.TypeFor[PingAddr](),
	reflect.TypeFor[*gonet.TCPConn]():     reflect.TypeFor[*endpoint.TCPConn](),
	reflect.TypeFor[*gonet.TCPListener](): reflect.TypeFor[*endpoint.TCPListener](),
	reflect.TypeFor[*gonet.UDPConn]():     reflect.TypeFor[*endpoint.UDPConn](),
}

func mapType(t reflect.Type) reflect.Type {
	if m, ok := mapped[t]; ok {
		return m
	}
	return t
}

// sameSignature compares a netstack function type with wisp's (receivers dropped),
// mapping netstack's types to wisp's.
func sameSignature(theirs, ours reflect.Type) bool {
	if theirs.NumIn() != ours.NumIn() || theirs.NumOut() != ours.NumOut() || theirs.IsVariadic() != ours.IsVariadic() {
		return false
	}
	for i := range theirs.NumIn() {
		if mapType(theirs.In(i)) != ours.In(i) {
			return false
		}
	}
	for i := range theirs.NumOut() {
		if mapType(theirs.Out(i)) != ours.Out(i) {
			return false
		}
	}
	return true
}

// methodsMissing lists the methods of theirs that ours lacks or has with another signature.
func methodsMissing(theirs, ours reflect.Type) []string {
	var out []string
	for i := range theirs.NumMethod() {
		m := theirs.Method(i)
		om, ok := ours.MethodByName(m.Name)
		if !ok {
			out = append(out, m.Name+" (missing)")
			continue
		}
		// Method types from a reflect.Type include the receiver; drop it.
		if !sameSignature(dropRecv(m.Type), dropRecv(om.Type)) {
			out = append(out, m.Name+": netstack "+m.Type.String()+", wisp "+om.Type.String())
		}
	}
	return out
}

func dropRecv(t reflect.Type) reflect.Type {
	in := make([]reflect.Type, 0, t.NumIn()-1)
	for i := 1; i < t.NumIn(); i++ {
		in = append(in, t.In(i))
	}
	out := make([]reflect.Type, 0, t.NumOut())
	for i := range t.NumOut() {
		out = append(out, t.Out(i))
	}
	return reflect.FuncOf(in, out, t.IsVariadic())
}

// netstackFuncs returns the names of the exported functions and types netstack's source
// declares, so that a function added upstream fails this test until wisp has it.
func netstackFuncs(t *testing.T) (funcs, types []string) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "golang.zx2c4.com/wireguard/tun/netstack").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					funcs = append(funcs, d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.IsExported() {
						types = append(types, ts.Name.Name)
					}
				}
			}
		}
	}
	return funcs, types
}

// TestDropInAPI checks, by reflection against the real netstack package, that a program
// written for netstack compiles against this package with only its import line changed.
func TestDropInAPI(t *testing.T) {
	theirs := map[string]any{
		"CreateNetTUN":     netstack.CreateNetTUN,
		"PingAddrFromAddr": netstack.PingAddrFromAddr,
	}
	ours := map[string]any{
		"CreateNetTUN":     CreateNetTUN,
		"PingAddrFromAddr": PingAddrFromAddr,
	}
	funcs, types := netstackFuncs(t)
	for _, name := range funcs {
		th, ok := theirs[name]
		if !ok {
			t.Errorf("netstack has a function %s this test does not know", name)
			continue
		}
		if !sameSignature(reflect.TypeOf(th), reflect.TypeOf(ours[name])) {
			t.Errorf("%s: netstack %T, wisp %T", name, th, ours[name])
		}
	}
	knownTypes := map[string]bool{"Net": true, "PingConn": true, "PingAddr": true}
	for _, name := range types {
		if !knownTypes[name] {
			t.Errorf("netstack has a type %s this test does not know", name)
		}
	}
	if len(funcs) < 2 || reflect.TypeFor[*netstack.Net]().NumMethod() < 18 {
		t.Fatalf("found %d functions and %d Net methods in netstack: is the parse broken?",
			len(funcs), reflect.TypeFor[*netstack.Net]().NumMethod())
	}
	checked := 0
	for th, ou := range mapped {
		checked += th.NumMethod()
		if missing := methodsMissing(th, ou); len(missing) > 0 {
			t.Errorf("%v lacks methods of %v:\n\t%s", ou, th, strings.Join(missing, "\n\t"))
		}
	}
	t.Logf("%d functions, %d types and %d methods checked", len(funcs), len(types), checked)
}

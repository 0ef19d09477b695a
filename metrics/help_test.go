package metrics

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"sort"
	"strings"
	"testing"
)

// The help strings are the field comments of package stats: a field added there, or a
// comment changed, fails here with the lines to paste into help.go.
func TestHelpMatchesStats(t *testing.T) {
	fset := token.NewFileSet()
	want := map[string]string{}
	records := map[string]bool{"Proto": true, "TCPExt": true, "Offload": true, "Queue": true, "DNS": true}
	files, err := os.ReadDir("../stats")
	if err != nil {
		t.Skip("stats sources not here:", err)
	}
	for _, fi := range files {
		if !strings.HasSuffix(fi.Name(), ".go") || strings.HasSuffix(fi.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, "../stats/"+fi.Name(), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || !records[ts.Name.Name] {
				return true
			}
			for _, fl := range ts.Type.(*ast.StructType).Fields.List {
				c := fl.Comment
				if c == nil {
					c = fl.Doc
				}
				text := ""
				if c != nil {
					text = strings.Join(strings.Fields(c.Text()), " ")
				}
				for _, nm := range fl.Names {
					want[ts.Name.Name+"."+nm.Name] = text
				}
			}
			return false
		})
	}
	var bad []string
	for k, w := range want {
		if got := help[k]; got == "" || (w != "" && got != w) {
			bad = append(bad, fmt.Sprintf("\t%q: %q,", k, w))
		}
	}
	for k := range help {
		if _, ok := want[k]; !ok {
			bad = append(bad, fmt.Sprintf("\t%q: (no such field)", k))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("help.go is out of step with package stats (an empty comment there needs a text here):\n%s", strings.Join(bad, "\n"))
	}
}

package xdp

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden listings in testdata")

// TestProgramListing compares the programs' listings with the golden files, so a change to
// the instructions is seen in review (go test -run Listing -update rewrites them).
func TestProgramListing(t *testing.T) {
	for name, listing := range map[string]string{
		"redirect.golden": RedirectProgram().String(),
		"drop.golden":     DropProgram().String(),
	} {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, []byte(listing), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if string(want) != listing {
			t.Errorf("%s differs from the program (run with -update if the change is meant):\n%s", name, listing)
		}
	}
}

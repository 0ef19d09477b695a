package conformance

import (
	"os"
	"strings"

	"github.com/wispstack/wisp/transport/tcp"
)

// Every conformance test runs with TCP's invariant checker (transport/tcp/invariant.go):
// after each segment and timer run, the connection touched must be consistent; a violation
// panics with the rule broken and the connection's state. WISP_INVARIANTS=log prints the
// first violation of each rule instead and goes on (go test -v), to survey them all.
func init() {
	if os.Getenv("WISP_INVARIANTS") == "log" {
		seen := map[string]bool{}
		tcp.SetInvariantCheck(func(msg string) {
			rule, _, _ := strings.Cut(msg, "\n")
			if !seen[rule] {
				seen[rule] = true
				println(msg)
			}
		})
		return
	}
	tcp.SetInvariantCheck(func(msg string) { panic(msg) })
}

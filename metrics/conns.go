package metrics

import "github.com/wispstack/wisp/stack"

// connKey is one row of the connection summary.
type connKey struct{ proto, state string }

// connCounts counts the stack's PCBs (stack.Conns) by protocol and state.
func connCounts(s *stack.Stack) map[connKey]int {
	m := map[connKey]int{}
	for _, c := range s.Conns() {
		m[connKey{c.Proto, c.State}]++
	}
	return m
}

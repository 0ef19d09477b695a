package stacktest

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// Side is one participant of a test that moves data; OnFail prints what it holds.
type Side struct {
	// Name labels the side in the evidence: "client", "wisp", "gVisor", "kernel".
	Name string
	// Stack, when set, is a wisp stack: every TCP connection (Stack.TCPConns) and every
	// counter (stats.Snapshot) print.
	Stack *stack.Stack
	// Links are the side's links whose counters print: any value with a Stats, Queued or
	// Held method (pipe.End, impair.Link, tun.Device, the adapters' links); a link's Inner
	// link prints after it.
	Links []any
	// More prints anything else the side holds: a peer stack's endpoints, a kernel's
	// `ss -tin`. It runs after the stack's dump.
	More func(w io.Writer)
}

// Evidence is what OnFail registered; see Later.
type Evidence struct {
	mu    sync.Mutex
	later []func()
}

// evidenceWait is how long a dump waits for a stack's core lock before it reports the lock
// held (a deadlock is a stall too) and prints every goroutine instead.
var evidenceWait = 10 * time.Second

// OnFail registers, with t.Cleanup, the evidence of a test that moves data: if the test
// has failed by the time it ends, every side's TCP connections (state, SND.UNA/NXT,
// RCV.NXT, windows, cwnd, RTO, armed timers, queued and unread bytes, retransmissions),
// counters and links are logged, labelled by side. A transfer that stalls must therefore
// hit a deadline (SetDeadline, a context) and fail the test, rather than wait for the
// suite's timeout, which prints nothing of the kind.
//
// Cleanups run last registered first, and a test's deferred calls before any of them:
// connections closed with defer are gone (or reset) by the time the evidence prints. Close
// them with Later instead, which runs after the evidence. Register OnFail after
// Closed(t, s), so that it runs while the stacks are still open.
func OnFail(t testing.TB, sides ...Side) *Evidence {
	t.Helper()
	e := &Evidence{}
	t.Cleanup(func() {
		if t.Failed() {
			var b bytes.Buffer
			WriteEvidence(&b, sides...)
			t.Logf("evidence at failure:\n%s", b.Bytes())
		}
		e.mu.Lock()
		later := e.later
		e.later = nil
		e.mu.Unlock()
		for i := len(later) - 1; i >= 0; i-- {
			later[i]()
		}
	})
	return e
}

// Later runs fn when the test ends, after the evidence (last registered first): the place
// to close a test's connections so that a failure shows them as they stood. Safe for
// concurrent use.
func (e *Evidence) Later(fn func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.later = append(e.later, fn)
}

// Close is Later(c.Close), ignoring the error.
func (e *Evidence) Close(c io.Closer) { e.Later(func() { _ = c.Close() }) }

// WriteEvidence writes what every side holds now, each under a "=== side <name> ===" line.
// A wisp stack whose core lock stays held for 10 s is reported as such, with every
// goroutine's stack; a More that does not return within 10 s is reported and left behind.
func WriteEvidence(w io.Writer, sides ...Side) {
	for _, sd := range sides {
		fmt.Fprintf(w, "=== side %s ===\n", sd.Name)
		if sd.Stack != nil {
			writeStack(w, sd.Stack)
		}
		for _, l := range sd.Links {
			writeLink(w, l, 0)
		}
		if sd.More != nil {
			writeMore(w, sd.More)
		}
	}
}

// writeMore runs more, unless it does not return within evidenceWait (a peer stack
// deadlocked holds its locks too).
func writeMore(w io.Writer, more func(io.Writer)) {
	ch := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		defer func() {
			if r := recover(); r != nil {
				fmt.Fprintf(&b, "(the side's own dump panicked: %v)\n", r)
			}
			ch <- b.Bytes()
		}()
		more(&b)
	}()
	select {
	case b := <-ch:
		w.Write(b)
	case <-time.After(evidenceWait):
		fmt.Fprintf(w, "(the side's own dump did not return within %v)\n", evidenceWait)
	}
}

// writeStack prints s's connections and counters, unless its core lock stays held.
func writeStack(w io.Writer, s *stack.Stack) {
	type dump struct {
		conns []tcp.Info
		stats string
	}
	ch := make(chan dump, 1)
	go func() {
		var d dump
		d.conns = s.TCPConns(nil)
		st := s.Stats()
		d.stats = st.String()
		ch <- d
	}()
	select {
	case d := <-ch:
		fmt.Fprintf(w, "wisp TCP connections: %d\n", len(d.conns))
		for _, c := range d.conns {
			fmt.Fprintf(w, "  %v\n", c)
		}
		fmt.Fprintf(w, "wisp counters:\n%s", d.stats)
	case <-time.After(evidenceWait):
		fmt.Fprintf(w, "wisp core lock still held after %v (a deadlock?); every goroutine:\n", evidenceWait)
		pprof.Lookup("goroutine").WriteTo(w, 1)
	}
}

// counterMethods are the methods of a link whose results print, in this order.
var counterMethods = []string{"Stats", "OffloadStats", "Queued", "Held"}

// writeLink prints l's counters by reflection (the links have no common counter type),
// then those of its Inner link.
func writeLink(w io.Writer, l any, depth int) {
	if l == nil || depth > 4 {
		return
	}
	v := reflect.ValueOf(l)
	fmt.Fprintf(w, "link %T:", l)
	for _, name := range counterMethods {
		m := v.MethodByName(name)
		if !m.IsValid() || m.Type().NumIn() != 0 || m.Type().NumOut() == 0 {
			continue
		}
		fmt.Fprintf(w, " %s", name)
		for i, r := range m.Call(nil) {
			sep := " "
			if i == 0 {
				sep = "="
			}
			fmt.Fprintf(w, "%s%+v", sep, r.Interface())
		}
		fmt.Fprint(w, ";")
	}
	fmt.Fprintln(w)
	if m := v.MethodByName("Inner"); m.IsValid() && m.Type().NumIn() == 0 && m.Type().NumOut() == 1 {
		writeLink(w, m.Call(nil)[0].Interface(), depth+1)
	}
}

// WaitErr returns what a blocked call sends on errc once something (a Close, a deadline)
// released it, and fails the test if nothing does within d: a call that should return and
// does not is a stall too, and the test's evidence then shows why.
func WaitErr(t testing.TB, errc <-chan error, d time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(d):
		t.Fatalf("%s: still blocked after %v", what, d)
		return nil
	}
}

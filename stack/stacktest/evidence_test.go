package stacktest

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// fakeTB is the testing.TB of a test run inside a test: it records failures, logs and
// cleanups; end runs the cleanups as the testing package would. OnFail uses nothing else
// (the nil embedded TB makes any other call panic).
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	failed   bool
	log      strings.Builder
	cleanups []func()
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *fakeTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
	f.Logf(format, args...)
}

func (f *fakeTB) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fmt.Fprintf(&f.log, format+"\n", args...)
}

func (f *fakeTB) end() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// stalledPair is a sender and a receiver whose application never consumes what arrives:
// once the receive window is full the transfer stalls, as a transfer with a lost wakeup
// would.
type stalledPair struct {
	a, b     *stack.Stack
	pa, pb   *pipe.End
	lsn      *tcp.Listener
	held     []*pbuf.Pbuf // core context of b
	accepted *tcp.PCB
}

var (
	senderAddr   = netip.MustParsePrefix("198.18.0.1/24")
	receiverAddr = netip.MustParsePrefix("198.18.0.2/24")
)

func newStalledPair(t *testing.T) *stalledPair {
	t.Helper()
	NoGoroutineLeak(t)
	o := opt.Tunnel()
	o.TCPWnd, o.TCPMaxWnd = 64<<10, 64<<10
	p := &stalledPair{}
	p.pa, p.pb = pipe.New(pipe.Config{MTU: 1500, Medium: link.MediumIP})
	var err error
	if p.a, err = stack.New(stack.Config{Options: o, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	Closed(t, p.a)
	if p.b, err = stack.New(stack.Config{Options: o, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	Closed(t, p.b)
	if _, err := p.a.AddNetif(p.pa, stack.NetifConfig{Addrs: []netip.Prefix{senderAddr}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.b.AddNetif(p.pb, stack.NetifConfig{Addrs: []netip.Prefix{receiverAddr}}); err != nil {
		t.Fatal(err)
	}
	p.b.Callback(func() {
		c, _ := p.b.TCP().NewPCB()
		if err = c.Bind(netip.AddrPortFrom(receiverAddr.Addr(), 80)); err != nil {
			return
		}
		if p.lsn, err = c.Listen(1); err != nil {
			return
		}
		p.lsn.OnAccept(func(_ *tcp.Listener, c *tcp.PCB) {
			p.accepted = c
			c.OnRecv(func(_ *tcp.PCB, q *pbuf.Pbuf) {
				if q != nil {
					p.held = append(p.held, q)
				}
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// release frees what the receiver holds and resets its connection.
func (p *stalledPair) release() {
	p.b.Callback(func() {
		for _, q := range p.held {
			q.Free()
		}
		p.held = nil
		if p.accepted != nil {
			p.accepted.Abort()
		}
		_ = p.lsn.Close()
	})
}

// A transfer that stalls hits its deadline, fails the (inner) test, and the evidence shows
// the stalled connection from both sides, labelled, with both stacks' counters and links;
// the connections close only after the evidence (Later).
func TestOnFailShowsAStalledTransfer(t *testing.T) {
	p := newStalledPair(t)
	inner := &fakeTB{}
	ev := OnFail(inner,
		Side{Name: "sender", Stack: p.a, Links: []any{p.pa}},
		Side{Name: "receiver", Stack: p.b, Links: []any{p.pb}, More: func(w io.Writer) { fmt.Fprintln(w, "receiver extra") }})

	// The inner test: 8 MiB into a receiver that reads nothing, with a deadline.
	dst := netip.AddrPortFrom(receiverAddr.Addr(), 80)
	tr := tcpapp.Send(p.a, dst, 8<<20, 1) // more than the send buffer: no FIN yet
	var order []string
	ev.Later(func() { order = append(order, "abort"); tr.Abort() })
	ev.Later(func() { order = append(order, "release"); p.release() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, _, err := tr.Wait(ctx); err != nil {
		inner.Errorf("transfer: %v", err)
	}
	if !inner.Failed() {
		t.Fatal("8 MiB crossed a 64 KiB window that was never reopened: the transfer did not stall")
	}
	conns := p.a.TCPConns(nil)
	if len(conns) != 1 {
		t.Fatalf("the sender holds %d connections: %v", len(conns), conns)
	}
	src := conns[0].Local
	inner.end()
	if strings.Join(order, ",") != "release,abort" {
		t.Errorf("Later ran %v, want release then abort", order)
	}

	log := inner.log.String()
	senderAt := strings.Index(log, "=== side sender ===")
	receiverAt := strings.Index(log, "=== side receiver ===")
	if senderAt < 0 || receiverAt < senderAt {
		t.Fatalf("the evidence does not label the sender then the receiver:\n%s", log)
	}
	sender, receiver := log[senderAt:receiverAt], log[receiverAt:]
	for _, c := range []struct {
		who, text, want string
	}{
		{"sender", sender, fmt.Sprintf("ESTABLISHED %v->%v snd.una=", src, dst)},
		{"receiver", receiver, fmt.Sprintf("ESTABLISHED %v->%v snd.una=", dst, src)},
		{"sender", sender, "wisp TCP connections: 1\n"},
		{"sender", sender, "timers=["},
		{"receiver", receiver, "unread="},
		{"sender", sender, "wisp counters:\n"},
		{"receiver", receiver, "\nTCP "},
		{"sender", sender, "link *pipe.End: Stats="},
		{"receiver", receiver, "receiver extra\n"},
	} {
		if !strings.Contains(c.text, c.want) {
			t.Errorf("the %s's evidence lacks %q:\n%s", c.who, c.want, c.text)
		}
	}
	// The receiver's line shows what it holds: nothing consumed, the window closed.
	for _, l := range strings.Split(receiver, "\n") {
		if strings.Contains(l, "ESTABLISHED") && (strings.Contains(l, " unread=0 ") || !strings.Contains(l, " rcv.wnd=0 ")) {
			t.Errorf("the receiver's line does not show the stall: %s", l)
		}
	}
	if t.Failed() {
		t.Logf("the evidence:\n%s", log)
	}
}

// A test that passes prints nothing, and still runs what Later registered.
func TestOnFailQuietOnSuccess(t *testing.T) {
	p := newStalledPair(t)
	inner := &fakeTB{}
	ran := false
	OnFail(inner, Side{Name: "sender", Stack: p.a}).Later(func() { ran = true })
	inner.end()
	p.release()
	if s := inner.log.String(); s != "" {
		t.Errorf("a passing test logged evidence:\n%s", s)
	}
	if !ran {
		t.Error("Later did not run")
	}
}

// A stack whose core lock stays held (a deadlock) is reported as such instead of hanging
// the evidence.
func TestWriteEvidenceHeldLock(t *testing.T) {
	p := newStalledPair(t)
	defer p.release()
	old := evidenceWait
	evidenceWait = 100 * time.Millisecond
	defer func() { evidenceWait = old }()
	var b strings.Builder
	p.a.Lock()
	WriteEvidence(&b, Side{Name: "stuck", Stack: p.a})
	p.a.Unlock()
	if s := b.String(); !strings.Contains(s, "=== side stuck ===") || !strings.Contains(s, "core lock still held after 100ms") ||
		!strings.Contains(s, "goroutine profile:") {
		t.Errorf("a held core lock is not reported:\n%.2000s", s)
	}
}

package gvisor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/impair"
	"github.com/wispstack/wisp/stack/stacktest"
)

// gvProbe keeps the last state gVisor's TCP probe reported for each connection: gVisor
// exports its sequence numbers and windows only through the probe, which it calls on every
// segment an endpoint receives. The probe runs with the endpoint locked; it only copies.
type gvProbe struct {
	mu   sync.Mutex
	last map[tcp.TCPEndpointID]gvConnState
}

// gvConnState is what the evidence prints of a tcp.TCPEndpointState (which must not be
// copied whole).
type gvConnState struct {
	at                     tcpip.MonotonicTime
	snd                    tcp.TCPSenderState
	rcv                    tcp.TCPReceiverState
	sndBufUsed, sndBufSize int
	rcvBufUsed             int
}

func newGVProbe() *gvProbe { return &gvProbe{last: map[tcp.TCPEndpointID]gvConnState{}} }

func (p *gvProbe) record(s *tcp.TCPEndpointState) {
	c := gvConnState{at: s.SegTime, snd: s.Sender, rcv: s.Receiver, sndBufUsed: s.SndBufState.SndBufUsed,
		sndBufSize: s.SndBufState.SndBufSize, rcvBufUsed: s.RcvBufState.RcvBufUsed}
	p.mu.Lock()
	p.last[s.ID] = c
	p.mu.Unlock()
}

func (p *gvProbe) get(id tcp.TCPEndpointID) (gvConnState, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.last[id]
	return s, ok
}

// evidence registers the evidence of a transfer test over nt (stacktest.OnFail): wisp's
// connections, counters and links; gVisor's endpoints, counters and link. Close the test's
// gVisor connections with the returned Evidence's Later or Close, so that a failure shows
// them as they stood.
func (nt *testNet) evidence(t *testing.T) *stacktest.Evidence {
	t.Helper()
	return stacktest.OnFail(t, nt.sides()...)
}

// sides are the two sides of nt, as the evidence prints them.
func (nt *testNet) sides() []stacktest.Side {
	var gvLinks []any
	if nt.gep != nil {
		gvLinks = append(gvLinks, nt.gep)
	}
	return []stacktest.Side{
		{Name: "wisp", Stack: nt.ws, Links: []any{nt.wlink}},
		{Name: "gVisor", Links: gvLinks, More: nt.writeGVisor},
	}
}

// The evidence of a stalled transfer shows the connection from both sides: gVisor's
// writer, whose send buffer is full and whose window is closed, and wisp's reader, which
// holds everything unread.
func TestEvidenceShowsBothSides(t *testing.T) {
	nt := newNet(t, netConfig{medium: link.MediumIP, impair: &impair.Config{}})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	wispAddr := netip.AddrPortFrom(wispV4.Addr(), 8080)
	hs := newHoldingSink(t, nt.ws, wispAddr)
	c, _, err := gvDial(ctx, nt.gs, wispAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer nt.ws.Callback(func() { hs.release = true; hs.drain() })
	err = writePattern(c, 64<<20, time.Now().Add(2*time.Second))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("gVisor wrote 64 MiB to a reader that reads nothing: %v", err)
	}
	var b strings.Builder
	stacktest.WriteEvidence(&b, nt.sides()...)
	ev := b.String()
	wispAt, gvAt := strings.Index(ev, "=== side wisp ==="), strings.Index(ev, "=== side gVisor ===")
	if wispAt < 0 || gvAt < wispAt {
		t.Fatalf("the evidence does not label wisp then gVisor:\n%s", ev)
	}
	gvAddr := netip.MustParseAddrPort(c.LocalAddr().String())
	for _, w := range []struct{ side, text, want string }{
		{"wisp", ev[wispAt:gvAt], fmt.Sprintf("ESTABLISHED %v->%v snd.una=", wispAddr, gvAddr)},
		{"wisp", ev[wispAt:gvAt], " rcv.wnd=0 "},
		{"wisp", ev[wispAt:gvAt], "link *impair.Link: Stats="},
		{"wisp", ev[wispAt:gvAt], "link *pipe.End: Stats="},
		{"gVisor", ev[gvAt:], fmt.Sprintf("ESTABLISHED %v->%v snd.una=", gvAddr, wispAddr)},
		{"gVisor", ev[gvAt:], " snd.wnd=0 "},
		{"gVisor", ev[gvAt:], "gVisor TCP counters: ["},
		{"gVisor", ev[gvAt:], "link *gvisor.Endpoint: Stats="},
	} {
		if !strings.Contains(w.text, w.want) {
			t.Errorf("%s's evidence lacks %q", w.side, w.want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("the evidence:\n%s", ev)
	}
}

// writeGVisor prints what gVisor exposes of its TCP: every registered endpoint's state,
// tcp_info (RTO, RTT, cwnd), queued bytes and counters, with the sequence numbers and
// windows of the last segment it received (the probe); then its TCP counters.
func (nt *testNet) writeGVisor(w io.Writer) {
	var eps []*tcp.Endpoint
	for _, ep := range nt.gs.RegisteredEndpoints() {
		if e, ok := ep.(*tcp.Endpoint); ok {
			eps = append(eps, e)
		}
	}
	fmt.Fprintf(w, "gVisor TCP endpoints: %d\n", len(eps))
	lines := make([]string, 0, len(eps))
	for _, e := range eps {
		lines = append(lines, nt.gvEndpoint(e))
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintf(w, "  %s\n", l)
	}
	st := nt.gs.Stats()
	fmt.Fprintf(w, "gVisor TCP counters: %s\n", nonZero(reflect.ValueOf(st.TCP)))
	fmt.Fprintf(w, "gVisor IP counters: %s\n", nonZero(reflect.ValueOf(st.IP)))
}

// gvEndpoint is one line for one endpoint, in the order of tcp.Info.String.
func (nt *testNet) gvEndpoint(e *tcp.Endpoint) string {
	id := e.Info().(*gstack.TransportEndpointInfo).ID
	la, _ := netip.AddrFromSlice(id.LocalAddress.AsSlice())
	ra, _ := netip.AddrFromSlice(id.RemoteAddress.AsSlice())
	local, remote := netip.AddrPortFrom(la, id.LocalPort), netip.AddrPortFrom(ra, id.RemotePort)
	var ti tcpip.TCPInfoOption
	e.GetSockOpt(&ti)
	unread, _ := e.GetSockOptInt(tcpip.ReceiveQueueSizeOption)
	s := fmt.Sprintf("%v %v->%v", e.EndpointState(), local, remote)
	if p, ok := nt.gprobe.get(tcp.TCPEndpointID(id)); ok {
		snd, rcv := p.snd, p.rcv
		s += fmt.Sprintf(" snd.una=%d snd.nxt=%d snd.wnd=%d outstanding=%d sacked=%d dupacks=%d recovery=%v sndbuf=%d/%d rcv.nxt=%d rcv.acc=%d rcvbuf=%d",
			snd.SndUna, snd.SndNxt, snd.SndWnd, snd.Outstanding, snd.SackedOut, snd.DupAckCount, snd.FastRecovery.Active,
			p.sndBufUsed, p.sndBufSize, rcv.RcvNxt, rcv.RcvAcc, p.rcvBufUsed)
		s += fmt.Sprintf(" (at the last segment received, %v ago)",
			nt.gs.Clock().NowMonotonic().Sub(p.at).Round(time.Millisecond))
	} else {
		s += " (no segment received: no probe state)"
	}
	s += fmt.Sprintf(" unread=%d cwnd=%d pkts ssthresh=%d rto=%v srtt=%v cc=%v", unread, ti.SndCwnd, ti.SndSsthresh, ti.RTO, ti.RTT, ti.CcState)
	if st, ok := e.Stats().(*tcp.Stats); ok {
		s += " counters " + nonZero(reflect.ValueOf(st))
	}
	return s
}

// nonZero lists the non-zero tcpip.StatCounter fields of a counters struct (nested ones
// named by path).
func nonZero(v reflect.Value) string {
	var out []string
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return
			}
			if c, ok := v.Interface().(*tcpip.StatCounter); ok {
				if n := c.Value(); n != 0 {
					out = append(out, fmt.Sprintf("%s=%d", prefix, n))
				}
				return
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return
		}
		if v.Type() == reflect.TypeFor[tcpip.StatCounter]() {
			if v.CanAddr() {
				walk(prefix, v.Addr())
			}
			return
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			name := f.Name
			if prefix != "" {
				name = prefix + "." + name
			}
			walk(name, v.Field(i))
		}
	}
	if !v.CanAddr() {
		c := reflect.New(v.Type()).Elem()
		c.Set(v)
		v = c
	}
	walk("", v)
	if len(out) == 0 {
		return "none"
	}
	return fmt.Sprint(out)
}

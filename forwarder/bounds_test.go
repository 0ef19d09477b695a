package forwarder_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/forwarder"
	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/wire"
)

// syn is an IP packet carrying a SYN src→dst.
func syn(src, dst netip.AddrPort, seq uint32) []byte {
	r := wire.TCPRepr{SrcPort: src.Port(), DstPort: dst.Port(), SeqNum: seq, Flags: wire.TCPFlagSYN, Window: 65535}
	b := make([]byte, r.HeaderLen())
	if err := r.Emit(b, src.Addr(), dst.Addr()); err != nil {
		panic(err)
	}
	return iptest.Packet(wire.ProtoTCP, src.Addr(), dst.Addr(), b)
}

// randomFar returns a random intercepted destination of the family of i.
func randomFar(rng *rand.Rand, i int) netip.AddrPort {
	if i%2 == 0 {
		return ap(netip.AddrFrom4([4]byte{198, 19, byte(rng.IntN(256)), byte(1 + rng.IntN(254))}), uint16(1+rng.IntN(65535)))
	}
	b := netip.MustParseAddr("fd42:5eed:0:99::").As16()
	for j := 8; j < 16; j++ {
		b[j] = byte(rng.IntN(256))
	}
	return ap(netip.AddrFrom16(b), uint16(1+rng.IntN(65535)))
}

// TestTCPSynFlood: a flood of SYNs to random addresses with a host that never decides.
// Deferred, MaxPending requests wait and every other SYN is answered with a RST at once
// and counted; when the handlers return undecided their SYNs are reset too, and no PCB is
// left. Early, from spoofed sources that never complete a handshake, the half-open
// connections are bounded by the listener's backlog and every SYN beyond gets a RST.
func TestTCPSynFlood(t *testing.T) {
	for _, deferred := range []bool{true, false} {
		t.Run(map[bool]string{true: "deferred", false: "early"}[deferred], func(t *testing.T) {
			const pending, flood = 16, 300
			hold := make(chan struct{})
			h := func(r *forwarder.TCPRequest) { <-hold }
			r := newRig(t, forwarder.Config{TCP: forwarder.TCPConfig{Handler: h, Deferred: deferred, MaxPending: pending}}, rigConfig{})
			rng := rand.New(rand.NewPCG(1, 2))
			spoofed := [2]netip.Addr{netip.MustParseAddr("198.18.0.77"), netip.MustParseAddr("fd42:5eed::77")}
			for i := range flood {
				src := ap(stacktest.AddrA[i%2], uint16(10000+i))
				if !deferred {
					src = ap(spoofed[i%2], uint16(10000+i))
				}
				stacktest.Inject(t, r.NetifB, syn(src, randomFar(rng, i), rng.Uint32()))
			}
			var st forwarder.Stats
			waitFor(t, 5*time.Second, "every SYN answered or pending", func() bool {
				st = r.f.Stats()
				ext := r.B.Stats().TCPExt
				return ext.InterceptSyn == flood && ext.ResetsSent >= flood-pending-16
			})
			ext := r.B.Stats().TCPExt
			if deferred {
				if st.TCPRequests != flood || st.TCPRefusedFull != flood-pending || ext.ResetsSent != flood-pending {
					t.Errorf("%d SYNs, %d pending:\n%v\nTCP %+v", flood, pending, st, ext)
				}
			} else if st.TCPRequests != 0 || ext.InterceptRefused != flood-pending-16 || ext.ResetsSent < flood-pending-16 {
				t.Errorf("%d SYNs, backlog %d:\n%v\nTCP %+v", flood, pending+16, st, ext)
			}
			close(hold)
			if deferred {
				waitFor(t, 5*time.Second, "every request decided", func() bool {
					s := r.f.Stats()
					return s.TCPRejected+s.TCPRefusedFull == s.TCPRequests
				})
				waitFor(t, 5*time.Second, "every PCB freed", func() bool {
					var n int
					r.B.Callback(func() { n, _ = r.B.TCP().NumPCBs() })
					return n == 0
				})
				if ext := r.B.Stats().TCPExt; ext.ResetsSent != flood {
					t.Errorf("%d RSTs for %d SYNs", ext.ResetsSent, flood)
				}
			}
		})
	}
}

// TestTCPMaxFlows: with MaxFlows live flows, the next SYN is refused with a RST
// (ECONNREFUSED, deferred) and counted; once one closes, a new flow is accepted.
func TestTCPMaxFlows(t *testing.T) {
	const flows = 4
	release := make(chan struct{})
	accepted := make(chan struct{}, flows+1)
	var wg sync.WaitGroup
	h := func(r *forwarder.TCPRequest) {
		c, err := r.Accept(context.Background())
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		wg.Add(1)
		accepted <- struct{}{}
		go func() {
			defer wg.Done()
			<-release
			c.Close()
		}()
	}
	r := newRig(t, forwarder.Config{TCP: forwarder.TCPConfig{Handler: h, Deferred: true, MaxFlows: flows}}, rigConfig{})
	var conns []net.Conn
	for i := range flows {
		c, err := r.cli.Dial("tcp", ap(far4, uint16(100+i)).String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitFor(t, 5*time.Second, "flows live", func() bool { return r.f.Stats().TCPActive == flows })
	if _, err := r.cli.Dial("tcp", ap(far6, 100).String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial beyond MaxFlows: %v, want ECONNREFUSED", err)
	}
	if st := r.f.Stats(); st.TCPRefusedFull != 1 {
		t.Errorf("stats:\n%v", st)
	}
	close(release)
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, 5*time.Second, "flows closed", func() bool { return r.f.Stats().TCPActive == 0 })
	c, err := r.cli.Dial("tcp", ap(far6, 100).String())
	if err != nil {
		t.Fatalf("dial after the flows closed: %v", err)
	}
	c.Close()
	for range flows + 1 {
		<-accepted
	}
	wg.Wait()
	waitFor(t, 5*time.Second, "flows closed", func() bool { return r.f.Stats().TCPActive == 0 })
}

// TestTCPDeferTimeout: a deferred request the host does not decide within DeferTimeout is
// refused with a RST (the client: ECONNREFUSED) and counted; a late Accept fails.
func TestTCPDeferTimeout(t *testing.T) {
	late := make(chan error, 1)
	h := func(r *forwarder.TCPRequest) {
		time.Sleep(300 * time.Millisecond)
		_, err := r.Accept(context.Background())
		late <- err
	}
	r := newRig(t, forwarder.Config{TCP: forwarder.TCPConfig{Handler: h, Deferred: true, DeferTimeout: 50 * time.Millisecond}}, rigConfig{})
	start := time.Now()
	_, err := r.cli.Dial("tcp", ap(far4, 80).String())
	if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > 250*time.Millisecond {
		t.Errorf("dial: %v after %v, want ECONNREFUSED after about 50ms", err, time.Since(start))
	}
	if err := <-late; !errors.Is(err, syscall.ETIMEDOUT) {
		t.Errorf("late Accept: %v, want ETIMEDOUT", err)
	}
	if st := r.f.Stats(); st.TCPDeferTimeouts != 1 {
		t.Errorf("stats:\n%v", st)
	}
}

// TestTCPSilentReject: a deferred request rejected without a RST leaves the client's SYN
// unanswered (its dial runs into its own timeout).
func TestTCPSilentReject(t *testing.T) {
	var wg sync.WaitGroup
	r := newRig(t, forwarder.Config{TCP: forwarder.TCPConfig{Handler: echoHandler(t, &wg), Deferred: true}}, rigConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := r.cli.DialContext(ctx, "tcp", ap(far4, 2).String())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial: %v, want the dial's own timeout", err)
	}
	if ext := r.B.Stats().TCPExt; ext.ResetsSent != 0 {
		t.Errorf("%d RSTs sent", ext.ResetsSent)
	}
}

// TestTCPCloseResetsPending: Close resets undecided requests (the client hears at once)
// and their Accept fails with net.ErrClosed.
func TestTCPCloseResetsPending(t *testing.T) {
	in := make(chan *forwarder.TCPRequest, 1)
	r := newRig(t, forwarder.Config{TCP: forwarder.TCPConfig{Handler: func(r *forwarder.TCPRequest) {
		in <- r
		time.Sleep(100 * time.Millisecond)
	}, Deferred: true}}, rigConfig{})
	errc := make(chan error, 1)
	go func() {
		_, err := r.cli.Dial("tcp", ap(far6, 8080).String())
		errc <- err
	}()
	req := <-in
	if err := r.f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := stacktest.WaitErr(t, errc, 2*time.Second, "dial"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial: %v, want ECONNREFUSED", err)
	}
	if _, err := req.Accept(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	if err := r.f.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// TestTCPConnOptions: accepted connections have keepalive 60/15/4 and NoDelay unless
// configured otherwise.
func TestTCPConnOptions(t *testing.T) {
	for _, c := range []struct {
		ka                 net.KeepAliveConfig
		on, idle, intvl, n int
	}{
		{net.KeepAliveConfig{}, 1, 60, 15, 4},
		{net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 15 * time.Second, Count: 9}, 1, 15, 15, 9},
		{net.KeepAliveConfig{Idle: -1}, 0, -1, -1, -1},
	} {
		got := make(chan [5]int, 1)
		h := func(r *forwarder.TCPRequest) {
			conn, err := r.Accept(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			var v [5]int
			for i, o := range [][2]int{{unix.SOL_SOCKET, unix.SO_KEEPALIVE}, {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
				{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}, {unix.IPPROTO_TCP, unix.TCP_KEEPCNT}, {unix.IPPROTO_TCP, unix.TCP_NODELAY}} {
				v[i], _ = conn.GetsockoptInt(o[0], o[1])
			}
			got <- v
		}
		r := newRig(t, forwarder.Config{TCP: forwarder.TCPConfig{Handler: h, KeepAlive: c.ka}}, rigConfig{})
		conn, err := r.cli.Dial("tcp", ap(far4, 80).String())
		if err != nil {
			t.Fatal(err)
		}
		v := <-got
		conn.Close()
		if v[0] != c.on || c.on == 1 && (v[1] != c.idle || v[2] != c.intvl || v[3] != c.n) || v[4] != 1 {
			t.Errorf("%+v: keepalive on/idle/intvl/cnt, nodelay = %v", c.ka, v)
		}
		_ = r.f.Close()
	}
	var _ *endpoint.TCPConn
}

// TestTCPDeferredAcceptContext: a deferred Accept whose client never completes the
// handshake (a spoofed SYN) ends with its context, and the half-open PCB is reset.
func TestTCPDeferredAcceptContext(t *testing.T) {
	errc := make(chan error, 1)
	h := func(r *forwarder.TCPRequest) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := r.Accept(ctx)
		errc <- err
	}
	r := newRig(t, forwarder.Config{TCP: forwarder.TCPConfig{Handler: h, Deferred: true}}, rigConfig{})
	stacktest.Inject(t, r.NetifB, syn(netip.MustParseAddrPort("198.18.0.77:4000"), ap(far4, 80), 1))
	err := stacktest.WaitErr(t, errc, 5*time.Second, "Accept")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Accept: %v, want the context's deadline", err)
	}
	waitFor(t, 5*time.Second, "the PCB freed", func() bool {
		var n int
		r.B.Callback(func() { n, _ = r.B.TCP().NumPCBs() })
		return n == 0
	})
	if st := r.f.Stats(); st.TCPAccepted != 1 || st.TCPActive != 0 {
		t.Errorf("stats:\n%v", st)
	}
}

func TestStatsString(t *testing.T) {
	s := forwarder.Stats{TCPRequests: 3, UDPExpired: 2, EchoDropped: 1}.String()
	for _, want := range []string{"forwarder:", "TCPRequests                   3", "UDPExpired                    2", "EchoDropped                   1"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
}

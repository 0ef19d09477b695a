package forwarder_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/forwarder"
)

// udpEcho answers every datagram of a session from the address it was sent to, prefixed
// "re:", until the session ends. Sessions go to ch when not nil.
func udpEcho(t testing.TB, wg *sync.WaitGroup, ch chan<- *forwarder.UDPSession) func(*forwarder.UDPSession) {
	return func(s *forwarder.UDPSession) {
		wg.Add(1)
		defer wg.Done()
		if ch != nil {
			ch <- s
		}
		buf := make([]byte, 70000)
		for {
			n, dst, err := s.ReadFromUDPAddrPort(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("session %v: %v", s.ID(), err)
				}
				return
			}
			if _, err := s.WriteToUDPAddrPort(append([]byte("re:"), buf[:n]...), dst); err != nil {
				if !errors.Is(err, net.ErrClosed) { // the forwarder closed meanwhile
					t.Errorf("session %v: reply: %v", s.ID(), err)
				}
				return
			}
		}
	}
}

// readFrom reads one datagram from c within 5 s.
func readFrom(t testing.TB, c *endpoint.UDPConn) (string, netip.AddrPort) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 70000)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	return string(buf[:n]), netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
}

// TestUDPNATModes: one client socket sends to three destinations; the sessions follow
// the NAT mode, and every reply comes from where the datagram went. Under full cone, a
// reply from an address the client never sent to reaches it too.
func TestUDPNATModes(t *testing.T) {
	for _, c := range []struct {
		mode     forwarder.NATMode
		sessions uint64
	}{{forwarder.EndpointIndependent, 1}, {forwarder.AddressDependent, 2}, {forwarder.AddressPortDependent, 3}} {
		t.Run(c.mode.String(), func(t *testing.T) {
			for _, fam := range []int{0, 1} {
				var wg sync.WaitGroup
				ch := make(chan *forwarder.UDPSession, 8)
				r := newRig(t, forwarder.Config{UDP: forwarder.UDPConfig{Handler: udpEcho(t, &wg, ch), NAT: c.mode}}, rigConfig{})
				cl, err := r.cli.ListenUDPAddrPort(ap(netip.Addr{}, 5000))
				if err != nil {
					t.Fatal(err)
				}
				far := fars[fam]
				dsts := []netip.AddrPort{ap(far, 53), ap(far, 54), ap(far.Next(), 53)}
				for i, dst := range dsts {
					msg := fmt.Sprintf("q%d", i)
					if _, err := cl.WriteToUDPAddrPort([]byte(msg), dst); err != nil {
						t.Fatal(err)
					}
					got, from := readFrom(t, cl)
					if got != "re:"+msg || from != dst {
						t.Errorf("%v: got %q from %v", dst, got, from)
					}
				}
				if st := r.f.Stats(); st.UDPSessions != c.sessions || st.UDPActive != c.sessions {
					t.Errorf("stats:\n%v", st)
				}
				if c.mode == forwarder.EndpointIndependent {
					s := <-ch
					other := ap(far.Next().Next(), 999)
					if _, err := s.WriteToUDPAddrPort([]byte("unsolicited"), other); err != nil {
						t.Fatal(err)
					}
					if got, from := readFrom(t, cl); got != "unsolicited" || from != other {
						t.Errorf("full cone: got %q from %v, want from %v", got, from, other)
					}
					if s.LocalAddr().String() != dsts[0].String() || s.ID().Src.Port() != 5000 {
						t.Errorf("session %v: LocalAddr %v", s.ID(), s.LocalAddr())
					}
				}
				cl.Close()
				_ = r.f.Close()
				wg.Wait()
				if st := r.f.Stats(); st.UDPActive != 0 {
					t.Errorf("after Close:\n%v", st)
				}
			}
		})
	}
}

// TestUDPFragments: a 4 KB datagram crosses an MTU of 1500 in fragments both ways.
func TestUDPFragments(t *testing.T) {
	var wg sync.WaitGroup
	r := newRig(t, forwarder.Config{UDP: forwarder.UDPConfig{Handler: udpEcho(t, &wg, nil)}}, rigConfig{mtu: 1500})
	for _, far := range fars {
		cl, err := r.cli.DialUDPAddrPort(netip.AddrPort{}, ap(far, 7))
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("0123456789abcdef"), 256)
		if _, err := cl.Write(data); err != nil {
			t.Fatal(err)
		}
		got, from := readFrom(t, cl)
		if got != "re:"+string(data) || from != ap(far, 7) {
			t.Errorf("%v: %d bytes back from %v", far, len(got), from)
		}
		cl.Close()
	}
	if a, b := r.A.Stats().IPFrag, r.B.Stats().IPFrag; a.Xmit == 0 || b.Xmit == 0 {
		t.Errorf("no fragments: A %+v B %+v", a, b)
	}
	_ = r.f.Close()
	wg.Wait()
}

// TestUDPRefusals: no handler, MaxSessions reached and Reject all reach a connected
// client socket as ECONNREFUSED (an ICMP port unreachable from the destination).
func TestUDPRefusals(t *testing.T) {
	refused := func(t *testing.T, r *rig, dst netip.AddrPort) {
		t.Helper()
		cl, err := r.cli.DialUDPAddrPort(netip.AddrPort{}, dst)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := cl.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		_ = cl.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := cl.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%v: read %v, want ECONNREFUSED", dst, err)
		}
	}
	t.Run("no handler", func(t *testing.T) {
		r := newRig(t, forwarder.Config{}, rigConfig{})
		for _, far := range fars {
			refused(t, r, ap(far, 53))
		}
	})
	t.Run("max sessions", func(t *testing.T) {
		var wg sync.WaitGroup
		r := newRig(t, forwarder.Config{UDP: forwarder.UDPConfig{Handler: udpEcho(t, &wg, nil), MaxSessions: 2}}, rigConfig{})
		for i := range 2 {
			cl, err := r.cli.DialUDPAddrPort(netip.AddrPort{}, ap(far4, uint16(100+i)))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if _, err := cl.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			readFrom(t, cl)
		}
		for _, far := range fars {
			refused(t, r, ap(far, 53))
		}
		if st := r.f.Stats(); st.UDPRefusedFull != 2 || st.UDPActive != 2 {
			t.Errorf("stats:\n%v", st)
		}
		_ = r.f.Close()
		wg.Wait()
	})
	t.Run("reject", func(t *testing.T) {
		r := newRig(t, forwarder.Config{UDP: forwarder.UDPConfig{Handler: func(s *forwarder.UDPSession) { s.Reject() }}}, rigConfig{})
		for _, far := range fars {
			refused(t, r, ap(far, 53))
		}
		waitFor(t, 5*time.Second, "sessions gone", func() bool { return r.f.Stats().UDPActive == 0 })
		if st := r.f.Stats(); st.UDPRejected != 2 {
			t.Errorf("stats:\n%v", st)
		}
	})
}

// TestUDPManyDestinations: datagrams to a thousand destinations under the symmetric mode
// open at most MaxSessions sessions; the rest are refused and counted, nothing leaks.
func TestUDPManyDestinations(t *testing.T) {
	var wg sync.WaitGroup
	r := newRig(t, forwarder.Config{UDP: forwarder.UDPConfig{Handler: udpEcho(t, &wg, nil), NAT: forwarder.AddressPortDependent, MaxSessions: 64}}, rigConfig{})
	cl, err := r.cli.ListenUDPAddrPort(ap(netip.Addr{}, 6000))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 1000
	for i := range n {
		dst := ap(netip.AddrFrom4([4]byte{198, 19, byte(i / 250), byte(1 + i%250)}), uint16(1000+i))
		for try := 0; ; try++ {
			_, err := cl.WriteToUDPAddrPort([]byte("x"), dst)
			if err == nil {
				break
			}
			if !errors.Is(err, syscall.ENOMEM) && !errors.Is(err, syscall.ENOBUFS) || try > 1000 {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond) // the pipe's queue is full: let it drain
		}
	}
	waitFor(t, 5*time.Second, "every datagram handled", func() bool {
		st := r.f.Stats()
		return st.UDPSessions+st.UDPRefusedFull == n
	})
	if st := r.f.Stats(); st.UDPSessions != 64 {
		t.Errorf("stats:\n%v", st)
	}
	_ = r.f.Close()
	wg.Wait()
}

package forwarder_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/wispstack/wisp/forwarder"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/udp"
)

// fakeRig is a rig on a fake clock whose UDP handler hands each session to the test.
func fakeRig(t *testing.T, c forwarder.UDPConfig) (*rig, chan *forwarder.UDPSession, *udp.PCB) {
	t.Helper()
	ch := make(chan *forwarder.UDPSession, 16)
	c.Handler = func(s *forwarder.UDPSession) { ch <- s }
	r := newRig(t, forwarder.Config{UDP: c}, rigConfig{fake: true})
	var pcb *udp.PCB
	var err error
	r.A.Callback(func() {
		if pcb, err = r.A.UDP().NewPCB(); err == nil {
			err = pcb.Bind(netip.MustParseAddrPort("[::]:7000"))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.A.Callback(pcb.Close) })
	return r, ch, pcb
}

// send sends data from the client PCB to dst and moves the frames.
func (r *rig) send(t testing.TB, pcb *udp.PCB, dst netip.AddrPort, data []byte) {
	t.Helper()
	var err error
	r.A.Callback(func() {
		var p *pbuf.Pbuf
		if p, err = r.A.Allocator().Alloc(pbuf.LayerTransport, len(data), pbuf.RAM); err == nil {
			_ = p.CopyIn(data, 0)
			err = pcb.SendTo(p, dst)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	r.flush()
}

func next(t testing.TB, ch chan *forwarder.UDPSession) *forwarder.UDPSession {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no session")
	}
	return nil
}

// TestUDPIdleExpiry: a session ends after IdleTimeout without traffic (traffic pushes the
// end back), on the stack's clock; SetIdleTimeout changes it per session.
func TestUDPIdleExpiry(t *testing.T) {
	r, ch, pcb := fakeRig(t, forwarder.UDPConfig{IdleTimeout: 30 * time.Second})
	dst := ap(far4, 53)
	r.send(t, pcb, dst, []byte("a"))
	s := next(t, ch)
	r.clk.Advance(20 * time.Second)
	r.send(t, pcb, dst, []byte("b"))
	buf := make([]byte, 10)
	for _, want := range []string{"a", "b"} {
		if n, to, err := s.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != want || to != dst {
			t.Fatalf("read %q to %v, %v; want %q", buf[:n], to, err, want)
		}
	}
	r.clk.Advance(20 * time.Second) // 40 s: 20 s since the last datagram
	if st := r.f.Stats(); st.UDPActive != 1 || st.UDPExpired != 0 {
		t.Fatalf("expired early:\n%v", st)
	}
	// A reply counts as traffic too.
	if _, err := s.WriteToUDPAddrPort([]byte("r"), dst); err != nil {
		t.Fatal(err)
	}
	r.flush()
	r.clk.Advance(29 * time.Second)
	if st := r.f.Stats(); st.UDPActive != 1 {
		t.Fatalf("expired early after a reply:\n%v", st)
	}
	r.clk.Advance(2 * time.Second)
	if st := r.f.Stats(); st.UDPActive != 0 || st.UDPExpired != 1 {
		t.Fatalf("not expired:\n%v", st)
	}
	if _, _, err := s.ReadFromUDPAddrPort(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after expiry: %v", err)
	}
	// The flow's next datagram opens a new session, whose timeout is set to 5 s.
	r.send(t, pcb, dst, []byte("c"))
	s2 := next(t, ch)
	s2.SetIdleTimeout(5 * time.Second)
	r.clk.Advance(4 * time.Second)
	if st := r.f.Stats(); st.UDPActive != 1 {
		t.Fatalf("expired early:\n%v", st)
	}
	r.clk.Advance(2 * time.Second)
	if st := r.f.Stats(); st.UDPActive != 0 || st.UDPExpired != 2 || st.UDPSessions != 2 {
		t.Fatalf("SetIdleTimeout:\n%v", st)
	}
}

// TestUDPQueueBound: a session that is not read holds QueueLen datagrams; the rest are
// dropped and counted, and the pool holds no more than that.
func TestUDPQueueBound(t *testing.T) {
	r, ch, pcb := fakeRig(t, forwarder.UDPConfig{QueueLen: 4})
	for i := range 10 {
		r.send(t, pcb, ap(far6, 53), []byte{byte(i)})
	}
	s := next(t, ch)
	if st := r.f.Stats(); st.UDPDropsQueue != 6 || s.Drops() != 6 {
		t.Errorf("drops %d:\n%v", s.Drops(), st)
	}
	buf := make([]byte, 10)
	for i := range 4 {
		if n, _, err := s.ReadFromUDPAddrPort(buf); err != nil || n != 1 || buf[0] != byte(i) {
			t.Fatalf("read %d: %v %v", i, buf[:n], err)
		}
	}
	_ = s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := s.ReadFromUDPAddrPort(buf); !errors.Is(err, errDeadline) {
		t.Errorf("read of an empty queue: %v", err)
	}
	s.Close()
	if err := s.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// TestUDPDeliveryAllocs pins the per-datagram path (a datagram of a live session into its
// queue, and the read) at zero allocations.
func TestUDPDeliveryAllocs(t *testing.T) {
	r, ch, pcb := fakeRig(t, forwarder.UDPConfig{QueueLen: 8})
	dst := ap(far4, 53)
	r.send(t, pcb, dst, []byte("first"))
	s := next(t, ch)
	buf := make([]byte, 100)
	data := make([]byte, 64)
	var err error
	step := func() {
		r.A.Lock()
		p, _ := r.A.Allocator().Alloc(pbuf.LayerTransport, len(data), pbuf.RAM)
		err = pcb.SendTo(p, dst)
		r.A.Unlock()
		r.flush()
		_, _, err = s.ReadFromUDPAddrPort(buf)
	}
	step()
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Errorf("%v allocations per datagram", n)
	}
	if err != nil {
		t.Fatal(err)
	}
}

var errDeadline = os.ErrDeadlineExceeded

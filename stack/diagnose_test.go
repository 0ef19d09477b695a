package stack_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/apps/doctor"
	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/stats"
)

// mailbox stands for an upper layer's datagram mailbox on a UDP PCB (netconn's).
type mailbox struct{ drops uint64 }

func (m *mailbox) QueueStats() (bytes, pbufs, heap int, drops uint64) {
	return 3000, 3, 0, m.drops
}

// Conns lists the TCP connections of every core with what they hold, and UDP PCBs with
// what their upper layer reports; a mailbox that drops is diagnosed.
func TestConns(t *testing.T) {
	o := opt.Tunnel()
	o.IPv6AutoConfig = false
	o.IPv6DupAddrDetectTransmits = 0
	p := stacktest.NewPair(t, stacktest.PairConfig{Options: o, Cores: 2})
	server := netip.AddrPortFrom(stacktest.AddrB[0], 80)
	ln, err := netconn.ListenTCP(p.B, server, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Ev.Close(ln)
	var conns []*netconn.TCPConn
	for range 4 {
		w, r := stacktest.Connect(t, p.Ev, 10*time.Second,
			func() (*netconn.TCPConn, error) {
				return netconn.DialTCP(context.Background(), p.A, netip.AddrPort{}, server, nil)
			}, ln.Accept)
		conns = append(conns, w, r)
	}
	// 100 kB written on each of A's four connections and read by nobody.
	for i := 0; i < len(conns); i += 2 {
		if _, err := conns[i].Write(make([]byte, 100000)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	var b []stats.Conn
	for {
		b = p.B.Conns()
		queued := 0
		for _, c := range b {
			queued += c.RcvQueued
		}
		if queued == 400000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B's connections never held the 400 kB: %v", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cores := map[int]int{}
	for _, c := range b {
		if c.Proto != "tcp" || c.State != "ESTABLISHED" || c.BytesReceived != 100000 || c.Local != server || c.RTT == 0 {
			t.Errorf("B: %v", c)
		}
		cores[c.Core]++
	}
	if len(b) != 4 || len(cores) != 2 {
		t.Errorf("B lists %d connections on cores %v; want 4 on both cores", len(b), cores)
	}
	for _, c := range p.A.Conns() {
		if c.BytesAcked != 100000 || c.SndQueued != 0 || c.Heap != 0 {
			t.Errorf("A: %v", c)
		}
	}

	// A UDP PCB whose upper layer (a stand-in for netconn) reports a mailbox.
	box := &mailbox{}
	p.A.Lock()
	pcb, err := p.A.UDP().NewPCB()
	if err == nil {
		err = pcb.Bind(netip.AddrPortFrom(stacktest.AddrA[0], 53))
	}
	pcb.SetArg(box)
	p.A.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	defer p.A.Callback(pcb.Close)
	prev := p.A.DoctorInput()
	box.drops = 7
	cur := p.A.DoctorInput()
	var udp *stats.Conn
	for i, c := range cur.Conns {
		if c.Proto == "udp" {
			udp = &cur.Conns[i]
		}
	}
	if udp == nil || udp.Local.Port() != 53 || udp.State != "bound" || udp.RcvQueued != 3000 || udp.Drops != 7 {
		t.Fatalf("the UDP PCB: %v", udp)
	}
	fs := doctor.Diagnose(&prev, &cur)
	if len(fs) != 1 || fs[0].Option != "UDPRecvMboxSize" {
		t.Fatalf("a mailbox that dropped 7 datagrams: %v", fs)
	}
	t.Log(fs[0])
	for _, c := range conns {
		_ = c.Close()
	}
}

// Stats sums timer lateness over every core: core 1 held for 200 ms while its timer is due.
func TestTimerStatsEveryCore(t *testing.T) {
	p := stacktest.NewPair(t, stacktest.PairConfig{Options: opt.Tunnel(), Cores: 3})
	if s := p.A.Stats(); s.TimerLate != 0 || s.TimerMaxLate >= stats.LateTimer {
		t.Fatalf("a fresh stack: TimerLate %d, TimerMaxLate %v", s.TimerLate, s.TimerMaxLate)
	}
	k := p.A.Cores()[1]
	ran := make(chan struct{})
	var tm clock.Timeout
	tm.Init(func() { close(ran) })
	k.Lock()
	k.Timers().Schedule(&tm, time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	k.Unlock()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("core 1's timer never ran")
	}
	if s := p.A.Stats(); s.TimerLate != 1 || s.TimerMaxLate < 150*time.Millisecond {
		t.Fatalf("core 1 held 200 ms: TimerLate %d, TimerMaxLate %v", s.TimerLate, s.TimerMaxLate)
	}
}

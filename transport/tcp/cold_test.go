package tcp

import (
	"bytes"
	"testing"
	"time"
	"unsafe"
)

// hotPCBMax bounds what an idle connection holds (the hot PCB); lwIP's whole tcp_pcb is
// 328 bytes. Raise it only with a reason.
const hotPCBMax = 672

func TestPCBHotSize(t *testing.T) {
	if n := unsafe.Sizeof(PCB{}); n > hotPCBMax {
		t.Errorf("PCB is %d bytes, want ≤ %d: keep what only a sending connection needs in pcbCold", n, hotPCBMax)
	}
	t.Logf("hot PCB %d B, cold part %d B", unsafe.Sizeof(PCB{}), unsafe.Sizeof(pcbCold{}))
}

// TestIdleConnectionParks: an established connection holds no cold part once the
// handshake is done, takes one to send, gives it back after an RTO of quiet, keeps its
// window while parked and moves data again after it.
func TestIdleConnectionParks(t *testing.T) {
	w := newWorld(t, worldCfg{})
	srv, cli := w.connect()
	if cli.c == nil || len(srv.accepted) != 1 {
		t.Fatal("no connection")
	}
	sc := srv.accepted[0]
	colds := func(n *node) (used int) {
		n.Do(func() { used = n.tcp.colds.Stats().Used })
		return used
	}
	report := func() string {
		var b bytes.Buffer
		w.a.Do(func() { b.WriteString("client: " + cli.c.Info().String() + "\n") })
		w.b.Do(func() { b.WriteString("server: " + sc.Info().String() + "\n") })
		return b.String()
	}
	if colds(w.a) != 0 || colds(w.b) != 0 {
		t.Fatalf("cold parts in use after the handshake: %d, %d\n%s", colds(w.a), colds(w.b), report())
	}

	send := func(n int) {
		data := bytes.Repeat([]byte("x"), n)
		w.a.Do(func() {
			if err := cli.c.Write(data, WriteCopy); err != nil {
				t.Fatal(err)
			}
			if cli.c.pcbCold == nil || cli.c.sndq.head == nil {
				t.Fatal("sending without a cold part or nothing queued")
			}
			_ = cli.c.Output()
		})
		if !w.Until(5*time.Second, func() bool { return srv.rcvd >= n }) {
			t.Fatalf("server got %d of %d\n%s", srv.rcvd, n, report())
		}
	}
	send(200 << 10)
	srv.rcvd = 0
	var cwnd int
	w.a.Do(func() { cwnd = cli.c.Info().Cwnd })
	// Quiet for longer than the RTO: both ends park.
	if !w.Until(5*time.Second, func() bool { return colds(w.a) == 0 && colds(w.b) == 0 }) {
		t.Fatalf("not parked after the transfer: %d, %d\n%s", colds(w.a), colds(w.b), report())
	}
	w.a.Do(func() {
		if i := cli.c.Info(); i.Cwnd != cwnd || i.Congestion == "" {
			t.Errorf("parked: cwnd %d (%q), want %d", i.Cwnd, i.Congestion, cwnd)
		}
	})
	send(100 << 10)
	if !w.Until(5*time.Second, func() bool { return colds(w.a) == 0 && colds(w.b) == 0 }) {
		t.Fatalf("not parked after the second transfer\n%s", report())
	}

	w.a.Do(func() { _ = cli.c.Close() })
	w.b.Do(func() { _ = sc.Close() })
	if !w.Until(5*time.Minute, func() bool { return w.a.conns() == 0 && w.b.conns() == 0 }) {
		t.Fatalf("connections left: %d, %d\n%s", w.a.conns(), w.b.conns(), report())
	}
	if colds(w.a) != 0 || colds(w.b) != 0 {
		t.Fatalf("cold parts in use at the end: %d, %d", colds(w.a), colds(w.b))
	}
}

// TestSimulationParkEager runs impaired transfers with every quiet moment parking the
// connection, state lost or not (a receiver is quiet between segments): every path must
// work from a fresh cold part. Checked byte for byte by runSim.
func TestSimulationParkEager(t *testing.T) {
	parkEager = true
	defer func() { parkEager = false }()
	for _, sc := range simCases() {
		switch sc.name {
		case "loss5%", "reorder", "mixed", "newreno-loss5%", "nosack-loss3%", "nots-loss3%", "duplicate":
			sc.mb = min(sc.mb, 2)
			t.Run(sc.name, func(t *testing.T) { runSim(t, sc) })
		}
	}
}

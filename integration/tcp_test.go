package integration

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/impair"
	"github.com/wispstack/wisp/link/pcap"
)

// The kernel connects to wisp servers over TUN, IPv4 and IPv6: echo (100 MiB each way at
// once), upload into a checksumming sink and download from a source, byte-exact.
func TestTCPKernelClientWispServer(t *testing.T) {
	e := newTCPEnv(t, 10, nil)
	n := bigTransfer()
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			ctx, deadline := withDeadline(t, 60*time.Second)
			wisp := e.wisp[f.idx]

			t.Run("echo", func(t *testing.T) {
				echoServers(t, e.s, netip.AddrPortFrom(wisp, 7))
				start := time.Now()
				c := e.ns.dial(t, f.net, netip.AddrPortFrom(wisp, 7))
				e.evidence(t)
				res := kernelPeer(c, n, 11, deadline)
				logRate(t, f.name+" kernel→wisp echo (each way)", n, time.Since(start))
				checkPeer(t, "echo", res, n, patternSum(n, 11))
			})

			t.Run("upload", func(t *testing.T) {
				srv := serveTCP(t, e.s, netip.AddrPortFrom(wisp, 9), 0, 0)
				start := time.Now()
				c := e.ns.dial(t, f.net, srv.Addr())
				e.evidence(t)
				kres := make(chan peerResult, 1)
				go func() { kres <- kernelPeer(c, n, 12, deadline) }()
				tr, err := srv.Accept(ctx)
				if err != nil {
					t.Fatal(err)
				}
				got, sum := waitTransfer(t, ctx, "upload", tr)
				res := <-kres
				logRate(t, f.name+" kernel→wisp upload", n, time.Since(start))
				checkSum(t, "upload", got, sum, n, patternSum(n, 12))
				checkPeer(t, "upload", res, 0, patternSum(0, 0))
			})

			t.Run("download", func(t *testing.T) {
				srv := serveTCP(t, e.s, netip.AddrPortFrom(wisp, 19), n, 13)
				start := time.Now()
				c := e.ns.dial(t, f.net, srv.Addr())
				e.evidence(t)
				res := kernelPeer(c, 0, 0, deadline)
				logRate(t, f.name+" wisp→kernel download", n, time.Since(start))
				checkPeer(t, "download", res, n, patternSum(n, 13))
				tr, err := srv.Accept(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got, _ := waitTransfer(t, ctx, "download", tr); got != 0 {
					t.Fatalf("wisp source received %d bytes", got)
				}
			})
		})
	}
	logTCPStats(t, e)
}

// wisp connects to kernel servers over TUN, IPv4 and IPv6: upload into a kernel sink and
// download from a kernel source, 100 MiB each, byte-exact.
func TestTCPWispClientKernelServer(t *testing.T) {
	e := newTCPEnv(t, 11, nil)
	n := bigTransfer()
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			ctx, deadline := withDeadline(t, 60*time.Second)
			kern := e.kern[f.idx]

			t.Run("upload", func(t *testing.T) {
				l := e.ns.listen(t, f.net, netip.AddrPortFrom(kern, 5001))
				kres := kernelServe(t, l, 0, 0, deadline)
				e.evidence(t)
				start := time.Now()
				tr := tcpapp.Send(e.s, netip.AddrPortFrom(kern, 5001), n, 21)
				got, _ := waitTransfer(t, ctx, "upload", tr)
				res := <-kres
				logRate(t, f.name+" wisp→kernel upload", n, time.Since(start))
				checkPeer(t, "upload", res, n, patternSum(n, 21))
				if got != 0 {
					t.Fatalf("wisp received %d bytes from a kernel sink", got)
				}
			})

			t.Run("download", func(t *testing.T) {
				l := e.ns.listen(t, f.net, netip.AddrPortFrom(kern, 5002))
				kres := kernelServe(t, l, n, 22, deadline)
				e.evidence(t)
				start := time.Now()
				tr := tcpapp.Recv(e.s, netip.AddrPortFrom(kern, 5002))
				got, sum := waitTransfer(t, ctx, "download", tr)
				res := <-kres
				logRate(t, f.name+" kernel→wisp download", n, time.Since(start))
				checkSum(t, "download", got, sum, n, patternSum(n, 22))
				checkPeer(t, "download", res, 0, patternSum(0, 0))
			})
		})
	}
	logTCPStats(t, e)
}

// logTCPStats logs wisp's TCP counters (retransmissions and the like) for the closing note.
func logTCPStats(t *testing.T, e *tcpEnv) {
	t.Helper()
	snap := e.s.Stats()
	x := snap.TCPExt
	t.Logf("wisp TCP: xmit %d recv %d drop %d; retransmits %d (fast %d, RTO %d, TLP %d), SACK recoveries %d, OOO queued %d, rcv window clamped %d",
		snap.TCP.Xmit, snap.TCP.Recv, snap.TCP.Drop, x.Retransmits, x.FastRetransmits, x.RTOs, x.TLPs, x.SACKRecoveries, x.OOOQueued, x.RcvWndClamped)
	if testing.Verbose() {
		var b strings.Builder
		snap.WriteTable(&b)
		t.Logf("wisp stats:\n%s", b.String())
		t.Logf("kernel side:\n%s", e.ns.run(t, "ip", "-s", "link", "show", "wisp0"))
	}
}

// impairedTransfer is the size of the transfers over the impaired link.
func impairedTransfer() int64 { return scaled[int64](10<<20, 2<<20) }

// With seeded loss, reordering, duplication and delay between the TUN device and wisp,
// transfers against the kernel still end byte-exact in both directions, and wisp's counters
// show that it recovered from losses.
func TestTCPKernelImpaired(t *testing.T) {
	dir := func(seed uint64) impair.Dir {
		return impair.Dir{Seed: seed, Loss: 0.01, Duplicate: 0.005, Reorder: 0.01,
			ReorderDelay: 3 * time.Millisecond, Delay: time.Millisecond}
	}
	var imp *impair.Link
	e := newTCPEnv(t, 12, func(ep link.Endpoint) link.Endpoint {
		imp = impair.New(ep, clock.Real, impair.Config{TX: dir(1), RX: dir(2)})
		return imp
	})
	n := impairedTransfer()
	ctx, deadline := withDeadline(t, 60*time.Second)

	// wisp sends (its losses are its own to repair) over IPv4 ...
	t.Run("IPv4 wisp→kernel", func(t *testing.T) {
		l := e.ns.listen(t, "tcp4", netip.AddrPortFrom(e.kern[0], 5003))
		kres := kernelServe(t, l, 0, 0, deadline)
		e.evidence(t)
		start := time.Now()
		tr := tcpapp.Send(e.s, netip.AddrPortFrom(e.kern[0], 5003), n, 31)
		waitTransfer(t, ctx, "upload", tr)
		res := <-kres
		logRate(t, "impaired IPv4 wisp→kernel", n, time.Since(start))
		checkPeer(t, "upload", res, n, patternSum(n, 31))
	})
	// ... and receives (the kernel repairs, wisp reorders and SACKs) over IPv6.
	t.Run("IPv6 kernel→wisp", func(t *testing.T) {
		srv := serveTCP(t, e.s, netip.AddrPortFrom(e.wisp[1], 9), 0, 0)
		start := time.Now()
		c := e.ns.dial(t, "tcp6", srv.Addr())
		e.evidence(t)
		kres := make(chan peerResult, 1)
		go func() { kres <- kernelPeer(c, n, 32, deadline) }()
		tr, err := srv.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, sum := waitTransfer(t, ctx, "upload to wisp", tr)
		res := <-kres
		logRate(t, "impaired IPv6 kernel→wisp", n, time.Since(start))
		checkSum(t, "upload to wisp", got, sum, n, patternSum(n, 32))
		checkPeer(t, "upload to wisp", res, 0, patternSum(0, 0))
	})
	txc, rxc := imp.Stats()
	t.Logf("impairment: TX lost %d dup %d reordered %d of %d; RX lost %d dup %d reordered %d of %d",
		txc.Lost, txc.Duplicated, txc.Reordered, txc.Frames, rxc.Lost, rxc.Duplicated, rxc.Reordered, rxc.Frames)
	logTCPStats(t, e)
	x := e.s.Stats().TCPExt
	if txc.Lost == 0 || rxc.Lost == 0 {
		t.Fatalf("the impairment lost nothing (tx %+v, rx %+v)", txc, rxc)
	}
	if x.Retransmits == 0 || x.FastRetransmits+x.RTOs+x.TLPs == 0 {
		t.Errorf("wisp lost %d frames but retransmitted %d (fast %d, RTO %d, TLP %d)", txc.Lost, x.Retransmits, x.FastRetransmits, x.RTOs, x.TLPs)
	}
	if x.SACKRecoveries+x.RenoRecoveries == 0 {
		t.Errorf("no loss recovery episode: %+v", x)
	}
	if x.OOOQueued == 0 {
		t.Errorf("the kernel's segments were lost and reordered but wisp queued none out of order")
	}
}

// A capture of TCP exchanges (IPv4 and IPv6, both directions, handshakes and closes)
// decodes cleanly in tshark, with checksum verification on.
func TestTCPCaptureDecodes(t *testing.T) {
	tshark := requireTool(t, "tshark")
	file := filepath.Join(t.TempDir(), "tcp.pcap")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	e := newTCPEnv(t, 13, func(ep link.Endpoint) link.Endpoint {
		l, err := pcap.Wrap(ep, w, 65535)
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
	const n = 1 << 20
	ctx, deadline := withDeadline(t, 30*time.Second)

	l, err := tcpapp.Echo(e.s, netip.AddrPortFrom(e.wisp[0], 7))
	if err != nil {
		t.Fatal(err)
	}
	c := e.ns.dial(t, "tcp4", netip.AddrPortFrom(e.wisp[0], 7))
	e.evidence(t)
	checkPeer(t, "echo", kernelPeer(c, n, 41, deadline), n, patternSum(n, 41))
	tcpapp.CloseListener(e.s, l)

	kl := e.ns.listen(t, "tcp6", netip.AddrPortFrom(e.kern[1], 5004))
	kres := kernelServe(t, kl, n, 42, deadline)
	got, sum := waitTransfer(t, ctx, "download", tcpapp.Send(e.s, netip.AddrPortFrom(e.kern[1], 5004), n, 43))
	checkSum(t, "download", got, sum, n, patternSum(n, 42))
	checkPeer(t, "upload", <-kres, n, patternSum(n, 43))

	// Let the last FIN/ACK exchanges finish, then close the stack so the capture is complete.
	time.Sleep(100 * time.Millisecond)
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}

	count, err := exec.Command(tshark, "-n", "-r", file, "-Y", "tcp").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	if lines := strings.Count(string(count), "\n"); lines < 1000 {
		t.Fatalf("tshark sees only %d TCP packets:\n%s", lines, count)
	}
	// Linux writes a TCP checksum that comes out 0x0000 as 0xffff (skb_checksum_help's
	// CSUM_MANGLED_0; the same number in one's complement, which wisp accepts), and tshark
	// flags that as an error: one kernel packet in 65,536 carries it. wisp never sends one
	// (its sums are never zero), so only the kernel's are let through.
	kernelFFFF := fmt.Sprintf("(tcp.checksum.ffff && (ip.src == %s || ipv6.src == %s))", e.kern[0], e.kern[1])
	bad := `(_ws.malformed || _ws.expert.severity >= error || tcp.analysis.ack_lost_segment || ` +
		`tcp.analysis.lost_segment || tcp.checksum.status == 0 || ip.checksum.status == 0 || ` +
		`tcp.analysis.zero_window_probe_ack || tcp.analysis.out_of_order) && !` + kernelFFFF
	out, err := exec.Command(tshark, "-n", "-r", file, "-o", "tcp.check_checksum:TRUE",
		"-o", "ip.check_checksum:TRUE", "-Y", bad).Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("tshark finds problems in the capture:\n%s", s)
	}
}

package integration

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/internal/tcpapp"
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

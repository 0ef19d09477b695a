package integration

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/tun"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/wire"
)

// offloadTransfer is the size of each transfer of TestTUNOffloadKernel: 1 GiB, shrunk
// under -short and -race.
func offloadTransfer() int64 { return scaled[int64](1<<30, 32<<20) }

// newOffloadEnv is newTCPEnv on a TUN device opened with or without offloads (the kernel
// must accept them when asked: the test fails otherwise).
func newOffloadEnv(t *testing.T, subnet int, offload bool) (*tcpEnv, *tun.Device) {
	t.Helper()
	var refused []string
	e := newTCPEnvTUN(t, subnet, opt.Tunnel(), tun.Config{MTU: 1500, Offload: offload,
		Logf: func(f string, a ...any) { refused = append(refused, fmt.Sprintf(f, a...)) }}, nil)
	if offload && (len(refused) > 0 || e.dev.Offloads() == (link.Offloads{})) {
		t.Fatalf("offloads refused: %q", refused)
	}
	return e, e.dev
}

// The kernel and wisp over a TUN device with and without offloads, IPv4 and IPv6, each
// way: byte-exact, and the kernel's segments acknowledged normally (`ss -ti` during the
// transfer, the namespace's retransmission counter over it). With offloads the device
// carries GSO packets both ways.
func TestTUNOffloadKernel(t *testing.T) {
	requireTool(t, "nstat")
	requireTool(t, "ss")
	for i, offload := range []bool{true, false} {
		t.Run(map[bool]string{true: "offload", false: "no-offload"}[offload], func(t *testing.T) {
			e, dev := newOffloadEnv(t, 20+i, offload)
			n := offloadTransfer()
			const seed = 61 // one pattern: its sum is computed once
			for _, f := range families {
				r := kernelTCP{e: e, fam: f.idx, n: n, seed: seed, port: uint16(5101 + f.idx),
					timeout: 180 * time.Second, evidence: e.evidence}
				t.Run(f.name, func(t *testing.T) {
					t.Run("kernel→wisp", r.kernelToWisp)
					t.Run("wisp→kernel", r.wispToKernel)
				})
			}
			rxGSO, rxPartial, bad, txGSO := dev.OffloadStats()
			snap := e.s.Stats()
			t.Logf("device: rx GSO %d, partial checksums %d, bad headers %d, tx GSO %d; stack offload %+v", rxGSO, rxPartial, bad, txGSO, snap.Offload)
			logTCPStats(t, e)
			if t.Failed() {
				return
			}
			switch {
			case bad != 0:
				t.Errorf("%d malformed virtio-net headers from the kernel", bad)
			case offload && (rxGSO == 0 || txGSO == 0):
				t.Errorf("offloads on, but GSO packets in %d, out %d", rxGSO, txGSO)
			case !offload && (rxGSO != 0 || txGSO != 0 || rxPartial != 0):
				t.Errorf("offloads off, but GSO packets in %d, out %d, partial checksums %d", rxGSO, txGSO, rxPartial)
			}
		})
	}
}

func bracket(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// ssWatcher samples the kernel's `ss -tin` for one connection while a transfer runs.
type ssWatcher struct {
	ns     *netns
	filter string
	done   chan struct{}
	wg     sync.WaitGroup
	ran    time.Duration // from watchSS to stop
	start  time.Time

	mu      sync.Mutex
	samples int
	last    string // the last sample that showed the connection
	info    ssInfo
}

// ssInfo is what ss -i says of a sending socket.
type ssInfo struct {
	bytesAcked, dataSegsOut, retransTotal, lost int64
}

var ssField = regexp.MustCompile(`\b(bytes_acked|data_segs_out|lost):(\d+)|\bretrans:\d+/(\d+)`)

func parseSS(s string) (info ssInfo, ok bool) {
	for _, m := range ssField.FindAllStringSubmatch(s, -1) {
		ok = true
		if m[3] != "" {
			info.retransTotal, _ = strconv.ParseInt(m[3], 10, 64)
			continue
		}
		v, _ := strconv.ParseInt(m[2], 10, 64)
		switch m[1] {
		case "bytes_acked":
			info.bytesAcked = v
		case "data_segs_out":
			info.dataSegsOut = v
		case "lost":
			info.lost = v
		}
	}
	return info, ok && info.dataSegsOut > 0
}

func watchSS(ns *netns, filter string) *ssWatcher {
	w := &ssWatcher{ns: ns, filter: filter, done: make(chan struct{}), start: time.Now()}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for first := true; ; first = false {
			if !first {
				select {
				case <-w.done:
					return
				case <-tick.C:
				}
			}
			out, err := ns.cmd(append([]string{"ss", "-tinH"}, strings.Fields(w.filter)...)...).Output()
			if err != nil {
				continue
			}
			if info, ok := parseSS(string(out)); ok {
				w.mu.Lock()
				w.samples++
				w.last, w.info = string(out), info
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *ssWatcher) stop() {
	close(w.done)
	w.wg.Wait()
	w.ran = time.Since(w.start)
}

// check fails the test unless a sample showed the kernel's data acknowledged and its
// retransmissions a small part of what it sent (an offload the peer misreads shows as a
// storm of them).
func (w *ssWatcher) check(t *testing.T, n int64) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.samples == 0 {
		// A fast transfer may end between two samples (128 MiB over AF_XDP took 225 ms):
		// only one that ran for a second must have been seen.
		if n >= 64<<20 && w.ran >= time.Second {
			t.Errorf("ss never showed the connection (%s) during the %v transfer", w.filter, w.ran)
		}
		return
	}
	i := w.info
	t.Logf("kernel ss -ti (last of %d samples): bytes_acked %d, data segments %d, retransmitted %d, lost %d",
		w.samples, i.bytesAcked, i.dataSegsOut, i.retransTotal, i.lost)
	if i.bytesAcked == 0 || i.retransTotal*100 > i.dataSegsOut+100 {
		t.Errorf("the kernel's segments are not acknowledged normally:\n%s", w.last)
	}
}

// kernelSegs returns the namespace's TCP segments sent and retransmitted (nstat).
func kernelSegs(t *testing.T, ns *netns) [2]int64 {
	t.Helper()
	out := ns.run(t, "nstat", "-asz", "TcpOutSegs", "TcpRetransSegs")
	var r [2]int64
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "TcpOutSegs":
			r[0] = v
		case "TcpRetransSegs":
			r[1] = v
		}
	}
	return r
}

func checkRetrans(t *testing.T, before, after [2]int64) {
	t.Helper()
	out, re := after[0]-before[0], after[1]-before[1]
	t.Logf("kernel: %d TCP segments out, %d retransmitted", out, re)
	if re*100 > out+100 {
		t.Errorf("the kernel retransmitted %d of %d segments", re, out)
	}
}

// A tshark capture of the TUN device with offloads, during transfers both ways over IPv4
// and IPv6, decodes cleanly: no malformed packet, no expert error, and every checksum
// verifies except the TCP checksums left partial, which are exactly the folded
// pseudo-header sum. A capture on a device with offloads sees the packets before the
// checksum is completed (the kernel's CHECKSUM_PARTIAL, and wisp's GSO packets, whose
// checksum the kernel completes per segment), so those are what offloading looks like,
// not errors; anything else in the checksum field fails the test.
func TestTUNOffloadCaptureDecodes(t *testing.T) {
	tshark := requireTool(t, "tshark")
	e, _ := newOffloadEnv(t, 22, true)
	file := filepath.Join(t.TempDir(), "tun.pcap")
	c, p, stderr := startTshark(t, e.ns, nil, "-n", "-i", "wisp0", "-B", "64", "-F", "pcap", "-w", file)
	const n = 4 << 20
	for _, f := range families {
		ctx, deadline := withDeadline(t, 60*time.Second)
		srv := serveTCP(t, e.s, netip.AddrPortFrom(e.wisp[f.idx], 9), 0, 0)
		conn := e.ns.dial(t, f.net, srv.Addr())
		e.evidence(t)
		kres := make(chan peerResult, 1)
		go func() { kres <- kernelPeer(conn, n, 71, deadline) }()
		tr, err := srv.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, sum := waitTransfer(t, ctx, f.name+" kernel→wisp", tr)
		checkSum(t, f.name+" kernel→wisp", got, sum, n, patternSum(n, 71))
		checkPeer(t, f.name+" kernel→wisp", <-kres, 0, patternSum(0, 0))

		port := uint16(5201 + f.idx)
		l := e.ns.listen(t, f.net, netip.AddrPortFrom(e.kern[f.idx], port))
		kres2 := kernelServe(t, l, 0, 0, deadline)
		waitTransfer(t, ctx, f.name+" wisp→kernel", tcpapp.Send(e.s, netip.AddrPortFrom(e.kern[f.idx], port), n, 72))
		checkPeer(t, f.name+" wisp→kernel", <-kres2, n, patternSum(n, 72))
		srv.Close()
	}
	time.Sleep(200 * time.Millisecond) // the last ACKs and FINs
	c.Process.Signal(syscall.SIGINT)   // tshark finishes the file
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("tshark did not stop:\n%s", stderr.String())
	}
	t.Logf("tshark: %s", strings.TrimSpace(stderr.String()))

	// Decoding: nothing malformed, no expert error (checksums not verified here).
	out, err := exec.Command(tshark, "-n", "-r", file, "-Y", "_ws.malformed || _ws.expert.severity >= error").Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("tshark finds malformed packets or errors:\n%s", s)
	}
	// Checksums: tshark verifies every one; those it finds bad must be partial TCP sums.
	out, err = exec.Command(tshark, "-n", "-r", file, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
		"-o", "udp.check_checksum:TRUE", "-Y", "tcp.checksum.status == 0 || ip.checksum.status == 0 || udp.checksum.status == 0",
		"-T", "fields", "-e", "frame.number").Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	badFrames := map[int]bool{}
	for _, l := range strings.Fields(string(out)) {
		k, err := strconv.Atoi(l)
		if err != nil {
			t.Fatalf("tshark: %q", out)
		}
		badFrames[k] = true
	}
	st := checkCapture(t, file, badFrames)
	t.Logf("capture: %d TCP packets, %d over the MTU (largest %d), %d with a partial checksum (tshark: %d bad)",
		st.tcp, st.overMTU, st.largest, st.partial, len(badFrames))
	if st.tcp < 100 || st.overMTU == 0 {
		t.Errorf("the capture holds %d TCP packets, %d of them GSO packets over the MTU", st.tcp, st.overMTU)
	}
}

type captureStats struct {
	tcp, overMTU, largest, partial int
}

// checkCapture reads the capture with gopacket and fails the test for a frame tshark
// finds a bad checksum in (badFrames, numbered from 1) unless it is a TCP packet whose
// checksum field is its folded pseudo-header sum.
func checkCapture(t *testing.T, file string, badFrames map[int]bool) (st captureStats) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; ; i++ {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if len(data) == 0 {
			continue
		}
		first := layers.LayerTypeIPv4
		if data[0]>>4 == 6 {
			first = layers.LayerTypeIPv6
		}
		pkt := gopacket.NewPacket(data, first, gopacket.NoCopy)
		tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		partial := false
		if tcp != nil {
			st.tcp++
			if len(data) > 1500 {
				st.overMTU++
			}
			st.largest = max(st.largest, len(data))
			var src, dst netip.Addr
			var l4 int
			switch ip := pkt.NetworkLayer().(type) {
			case *layers.IPv4:
				src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
				dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
				l4 = int(ip.Length) - int(ip.IHL)*4
			case *layers.IPv6:
				src, _ = netip.AddrFromSlice(ip.SrcIP)
				dst, _ = netip.AddrFromSlice(ip.DstIP)
				l4 = int(ip.Length)
			}
			if src.IsValid() && tcp.Checksum == wire.Fold(wire.PseudoHeaderChecksum(wire.ProtoTCP, src, dst, uint32(l4))) {
				partial = true
				st.partial++
			}
		}
		if badFrames[i] && !partial {
			t.Errorf("frame %d: a bad checksum that is not a partial TCP checksum: %v", i, pkt)
		}
	}
	return st
}

// UDP segmentation both ways through a TUN with offloads (where the kernel has USO, Linux
// 6.2 and later): a kernel socket's UDP_SEGMENT send reaches wisp as one UDP GSO packet
// that wisp's UDP hands to its socket as the datagrams the sender asked for; wisp's
// UDP_SEGMENT send leaves as one UDP GSO packet that the kernel cuts. Byte-exact, both
// families.
func TestTUNOffloadUDPSegment(t *testing.T) {
	e, dev := newOffloadEnv(t, 24, true)
	if !dev.USO() {
		t.Skip("the kernel refuses TUN_F_USO4/6 (Linux before 6.2)")
	}
	e.evidence(t)
	n := endpoint.New(e.s)
	const seg, size = 1000, 10500
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte(i*7 + i>>8)
	}
	// readAll reads the datagrams of one segmented send from r and checks them.
	readAll := func(what string, read func([]byte) (int, error)) {
		t.Helper()
		var got []byte
		buf := make([]byte, 2048)
		for k := 0; k < (size+seg-1)/seg; k++ {
			m, err := read(buf)
			if err != nil {
				t.Fatalf("%s: datagram %d: %v (%d bytes so far)", what, k, err, len(got))
			}
			if want := min(seg, size-len(got)); m != want {
				t.Fatalf("%s: datagram %d of %d bytes, want %d", what, k, m, want)
			}
			got = append(got, buf[:m]...)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("%s: the datagrams do not join into what was sent", what)
		}
	}
	for _, f := range families {
		network := map[int]string{0: "udp4", 1: "udp6"}[f.idx]
		wc, err := n.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(e.wisp[f.idx], 7000)))
		if err != nil {
			t.Fatal(err)
		}
		var kc *net.UDPConn
		e.ns.do(t, func() {
			kc, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(e.kern[f.idx], 7001)))
		})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		wc.SetDeadline(deadline)
		kc.SetDeadline(deadline)
		before := e.s.Stats().Offload

		// Kernel → wisp.
		raw, err := kc.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, seg) })
		if serr != nil {
			t.Fatal(serr)
		}
		if _, err := kc.WriteToUDPAddrPort(msg, netip.AddrPortFrom(e.wisp[f.idx], 7000)); err != nil {
			t.Fatal(err)
		}
		readAll(f.name+" kernel→wisp", func(b []byte) (int, error) { k, _, err := wc.ReadFromUDPAddrPort(b); return k, err })

		// Wisp → kernel.
		if err := wc.SetSegmentSize(seg); err != nil {
			t.Fatal(err)
		}
		if _, err := wc.WriteToUDPAddrPort(msg, netip.AddrPortFrom(e.kern[f.idx], 7001)); err != nil {
			t.Fatal(err)
		}
		readAll(f.name+" wisp→kernel", func(b []byte) (int, error) { k, _, err := kc.ReadFromUDPAddrPort(b); return k, err })

		after := e.s.Stats().Offload
		if after.RxGSO == before.RxGSO || after.TSOOut == before.TSOOut {
			t.Errorf("%s: no UDP GSO packet crossed whole: before %+v, after %+v", f.name, before, after)
		}
		wc.Close()
		kc.Close()
	}
}

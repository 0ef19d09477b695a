package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	gtcp "gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/wispstack/wisp/adapter/gvisor"
	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/internal/ping"
	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/xdp"
)

// Subnets (198.18.<n>.0/24, fd42:5eed:0:<n in hex>::/64) of the AF_XDP tests. Each test has
// namespaces of its own; distinct subnets keep their logs and captures apart from the
// other tests'.
const (
	xdpSubnetPing = 80 + iota
	xdpSubnetPass
	xdpSubnetTCP
	xdpSubnetTCPZeroCopy
	xdpSubnetUDP
	xdpSubnetMulti
	xdpSubnetGVisor
	xdpSubnetServe
	xdpSubnetServe2
	xdpSubnetBad
)

// xdpTransfer is the size of each TCP transfer of TestXDPKernelTCP: 1 GiB over IPv4 and
// 128 MiB over IPv6 (the runtime's budget), 64 MiB under -short and -race.
func xdpTransfer(family int) int64 { return scaled[int64]([]int64{1 << 30, 128 << 20}[family], 64<<20) }

// The kernel pings wisp over AF_XDP, IPv4 and IPv6, small and fragmented, having resolved
// wisp's addresses to vB's MAC (ARP, NDP: the XDP program gives wisp the requests for its
// addresses); wisp pings the kernel back, small and fragmented.
func TestXDPPing(t *testing.T) {
	requireTool(t, "ping")
	e := newXDPEnv(t, xdpSubnetPing, 1, 1)
	e.evidence(t)
	kernelPings(t, e.ns, e.wisp[0].String(), e.wisp[1].String())

	neigh := e.ns.run(t, "ip", "neigh", "show", "dev", "vA")
	for _, a := range e.wisp {
		if !strings.Contains(neigh, a.String()+" lladdr "+e.net.mac.String()) {
			t.Errorf("the kernel has not resolved %v to vB's MAC %v:\n%s", a, e.net.mac, neigh)
		}
	}
	ctx, _ := withDeadline(t, 30*time.Second)
	n := endpoint.New(e.s)
	for _, dst := range e.kern {
		for _, size := range []int{56, 3000} {
			rtt, err := ping.Once(ctx, n, dst, size)
			if err != nil {
				t.Fatalf("wisp pings the kernel's %v with %d bytes: %v", dst, size, err)
			}
			t.Logf("wisp → %v, %d bytes: %v", dst, size, rtt)
		}
	}
	snap := e.s.Stats()
	if snap.Etharp.Recv == 0 || snap.ND6.Recv == 0 {
		t.Errorf("wisp saw no ARP (%+v) or no NDP (%+v)", snap.Etharp, snap.ND6)
	}
	if snap.IPFrag.Recv == 0 || snap.IP6Frag.Recv == 0 || snap.IPFrag.Xmit == 0 || snap.IP6Frag.Xmit == 0 {
		t.Errorf("fragments: IPv4 %+v, IPv6 %+v", snap.IPFrag, snap.IP6Frag)
	}
	var dev bytes.Buffer
	writeQueues(&dev, e.x.DeviceStats(nil))
	t.Logf("device: %s", dev.String())
}

// The host keeps its own traffic while wisp runs: the kernel of wisp's namespace answers
// pings to its address on vB (the XDP program passes what is not wisp's), and pings out of
// vB, while wisp answers its own; none of the host's echoes reaches wisp. An address added
// to wisp at run time is wisp's (the stack updates the program's addresses), and once
// removed, the host's again.
func TestXDPPassesHostTraffic(t *testing.T) {
	requireTool(t, "ping")
	e := newXDPEnv(t, xdpSubnetPass, 1, 1)
	e.evidence(t)
	before := e.s.Stats().ICMP
	pingOK(t, e.ns, e.net.host, "the host's address on vB")
	pingOK(t, e.net.b, e.kern[0], "the kernel peer, from the host")
	if after := e.s.Stats().ICMP; after.Recv != before.Recv {
		t.Errorf("the host's pings reached wisp: ICMP received %d, then %d", before.Recv, after.Recv)
	}
	pingOK(t, e.ns, e.wisp[0], "wisp")
	pingOK(t, e.ns, e.net.host, "the host's address on vB, after wisp's pings")

	extra := e.net.host.Next() // 198.18.<subnet>.4
	if err := e.nif.AddAddr(netip.PrefixFrom(extra, 24)); err != nil {
		t.Fatal(err)
	}
	before = e.s.Stats().ICMP
	pingOK(t, e.ns, extra, "an address added to wisp")
	if after := e.s.Stats().ICMP; after.Recv == before.Recv {
		t.Errorf("pings to %v, added to wisp, were answered by someone else", extra)
	}
	if err := e.nif.RemoveAddr(extra); err != nil {
		t.Fatal(err)
	}
	e.net.b.run(t, "ip", "addr", "add", extra.String()+"/24", "dev", "vB")
	before = e.s.Stats().ICMP
	pingOK(t, e.ns, extra, "an address removed from wisp and given to the host")
	if after := e.s.Stats().ICMP; after.Recv != before.Recv {
		t.Errorf("pings to %v still reach wisp after it removed the address: ICMP received %d, then %d", extra, before.Recv, after.Recv)
	}
}

// pingOK pings dst twice from ns and fails the test unless both echoes come back.
func pingOK(t *testing.T, ns *netns, dst netip.Addr, what string) {
	t.Helper()
	out := ns.run(t, "ping", "-c", "2", "-i", "0.2", "-W", "3", dst.String())
	if !strings.Contains(out, "2 received") {
		t.Fatalf("ping %v (%s) from %s:\n%s", dst, what, ns.name, out)
	}
}

// TCP between the kernel and wisp over AF_XDP, byte-exact each way: 1 GiB over IPv4, 128
// MiB over IPv6 (64 MiB under -short and -race), with the kernel's segments acknowledged
// normally and wisp's retransmissions few.
func TestXDPKernelTCP(t *testing.T) {
	requireTool(t, "ss")
	requireTool(t, "nstat")
	e := newXDPEnv(t, xdpSubnetTCP, 1, 1)
	for _, f := range families {
		r := kernelTCP{e: e.tcpEnv, fam: f.idx, n: xdpTransfer(f.idx), seed: 81, port: uint16(5301 + f.idx),
			timeout: 120 * time.Second, label: " over AF_XDP", evidence: e.evidence}
		t.Run(f.name, func(t *testing.T) {
			t.Run("kernel→wisp", r.kernelToWisp)
			t.Run("wisp→kernel", r.wispToKernel)
		})
	}
	var dev bytes.Buffer
	writeQueues(&dev, e.x.DeviceStats(nil))
	t.Logf("device: %s", dev.String())

	// The same over IPv4 with received frames lent to the stack (xdp.Config.RxZeroCopy:
	// REF pbufs on the UMEM frames) instead of copied, 128 MiB each way.
	t.Run("rx-zero-copy", func(t *testing.T) {
		z := newXDPEnvWith(t, xdpSubnetTCPZeroCopy, 1, 1, xdp.Config{RxZeroCopy: true})
		if !z.x.Info().RxZeroCopy {
			t.Fatalf("RxZeroCopy asked, the link copies: %v", z.x.Info())
		}
		r := kernelTCP{e: z.tcpEnv, fam: 0, n: scaled[int64](128<<20, 32<<20), seed: 82, port: 5311,
			timeout: 120 * time.Second, label: " over AF_XDP, zero-copy RX", evidence: z.evidence}
		t.Run("kernel→wisp", r.kernelToWisp)
		t.Run("wisp→kernel", r.wispToKernel)
	})
}

// UDP datagrams of 1 to 65,000 bytes cross AF_XDP both ways byte-exact, fragmented where
// they exceed the MTU: a kernel socket to wisp's echo, and a wisp socket to a kernel echo.
func TestXDPUDP(t *testing.T) {
	e := newXDPEnv(t, xdpSubnetUDP, 1, 1)
	e.evidence(t)
	n := endpoint.New(e.s)
	var wg sync.WaitGroup
	var echoes []io.Closer
	t.Cleanup(func() {
		for _, c := range echoes {
			c.Close()
		}
		wg.Wait()
	})
	for _, f := range families {
		network := []string{"udp4", "udp6"}[f.idx]
		// wisp's echo (what `wisp serve --udp-echo` runs).
		pc, err := n.ListenPacket(network, netip.AddrPortFrom(e.wisp[f.idx], 7).String())
		if err != nil {
			t.Fatal(err)
		}
		echoes = append(echoes, pc)
		wg.Go(func() { udpEcho(pc) })
		// The kernel's echo.
		var kc *net.UDPConn
		e.ns.do(t, func() {
			kc, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(e.kern[f.idx], 7)))
		})
		if err != nil {
			t.Fatal(err)
		}
		echoes = append(echoes, kc)
		wg.Go(func() { udpEcho(kc) })

		var client net.Conn
		e.ns.do(t, func() {
			client, err = net.DialUDP(network, nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(e.wisp[f.idx], 7)))
		})
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		wc, err := n.Dial(network, netip.AddrPortFrom(e.kern[f.idx], 7).String())
		if err != nil {
			t.Fatal(err)
		}
		defer wc.Close()
		for _, side := range []struct {
			what string
			c    net.Conn
		}{{"kernel → wisp's echo", client}, {"wisp → the kernel's echo", wc}} {
			for i, size := range udpSizes {
				b := make([]byte, size)
				tcpapp.FillPattern(b, uint64(i), 0)
				got, err := udpRoundTrip(side.c, b, 3)
				if err != nil || !bytes.Equal(got, b) {
					t.Fatalf("%s %s: %d-byte datagram: %v; echo of %d bytes differs", f.name, side.what, size, err, len(got))
				}
			}
		}
	}
	snap := e.s.Stats()
	if snap.IPFrag.Xmit == 0 || snap.IP6Frag.Xmit == 0 || snap.IPFrag.Recv == 0 || snap.IP6Frag.Recv == 0 {
		t.Errorf("fragments: IPv4 %+v, IPv6 %+v", snap.IPFrag, snap.IP6Frag)
	}
}

// udpEcho sends every datagram back to its sender until pc is closed (or fails a hundred
// times in a row: an ICMP error reported on a read is one failure).
func udpEcho(pc net.PacketConn) {
	buf := make([]byte, 65535)
	for failed := 0; failed < 100; {
		k, from, err := pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			failed++
			continue
		}
		failed = 0
		_, _ = pc.WriteTo(buf[:k], from)
	}
}

// Four queues each way on the veth, four AF_XDP sockets, a stack of four cores: 64
// connections from the kernel and 8 from wisp, data both ways on each, all byte-exact;
// every core carries connections and every queue frames (printed per queue and per core).
func TestXDPMultiQueue(t *testing.T) {
	const queues, cores, inbound, outbound = 4, 4, 64, 8
	e := newXDPEnv(t, xdpSubnetMulti, queues, cores)
	if q := e.x.Queues(); q != queues {
		t.Fatalf("the link has %d queues, want %d", q, queues)
	}
	n := scaled[int64](4<<20, 256<<10)
	const seedWisp, seedKernel = 91, 92
	ctx, deadline := withDeadline(t, 60*time.Second)
	srvs := [2]*tcpapp.Server{}
	for _, f := range families {
		srvs[f.idx] = serveTCP(t, e.s, netip.AddrPortFrom(e.wisp[f.idx], 9), n, seedWisp)
	}
	type kernelConn struct {
		what string
		res  chan peerResult
	}
	var kconns []kernelConn
	for i := range inbound {
		f := families[i%2]
		c := e.ns.dial(t, f.net, srvs[f.idx].Addr())
		kc := kernelConn{fmt.Sprintf("kernel conn %d (%s %v)", i, f.name, c.LocalAddr()), make(chan peerResult, 1)}
		go func() { kc.res <- kernelPeer(c, n, seedKernel, deadline) }()
		kconns = append(kconns, kc)
	}
	type wispConn struct {
		what string
		tr   *tcpapp.Transfer
		res  <-chan peerResult
	}
	var wconns []wispConn
	for i := range outbound {
		f := families[i%2]
		l := e.ns.listen(t, f.net, netip.AddrPortFrom(e.kern[f.idx], uint16(5400+i)))
		res := kernelServe(t, l, n, seedKernel, deadline)
		wconns = append(wconns, wispConn{fmt.Sprintf("wisp conn %d (%s)", i, f.name),
			tcpapp.Send(e.s, netip.AddrPortFrom(e.kern[f.idx], uint16(5400+i)), n, seedWisp), res})
	}
	e.evidence(t)
	start := time.Now()
	var accepted []*tcpapp.Transfer
	for i := range inbound {
		tr, err := srvs[i%2].Accept(ctx)
		if err != nil {
			t.Fatalf("accept %d of %d: %v", i+1, inbound, err)
		}
		accepted = append(accepted, tr)
	}
	for i, tr := range accepted {
		got, sum := waitTransfer(t, ctx, fmt.Sprintf("accepted conn %d", i), tr)
		checkSum(t, fmt.Sprintf("accepted conn %d (%s)", i, tr), got, sum, n, patternSum(n, seedKernel))
	}
	for _, kc := range kconns {
		checkPeer(t, kc.what, <-kc.res, n, patternSum(n, seedWisp))
	}
	for _, wc := range wconns {
		got, sum := waitTransfer(t, ctx, wc.what, wc.tr)
		checkSum(t, wc.what, got, sum, n, patternSum(n, seedKernel))
		checkPeer(t, wc.what, <-wc.res, n, patternSum(n, seedWisp))
	}
	logRate(t, fmt.Sprintf("%d connections, each way", inbound+outbound), int64(inbound+outbound)*n, time.Since(start))

	perCore := coreOpens(e.s)
	qs := e.x.DeviceStats(nil)
	var dev bytes.Buffer
	writeQueues(&dev, qs)
	t.Logf("connections per core: %v\nper queue:\n%s", perCore, dev.String())
	for k, c := range perCore {
		if c == 0 {
			t.Errorf("core %d carried no connection: %v", k, perCore)
		}
	}
	if len(qs) != queues {
		t.Fatalf("%d queues of device counters, want %d", len(qs), queues)
	}
	for q := range qs {
		if qs[q].RxPackets == 0 || qs[q].TxPackets == 0 {
			t.Errorf("queue %d: %d frames received, %d sent: the flows did not spread", q, qs[q].RxPackets, qs[q].TxPackets)
		}
	}
	if d := e.s.Stats().Devices; len(d) != 1 || len(d[0].Queues) != queues {
		t.Errorf("the stack's snapshot has devices %+v, want vB's %d queues", d, queues)
	}
}

// An unmodified gVisor stack (ipv4, arp, tcp) on wisp's AF_XDP link
// (adapter/gvisor.NewEndpoint) connects to the kernel and moves data both ways at once,
// byte-exact; the adapter's pbufs all come back.
func TestXDPGVisor(t *testing.T) {
	xn := newXDPNet(t, xdpSubnetGVisor, 1)
	stacktest.NoGoroutineLeak(t)
	x := xn.open(t, xdp.Config{Addrs: []netip.Addr{xn.wisp[0]}})
	// The adapter's memory: received frames into POOL pbufs, gVisor's packets into RAM ones.
	alloc := pbuf.NewAllocator(pbuf.Config{PoolCount: 4096, PoolBufSize: 1600, HeapSize: 4 << 20,
		RefCount: 64, RAMCount: 4096})
	pools := new(memp.Table)
	alloc.Register(pools)
	t.Cleanup(func() { linktest.CheckEmpty(t, pools, alloc) }) // after the stack closed the link

	ep := gvisor.NewEndpoint(x, alloc)
	gs := gstack.New(gstack.Options{
		NetworkProtocols:   []gstack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []gstack.TransportProtocolFactory{gtcp.NewProtocol},
	})
	t.Cleanup(func() {
		gs.Close()
		gs.Wait() // removes the NIC: closes the Endpoint and the AF_XDP link
	})
	const nic = 1
	if err := gs.CreateNIC(nic, ep); err != nil {
		ep.Close()
		t.Fatalf("CreateNIC: %v", err)
	}
	if err := gs.AddProtocolAddress(nic, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(xn.wisp[0].As4()), PrefixLen: 24}},
		gstack.AddressProperties{}); err != nil {
		t.Fatalf("AddProtocolAddress: %v", err)
	}
	gs.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nic}})

	n := scaled[int64](64<<20, 8<<20)
	const seedKernel, seedGVisor = 101, 102
	ctx, deadline := withDeadline(t, 60*time.Second)
	l := xn.a.listen(t, "tcp4", netip.AddrPortFrom(xn.kern[0], 5500))
	kres := kernelServe(t, l, n, seedKernel, deadline)
	var gep tcpip.Endpoint
	stacktest.OnFail(t,
		stacktest.Side{Name: "gVisor on wisp's AF_XDP link", More: func(w io.Writer) {
			if gep != nil {
				fmt.Fprintf(w, "gVisor endpoint: state %v, %+v\n", gtcp.EndpointState(gep.State()), gep.Stats())
			}
			st := gs.Stats().TCP
			fmt.Fprintf(w, "gVisor TCP: segments sent %d, received %d, retransmits %d, invalid %d\n",
				st.SegmentsSent.Value(), st.ValidSegmentsReceived.Value(), st.Retransmits.Value(), st.InvalidSegmentsReceived.Value())
			fmt.Fprintf(w, "adapter: %+v\n", ep.Stats())
			writeQueues(w, x.DeviceStats(nil))
		}},
		stacktest.Side{Name: "kernel (namespace " + xn.a.name + ")", More: xn.a.writeKernel})

	start := time.Now()
	c, err := gvDialTCP(ctx, gs, netip.AddrPortFrom(xn.kern[0], 5500), &gep)
	if err != nil {
		t.Fatalf("gVisor dials the kernel: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(deadline)
	werr := make(chan error, 1)
	go func() {
		_, err := io.CopyN(c, tcpapp.NewPattern(seedGVisor), n)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	got, rerr := io.Copy(h, c)
	if err := errors.Join(rerr, <-werr); err != nil {
		t.Fatalf("gVisor side: %v (received %d bytes)", err, got)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	if got != n || sum != patternSum(n, seedKernel) {
		t.Fatalf("gVisor received %d bytes (sha256 %x), want %d", got, sum[:8], n)
	}
	checkPeer(t, "gVisor→kernel", <-kres, n, patternSum(n, seedGVisor))
	logRate(t, "gVisor ⇄ kernel over wisp's AF_XDP link (each way)", n, time.Since(start))
	st := gs.Stats().TCP
	t.Logf("gVisor TCP: %d segments sent, %d retransmitted, %d received; adapter: %+v",
		st.SegmentsSent.Value(), st.Retransmits.Value(), st.ValidSegmentsReceived.Value(), ep.Stats())
}

// gvDialTCP connects gVisor's TCP to raddr (IPv4) and stores the endpoint in *ep.
func gvDialTCP(ctx context.Context, s *gstack.Stack, raddr netip.AddrPort, ep *tcpip.Endpoint) (*gonet.TCPConn, error) {
	var wq waiter.Queue
	e, terr := s.NewEndpoint(gtcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, fmt.Errorf("endpoint: %v", terr)
	}
	*ep = e
	we, ch := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&we)
	defer wq.EventUnregister(&we)
	terr = e.Connect(tcpip.FullAddress{Addr: tcpip.AddrFrom4(raddr.Addr().As4()), Port: raddr.Port()})
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ch:
			terr = e.LastError()
		case <-ctx.Done():
			e.Close()
			return nil, ctx.Err()
		}
	}
	if terr != nil {
		e.Close()
		return nil, fmt.Errorf("connect %v: %v", raddr, terr)
	}
	return gonet.NewTCPConn(&wq, e), nil
}

// startServeXDP runs `bin serve --xdp vB args...` (bin: buildWisp's) in n's namespace b
// and waits until it serves. The process is killed at cleanup.
func startServeXDP(t *testing.T, bin string, n *xdpNet, args ...string) *servedWisp {
	t.Helper()
	s := &servedWisp{out: newSyncBuffer()}
	c := n.b.cmd(append([]string{bin, "serve", "--xdp", "vB"}, args...)...)
	c.Stdout, c.Stderr = s.out, s.out
	s.proc = startProc(t, c)
	s.onFail(t)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.out.String(), "serving on") {
		select {
		case <-s.done:
			if strings.Contains(s.out.String(), "address family not supported") {
				requireXDP(t, syscall.EAFNOSUPPORT)
			}
			t.Fatalf("wisp serve --xdp exited (%v):\n%s", s.err, s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("wisp serve --xdp did not start:\n%s", s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// `wisp serve --xdp vB` in wisp's namespace, with one queue and with --queues 2 --cores 2:
// the kernel pings it, gets its bytes echoed exactly and pours bytes into discard (IPv4
// and IPv6), gets UDP datagrams echoed, and still reaches the host's own address; the
// program is on vB while it runs and gone when it exits, and its exit stats show the
// link and the device's counters. Then bad input (testWispServeXDPBadInput), with the same
// binary.
func TestWispServeXDP(t *testing.T) {
	requireTool(t, "ping")
	bin := buildWisp(t)
	for i, c := range []struct {
		name   string
		queues int
		args   []string
	}{
		{"1-queue", 1, nil},
		{"2-queues-2-cores", 2, []string{"--queues", "2", "--cores", "2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			xn := newXDPNet(t, xdpSubnetServe+i, c.queues)
			args := append([]string{"--addr", netip.PrefixFrom(xn.wisp[0], 24).String(), "--addr", netip.PrefixFrom(xn.wisp[1], 64).String(),
				"--echo", "7", "--discard", "9", "--udp-echo", "7"}, c.args...)
			srv := startServeXDP(t, bin, xn, args...)
			if on, out := xn.xdpAttached(t); !on {
				t.Fatalf("wisp serve --xdp runs, but vB shows no XDP program:\n%s", out)
			}
			if i == 0 {
				kernelPings(t, xn.a, xn.wisp[0].String(), xn.wisp[1].String())
			}

			n := scaled[int64](32<<20, 4<<20)
			_, deadline := withDeadline(t, 60*time.Second)
			for _, f := range families {
				start := time.Now()
				conn := xn.a.dial(t, f.net, netip.AddrPortFrom(xn.wisp[f.idx], 7))
				checkPeer(t, f.name+" echo", kernelPeer(conn, n, 111, deadline), n, patternSum(n, 111))
				logRate(t, f.name+" wisp serve --xdp echo (each way)", n, time.Since(start))
				start = time.Now()
				conn = xn.a.dial(t, f.net, netip.AddrPortFrom(xn.wisp[f.idx], 9))
				checkPeer(t, f.name+" discard", kernelPeer(conn, n, 112, deadline), 0, patternSum(0, 0))
				logRate(t, f.name+" wisp serve --xdp discard", n, time.Since(start))

				var uc net.Conn
				var err error
				xn.a.do(t, func() {
					uc, err = net.Dial([]string{"udp4", "udp6"}[f.idx], netip.AddrPortFrom(xn.wisp[f.idx], 7).String())
				})
				if err != nil {
					t.Fatal(err)
				}
				for k, size := range []int{5, 1400, 3000, 65000} {
					b := make([]byte, size)
					tcpapp.FillPattern(b, uint64(k), 0)
					if got, err := udpRoundTrip(uc, b, 10); err != nil || !bytes.Equal(got, b) {
						uc.Close()
						t.Fatalf("%s udp echo, %d bytes: %v; %d bytes back", f.name, size, err, len(got))
					}
				}
				uc.Close()
			}
			pingOK(t, xn.a, xn.host, "the host's own address, while wisp serves")

			srv.stop(t)
			xn.noXDP(t)
			s := srv.out.String()
			wants := []string{"vB (ifindex", "copy", fmt.Sprintf("%d queues", c.queues), "serving on vB",
				"AF_XDP", "tcp echo on port 7", "udp echo on port 7", "PassiveOpens", "device vB:", "RxPackets", "TxKicks"}
			for q := range c.queues {
				if c.queues > 1 { // the exit stats print each queue of a multi-queue device
					wants = append(wants, fmt.Sprintf("queue %d:", q))
				}
			}
			for _, want := range wants {
				if !strings.Contains(s, want) {
					t.Errorf("wisp serve --xdp output lacks %q:\n%s", want, s)
				}
			}
		})
	}
	t.Run("bad-input", func(t *testing.T) { testWispServeXDPBadInput(t, bin) })
}

// Wrong command lines for --xdp exit with status 2 and say what is wrong; an interface that
// does not exist, missing privileges (root without capabilities; as a user, when the test
// runs as one) and a second wisp on a bound interface exit with status 1 and a clear
// error, leaving nothing attached and the first wisp serving. A wisp killed
// with SIGKILL leaves nothing attached either: the program hangs on a BPF link, which the
// kernel removes with the process's descriptors.
func testWispServeXDPBadInput(t *testing.T, bin string) {
	base := []string{"serve", "--xdp", "vB", "--addr", "198.18.0.1/24"}
	checkBadFlags(t, bin, base, []badFlags{
		{[]string{"--tun", "wisp9"}, "--tun, --tap and --xdp exclude each other"},
		{[]string{"--mtu", "9000"}, "--mtu is for --tun, not --xdp"},
		{[]string{"--no-offload"}, "--no-offload is for --tun, not --xdp"},
		{[]string{"--pcap", "/dev/null"}, "--pcap is for --tun, not --xdp"},
		{[]string{"--queues", "0"}, "--queues 0 out of range"},
		{[]string{"--cores", "0"}, "--cores 0 out of range"},
	})
	checkBadFlags(t, bin, []string{"serve", "--xdp", "vB"}, []badFlags{{nil, "at least one --addr"}})
	if os.Geteuid() != 0 {
		out, err := exec.Command(bin, "serve", "--xdp", "lo", "--addr", "198.18.0.1/24").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "root") {
			t.Errorf("serve --xdp without privileges: %v\n%s", err, out)
		}
		return
	}
	xn := newXDPNet(t, xdpSubnetBad, 1)
	runFail := func(want string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		argv := append([]string{bin, "serve"}, args...)
		if args[len(args)-1] == "--setpriv" {
			argv = append([]string{requireTool(t, "setpriv"), "--bounding-set=-all", "--inh-caps=-all"}, argv[:len(argv)-1]...)
		}
		c := xn.b.cmd(argv...)
		c = exec.CommandContext(ctx, c.Path, c.Args[1:]...)
		out, err := c.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("%v: exit %v, want 1\n%s", args, err, out)
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("%v: output lacks %q:\n%s", args, want, out)
		}
	}
	runFail("no such interface", "--xdp", "nosuch0", "--addr", "198.18.0.1/24")
	// Root without capabilities (an empty bounding set: a uid-0 program execs with none).
	runFail("run wisp as root", "--xdp", "vB", "--addr", "198.18.0.1/24", "--setpriv")
	xn.noXDP(t)
	// vB is taken by a first wisp: a second one fails and the first keeps serving.
	first := startServeXDP(t, bin, xn, "--addr", netip.PrefixFrom(xn.wisp[0], 24).String())
	runFail("device or resource busy", "--xdp", "vB", "--addr", netip.PrefixFrom(xn.wisp[0], 24).String())
	kernelPings(t, xn.a, xn.wisp[0].String())
	first.stop(t)
	xn.noXDP(t)

	killed := startServeXDP(t, bin, xn, "--addr", netip.PrefixFrom(xn.wisp[0], 24).String())
	if on, out := xn.xdpAttached(t); !on {
		t.Fatalf("vB shows no XDP program while wisp serves:\n%s", out)
	}
	killed.cmd.Process.Kill()
	<-killed.done
	xn.noXDP(t)
}

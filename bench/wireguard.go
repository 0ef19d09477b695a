package main

// The WireGuard scenarios (wg/*, wg-udp/*): two wireguard-go devices in this process, peer A
// (198.18.0.1) and peer B (198.18.0.2), each over a userspace stack behind wireguard-go's
// tun.Device — the way wireproxy, netbird's netstack mode and wiretap embed a stack:
//
//	A's stack ─tun─▶ wireguard-go A ─encrypt─▶ bind ══ UDP ══▶ bind ─decrypt─▶ wireguard-go B ─tun─▶ B's stack
//
//	wisp:     adapter/wireguard.CreateNetTUN on both peers (its default: opt.Client(), batch 4;
//	          a scenario holding more connections than Client's 64 PCBs raises MempNumTCPPCB)
//	netstack: golang.zx2c4.com/wireguard/tun/netstack.CreateNetTUN on both peers (the real
//	          package at the version go.mod pins: gVisor as wireguard-go sets it up, gonet)
//
// Everything but the stack is the same for both: wireguard-go at the pinned version, keys,
// MTU, the bind. The shared link (link.go) is not in the path: the tunnel is the link.
//
// The bind ("loopback UDP"):
//   - wg/*: conn/bindtest's channel binds (NewChannelBinds): the encrypted datagrams go
//     through a Go channel of 8192 per direction, one allocation and one copy per datagram,
//     no socket. Runs anywhere, without root. The default.
//   - wg-udp/*: conn.NewDefaultBind (real UDP sockets, with GSO/GRO where the kernel has
//     them) on 127.0.0.1, inside a network namespace the harness creates (wispbench-PID-wg,
//     only lo up) and always deletes. Needs root and ip(8), like the kernel engine.

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/netstack"

	wgwisp "github.com/wispstack/wisp/adapter/wireguard"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
)

// wgBind selects the wireguard-go bind of a WireGuard network (netConfig.WireGuard).
type wgBind int

const (
	wgNone    wgBind = iota // not a WireGuard scenario
	wgChannel               // conn/bindtest channel binds
	wgUDP                   // real UDP on 127.0.0.1 inside a namespace
)

func (b wgBind) String() string {
	switch b {
	case wgChannel:
		return "conn/bindtest channel binds"
	case wgUDP:
		return "UDP on 127.0.0.1 in namespace " + wgNSName
	}
	return "none"
}

// wgSkip says why an engine does not run the WireGuard scenarios: only the two stacks
// wireguard-go can embed do (tun/netstack has no knob for the tuned column; the kernel's
// WireGuard is another program).
func wgSkip(b wgBind) func(e engine) string {
	return func(e engine) string {
		switch e.name() {
		case "wisp", "netstack":
		case "netstack-tuned":
			return "n/a (tun/netstack exposes no stack to tune)"
		default:
			return "n/a (a userspace WireGuard scenario)"
		}
		if b == wgUDP {
			if why := (kernelEngine{}).missing(); why != "" {
				return "n/a (" + why + ")"
			}
		}
		return ""
	}
}

// wgNet is a WireGuard network: two wireguard-go devices over two stacks of one kind.
type wgNet struct {
	wisp   bool
	bind   wgBind
	adjust []string
	devs   [2]*device.Device
	tuns   [2]tun.Device // closed by their device once it exists
	wnets  [2]*wgwisp.Net
	snets  [2]*netstack.Net
	ns     *namespace
	// pkts counts the packets the stacks sent into the tunnel (read from both TUNs).
	pkts atomic.Uint64
	// heap0 and rss0 are the process's live heap and resident set before anything of this
	// network existed: the memory rows are growth over them.
	heap0 uint64
	rss0  int64
}

// openWG builds the two peers of a WireGuard network with wisp's or netstack's stack.
func openWG(wisp bool, cfg netConfig) (network, error) {
	n := &wgNet{wisp: wisp, bind: cfg.WireGuard}
	n.heap0 = settledHeap()
	n.rss0 = rss()
	var binds [2]wgconn.Bind
	switch cfg.WireGuard {
	case wgChannel:
		binds = bindtest.NewChannelBinds()
	case wgUDP:
		ns, err := newNamespace(wgNSName)
		if err != nil {
			return nil, err
		}
		n.ns = ns
		for i := range binds {
			binds[i] = &nsBind{Bind: wgconn.NewDefaultBind(), ns: ns}
		}
	default:
		return nil, fmt.Errorf("not a WireGuard network")
	}
	keys, err := wgKeys()
	if err != nil {
		n.close()
		return nil, err
	}
	addrs := [2]netip.Addr{addrA, addrB}
	for i := range n.devs {
		var td tun.Device
		var err error
		switch o := opt.Client(); {
		case wisp && cfg.Conns+64 > o.MempNumTCPPCB:
			// Client fits a WireGuard client's tens of connections; a scenario holding
			// hundreds gets the server preset, as such a user would choose. (Client with
			// only MempNumTCPPCB raised starves new connections beside 200 stalled ones:
			// 512 POOL pbufs cannot give 264 PCBs a share; see RESULTS.md, issue 15.)
			o = opt.Tunnel()
			if i == 0 {
				n.adjust = append(n.adjust, fmt.Sprintf("opt.Tunnel() instead of CreateNetTUN's opt.Client() (the scenario holds %d connections; Client has %d PCBs)",
					cfg.Conns, opt.Client().MempNumTCPPCB))
			}
			td, n.wnets[i], err = wgwisp.CreateNetTUNWithOptions([]netip.Addr{addrs[i]}, nil, cfg.MTU, wgwisp.Options{Stack: o})
		case wisp:
			td, n.wnets[i], err = wgwisp.CreateNetTUN([]netip.Addr{addrs[i]}, nil, cfg.MTU)
		default:
			td, n.snets[i], err = netstack.CreateNetTUN([]netip.Addr{addrs[i]}, nil, cfg.MTU)
		}
		if err != nil {
			n.close()
			return nil, err
		}
		n.tuns[i] = td
		n.devs[i] = device.NewDevice(countingTUN{td, &n.pkts}, binds[i], device.NewLogger(device.LogLevelSilent, ""))
		uapi := fmt.Sprintf("private_key=%s\nlisten_port=0\npublic_key=%s\nallowed_ip=%s/32\n",
			hex.EncodeToString(keys[i].priv), hex.EncodeToString(keys[1-i].pub), addrs[1-i])
		if cfg.WireGuard == wgChannel {
			// bindtest's endpoints are numbers: A reaches B as 1, B reaches A as 2
			// (NewChannelBinds' target4 of each side).
			uapi += fmt.Sprintf("endpoint=127.0.0.1:%d\n", i+1)
		}
		if err := n.devs[i].IpcSet(uapi); err != nil {
			n.close()
			return nil, fmt.Errorf("wireguard-go config %d: %w", i, err)
		}
		// The TUN's EventUp brings the device up too; Up is idempotent, and doing it here
		// opens the bind now (for the UDP bind: its port).
		if err := n.devs[i].Up(); err != nil {
			n.close()
			return nil, fmt.Errorf("wireguard-go up %d: %w", i, err)
		}
	}
	if cfg.WireGuard == wgUDP {
		for i := range n.devs {
			port := binds[1-i].(*nsBind).port.Load()
			if port == 0 {
				n.close()
				return nil, fmt.Errorf("wireguard-go %d: bind has no port", 1-i)
			}
			uapi := fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%d\n", hex.EncodeToString(keys[1-i].pub), port)
			if err := n.devs[i].IpcSet(uapi); err != nil {
				n.close()
				return nil, fmt.Errorf("wireguard-go endpoint %d: %w", i, err)
			}
		}
	}
	return n, nil
}

type wgKey struct{ priv, pub []byte }

// wgKeys generates two Curve25519 key pairs (crypto/ecdh clamps as WireGuard does).
func wgKeys() ([2]wgKey, error) {
	var ks [2]wgKey
	for i := range ks {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return ks, err
		}
		ks[i] = wgKey{priv: k.Bytes(), pub: k.PublicKey().Bytes()}
	}
	return ks, nil
}

func (n *wgNet) listen(port uint16) (listener, error) {
	ap := netip.AddrPortFrom(addrB, port)
	var l net.Listener
	var err error
	if n.wisp {
		l, err = n.wnets[1].ListenTCPAddrPort(ap)
	} else {
		l, err = n.snets[1].ListenTCPAddrPort(ap)
	}
	if err != nil {
		return nil, err
	}
	return netListener{l}, nil
}

func (n *wgNet) dial(port uint16) (conn, error) {
	ap := netip.AddrPortFrom(addrB, port)
	var c net.Conn
	var err error
	if n.wisp {
		c, err = n.wnets[0].DialTCPAddrPort(ap)
	} else {
		c, err = n.snets[0].DialTCPAddrPort(ap)
	}
	if err != nil {
		return nil, err
	}
	return netConn{c}, nil
}

func (n *wgNet) listenUDP(uint16) (packetConn, error) {
	return nil, notAvailable("no UDP scenario through the tunnel")
}

func (n *wgNet) dialUDP(uint16) (packetConn, error) {
	return nil, notAvailable("no UDP scenario through the tunnel")
}

func (n *wgNet) packets() uint64 { return n.pkts.Load() }

// countingTUN counts the packets wireguard-go reads from a TUN: one atomic add per batch,
// the same for both stacks. It adds no other behaviour (wireguard-go asserts no optional
// interface on its tun.Device).
type countingTUN struct {
	tun.Device
	n *atomic.Uint64
}

func (c countingTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	k, err := c.Device.Read(bufs, sizes, offset)
	if k > 0 {
		c.n.Add(uint64(k))
	}
	return k, err
}

// linkSummary reports what wisp's TUN devices passed and dropped (netstack's count nothing).
func (n *wgNet) linkSummary() string {
	if !n.wisp {
		return ""
	}
	var s []string
	for i, td := range n.tuns {
		if d, ok := td.(*wgwisp.Device); ok {
			tx, txd, rx, rxd := d.Stats()
			s = append(s, fmt.Sprintf("%c: tun read %d (dropped %d), written %d (dropped %d)", 'A'+i, tx, txd, rx, rxd))
		}
	}
	return strings.Join(s, "; ")
}

// memory sums both wisp stacks' pools and heap, as wispNet.memory does.
func (n *wgNet) memory() engineMemory {
	var m engineMemory
	if !n.wisp {
		return m
	}
	for _, wn := range n.wnets {
		if wn != nil {
			m.add(wn.Stack())
		}
	}
	return m
}

// add counts one wisp stack's pool and heap bytes in use and its reservation.
func (m *engineMemory) add(s *stack.Stack) {
	snap := s.Stats()
	m.InUse += int64(snap.Heap.Used)
	for _, p := range snap.Pools {
		m.InUse += int64(p.Used) * int64(p.Size)
		if p.Name == "TCP_PCB" {
			m.PCBSize = int64(p.Size)
			m.PCBSlots += int64(p.Avail)
		}
	}
	m.Reserved += int64(s.Budget().Total)
}

func (n *wgNet) notes() []string {
	return append([]string{"WireGuard: two wireguard-go devices in this process over " + n.bind.String()}, n.adjust...)
}

// close closes the devices (each closes its TUN, and with it the stack) and the namespace,
// once the tunnel has gone quiet. tun/netstack's Close closes the unbuffered channel its
// stack's sends block on (tun.go: WriteNotify sends, Close closes), so a FIN or RST gVisor
// is still sending when the device closes races with the close and can panic ("send on
// closed channel") in a gVisor goroutine; the race detector flags it. Waiting until no
// packet has crossed either TUN for 100 ms (at most 2 s) keeps the closing handshakes the
// scenario started out of that window. Both stacks get the same wait.
func (n *wgNet) close() error {
	last, still := n.pkts.Load(), 0
	for deadline := time.Now().Add(2 * time.Second); still < 5 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if p := n.pkts.Load(); p != last {
			last, still = p, 0
		} else {
			still++
		}
	}
	for i := range n.devs {
		switch {
		case n.devs[i] != nil:
			n.devs[i].Close()
		case n.tuns[i] != nil:
			n.tuns[i].Close()
		}
	}
	if n.ns != nil {
		n.ns.close()
	}
	return nil
}

// rss returns the process's resident set in bytes (0 if unknown).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// nsBind is a conn.Bind whose sockets are opened inside the harness's namespace, whichever
// goroutine opens them (wireguard-go opens the bind from its own goroutines too), and which
// remembers the port it got.
type nsBind struct {
	wgconn.Bind
	ns   *namespace
	port atomic.Uint32
}

func (b *nsBind) Open(port uint16) (fns []wgconn.ReceiveFunc, actual uint16, err error) {
	err = b.ns.in(func() error {
		var err error
		fns, actual, err = b.Bind.Open(port)
		return err
	})
	if err == nil {
		b.port.Store(uint32(actual))
	}
	return fns, actual, err
}

package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"io"
	"net/netip"
	"time"

	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/device"

	wgtun "github.com/wispstack/wisp/adapter/wireguard"
	"github.com/wispstack/wisp/internal/ping"
	"github.com/wispstack/wisp/internal/wgconf"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
)

// wgPeer is one side of the WireGuard demo: a wireguard-go device over a wisp stack.
type wgPeer struct {
	dev  *device.Device
	net  *wgtun.Net
	addr [2]netip.Addr // IPv4, IPv6 inside the tunnel
}

// newWgPair makes two wireguard-go devices, each over a wisp stack, joined by
// wireguard-go's in-memory channel binds (conn/bindtest): the encrypted UDP datagrams
// move through Go channels, not sockets, so the demo runs anywhere and needs no
// privileges. Close both devices to stop everything.
func newWgPair(o opt.Options, mtu int) (p [2]*wgPeer, err error) {
	var keys [2]wgconf.Key
	var pubs [2]wgconf.Key
	for i := range keys {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return p, err
		}
		keys[i] = wgconf.Key(k.Bytes())
		pubs[i] = wgconf.Key(k.PublicKey().Bytes())
	}
	binds := bindtest.NewChannelBinds()
	defer func() {
		if err != nil {
			for _, q := range p {
				if q != nil {
					q.dev.Close()
				}
			}
		}
	}()
	for i := range p {
		q := &wgPeer{addr: [2]netip.Addr{
			netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}),
			netip.AddrFrom16([16]byte{0xfd, 0x42, 0x5e, 0xed, 15: byte(i + 1)}),
		}}
		tdev, tnet, err := wgtun.CreateNetTUNWithOptions(q.addr[:], nil, mtu, wgtun.Options{Stack: o})
		if err != nil {
			return p, err
		}
		q.net = tnet
		q.dev = device.NewDevice(tdev, binds[i], device.NewLogger(device.LogLevelError, fmt.Sprintf("wisp demo: peer %c: ", 'a'+i)))
		p[i] = q
	}
	for i, q := range p {
		other := p[1-i]
		cfg := wgconf.Config{PrivateKey: keys[i], Peers: []wgconf.Peer{{
			PublicKey: pubs[1-i],
			// A channel bind's endpoints are numbered 1..4 and spelled as 127.0.0.1:N;
			// N=1 (peer a) and N=2 (peer b) name the other side's IPv4 channel. No
			// socket is opened.
			EndpointAddr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(i+1)),
			AllowedIPs: []netip.Prefix{
				netip.PrefixFrom(other.addr[0], 32), netip.PrefixFrom(other.addr[1], 128)},
		}}}
		if err := q.dev.IpcSet(cfg.UAPI()); err != nil {
			return p, fmt.Errorf("peer %c: %w", 'a'+i, err)
		}
		if err := q.dev.Up(); err != nil {
			return p, fmt.Errorf("peer %c: %w", 'a'+i, err)
		}
	}
	return p, nil
}

// wgDemo runs the WireGuard demo: two peers in this process, pings through the tunnel,
// a TCP transfer of mib MiB checked by sha256, and wisp's memory budget.
func wgDemo(stdout io.Writer, o opt.Options, presetName string, count, mib int) error {
	const mtu = 1420
	p, err := newWgPair(o, mtu)
	if err != nil {
		return err
	}
	defer func() {
		for _, q := range p {
			q.dev.Close() // closes the TUN device, which closes the stack
		}
	}()
	a, b := p[0], p[1]
	fmt.Fprintf(stdout, "two WireGuard peers in this process (wireguard-go, each over a wisp stack, preset %q, MTU %d),\n"+
		"their encrypted datagrams carried by in-memory channels: a %v %v, b %v %v\n\n",
		presetName, mtu, a.addr[0], a.addr[1], b.addr[0], b.addr[1])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sa, sb := a.net.Stack(), b.net.Stack()
	for fam, dst := range b.addr {
		err := ping.Run(ctx, a.net, dst, 56, count, func(seq int, rtt time.Duration) {
			note := ""
			if fam == 0 && seq == 1 {
				note = "  (includes the WireGuard handshake)"
			}
			fmt.Fprintf(stdout, "64 bytes from %v: seq=%d time=%v%s\n", dst, seq, rtt.Round(time.Microsecond), note)
		})
		if err != nil {
			return fmt.Errorf("ping %v through the tunnel: %w", dst, err)
		}
	}
	if mib > 0 {
		fmt.Fprintln(stdout)
		if err := demoTCP(ctx, stdout, sa, sb, b.addr[0], int64(mib)<<20); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "\nwisp's memory budget, per peer (reserved when the stack starts; it never grows,\nhowever many connections or bytes go through):\n\n")
	if err := a.net.Budget().WriteTable(stdout); err != nil {
		return err
	}
	return demoSummary(stdout, sa, sb)
}

// demoSummary prints a line of counters per stack: what went through and what was lost.
func demoSummary(w io.Writer, stacks ...*stack.Stack) error {
	fmt.Fprintln(w)
	for i, s := range stacks {
		snap := s.Stats()
		fmt.Fprintf(w, "peer %c: TCP segments sent %d, received %d, retransmitted %d; peak heap use %d of %d bytes\n",
			'a'+i, snap.TCP.Xmit, snap.TCP.Recv, snap.TCPExt.Retransmits, snap.Heap.Max, snap.Heap.Avail)
	}
	return nil
}

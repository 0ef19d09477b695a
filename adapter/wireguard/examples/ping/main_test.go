package main

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"golang.zx2c4.com/wireguard/tun/netstack"

	wisp "github.com/wispstack/wisp/adapter/wireguard"
	"github.com/wispstack/wisp/adapter/wireguard/internal/wgtest"
	"github.com/wispstack/wisp/endpoint/dns/dnstest"
	"github.com/wispstack/wisp/stack/stacktest"
)

// TestPing pings, by name, a wisp peer and a gVisor netstack peer (DNS served by the
// peer), over two in-process wireguard-go devices.
func TestPing(t *testing.T) {
	for _, peer := range []string{"wisp", "netstack"} {
		t.Run(peer, func(t *testing.T) {
			stacktest.NoGoroutineLeak(t)
			myPriv, myPub := wgtest.Keypair(t)
			peerPriv, peerPub := wgtest.Keypair(t)
			peerAddr := netip.MustParseAddr("198.18.4.29")
			binds := wgtest.Binds()
			uapi := fmt.Sprintf("private_key=%s\npublic_key=%s\nallowed_ip=198.18.4.30/32\n", peerPriv, myPub)
			var pc net.PacketConn
			if peer == "wisp" {
				tun, tnet, err := wisp.CreateNetTUN([]netip.Addr{peerAddr}, nil, 1420)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { stacktest.PoolsZero(t, tnet.Stack()) }) // after the device closes
				wgtest.Up(t, tun, binds[1], uapi)
				if pc, err = tnet.ListenUDP(&net.UDPAddr{Port: 53}); err != nil {
					t.Fatal(err)
				}
			} else {
				tun, tnet, err := netstack.CreateNetTUN([]netip.Addr{peerAddr}, nil, 1420)
				if err != nil {
					t.Fatal(err)
				}
				wgtest.Up(t, tun, binds[1], uapi)
				if pc, err = tnet.ListenUDP(&net.UDPAddr{Port: 53}); err != nil {
					t.Fatal(err)
				}
			}
			(&dnstest.Server{Zone: map[string][]netip.Addr{"peer.wisp.test.": {peerAddr}}}).ServeUDP(t, pc)
			rtt, err := ping(binds[0], config{
				addr: netip.MustParseAddr("198.18.4.30"), dns: peerAddr,
				privateKey: myPriv, peerKey: peerPub, endpoint: wgtest.Endpoint0, host: "peer.wisp.test",
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("ping through the tunnel: %v", rtt)
		})
	}
}

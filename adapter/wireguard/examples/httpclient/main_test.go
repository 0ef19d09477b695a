package main

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	netstack "github.com/wispstack/wisp/adapter/wireguard"
	"github.com/wispstack/wisp/adapter/wireguard/internal/wgtest"
	"github.com/wispstack/wisp/endpoint/dns/dnstest"
	"github.com/wispstack/wisp/stack/stacktest"
)

// TestFetch runs the example's client against a wisp peer serving HTTP and DNS, over two
// in-process wireguard-go devices.
func TestFetch(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	clientPriv, clientPub := wgtest.Keypair(t)
	serverPriv, serverPub := wgtest.Keypair(t)
	serverAddr := netip.MustParseAddr("198.18.4.29")
	binds := wgtest.Binds()

	tun, tnet, err := netstack.CreateNetTUN([]netip.Addr{serverAddr}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stacktest.PoolsZero(t, tnet.Stack()) }) // after the device closes
	wgtest.Up(t, tun, binds[1], fmt.Sprintf("private_key=%s\npublic_key=%s\nallowed_ip=198.18.4.28/32\n", serverPriv, clientPub))
	pc, err := tnet.ListenUDP(&net.UDPAddr{Port: 53})
	if err != nil {
		t.Fatal(err)
	}
	(&dnstest.Server{Zone: map[string][]netip.Addr{"server.wisp.test.": {serverAddr}}}).ServeUDP(t, pc)
	l, err := tnet.ListenTCP(&net.TCPAddr{Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.RemoteAddr)
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })

	body, err := fetch(binds[0], config{
		addr: netip.MustParseAddr("198.18.4.28"), dns: serverAddr,
		privateKey: clientPriv, peerKey: serverPub, endpoint: wgtest.Endpoint0,
		url: "http://server.wisp.test/",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(body, "hello 198.18.4.28:") {
		t.Errorf("body %q", body)
	}
}

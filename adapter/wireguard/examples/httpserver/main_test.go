package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"testing"
	"time"

	netstack "github.com/wispstack/wisp/adapter/wireguard"
	"github.com/wispstack/wisp/adapter/wireguard/internal/wgtest"
	"github.com/wispstack/wisp/stack/stacktest"
)

// TestServe runs the example's server and fetches its page from a wisp peer, over two
// in-process wireguard-go devices.
func TestServe(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	clientPriv, clientPub := wgtest.Keypair(t)
	serverPriv, serverPub := wgtest.Keypair(t)
	binds := wgtest.Binds()

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- serve(ctx, binds[1], config{
			addr: netip.MustParseAddr("198.18.4.29"), privateKey: serverPriv, peerKey: clientPub,
			listenPort: 58120, allowedIP: netip.MustParsePrefix("198.18.4.28/32"), keepalive: 25,
		})
	}()

	tun, tnet, err := netstack.CreateNetTUN([]netip.Addr{netip.MustParseAddr("198.18.4.28")}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stacktest.PoolsZero(t, tnet.Stack()) }) // after the device closes
	wgtest.Up(t, tun, binds[0], fmt.Sprintf("private_key=%s\npublic_key=%s\nendpoint=%s\nallowed_ip=0.0.0.0/0\n",
		clientPriv, serverPub, wgtest.Endpoint0))

	tr := &http.Transport{DialContext: tnet.DialContext}
	defer tr.CloseIdleConnections()
	client := http.Client{Transport: tr, Timeout: 5 * time.Second}
	var body []byte
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := client.Get("http://198.18.4.29/")
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) { // the server may not listen yet: retry a while
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if string(body) != "Hello from userspace TCP on wisp!" {
		t.Errorf("body %q", body)
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}

// Command httpclient fetches a page through a userspace WireGuard tunnel: the shape of
// wireguard-go's tun/netstack HTTP client example, on wisp. Only the import of netstack
// differs from a program written for wireguard-go's netstack.
//
// By default it pairs with the httpserver example on this machine.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	netstack "github.com/wispstack/wisp/adapter/wireguard"
)

type config struct {
	addr, dns                     netip.Addr
	privateKey, peerKey, endpoint string
	url                           string
}

func main() {
	addr := flag.String("addr", "198.18.4.28", "this peer's tunnel address")
	dns := flag.String("dns", "198.18.4.29", "DNS server, reached through the tunnel")
	key := flag.String("key", "21936e79cb995e9ec981e4b1c25a112ea8cb25de153bf2008e482bb5889c312b", "private key (hex)")
	peer := flag.String("peer", "102b430b8f1d6ae51a097754ccffd636410a9d85e23cc321841f2b8197d55a62", "the server's public key (hex)")
	endpoint := flag.String("endpoint", "127.0.0.1:58120", "the server's UDP endpoint")
	url := flag.String("url", "http://198.18.4.29/", "page to fetch")
	flag.Parse()
	body, err := fetch(conn.NewDefaultBind(), config{
		addr: netip.MustParseAddr(*addr), dns: netip.MustParseAddr(*dns),
		privateKey: *key, peerKey: *peer, endpoint: *endpoint, url: *url,
	})
	if err != nil {
		log.Panic(err)
	}
	log.Println(body)
}

// fetch brings the tunnel up on bind, GETs c.url through it and tears the tunnel down.
func fetch(bind conn.Bind, c config) (string, error) {
	tun, tnet, err := netstack.CreateNetTUN([]netip.Addr{c.addr}, []netip.Addr{c.dns}, 1420)
	if err != nil {
		return "", err
	}
	dev := device.NewDevice(tun, bind, device.NewLogger(device.LogLevelError, "client: "))
	defer dev.Close()
	err = dev.IpcSet(fmt.Sprintf("private_key=%s\npublic_key=%s\nendpoint=%s\nallowed_ip=0.0.0.0/0\n",
		c.privateKey, c.peerKey, c.endpoint))
	if err != nil {
		return "", err
	}
	if err := dev.Up(); err != nil {
		return "", err
	}
	transport := &http.Transport{DialContext: tnet.DialContext}
	defer transport.CloseIdleConnections()
	client := http.Client{Transport: transport}
	resp, err := client.Get(c.url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

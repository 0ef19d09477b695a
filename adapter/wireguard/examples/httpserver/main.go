// Command httpserver serves a page on port 80 of a userspace WireGuard tunnel: the shape
// of wireguard-go's tun/netstack HTTP server example, on wisp. Only the import of netstack
// differs from a program written for wireguard-go's netstack.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	netstack "github.com/wispstack/wisp/adapter/wireguard"
)

type config struct {
	addr                netip.Addr
	privateKey, peerKey string
	listenPort          int
	allowedIP           netip.Prefix
	keepalive           int
}

func main() {
	addr := flag.String("addr", "198.18.4.29", "this peer's tunnel address")
	key := flag.String("key", "881f19ceaaad5b61b180578d53e80109de51dbbaf7f565910ddec666bdf356d8", "private key (hex)")
	peer := flag.String("peer", "bb8a7262a35b177f922f801a81babdc8c67e18f97d6d6b5fc1b9f6111fb5431a", "the client's public key (hex)")
	port := flag.Int("port", 58120, "UDP port to listen on")
	allowed := flag.String("allowed", "198.18.4.28/32", "the client's tunnel addresses")
	flag.Parse()
	err := serve(context.Background(), conn.NewDefaultBind(), config{
		addr: netip.MustParseAddr(*addr), privateKey: *key, peerKey: *peer,
		listenPort: *port, allowedIP: netip.MustParsePrefix(*allowed), keepalive: 25,
	})
	if err != nil {
		log.Panic(err)
	}
}

// serve brings the tunnel up on bind and serves HTTP on it until ctx ends.
func serve(ctx context.Context, bind conn.Bind, c config) error {
	tun, tnet, err := netstack.CreateNetTUN([]netip.Addr{c.addr}, []netip.Addr{netip.MustParseAddr("8.8.8.8")}, 1420)
	if err != nil {
		return err
	}
	dev := device.NewDevice(tun, bind, device.NewLogger(device.LogLevelError, "server: "))
	defer dev.Close()
	err = dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=%d\npublic_key=%s\nallowed_ip=%s\npersistent_keepalive_interval=%d\n",
		c.privateKey, c.listenPort, c.peerKey, c.allowedIP, c.keepalive))
	if err != nil {
		return err
	}
	if err := dev.Up(); err != nil {
		return err
	}
	listener, err := tnet.ListenTCP(&net.TCPAddr{Port: 80})
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { listener.Close() })
	defer stop()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("> %s - %s - %s", r.RemoteAddr, r.URL, r.UserAgent())
		io.WriteString(w, "Hello from userspace TCP on wisp!")
	})
	err = http.Serve(listener, mux)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

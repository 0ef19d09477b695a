// Command ping sends one ICMP echo request through a userspace WireGuard tunnel to a host
// named through the tunnel's DNS and prints the round-trip time: the shape of
// wireguard-go's tun/netstack ping example, on wisp. Only the import of netstack differs
// from a program written for wireguard-go's netstack.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/netip"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	netstack "github.com/wispstack/wisp/adapter/wireguard"
)

type config struct {
	addr, dns                     netip.Addr
	privateKey, peerKey, endpoint string
	host                          string
}

func main() {
	addr := flag.String("addr", "198.18.4.30", "this peer's tunnel address")
	dns := flag.String("dns", "198.18.4.29", "DNS server, reached through the tunnel")
	key := flag.String("key", "5261955f43f1c15da9818d79a5a09a0abcd7abab3b4795939c0d7f9ee08b3792", "private key (hex)")
	peer := flag.String("peer", "102b430b8f1d6ae51a097754ccffd636410a9d85e23cc321841f2b8197d55a62", "the peer's public key (hex)")
	endpoint := flag.String("endpoint", "127.0.0.1:58120", "the peer's UDP endpoint")
	host := flag.String("host", "198.18.4.29", "host to ping (a name or an address)")
	flag.Parse()
	rtt, err := ping(conn.NewDefaultBind(), config{
		addr: netip.MustParseAddr(*addr), dns: netip.MustParseAddr(*dns),
		privateKey: *key, peerKey: *peer, endpoint: *endpoint, host: *host,
	})
	if err != nil {
		log.Panic(err)
	}
	log.Printf("Ping latency: %v", rtt)
}

// ping brings the tunnel up on bind, pings c.host once and tears the tunnel down.
func ping(bind conn.Bind, c config) (time.Duration, error) {
	tun, tnet, err := netstack.CreateNetTUN([]netip.Addr{c.addr}, []netip.Addr{c.dns}, 1420)
	if err != nil {
		return 0, err
	}
	dev := device.NewDevice(tun, bind, device.NewLogger(device.LogLevelError, "ping: "))
	defer dev.Close()
	err = dev.IpcSet(fmt.Sprintf("private_key=%s\npublic_key=%s\nendpoint=%s\nallowed_ip=0.0.0.0/0\n",
		c.privateKey, c.peerKey, c.endpoint))
	if err != nil {
		return 0, err
	}
	if err := dev.Up(); err != nil {
		return 0, err
	}
	socket, err := tnet.Dial("ping4", c.host)
	if err != nil {
		return 0, err
	}
	defer socket.Close()
	request := icmp.Echo{Seq: rand.IntN(1 << 16), Data: []byte("wisp in a tunnel")}
	msg, err := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &request}).Marshal(nil)
	if err != nil {
		return 0, err
	}
	if err := socket.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := socket.Write(msg); err != nil {
		return 0, err
	}
	buf := make([]byte, 1500)
	n, err := socket.Read(buf)
	if err != nil {
		return 0, err
	}
	rtt := time.Since(start)
	reply, err := icmp.ParseMessage(1, buf[:n])
	if err != nil {
		return 0, err
	}
	echo, ok := reply.Body.(*icmp.Echo)
	if !ok {
		return 0, fmt.Errorf("not an echo reply: %v", reply.Type)
	}
	if echo.Seq != request.Seq || !bytes.Equal(echo.Data, request.Data) {
		return 0, fmt.Errorf("reply does not match: seq %d, data %q", echo.Seq, echo.Data)
	}
	return rtt, nil
}

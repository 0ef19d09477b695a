package wireguard

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/wispstack/wisp/adapter/wireguard/internal/wgtest"
	"github.com/wispstack/wisp/endpoint/dns/dnstest"
	"github.com/wispstack/wisp/stack/stacktest"
)

// peerNet is what the end-to-end tests need of either stack, in package net's types.
type peerNet interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
	LookupHost(host string) ([]string, error)
	listenTCP(port int) (net.Listener, error)
	listenUDP(port int) (net.PacketConn, error)
	ping(dst netip.Addr) (net.Conn, error)
}

type wispNet struct{ *Net }

func (n wispNet) listenTCP(port int) (net.Listener, error) {
	return n.ListenTCP(&net.TCPAddr{Port: port})
}

func (n wispNet) listenUDP(port int) (net.PacketConn, error) {
	return n.ListenUDP(&net.UDPAddr{Port: port})
}

func (n wispNet) ping(dst netip.Addr) (net.Conn, error) { return n.DialPingAddr(netip.Addr{}, dst) }

type gvisorNet struct{ *netstack.Net }

func (n gvisorNet) listenTCP(port int) (net.Listener, error) {
	return n.ListenTCP(&net.TCPAddr{Port: port})
}

func (n gvisorNet) listenUDP(port int) (net.PacketConn, error) {
	return n.ListenUDP(&net.UDPAddr{Port: port})
}

func (n gvisorNet) ping(dst netip.Addr) (net.Conn, error) {
	return n.DialPingAddr(netip.Addr{}, dst)
}

// side is one end of a tunnel.
type side struct {
	addr netip.Addr
	tun  tun.Device
	net  peerNet
	wisp *Net // nil on the gVisor side
}

func newWispSide(t *testing.T, o Options, addr netip.Addr, dnsServers ...netip.Addr) side {
	t.Helper()
	td, n, err := CreateNetTUNWithOptions([]netip.Addr{addr}, dnsServers, 1420, o)
	if err != nil {
		t.Fatal(err)
	}
	return side{addr: addr, tun: td, net: wispNet{n}, wisp: n}
}

func newGvisorSide(t *testing.T, addr netip.Addr, dnsServers ...netip.Addr) side {
	t.Helper()
	td, n, err := netstack.CreateNetTUN([]netip.Addr{addr}, dnsServers, 1420)
	if err != nil {
		t.Fatal(err)
	}
	return side{addr: addr, tun: td, net: gvisorNet{n}}
}

// connectBinds brings up one wireguard-go device per tun, on the given binds, each the
// other's only peer (every address allowed), and closes them when the test ends.
func connectBinds(t testing.TB, tunA, tunB tun.Device, binds [2]conn.Bind) {
	t.Helper()
	privA, pubA := wgtest.Keypair(t)
	privB, pubB := wgtest.Keypair(t)
	wgtest.Up(t, tunA, binds[0], fmt.Sprintf("private_key=%s\npublic_key=%s\nendpoint=%s\nallowed_ip=0.0.0.0/0\nallowed_ip=::/0\n",
		privA, pubB, wgtest.Endpoint0))
	wgtest.Up(t, tunB, binds[1], fmt.Sprintf("private_key=%s\npublic_key=%s\nendpoint=%s\nallowed_ip=0.0.0.0/0\nallowed_ip=::/0\n",
		privB, pubA, wgtest.Endpoint1))
}

// pair connects a and b through two in-process wireguard-go devices and checks, when the
// test ends, that wisp's pools are back to zero and no goroutine is left.
func pair(t *testing.T, a, b func(t *testing.T) side) (side, side) {
	t.Helper()
	stacktest.NoGoroutineLeak(t)
	sa, sb := a(t), b(t)
	for _, s := range []side{sa, sb} {
		if s.wisp != nil {
			n := s.wisp
			t.Cleanup(func() { stacktest.PoolsZero(t, n.Stack()) }) // runs after the devices close
		}
	}
	connectBinds(t, sa.tun, sb.tun, wgtest.Binds())
	// After the devices: runs before they close.
	stacktest.OnFail(t, evidenceSide("A "+sa.addr.String(), sa.net), evidenceSide("B "+sb.addr.String(), sb.net))
	return sa, sb
}

// evidenceSide is n as stacktest.OnFail shows it: a wisp side its stack and device;
// wireguard-go's netstack keeps its gVisor stack to itself, so a netstack side nothing.
func evidenceSide(name string, n peerNet) stacktest.Side {
	if w, ok := n.(wispNet); ok {
		return stacktest.Side{Name: name + " (wisp)", Stack: w.Stack(), Links: []any{w.Device()}}
	}
	return stacktest.Side{Name: name + " (netstack: its gVisor stack is not exported)"}
}

// serveHTTP serves a small site on n's port 80 until the test ends.
func serveHTTP(t *testing.T, n peerNet, who string) {
	t.Helper()
	l, err := n.listenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s to %s", who, r.RemoteAddr)
	})
	srv := &http.Server{Handler: mux}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
}

// httpGet fetches url through n.
func httpGet(t *testing.T, n peerNet, url string) string {
	t.Helper()
	tr := &http.Transport{DialContext: n.DialContext}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// pingOnce sends one ICMP echo request through n and waits for its reply.
func pingOnce(t *testing.T, n peerNet, dst netip.Addr) time.Duration {
	t.Helper()
	c, err := n.ping(dst)
	if err != nil {
		t.Fatalf("ping %v: %v", dst, err)
	}
	defer c.Close()
	req := []byte{8, 0, 0, 0, 0, 0, 0, 1, 'w', 'i', 's', 'p'}
	binary.BigEndian.PutUint16(req[2:], ^sum16(req))
	buf := make([]byte, 1500)
	// As ping(8), one lost datagram is not a failure: up to 5 requests, 2 s apart. A retry
	// is logged, so a path that loses packets shows.
	//
	// The read waits before the request goes out: wireguard-go's netstack PingConn.ReadFrom
	// registers for "readable" only when called and never looks at its queue first, so a
	// reply that arrives between Write and Read is never reported (with wisp answering in
	// microseconds, -race on a loaded machine lost all five that way). wisp's PingConn
	// checks its mailbox first and needs none of this.
	const attempts = 5
	type result struct {
		n   int
		err error
	}
	for i := 1; ; i++ {
		if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
			t.Fatal(err)
		}
		got := make(chan result, 1)
		go func() {
			n, err := c.Read(buf)
			got <- result{n, err}
		}()
		time.Sleep(10 * time.Millisecond) // let the reader start waiting
		start := time.Now()
		if _, err := c.Write(req); err != nil {
			<-got
			t.Fatalf("ping %v: write: %v", dst, err)
		}
		r := <-got
		if errors.Is(r.err, os.ErrDeadlineExceeded) && i < attempts {
			t.Logf("ping %v: no reply to request %d within 2 s; sending another", dst, i)
			continue
		}
		if r.err != nil {
			t.Fatalf("ping %v: read (request %d of %d): %v", dst, i, attempts, r.err)
		}
		if r.n < 12 || buf[0] != 0 || string(buf[8:r.n]) != "wisp" {
			t.Fatalf("ping %v: bad reply % x", dst, buf[:r.n])
		}
		return time.Since(start)
	}
}

func sum16(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// serveDNS answers A and AAAA queries for names in zone, over UDP and TCP on n's port 53. Names
// in tcpOnly get a truncated UDP answer.
func serveDNS(t *testing.T, n peerNet, zone map[string][]netip.Addr, tcpOnly map[string]bool) {
	t.Helper()
	s := &dnstest.Server{Zone: zone, TCPOnly: tcpOnly}
	pc, err := n.listenUDP(53)
	if err != nil {
		t.Fatal(err)
	}
	s.ServeUDP(t, pc)
	l, err := n.listenTCP(53)
	if err != nil {
		t.Fatal(err)
	}
	s.ServeTCP(t, l)
}

// transferTimeout bounds a transfer (every read and write has this deadline): far more than
// one takes under -race on a loaded machine, far less than the suite's timeout, so a stall
// fails the test with the evidence of both sides.
const transferTimeout = 2 * time.Minute

// transfer sends size bytes of a seeded stream from one peer to a TCP sink on the other
// and checks them byte for byte; it returns the time taken.
func transfer(t *testing.T, from, to peerNet, toAddr netip.Addr, size int64) time.Duration {
	t.Helper()
	ev := stacktest.OnFail(t, evidenceSide("sender", from), evidenceSide("receiver "+toAddr.String(), to))
	l, err := to.listenTCP(9000)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	deadline := time.Now().Add(transferTimeout)
	result := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			result <- err
			return
		}
		if err := c.SetDeadline(deadline); err != nil {
			c.Close()
			result <- err
			return
		}
		err = checkStream(c, size)
		if err == nil {
			c.Close()
		} else {
			ev.Close(c) // after the evidence
		}
		result <- err
	}()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	c, err := from.DialContext(ctx, "tcp", netip.AddrPortFrom(toAddr, 9000).String())
	if err != nil {
		t.Fatal(err)
	}
	ev.Close(c)
	if err := c.SetDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(c, io.LimitReader(&stream{}, size)); err != nil {
		t.Fatalf("send: after %d of %d bytes: %v", n, size, err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := <-result; err != nil { // the receiver's deadline ends it
		t.Fatalf("receive: %v", err)
	}
	return time.Since(start)
}

// stream is a deterministic byte stream: byte i is a hash of i.
type stream struct{ off int64 }

func streamByte(i int64) byte { return byte(uint64(i) * 0x9e3779b97f4a7c15 >> 56) }

func (s *stream) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = streamByte(s.off + int64(i))
	}
	s.off += int64(len(b))
	return len(b), nil
}

func checkStream(r io.Reader, size int64) error {
	buf := make([]byte, 64<<10)
	var off int64
	for {
		n, err := r.Read(buf)
		for i := range n {
			if buf[i] != streamByte(off+int64(i)) {
				return fmt.Errorf("byte %d differs", off+int64(i))
			}
		}
		off += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", off, err)
		}
	}
	if off != size {
		return fmt.Errorf("got %d bytes, want %d", off, size)
	}
	return nil
}

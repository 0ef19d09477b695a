package socks5

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/stack/stacktest"
)

// The client against SOCKS servers from Debian, on loopback: microsocks (CONNECT) and
// danted (CONNECT and UDP ASSOCIATE). Each is skipped when not installed, except under
// CI=1 (scripts/test installs them).

// requireServer returns the path of a server program, or skips.
func requireServer(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if _, serr := os.Stat(filepath.Join(dir, name)); serr == nil {
				return filepath.Join(dir, name)
			}
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (Debian package %s); scripts/test installs it", name, pkg)
		}
		t.Skipf("%s is not installed (Debian package %s)", name, pkg)
	}
	return p
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startExternal runs a server program until the test ends (its whole process group) and
// waits until port listens on 127.0.0.1.
func startExternal(t *testing.T, port int, name string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("=== %s ===\n%s", name, out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp4", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited: %s", name, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %d: %v", name, port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// echoTargets runs a TCP and a UDP echo server on 127.0.0.1 (and [::1] for TCP where the
// host has it) until the test ends.
type echoTargets struct {
	tcp4, tcp6, udp4 netip.AddrPort
}

func startEchoTargets(t *testing.T) *echoTargets {
	t.Helper()
	var e echoTargets
	var wg sync.WaitGroup
	var closers []io.Closer
	for i, network := range []string{"tcp4", "tcp6"} {
		l, err := net.Listen(network, []string{"127.0.0.1:0", "[::1]:0"}[i])
		if err != nil {
			continue
		}
		ap := l.Addr().(*net.TCPAddr).AddrPort()
		if i == 0 {
			e.tcp4 = ap
		} else {
			e.tcp6 = ap
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					c.SetDeadline(time.Now().Add(10 * time.Second))
					io.Copy(c, c)
				}()
			}
		}()
		closers = append(closers, l)
	}
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		for _, c := range closers {
			c.Close()
		}
		wg.Wait()
		t.Skip(err)
	}
	e.udp4 = u.LocalAddr().(*net.UDPAddr).AddrPort()
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := u.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			u.WriteToUDPAddrPort(bytes.ToUpper(buf[:n]), from)
		}
	}()
	closers = append(closers, u)
	t.Cleanup(func() {
		for _, c := range closers {
			c.Close()
		}
		wg.Wait()
	})
	return &e
}

// checkConnect runs CONNECT to each target through c: echoed bytes, and a refused port as
// a *ReplyError that is ECONNREFUSED.
func checkConnect(t *testing.T, c *Client, e *echoTargets) {
	t.Helper()
	ctx := context.Background()
	dsts := []string{e.tcp4.String(), "localhost:" + strconv.Itoa(int(e.tcp4.Port()))}
	if e.tcp6.IsValid() {
		dsts = append(dsts, e.tcp6.String())
	}
	for _, dst := range dsts {
		conn, err := c.Dial(ctx, "tcp", dst)
		if err != nil {
			t.Errorf("CONNECT %s: %v", dst, err)
			continue
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		msg := []byte("hello through " + dst)
		conn.Write(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, msg) {
			t.Errorf("CONNECT %s: echoed %q, %v", dst, got, err)
		}
		conn.Close()
	}
	closed := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	_, err := c.Dial(ctx, "tcp", closed)
	var re *ReplyError
	if !errors.As(err, &re) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("CONNECT %s (closed): %v, want connection refused", closed, err)
	}
}

func TestClientMicrosocks(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	ms := requireServer(t, "microsocks", "microsocks")
	e := startEchoTargets(t)
	port := freePort(t)
	startExternal(t, port, ms, "-i", "127.0.0.1", "-p", strconv.Itoa(port))
	c := &Client{Server: "127.0.0.1:" + strconv.Itoa(port), HandshakeTimeout: 5 * time.Second}
	checkConnect(t, c, e)
	// microsocks has no UDP ASSOCIATE: a clear refusal.
	if _, err := c.Associate(context.Background()); err == nil {
		t.Error("microsocks accepted UDP ASSOCIATE")
	}
}

func TestClientDante(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	danted := requireServer(t, "danted", "dante-server")
	if os.Geteuid() != 0 {
		t.Skip("danted runs as root here (user.privileged)")
	}
	e := startEchoTargets(t)
	port := freePort(t)
	dir := t.TempDir()
	conf := fmt.Sprintf(`logoutput: stderr
internal: 127.0.0.1 port = %d
external: 127.0.0.1
external: ::1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: root
client pass { from: 0/0 to: 0/0 }
socks pass { from: 0/0 to: 0/0 command: connect udpassociate udpreply }
`, port)
	if err := os.WriteFile(filepath.Join(dir, "danted.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startExternal(t, port, danted, "-f", filepath.Join(dir, "danted.conf"), "-p", filepath.Join(dir, "danted.pid"))
	c := &Client{Server: "127.0.0.1:" + strconv.Itoa(port), HandshakeTimeout: 5 * time.Second}
	checkConnect(t, c, e)

	u, err := c.Associate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(5 * time.Second))
	for i := range 3 {
		msg := fmt.Sprintf("datagram %d", i)
		if _, err := u.WriteToAddrPort([]byte(msg), e.udp4); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		n, from, err := u.ReadFromAddrPort(buf)
		if err != nil || from != e.udp4 || string(buf[:n]) != string(bytes.ToUpper([]byte(msg))) {
			t.Fatalf("UDP through danted: %q from %v, %v", buf[:n], from, err)
		}
	}
}

package main

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/internal/netnstest"
	"golang.org/x/sys/unix"
)

// `wisp serve --tap --dhcp` against dnsmasq in a namespace: the lease is printed when bound
// (and is the one dnsmasq's lease file holds), the echo service answers on the leased
// address, and SIGTERM releases the lease and ends the process cleanly.
func TestServeTapDHCP(t *testing.T) {
	ns := netnstest.New(t, "wisp-cmd")
	dnsmasq, err := exec.LookPath("dnsmasq")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("dnsmasq is not installed; the README's test command installs it")
		}
		t.Skip("dnsmasq is not installed")
	}
	bin := buildWisp(t)
	out := &lockedBuffer{}
	srv := ns.Cmd(bin, "serve", "--tap", "wdhcp0", "--dhcp", "--echo", "7")
	srv.Stdout, srv.Stderr = out, out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	t.Cleanup(func() {
		srv.Process.Kill()
		<-done
	})
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "wisp: serving on wdhcp0 (DHCP), TAP"); {
		if time.Now().After(deadline) {
			t.Fatalf("wisp serve did not start:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ns.Run(t, "ip", "addr", "add", "198.18.89.1/24", "dev", "wdhcp0")
	ns.Run(t, "ip", "link", "set", "wdhcp0", "up")
	leases := filepath.Join(t.TempDir(), "leases")
	dmOut := &lockedBuffer{}
	dm := ns.Cmd(dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--interface=wdhcp0", "--bind-interfaces", "--port=0",
		"--dhcp-range=198.18.89.100,198.18.89.150,255.255.255.0,2m", "--dhcp-option=3,198.18.89.1",
		"--dhcp-option=6,198.18.89.1", "--dhcp-leasefile="+leases, "--pid-file=", "--log-dhcp")
	dm.Stdout, dm.Stderr = dmOut, dmOut
	if err := dm.Start(); err != nil {
		t.Fatal(err)
	}
	dmDone := make(chan error, 1)
	go func() { dmDone <- dm.Wait() }()
	t.Cleanup(func() {
		dm.Process.Kill()
		<-dmDone
	})
	fail := func(format string, args ...any) {
		t.Helper()
		lf, _ := os.ReadFile(leases)
		t.Fatalf(format+"\n=== wisp serve ===\n%s\n=== dnsmasq ===\n%s\n=== lease file ===\n%s", append(args, out.String(), dmOut.String(), lf)...)
	}
	bound := regexp.MustCompile(`wisp: DHCP on wdhcp0: bound (198\.18\.89\.\d+)/24 from server 198\.18\.89\.1, lease 2m0s .*router 198\.18\.89\.1, DNS \[198\.18\.89\.1\]`)
	var addr string
	for deadline := time.Now().Add(30 * time.Second); ; {
		if m := bound.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
			break
		}
		if time.Now().After(deadline) {
			fail("no lease printed within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lf, _ := os.ReadFile(leases); !strings.Contains(string(lf), " "+addr+" ") {
		fail("dnsmasq's lease file lacks %s", addr)
	}
	var echoed string
	ns.Do(t, func() {
		c, err := net.DialTimeout("tcp4", net.JoinHostPort(addr, "7"), 5*time.Second)
		if err != nil {
			echoed = err.Error()
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("hello over dhcp"))
		b := make([]byte, len("hello over dhcp"))
		_, err = io.ReadFull(c, b)
		echoed = string(b)
		if err != nil {
			echoed += " " + err.Error()
		}
	})
	if echoed != "hello over dhcp" {
		fail("echo on %s:7: %q", addr, echoed)
	}
	srv.Process.Signal(unix.SIGTERM)
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			fail("wisp serve exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		fail("wisp serve did not stop on SIGTERM")
	}
	// The RELEASE reaches dnsmasq, which drops the lease.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if lf, _ := os.ReadFile(leases); !strings.Contains(string(lf), " "+addr+" ") {
			break
		}
		if time.Now().After(deadline) {
			fail("the lease of %s is still in dnsmasq's file after wisp stopped (no RELEASE?)", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

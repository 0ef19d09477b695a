package integration

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/apps/dhcp"
	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/transport/tcp"
)

// wisp gets a lease from dnsmasq over a TAP on a bridge: an address of the range with the
// subnet's prefix, dnsmasq's address as router, DNS server and server identifier; dnsmasq's
// lease file holds wisp's MAC and that address for two minutes; the kernel pings wisp there,
// and wisp's resolver asks dnsmasq, the server the lease named.
func TestDHCPLease(t *testing.T) {
	e := newDHCPEnv(t, 181, dhcpOpts{})
	l := e.bound(t, 30*time.Second, "lease", nil)
	a := l.Addr.Addr()
	if a.Compare(e.addr(100)) < 0 || a.Compare(e.addr(149)) > 0 || l.Addr.Bits() != 24 ||
		l.Router != e.server() || l.Server != e.server() || len(l.DNS) == 0 || l.DNS[0] != e.server() {
		t.Errorf("lease %+v: want an address in %v–%v/24, router, server and DNS %v", l, e.addr(100), e.addr(149), e.server())
	}
	if l.Lease != 2*time.Minute || l.T1 != time.Minute || l.T2 < 100*time.Second || l.T2 > l.Lease {
		t.Errorf("lease time %v, T1 %v, T2 %v; want 2m, 1m, about 7/8 of 2m", l.Lease, l.T1, l.T2)
	}
	le := e.serverLease(t, 5*time.Second, "lease in dnsmasq's lease file", func(le leaseEntry) bool { return le.addr == a })
	if now := time.Now().Unix(); le.expiry < now+100 || le.expiry > now+125 {
		t.Errorf("dnsmasq's lease ends at %d, %d s from now; want about 120", le.expiry, le.expiry-now)
	}
	if st := e.client(t).Stats(); st.Discovers == 0 || st.Offers == 0 || st.Requests == 0 || st.Acks == 0 || st.Declines != 0 {
		t.Errorf("stats %+v", st)
	}
	out := e.ns.run(t, "ping", "-c", "2", "-i", "0.2", "-W", "3", a.String())
	if !strings.Contains(out, "2 received") {
		t.Errorf("the kernel pings wisp's leased address %v:\n%s", a, out)
	}
	// The lease's DNS server is the stack's: dnsmasq answers wisp's resolver.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if got, err := endpoint.New(e.s).LookupHost(ctx, "wisp.test"); err != nil || len(got) != 1 || got[0] != e.addr(7).String() {
		t.Errorf("lookup of wisp.test through the lease's DNS server: %v, %v; want [%v]", got, err, e.addr(7))
	}
}

// With T1 at 5 s (option 58) the client renews (a unicast REQUEST in RENEWING) and dnsmasq's
// lease file shows the lease's end moved; the address stays.
func TestDHCPRenew(t *testing.T) {
	e := newDHCPEnv(t, 182, dhcpOpts{t1: 5})
	l0 := e.bound(t, 30*time.Second, "lease", nil)
	if l0.T1 != 5*time.Second {
		t.Errorf("T1 %v, want the server's 5s", l0.T1)
	}
	le0 := e.serverLease(t, 5*time.Second, "lease in the lease file", nil)
	c := e.client(t)
	e.bound(t, 20*time.Second, "renewal (RENEWING, then BOUND again)", func(l dhcp.Lease) bool {
		return c.Stats().Renews > 0 && l.Acquired.After(l0.Acquired)
	})
	le1 := e.serverLease(t, 5*time.Second, "lease file's expiry to move", func(le leaseEntry) bool { return le.expiry > le0.expiry })
	l1, _ := c.Lease()
	if l1.Addr != l0.Addr || le1.addr != l0.Addr.Addr() {
		t.Errorf("renewed lease %v (lease file %v), was %v", l1.Addr, le1.addr, l0.Addr)
	}
	if st := c.Stats(); st.Rebinds != 0 || st.Acks < 2 || st.Discovers != 1 {
		t.Errorf("stats %+v: want a renewal by RENEWING alone", st)
	}
}

// With dnsmasq stopped, the client goes RENEWING at T1 and REBINDING at T2 (a broadcast
// REQUEST) keeping its address; when dnsmasq is back, a rebinding REQUEST gets the lease
// extended. Its retransmission comes at most 60 s later (RFC 2131 §4.4.5's minimum: the
// apps/dhcp tests check that timing on a fake clock); the test asks for it at once with
// Renew (lwIP's dhcp_renew) unless WISP_DHCP_LONG=1 lets it wait the minute.
func TestDHCPRebind(t *testing.T) {
	e := newDHCPEnv(t, 183, dhcpOpts{t1: 6, t2: 9})
	l0 := e.bound(t, 30*time.Second, "lease", nil)
	le0 := e.serverLease(t, 5*time.Second, "lease in the lease file", nil)
	e.stopServer(t)
	c := e.client(t)
	e.within(t, 30*time.Second, "REBINDING", func() bool { return c.State() == dhcp.Rebinding })
	if st := c.Stats(); st.Renews == 0 || st.Rebinds == 0 {
		t.Errorf("stats %+v: want RENEWING, then REBINDING", st)
	}
	if !e.hasAddr(l0.Addr.Addr()) {
		t.Errorf("the address %v left while rebinding: %v", l0.Addr, e.nif.Addrs())
	}
	time.Sleep(time.Second) // the lease file's times are seconds
	e.startServer(t)
	wait := 75 * time.Second
	if os.Getenv("WISP_DHCP_LONG") == "" {
		if err := c.Renew(); err != nil {
			t.Fatal(err)
		}
		wait = 10 * time.Second
	}
	l1 := e.bound(t, wait, "BOUND again after the server's return", func(l dhcp.Lease) bool { return l.Acquired.After(l0.Acquired) })
	if l1.Addr != l0.Addr {
		t.Errorf("lease %v after rebinding, was %v", l1.Addr, l0.Addr)
	}
	e.serverLease(t, 5*time.Second, "lease file's expiry to move", func(le leaseEntry) bool { return le.expiry > le0.expiry && le.addr == l0.Addr.Addr() })
	if st := c.Stats(); st.Discovers != 1 || st.Expiries != 0 {
		t.Errorf("stats %+v: want the lease kept throughout", st)
	}
}

// dnsmasq hands wisp 198.18.S.50 (dhcp-host), which a kernel on the same bridge already
// has: the client's ARP probe (RFC 5227) hears it, the client DECLINEs, and after ten
// seconds gets another address from the range; the taken one never reaches the netif.
func TestDHCPDecline(t *testing.T) {
	e := newDHCPEnv(t, 184, dhcpOpts{conflict: true})
	c := e.client(t)
	e.within(t, 30*time.Second, "DECLINE", func() bool {
		if e.hasAddr(e.conflict) {
			t.Fatalf("the netif took the address %v another host has", e.conflict)
		}
		return c.Stats().Declines > 0
	})
	l := e.bound(t, 45*time.Second, "lease of another address", func(l dhcp.Lease) bool { return l.Addr.Addr() != e.conflict })
	if a := l.Addr.Addr(); a.Compare(e.addr(100)) < 0 || a.Compare(e.addr(149)) > 0 {
		t.Errorf("lease %v after the decline: want one of the range", l.Addr)
	}
	e.serverLease(t, 5*time.Second, "new address in the lease file", func(le leaseEntry) bool { return le.addr == l.Addr.Addr() })
	if !strings.Contains(e.log.String(), "DHCPDECLINE") {
		t.Error("dnsmasq logged no DHCPDECLINE")
	}
	if e.hasAddr(e.conflict) {
		t.Errorf("the netif has %v", e.conflict)
	}
}

// ReleaseDHCP (lwIP's dhcp_release_and_stop) sends a RELEASE, after which dnsmasq's lease
// file no longer holds wisp's lease, and takes the lease off the netif. (RemoveNetif does the
// same, but closes the TAP at once, and the kernel drops a frame still in its backlog when
// the device goes: the apps/dhcp tests check RemoveNetif's RELEASE on a pipe.)
func TestDHCPRelease(t *testing.T) {
	e := newDHCPEnv(t, 185, dhcpOpts{})
	l := e.bound(t, 30*time.Second, "lease", nil)
	e.serverLease(t, 5*time.Second, "lease in the lease file", nil)
	e.nif.ReleaseDHCP()
	if e.hasAddr(l.Addr.Addr()) || e.nif.DHCP() != nil {
		t.Errorf("after ReleaseDHCP the netif still has %v (client %v)", l.Addr, e.nif.DHCP())
	}
	e.within(t, 10*time.Second, "lease to leave dnsmasq's lease file", func() bool {
		_, have := e.leaseOf(t)
		return !have
	})
	if !strings.Contains(e.log.String(), "DHCPRELEASE") {
		t.Error("dnsmasq logged no DHCPRELEASE")
	}
}

// A lease change moves wisp from address A to B (dnsmasq's dhcp-host changed, reloaded, and
// a renewal NAKed): a TCP connection wisp had from A is aborted with
// TCPKeepConnWhenIPChanges off; with it on the connection stays, and carries data again
// once the lease moves back to A.
func TestDHCPLeaseChangeTCP(t *testing.T) {
	for _, keep := range []bool{false, true} {
		name := map[bool]string{false: "abort", true: "keep"}[keep]
		t.Run(name, func(t *testing.T) {
			subnet := map[bool]int{false: 186, true: 187}[keep]
			e := newDHCPEnv(t, subnet, dhcpOpts{keepConn: keep, fixed: 120})
			A, B := e.addr(120), e.addr(121)
			e.bound(t, 30*time.Second, "lease of "+A.String(), func(l dhcp.Lease) bool { return l.Addr.Addr() == A })
			srv := netip.AddrPortFrom(e.server(), 7100)
			l := e.ns.listen(t, "tcp4", srv)
			accepted := make(chan net.Conn, 1)
			go func() {
				l.SetDeadline(time.Now().Add(20 * time.Second))
				c, err := l.Accept()
				if err != nil {
					c = nil
				}
				accepted <- c
			}()
			wc, err := endpoint.New(e.s).Dial("tcp4", srv.String())
			if err != nil {
				t.Fatal(err)
			}
			e.ev.Close(wc)
			kc := <-accepted
			if kc == nil {
				t.Fatal("the kernel accepted nothing")
			}
			e.ev.Close(kc)
			if got := wc.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); got != A {
				t.Fatalf("wisp's connection is from %v, want %v", got, A)
			}
			echo(t, wc, kc, "before")

			c := e.client(t)
			e.move(t, c, B)
			wc.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err = wc.Read(make([]byte, 10))
			conns := e.s.TCPConns(nil)
			fromA := 0
			for _, i := range conns {
				if i.Local.Addr() == A && i.State == tcp.StateEstablished {
					fromA++
				}
			}
			if !keep {
				if err == nil || errors.Is(err, os.ErrDeadlineExceeded) || fromA != 0 {
					t.Fatalf("with the address gone: read %v, %d connections from %v (%v); want it aborted", err, fromA, A, conns)
				}
				t.Logf("wisp's connection ended with %v", err)
				return
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) || fromA != 1 {
				t.Fatalf("with the address gone: read %v, %d connections from %v (%v); want it kept", err, fromA, A, conns)
			}
			e.move(t, c, A)
			wc.SetReadDeadline(time.Time{})
			echo(t, wc, kc, "after the address came back")
		})
	}
}

// move changes wisp's lease to a: dnsmasq's dhcp-host is rewritten and reloaded, and a
// renewal (NAKed: the host has another static address now) makes the client start over.
func (e *dhcpEnv) move(t *testing.T, c *dhcp.Client, a netip.Addr) {
	t.Helper()
	naks := c.Stats().Naks
	e.writeHosts(t, a)
	e.reloadServer(t)
	if err := c.Renew(); err != nil {
		t.Fatal(err)
	}
	e.bound(t, 30*time.Second, "lease of "+a.String(), func(l dhcp.Lease) bool { return l.Addr.Addr() == a })
	if c.Stats().Naks == naks {
		t.Errorf("no NAK on the way to %v: %+v", a, c.Stats())
	}
}

// echo sends a line each way over a connection between wisp (w) and the kernel (k).
func echo(t *testing.T, w, k net.Conn, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	w.SetDeadline(deadline)
	k.SetDeadline(deadline)
	for _, d := range []struct {
		from, to net.Conn
		msg      string
	}{{w, k, "wisp→kernel " + what}, {k, w, "kernel→wisp " + what}} {
		if _, err := io.WriteString(d.from, d.msg); err != nil {
			t.Fatalf("%s: write: %v", d.msg, err)
		}
		buf := make([]byte, len(d.msg))
		if _, err := io.ReadFull(d.to, buf); err != nil || string(buf) != d.msg {
			t.Fatalf("%s: read %q, %v", d.msg, buf, err)
		}
	}
	w.SetDeadline(time.Time{})
	k.SetDeadline(time.Time{})
}

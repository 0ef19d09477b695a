package integration

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wispstack/wisp/apps/dhcp6"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link/tun"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
)

// Stateless DHCPv6 beside SLAAC against dnsmasq on the kernel side of a TAP: dnsmasq's
// Router Advertisements (ra-stateless: A and O set, router lifetime 0) give wisp its SLAAC
// address, and the Information-Request they start gets dnsmasq's DNS server.
func TestDHCPv6Dnsmasq(t *testing.T) {
	requireRoot(t)
	dnsmasq := requireTool(t, "dnsmasq")
	ns := newNamedNetns(t, "wisp-dhcp6")
	stacktest.NoGoroutineLeak(t)
	dir := t.TempDir()
	var dev *tun.Device
	var err error
	ns.do(t, func() { dev, err = tun.OpenConfig(tun.Config{Name: "wisp0", MTU: 1500, TAP: true}) })
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no TAP device: %v", err)
		}
		t.Skipf("no TAP device: %v", err)
	}
	s, err := stack.New(stack.Config{})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	stacktest.Closed(t, s)
	nif, err := s.AddNetif(dev, stack.NetifConfig{Name: "wisp0", DHCPv6: true})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	ns.run(t, "ip", "-6", "addr", "add", "fd42:5eed::1/64", "dev", "wisp0", "nodad")
	ns.run(t, "ip", "link", "set", "wisp0", "up")
	log := filepath.Join(dir, "dnsmasq.log")
	c := ns.cmd(dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--user=root", "--port=0",
		"--interface=wisp0", "--bind-interfaces", "--pid-file="+filepath.Join(dir, "dnsmasq.pid"),
		"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--log-dhcp", "--log-facility="+log,
		"--enable-ra", "--ra-param=wisp0,4,0", "--dhcp-range=::,constructor:wisp0,ra-stateless,64",
		"--dhcp-option=option6:dns-server,[fd42:5eed::53]", "--dhcp-option=option6:domain-search,lab.example")
	out, err := os.Create(filepath.Join(dir, "dnsmasq.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	c.Stdout, c.Stderr = out, out
	startProc(t, c)
	stacktest.OnFail(t, stacktest.Side{Name: "wisp", Stack: s, Links: []any{dev}},
		stacktest.Side{Name: "dnsmasq (namespace " + ns.name + ")", More: func(w io.Writer) {
			for _, f := range []string{"dnsmasq.out", "dnsmasq.log"} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				fmt.Fprintf(w, "%s:\n%s\n", f, b)
			}
			fmt.Fprintf(w, "wisp addresses: %+v\n", nif.Addrs())
			if c := nif.DHCPv6(); c != nil {
				inf, ok := c.Info()
				fmt.Fprintf(w, "dhcpv6: %v %+v %v %+v\n", c.State(), inf, ok, c.Stats())
			}
			ns.writeKernel(w)
		}})

	cl := nif.DHCPv6()
	if cl == nil {
		t.Fatal("no DHCPv6 client")
	}
	deadline := time.Now().Add(30 * time.Second)
	var slaac netip.Addr
	for {
		slaac = netip.Addr{}
		for _, a := range nif.Addrs() {
			if a.Origin == ip.SLAAC && a.State == ip.Preferred && netip.MustParsePrefix("fd42:5eed::/64").Contains(a.Prefix.Addr()) {
				slaac = a.Prefix.Addr()
			}
		}
		if _, ok := cl.Info(); ok && slaac.IsValid() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SLAAC address and DHCPv6 information within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	inf, _ := cl.Info()
	t.Logf("SLAAC %v; DHCPv6 %+v; stats %+v", slaac, inf, cl.Stats())
	if len(inf.DNS) != 1 || inf.DNS[0] != netip.MustParseAddr("fd42:5eed::53") {
		t.Errorf("DNS servers %v", inf.DNS)
	}
	if len(inf.Domains) != 1 || inf.Domains[0] != "lab.example" {
		t.Errorf("domains %v", inf.Domains)
	}
	if cl.State() != dhcp6.Informed || len(inf.Server) == 0 || inf.Refresh < dhcp6.IRTMinimum {
		t.Errorf("state %v, info %+v", cl.State(), inf)
	}
	// The stack's resolver has the server (Stack.DNS, source "dhcpv6").
	s.Lock()
	servers := s.DNS().Servers()
	s.Unlock()
	if len(servers) != 1 || servers[0] != netip.MustParseAddrPort("[fd42:5eed::53]:53") {
		t.Errorf("resolver's servers %v", servers)
	}
	// The kernel reaches wisp at its SLAAC address.
	ns.run(t, "ping", "-6", "-c", "1", "-W", "5", slaac.String())
	// Later RAs (every 4 s) start no new exchange while the information is fresh.
	n := cl.Stats().Requests
	time.Sleep(5 * time.Second)
	if st := cl.Stats(); st.Requests != n {
		t.Errorf("requests while informed: %+v", st)
	}
}

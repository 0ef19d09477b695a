package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/forwarder"
)

// `wisp proxy` rejects bad command lines before it opens anything: exit 2 and a message
// that names the flag.
func TestProxyBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"proxy"}, "--tun NAME is required"},
		{[]string{"proxy", "--tun", "wpxt0"}, "--socks5 IP:PORT is required (or --direct)"},
		{[]string{"proxy", "--tun", "wpxt0", "--socks5", "1080"}, `--socks5 "1080" is not IP:PORT`},
		{[]string{"proxy", "--tun", "wpxt0", "--socks5", "proxy.example:1080"}, "is not IP:PORT"},
		{[]string{"proxy", "--tun", "wpxt0", "--socks5", "198.18.0.1:0"}, "is not IP:PORT"},
		{[]string{"proxy", "--tun", "wpxt0", "--socks5", "198.18.0.1:1080", "--direct"}, "exclude each other"},
		{[]string{"proxy", "--tun", "wpxt0", "--socks5", "198.18.0.1:1080", "--exclude", "198.18.0.0"}, "has no prefix length"},
		{[]string{"proxy", "--tun", "wpxt0", "--socks5", "198.18.0.1:1080", "--exclude", "nope/8"}, "is not an address with a prefix length"},
		{[]string{"proxy", "--tun", "wpxt0", "--socks5", "198.18.0.1:1080", "--icmp", "host"}, "--icmp host needs --direct"},
		{[]string{"proxy", "--tun", "wpxt0", "--socks5", "198.18.0.1:1080", "--icmp", "loud"}, `--icmp "loud"`},
		{[]string{"proxy", "--tun", "wpxt0", "--direct", "--mtu", "100"}, "--mtu 100 out of range"},
		{[]string{"proxy", "--tun", "wpxt0", "--direct", "--cores", "0"}, "--cores 0 out of range"},
		{[]string{"proxy", "--tun", "wpxt0", "--direct", "--preset", "nope"}, "nope"},
		{[]string{"proxy", "--tun", "wpxt0", "--direct", "stray"}, `unexpected argument "stray"`},
	} {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, errOut.String(), c.want)
		}
	}
}

func TestProxyFlags(t *testing.T) {
	var errOut bytes.Buffer
	c, err := parseProxy([]string{"--tun", "t", "--socks5", "[::ffff:198.18.0.1]:1080", "--exclude", "198.18.5.7/16",
		"--exclude", "fd42:5eed::1/48", "--deferred=false"}, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	if c.socksAddr != netip.MustParseAddrPort("198.18.0.1:1080") || c.udp || c.deferred || c.icmp != forwarder.EchoLocal ||
		c.exclude.String() != "198.18.0.0/16,fd42:5eed::/48" {
		t.Errorf("parsed %+v", c)
	}
	c, err = parseProxy([]string{"--tun", "t", "--direct", "--icmp", "host"}, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	if !c.direct || !c.udp || !c.deferred || c.icmp != forwarder.EchoHost {
		t.Errorf("--direct: parsed %+v", c)
	}
}

// hostPing pings loopback through the host's ping socket and, as root, a raw socket;
// a timeout ends a ping nobody answers.
func TestHostPing(t *testing.T) {
	if err := checkPingSocket(); err != nil {
		t.Skip(err)
	}
	defer rawPing.Store(rawPing.Load())
	for _, raw := range []bool{false, true} {
		fd, err := pingSocket(false, raw)
		if err != nil {
			t.Logf("raw=%v: %v", raw, err)
			continue
		}
		unix.Close(fd)
		rawPing.Store(raw)
		for _, dst := range []string{"127.0.0.1", "::1"} {
			if err := hostPing(netip.MustParseAddr(dst), 7, []byte("wisp proxy ping"), 2*time.Second); err != nil {
				t.Errorf("raw=%v %s: %v", raw, dst, err)
			}
		}
	}
}

package wgconf

import (
	"context"
	"encoding/hex"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// RFC 7748 §6.1's test vector: Alice's private and public keys.
const (
	alicePrivHex = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
	alicePubHex  = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
	bobPubHex    = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
)

func keyOf(t testing.TB, h string) Key {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != KeyLen {
		t.Fatalf("bad hex key %q", h)
	}
	return Key(b)
}

var (
	alicePriv = keyOf(&testing.T{}, alicePrivHex)
	bobPub    = keyOf(&testing.T{}, bobPubHex)
	psk       = Key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}
)

func TestKey(t *testing.T) {
	pub, err := alicePriv.PublicKey()
	if err != nil || pub.Hex() != alicePubHex {
		t.Fatalf("PublicKey = %s, %v; want %s (RFC 7748 §6.1)", pub.Hex(), err, alicePubHex)
	}
	k, err := ParseKey(alicePriv.String())
	if err != nil || k != alicePriv {
		t.Fatalf("ParseKey(String()) = %v, %v", k, err)
	}
	for _, c := range []struct{ in, want string }{
		{"", "44 characters"},
		{"abc", "has 3 characters"},
		{strings.Repeat("A", 43) + "=" + "=", "45 characters"},
		{strings.Repeat("A", 42) + "==", "decodes to 31 bytes"},
		{strings.Repeat("!", 43) + "=", "not valid base64"},
		{strings.Repeat("A", 42) + "B=", "not valid base64"}, // non-zero trailing bits
	} {
		if _, err := ParseKey(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseKey(%q) = %v, want an error with %q", c.in, err, c.want)
		}
	}
}

const goodConf = `# a wisp peer
[Interface]
PrivateKey = %PRIV%   # trailing comment
Address = 198.18.5.2/24, fd42:5eed:0:5::2/64
address = 198.18.6.2
DNS = 198.18.5.1, fd42:5eed:0:5::1, corp.example
MTU = 1420
ListenPort = 51820
FwMark = 0x10
PostUp = iptables -A FORWARD -i %i -j ACCEPT

[peer]
PublicKey = %BOB%
PresharedKey = %PSK%
Endpoint = [fd42:5eed:0:1::1]:51821
AllowedIPs = 198.18.5.7/24, fd42:5eed:0:5::/64
AllowedIPs = 198.18.7.1
PersistentKeepalive = 25

[Peer]
PublicKey = %ALICEPUB2%
Endpoint = vpn.example.org:4500
PersistentKeepalive = off
`

func fill(s string) string {
	other := Key{9: 1}
	pub2, _ := other.PublicKey()
	return strings.NewReplacer("%PRIV%", alicePriv.String(), "%BOB%", bobPub.String(), "%PSK%", psk.String(),
		"%ALICEPUB2%", pub2.String()).Replace(s)
}

func TestParse(t *testing.T) {
	c, err := Parse(strings.NewReader(fill(goodConf)))
	if err != nil {
		t.Fatal(err)
	}
	pfx := func(l ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range l {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	if c.PrivateKey != alicePriv || c.MTU != 1420 || c.ListenPort != 51820 || c.FwMark != 16 {
		t.Errorf("interface: %+v", c)
	}
	if got, want := c.Addresses, pfx("198.18.5.2/24", "fd42:5eed:0:5::2/64", "198.18.6.2/32"); !equal(got, want) {
		t.Errorf("Addresses = %v, want %v", got, want)
	}
	if len(c.DNS) != 2 || c.DNS[0] != netip.MustParseAddr("198.18.5.1") || c.DNS[1] != netip.MustParseAddr("fd42:5eed:0:5::1") {
		t.Errorf("DNS = %v", c.DNS)
	}
	if len(c.DNSSearch) != 1 || c.DNSSearch[0] != "corp.example" {
		t.Errorf("DNSSearch = %v", c.DNSSearch)
	}
	if len(c.Ignored) != 1 || c.Ignored[0] != "line 10: PostUp" {
		t.Errorf("Ignored = %v", c.Ignored)
	}
	if len(c.Peers) != 2 {
		t.Fatalf("%d peers", len(c.Peers))
	}
	p := c.Peers[0]
	if p.PublicKey != bobPub || p.PresharedKey != psk || p.PersistentKeepalive != 25 || p.Line != 12 ||
		p.EndpointAddr != netip.MustParseAddrPort("[fd42:5eed:0:1::1]:51821") {
		t.Errorf("peer 0: %+v", p)
	}
	if got, want := p.AllowedIPs, pfx("198.18.5.0/24", "fd42:5eed:0:5::/64", "198.18.7.1/32"); !equal(got, want) {
		t.Errorf("AllowedIPs = %v, want %v", got, want)
	}
	q := c.Peers[1]
	if q.Endpoint != "vpn.example.org:4500" || q.EndpointAddr.IsValid() || q.PersistentKeepalive != 0 || len(q.AllowedIPs) != 0 {
		t.Errorf("peer 1: %+v", q)
	}

	// Before resolution the named endpoint is left out of the UAPI; after, it is there.
	if u := c.UAPI(); strings.Contains(u, ":4500") {
		t.Errorf("unresolved endpoint in UAPI:\n%s", u)
	}
	var asked []string
	lookup := func(_ context.Context, network, host string) ([]netip.Addr, error) {
		asked = append(asked, network+" "+host)
		return []netip.Addr{netip.MustParseAddr("::ffff:198.18.9.9"), netip.MustParseAddr("198.18.9.10")}, nil
	}
	if err := c.ResolveEndpoints(context.Background(), lookup); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != "ip vpn.example.org" {
		t.Errorf("lookups: %v", asked)
	}
	other := Key{9: 1}
	pub2, _ := other.PublicKey()
	want := "private_key=" + alicePrivHex + "\n" +
		"listen_port=51820\nfwmark=16\nreplace_peers=true\n" +
		"public_key=" + bobPubHex + "\n" +
		"preshared_key=" + psk.Hex() + "\n" +
		"endpoint=[fd42:5eed:0:1::1]:51821\npersistent_keepalive_interval=25\nreplace_allowed_ips=true\n" +
		"allowed_ip=198.18.5.0/24\nallowed_ip=fd42:5eed:0:5::/64\nallowed_ip=198.18.7.1/32\n" +
		"public_key=" + pub2.Hex() + "\n" +
		"endpoint=198.18.9.9:4500\nreplace_allowed_ips=true\n"
	if got := c.UAPI(); got != want {
		t.Errorf("UAPI:\n%s\nwant:\n%s", got, want)
	}
}

func equal(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestResolveEndpointsError(t *testing.T) {
	c, err := Parse(strings.NewReader(fill(goodConf)))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("no such host")
	err = c.ResolveEndpoints(context.Background(), func(context.Context, string, string) ([]netip.Addr, error) { return nil, boom })
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 20 || !errors.Is(err, boom) || !strings.Contains(err.Error(), "vpn.example.org:4500") {
		t.Fatalf("ResolveEndpoints: %v", err)
	}
	err = c.ResolveEndpoints(context.Background(), func(context.Context, string, string) ([]netip.Addr, error) { return nil, nil })
	if err == nil || !strings.Contains(err.Error(), "no address") {
		t.Fatalf("ResolveEndpoints with no address: %v", err)
	}
}

// Every mistake is an error that names its line and says what is wrong.
func TestParseErrors(t *testing.T) {
	iface := "[Interface]\nPrivateKey = " + alicePriv.String() + "\n"
	peer := "[Peer]\nPublicKey = " + bobPub.String() + "\n"
	alicePub, _ := alicePriv.PublicKey()
	for _, c := range []struct {
		conf string
		line int
		want string
	}{
		{"", 1, "no [Interface] section"},
		{"# nothing\n\n", 2, "no [Interface] section"},
		{"PrivateKey = x\n", 1, "comes before any [Interface]"},
		{"[Interface]\nAddress = 198.18.0.1/24\n", 1, "has no PrivateKey"},
		{"[Interface\n", 1, "a section header is"},
		{"[Foo]\n", 1, "unknown section [Foo]"},
		{iface + "[Interface]\n", 3, "a second [Interface] (the first is on line 1)"},
		{iface + "garbage\n", 3, `"garbage" is neither`},
		{iface + " = 5\n", 3, "the key before '=' is missing"},
		{iface + "Colour = blue\n", 3, `unknown key "Colour" in [Interface]`},
		{"[Interface]\nPrivateKey = abc\n", 2, "PrivateKey: a key is 44 characters"},
		{"[Interface]\nPrivateKey = " + Key{}.String() + "\n", 2, "PrivateKey: the key is all zeros"},
		{iface + "PrivateKey = " + alicePriv.String() + "\n", 3, "PrivateKey is given twice in this section (first on line 2)"},
		{iface + "Address = 198.18.0.300/24\n", 3, `Address: "198.18.0.300/24" is not an address with a prefix length`},
		{iface + "Address = 198.18.0.1/33\n", 3, "is not an address with a prefix length"},
		{iface + "Address = host.example\n", 3, `Address: "host.example" is not an IP address`},
		{iface + "Address = 198.18.0.1/24,,fd42:5eed::1/64\n", 3, "empty entry"},
		{iface + "Address = fe80::1%eth0\n", 3, "zones are not supported"},
		{iface + "DNS = 198.18.0.1, not a domain!\n", 3, "neither an IP address nor a search domain"},
		{iface + "MTU = 67\n", 3, "MTU: 67 out of range [68, 65535]"},
		{iface + "MTU = 65536\n", 3, "MTU: 65536 out of range [68, 65535]"},
		{iface + "MTU = big\n", 3, `MTU: "big" is not a number`},
		{iface + "ListenPort = 65536\n", 3, "ListenPort: 65536 out of range"},
		{iface + "ListenPort = -1\n", 3, "is not a number"},
		{iface + "FwMark = 0x100000000\n", 3, "FwMark"},
		{iface + "[Peer]\nEndpoint = 198.18.0.1:1\n", 3, "[Peer] has no PublicKey"},
		{iface + "[Peer]\nPublicKey = short\n", 4, "PublicKey: a key is 44 characters"},
		{iface + peer + "Colour = red\n", 5, `unknown key "Colour" in [Peer]`},
		{iface + peer + "Endpoint = 198.18.0.1\n", 5, "is not host:port"},
		{iface + peer + "Endpoint = fd42:5eed::1:51820\n", 5, "brackets"},
		{iface + peer + "Endpoint = 198.18.0.1:0\n", 5, "Endpoint: port 0 out of range [1, 65535]"},
		{iface + peer + "Endpoint = 198.18.0.1:x\n", 5, `Endpoint: port "x" is not a number`},
		{iface + peer + "Endpoint = bad_host!:1\n", 5, "neither an IP address nor a host name"},
		{iface + peer + "Endpoint = 0.0.0.0:1\n", 5, "unspecified"},
		{iface + peer + "AllowedIPs = 198.18.0.0/24, nope\n", 5, `AllowedIPs: "nope" is not an IP address`},
		{iface + peer + "PersistentKeepalive = 70000\n", 5, "PersistentKeepalive: 70000 out of range"},
		{iface + peer + "PresharedKey = " + strings.Repeat("A", 43) + "\n", 5, "PresharedKey: a key is 44"},
		{iface + peer + "PublicKey = " + bobPub.String() + "\n", 5, "PublicKey is given twice"},
		{iface + peer + peer, 5, "same PublicKey as the [Peer] on line 3"},
		{iface + "[Peer]\nPublicKey = " + alicePub.String() + "\n", 3, "this interface's own public key"},
		{iface + strings.Repeat("#", MaxLine+1) + "\n", 3, "longer than"},
	} {
		_, err := Parse(strings.NewReader(c.conf))
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%q: error %v is not a *ParseError", c.conf, err)
			continue
		}
		if pe.Line != c.line || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant line %d: ...%s...", c.conf, err, c.line, c.want)
		}
		if !strings.HasPrefix(err.Error(), "line ") {
			t.Errorf("%v: does not start with the line", err)
		}
	}
}

// A minimal file: an interface with no peers, CRLF line ends, odd spacing and case.
func TestParseMinimal(t *testing.T) {
	c, err := Parse(strings.NewReader("[INTERFACE]\r\n  privatekey=" + alicePriv.String() + "\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := "private_key=" + alicePrivHex + "\nreplace_peers=true\n"
	if got := c.UAPI(); got != want {
		t.Errorf("UAPI = %q, want %q", got, want)
	}
	if c.MTU != 0 || len(c.Addresses) != 0 || len(c.Peers) != 0 {
		t.Errorf("%+v", c)
	}
}

// MTU takes what IPv4 allows, [68, 65535], as wg-quick and netstack do; whether an IPv6
// address fits is the tunnel's check.
func TestParseMTUBounds(t *testing.T) {
	for _, mtu := range []int{68, 500, 65535} {
		c, err := Parse(strings.NewReader("[Interface]\nPrivateKey = " + alicePriv.String() + "\nMTU = " + strconv.Itoa(mtu) + "\n"))
		if err != nil || c.MTU != mtu {
			t.Errorf("MTU = %d: got %+v, %v", mtu, c, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(fill(goodConf))
	f.Add("[Interface]\nPrivateKey = " + alicePriv.String() + "\n[Peer]\nPublicKey=" + bobPub.String() + "\nAllowedIPs=::/0\n")
	f.Add("[Peer]\n#\n=\n[")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(strings.NewReader(s))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		// Whatever parses yields a UAPI that has the private key and one public_key per peer.
		u := c.UAPI()
		if !strings.HasPrefix(u, "private_key="+c.PrivateKey.Hex()+"\n") || strings.Count(u, "public_key=") != len(c.Peers) {
			t.Fatalf("UAPI:\n%s", u)
		}
		for _, p := range c.Peers {
			for _, a := range p.AllowedIPs {
				if a != a.Masked() {
					t.Fatalf("AllowedIPs %v not masked", a)
				}
			}
		}
	})
}

package integration

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/internal/wgconf"
)

// wgKeys returns a fresh private key and its public key.
func wgKeys(t *testing.T) (priv, pub wgconf.Key) {
	t.Helper()
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return wgconf.Key(k.Bytes()), wgconf.Key(k.PublicKey().Bytes())
}

// vethPair joins two namespaces with a veth pair, names ifA in a and ifB in b, gives them
// the addresses and brings them up. The pair goes away with the namespaces.
func vethPair(t *testing.T, a, b *netns, ifA, addrA, ifB, addrB string) {
	t.Helper()
	if out, err := exec.Command("ip", "link", "add", ifA, "netns", a.name, "type", "veth",
		"peer", "name", ifB, "netns", b.name).CombinedOutput(); err != nil {
		t.Fatalf("ip link add veth: %v: %s", err, out)
	}
	a.run(t, "ip", "addr", "add", addrA, "dev", ifA)
	a.run(t, "ip", "link", "set", ifA, "up")
	b.run(t, "ip", "addr", "add", addrB, "dev", ifB)
	b.run(t, "ip", "link", "set", ifB, "up")
}

// wireguardGo returns the path of the wireguard-go program: the Debian package's (what the
// README's test command installs) or, when it is missing, one built from the module cache
// (go build golang.zx2c4.com/wireguard, the version go.mod pins).
func wireguardGo(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("wireguard-go"); err == nil {
		t.Logf("wireguard-go: %s (installed)", p)
		return p
	}
	bin := filepath.Join(t.TempDir(), "wireguard-go")
	if out, err := exec.Command("go", "build", "-o", bin, "golang.zx2c4.com/wireguard").CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("wireguard-go is not installed and does not build: %v\n%s", err, out)
		}
		t.Skipf("wireguard-go is not installed and does not build: %v\n%s", err, out)
	}
	t.Logf("wireguard-go: built from the module cache")
	return bin
}

// kernelWG runs wireguard-go on a kernel TUN named dev in ns, configured by `wg set` with
// the key in keyFile, the listen port and one peer, and gives it the addresses; it is
// stopped when the test ends.
func kernelWG(t *testing.T, ns *netns, dev string, priv wgconf.Key, port int, peer wgconf.Key, endpoint string, allowed []string, addrs []string) {
	t.Helper()
	requireTool(t, "wg")
	wgo := wireguardGo(t)
	out := newSyncBuffer()
	c := ns.cmd(wgo, "-f", dev)
	// wireguard-go refuses to run on Linux, where the kernel has WireGuard, unless told.
	c.Env = append(os.Environ(), "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1", "LOG_LEVEL=error")
	c.Stdout, c.Stderr = out, out
	p := startProc(t, c)
	t.Cleanup(func() { // before startProc's Kill: a clean stop first
		c.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
		if t.Failed() {
			t.Logf("wireguard-go output:\n%s", out.String())
		}
	})
	ns.waitLink(t, dev)
	// The UAPI socket appears a moment after the device.
	sock := "/var/run/wireguard/" + dev + ".sock"
	waitFor(t, func() bool { _, err := os.Stat(sock); return err == nil }, sock)
	keyFile := filepath.Join(t.TempDir(), "private.key")
	if err := os.WriteFile(keyFile, []byte(priv.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"wg", "set", dev, "private-key", keyFile, "listen-port", fmt.Sprint(port),
		"peer", peer.String(), "allowed-ips", strings.Join(allowed, ",")}
	if endpoint != "" {
		args = append(args, "endpoint", endpoint)
	}
	ns.run(t, args...)
	for _, a := range addrs {
		if strings.Contains(a, ":") {
			ns.run(t, "ip", "-6", "addr", "add", a, "dev", dev, "nodad")
		} else {
			ns.run(t, "ip", "addr", "add", a, "dev", dev)
		}
	}
	ns.run(t, "ip", "link", "set", dev, "up")
}

// kernelTunnel sets up what TestWispWGKernel and TestStallWireGuardSOCKS share: a veth pair
// vethA–vethB between nsA and nsB on the underlay 198.18.<under>.0/24 (A is .1, B .2), and
// wireguard-go on a kernel TUN in A (kernelWG, UDP port 51820) with the tunnel addresses
// 198.18.<under+1>.1/24 and fd42:5eed:0:<under+1>::1/64. It returns the configuration of
// `wisp wg` in B (UDP port 51821, tunnel addresses .2 and ::2); iface goes into its
// [Interface] section.
func kernelTunnel(t *testing.T, nsA, nsB *netns, vethA, vethB string, under int, iface string) string {
	t.Helper()
	vethPair(t, nsA, nsB, vethA, fmt.Sprintf("198.18.%d.1/24", under), vethB, fmt.Sprintf("198.18.%d.2/24", under))
	privA, pubA := wgKeys(t)
	privB, pubB := wgKeys(t)
	dev := fmt.Sprintf("wg%d_%d", os.Getpid(), nsSeq.Add(1))
	in := under + 1
	kernelWG(t, nsA, dev, privA, 51820, pubB, fmt.Sprintf("198.18.%d.2:51821", under),
		[]string{fmt.Sprintf("198.18.%d.2/32", in), fmt.Sprintf("fd42:5eed:0:%d::2/128", in)},
		[]string{fmt.Sprintf("198.18.%d.1/24", in), fmt.Sprintf("fd42:5eed:0:%d::1/64", in)})
	return fmt.Sprintf(`[Interface]
PrivateKey = %[1]s
Address = 198.18.%[3]d.2/24, fd42:5eed:0:%[3]d::2/64
%[4]sListenPort = 51821
MTU = 1420

[Peer]
PublicKey = %[2]s
Endpoint = 198.18.%[5]d.1:51820
AllowedIPs = 198.18.%[3]d.0/24, fd42:5eed:0:%[3]d::/64
`, privB, pubA, in, iface, under)
}

// wispWG is a `wisp wg` process.
type wispWG struct {
	servedWisp
}

// startWispWG writes conf to a file and runs `wisp wg --config FILE args...` in ns; the
// process is killed at cleanup. It waits until wisp says the tunnel is up.
func startWispWG(t *testing.T, ns *netns, conf string, args ...string) *wispWG {
	t.Helper()
	file := filepath.Join(t.TempDir(), "wisp.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	w := &wispWG{servedWisp{out: newSyncBuffer()}}
	c := ns.cmd(append([]string{buildWisp(t), "wg", "--config", file}, args...)...)
	c.Stdout, c.Stderr = w.out, w.out
	w.proc = startProc(t, c)
	w.onFail(t)
	waitFor(t, func() bool { return strings.Contains(w.out.String(), "wg up") }, "wisp wg to start:\n"+w.out.String())
	return w
}

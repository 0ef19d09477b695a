package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	wgtun "github.com/wispstack/wisp/adapter/wireguard"
	"github.com/wispstack/wisp/internal/socks5"
	"github.com/wispstack/wisp/internal/wgconf"
)

// defaultWgMTU is wg-quick's MTU when the file sets none: 1500 less the 80 bytes of the
// worst case (IPv6) WireGuard overhead.
const defaultWgMTU = 1420

func cmdWg(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("wg", stderr)
	file := fs.String("config", "", "WireGuard configuration file in wg-quick's format (required)")
	socks := fs.String("socks5", "", "run a SOCKS5 proxy on this host address (HOST:PORT) that dials through the tunnel\n(domain names are resolved by the tunnel's DNS)")
	presetName := presetFlag(fs, "tunnel")
	verbose := fs.Bool("v", false, "log wireguard-go's handshakes and errors in detail")
	statsAddr := statsFlag(fs)
	var sv services
	sv.register(fs)
	if err := sv.parse(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("%w: --config FILE is required", errUsage)
	}
	if *socks != "" {
		if err := checkHostPort(*socks); err != nil {
			return fmt.Errorf("%w: --socks5: %v", errUsage, err)
		}
	}
	if err := checkStats(*statsAddr); err != nil {
		return err
	}
	o, err := preset(*presetName)
	if err != nil {
		return err
	}
	cfg, err := readWgConfig(*file)
	if err != nil {
		return err
	}
	for _, ig := range cfg.Ignored {
		fmt.Fprintf(stderr, "wisp wg: %s: %s: wg-quick's setting, ignored\n", *file, ig)
	}
	if len(cfg.DNSSearch) > 0 {
		fmt.Fprintf(stderr, "wisp wg: %s: DNS search domains %v ignored (names are resolved as given)\n", *file, cfg.DNSSearch)
	}
	// Endpoints live on the underlay: their names are the host's resolver's business.
	rctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	err = cfg.ResolveEndpoints(rctx, net.DefaultResolver.LookupNetIP)
	cancel()
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = defaultWgMTU
	}
	local := make([]netip.Addr, len(cfg.Addresses))
	for i, p := range cfg.Addresses {
		local[i] = p.Addr()
	}
	tdev, tnet, err := wgtun.CreateNetTUNWithOptions(local, cfg.DNS, mtu, wgtun.Options{Stack: o})
	if err != nil {
		return fmt.Errorf("%w: %s: %v", errUsage, *file, err)
	}
	level := device.LogLevelError
	if *verbose {
		level = device.LogLevelVerbose
	}
	dev := device.NewDevice(tdev, conn.NewDefaultBind(), device.NewLogger(level, "wisp wg: "))
	defer dev.Close() // closes tdev, which closes the stack
	if err := dev.IpcSet(cfg.UAPI()); err != nil {
		return fmt.Errorf("configuring the WireGuard device: %w", err)
	}
	if err := dev.Up(); err != nil {
		return fmt.Errorf("bringing the WireGuard device up: %w", err)
	}
	s := tnet.Stack()
	addrs := make([]netip.Prefix, len(local))
	for i, a := range local {
		addrs[i] = netip.PrefixFrom(a, a.BitLen())
	}
	if err := startTCPApps(s, addrs, sv.echo, sv.discard, stdout); err != nil {
		return err
	}
	title := fmt.Sprintf("wisp wg (%s)", (*prefixList)(&cfg.Addresses).String())
	a, err := startApps(tnet.Endpoint(), addrs, title, sv.http, sv.root, sv.udpEcho, stdout)
	if err != nil {
		return err
	}
	// Deferred after dev.Close, so it runs before it: connections close on a live stack.
	defer a.close()
	if *socks != "" {
		stop, err := startSocks(*socks, tnet, stdout, stderr)
		if err != nil {
			return err
		}
		defer stop()
	}
	if *statsAddr != "" {
		stop, err := startStats(s, *statsAddr, title, stdout)
		if err != nil {
			return err
		}
		defer stop()
	}
	fmt.Fprintf(stdout, "wisp: wg up: %s, mtu %d, listen port %d, %d peer(s); SIGUSR1 prints stats, SIGINT/SIGTERM stops\n",
		(*prefixList)(&cfg.Addresses).String(), mtu, listenPort(dev), len(cfg.Peers))
	return waitSignals(s, stdout)
}

// readWgConfig reads and parses the configuration file; every error is a usage error
// (exit 2) that names the file, and the line when there is one.
func readWgConfig(file string) (*wgconf.Config, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%w: --config: %v", errUsage, err)
	}
	defer f.Close()
	cfg, err := wgconf.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errUsage, file, err)
	}
	if len(cfg.Addresses) == 0 {
		return nil, fmt.Errorf("%w: %s: [Interface] has no Address: the tunnel needs at least one", errUsage, file)
	}
	return cfg, nil
}

// checkHostPort accepts HOST:PORT with an IP literal (or empty) host and a numeric port.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT", s)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
			return fmt.Errorf("%q: host %q is not an IP address", s, host)
		}
	}
	var p portList
	return p.Set(port)
}

// startSocks listens on addr (a host socket: clients are local programs) and serves SOCKS5
// with dials through the tunnel. stop closes the listener and waits for every relay to end.
func startSocks(addr string, tnet *wgtun.Net, stdout, stderr io.Writer) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--socks5: %w", err)
	}
	var mu sync.Mutex // serialises log lines from many relays
	srv := &socks5.Server{
		Dial: tnet.DialContext,
		Logf: func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(stderr, "wisp wg: "+format+"\n", args...)
		},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil {
			fmt.Fprintf(stderr, "wisp wg: socks5 on %v stopped: %v\n", l.Addr(), err)
		}
	}()
	fmt.Fprintf(stdout, "wisp: socks5 on %v (host side), dialing through the tunnel\n", l.Addr())
	return func() {
		l.Close()
		<-done
	}, nil
}

// listenPort reads the UDP port the device listens on (chosen by the system when the
// file sets none) from its UAPI.
func listenPort(dev *device.Device) int {
	s, err := dev.IpcGet()
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "listen_port="); ok {
			var p int
			if _, err := fmt.Sscan(v, &p); err == nil {
				return p
			}
		}
	}
	return 0
}

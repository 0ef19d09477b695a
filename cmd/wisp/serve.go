package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pcap"
	"github.com/wispstack/wisp/link/tun"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	name := fs.String("tun", "", "TUN device to create or attach to (this, --tap or --xdp is required)")
	tapName := fs.String("tap", "", "TAP device to create or attach to: Ethernet frames, so wisp runs ARP and NDP with the kernel\n"+
		"and can get its address by DHCP (--dhcp)")
	useDHCP := fs.Bool("dhcp", false, "get an IPv4 address, router and DNS servers by DHCP (--tap only); the lease is printed when bound,\n"+
		"and the services listen on 0.0.0.0 instead of the IPv4 --addr addresses")
	useDHCPv6 := fs.Bool("dhcpv6", false, "ask for DNS servers by stateless DHCPv6 when a router advertises the O flag (--tap only)")
	xdpName := fs.String("xdp", "", "network interface to serve on through AF_XDP instead of a TUN device: an XDP program\n"+
		"sends wisp the frames for its --addr addresses (and ARP/NDP for them) and passes the rest\n"+
		"to the kernel; run it in the interface's namespace (ip netns exec), as root")
	var addrs prefixList
	fs.Var(&addrs, "addr", "address with prefix length, like 198.18.0.1/24 or fd42:5eed::1/64 (repeatable, at least one)")
	pcapFile := fs.String("pcap", "", "write every frame to this pcap file (--tun or --tap)")
	mtu := fs.Int("mtu", 1500, "MTU of the TUN or TAP device (--xdp takes the interface's)")
	noOffload := fs.Bool("no-offload", false, "open the TUN or TAP device without offloads (virtio-net headers, TSO, checksum offload):\nevery packet fits the MTU, as with a kernel that refuses them")
	queues := fs.Int("queues", 1, "TUN queues (IFF_MULTI_QUEUE), each with its own reader: the kernel spreads flows over them;\n"+
		"with --xdp: the interface's queues 0..N-1, one AF_XDP socket each")
	cores := fs.Int("cores", 1, "stack cores: TCP connections spread over them by their 4-tuple, each core with its own lock\n"+
		"(use with --queues; with --xdp the default is --queues)")
	presetName := presetFlag(fs, "tunnel")
	statsAddr := statsFlag(fs)
	var sv services
	sv.register(fs)
	if err := sv.parse(fs, args); err != nil {
		return err
	}
	if err := checkStats(*statsAddr); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	links := 0
	for _, l := range []string{*name, *tapName, *xdpName} {
		if l != "" {
			links++
		}
	}
	switch {
	case links == 0:
		return fmt.Errorf("%w: --tun NAME is required (or --tap NAME, or --xdp IFACE)", errUsage)
	case links > 1:
		return fmt.Errorf("%w: --tun, --tap and --xdp exclude each other: give one link", errUsage)
	case (*useDHCP || *useDHCPv6) && *tapName == "":
		return fmt.Errorf("%w: --dhcp and --dhcpv6 need an Ethernet link: --tap NAME (a TUN carries no Ethernet frames,\n"+
			"and --xdp gives wisp only the frames for its own addresses)", errUsage)
	}
	if *xdpName != "" {
		for _, f := range []string{"pcap", "mtu", "no-offload"} {
			if set[f] {
				return fmt.Errorf("%w: --%s is for --tun, not --xdp", errUsage, f)
			}
		}
		if !set["cores"] {
			*cores = min(*queues, stack.MaxCores)
		}
	}
	if len(addrs) == 0 && !*useDHCP {
		return fmt.Errorf("%w: at least one --addr CIDR is required (or --tap NAME --dhcp)", errUsage)
	}
	if *mtu < 1280 || *mtu > 65535 {
		return fmt.Errorf("%w: --mtu %d out of range [1280, 65535]", errUsage, *mtu)
	}
	if *queues < 1 || *queues > 256 {
		return fmt.Errorf("%w: --queues %d out of range [1, 256]", errUsage, *queues)
	}
	if *cores < 1 || *cores > stack.MaxCores {
		return fmt.Errorf("%w: --cores %d out of range [1, %d]", errUsage, *cores, stack.MaxCores)
	}
	o, err := preset(*presetName)
	if err != nil {
		return err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "wisp: "+format+"\n", args...) }
	var ep link.Endpoint
	var how string // what the link is, for the "serving on" line
	if *xdpName != "" {
		x, err := openXDP(*xdpName, *queues, addrs, logf)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wisp: %v\n", x.Info())
		*name, ep = *xdpName, x
		how = fmt.Sprintf("AF_XDP, %d queues, %d cores, mtu %d", x.Queues(), *cores, x.MTU())
	} else {
		tap := *tapName != ""
		if tap {
			*name = *tapName
		}
		if !*noOffload {
			if ok, why := offloadsFit(o, *queues); !ok {
				logf("preset %s: %s", *presetName, why)
				*noOffload = true
			}
		}
		dev, err := tun.OpenConfig(tun.Config{Name: *name, MTU: *mtu, TAP: tap, Offload: !*noOffload, Queues: *queues, Logf: logf})
		if err != nil {
			return err
		}
		ep = dev
		how = fmt.Sprintf("mtu %d, offloads on (TSO, checksum)", *mtu)
		if dev.Offloads() == (link.Offloads{}) {
			how = fmt.Sprintf("mtu %d, offloads off", *mtu)
		}
		if tap {
			hw := dev.HardwareAddr()
			how = fmt.Sprintf("TAP, MAC %s, %s", net.HardwareAddr(hw[:]), how)
		}
		if *pcapFile != "" {
			f, err := os.Create(*pcapFile)
			if err != nil {
				dev.Close()
				return err
			}
			defer f.Close()
			if ep, err = pcap.Wrap(dev, f, 65535); err != nil {
				dev.Close()
				return err
			}
		}
	}
	s, err := stack.New(stack.Config{Options: o, Cores: *cores})
	if err != nil {
		ep.Close()
		return err
	}
	defer s.Close()
	nif, err := s.AddNetif(ep, stack.NetifConfig{Name: *name, Addrs: addrs, DHCP: *useDHCP, DHCPv6: *useDHCPv6})
	if err != nil {
		ep.Close()
		return err
	}
	if *useDHCP {
		// Release the lease (closing the stack alone would not tell the server), after the
		// services close and before s.Close; the TAP goes with its file, and the kernel may
		// drop a frame still in its backlog then: give it a moment before the netif goes.
		defer func() {
			nif.ReleaseDHCP()
			time.Sleep(100 * time.Millisecond)
			s.RemoveNetif(nif)
		}()
	}
	// IPv6 addresses on Ethernet are tentative for a second (DAD): the services bind them.
	if err := waitDAD(nif, 10*time.Second); err != nil {
		return err
	}
	svcAddrs := addrs
	if *useDHCP {
		svcAddrs = dhcpServiceAddrs(addrs)
		stopLeases := printLeases(nif, stdout)
		defer stopLeases()
	}
	if err := startTCPApps(s, svcAddrs, sv.echo, sv.discard, stdout); err != nil {
		return err
	}
	title := fmt.Sprintf("wisp serve on %s (%s)", *name, describeAddrs(addrs, *useDHCP, *useDHCPv6))
	a, err := startApps(endpoint.New(s), svcAddrs, title, sv.http, sv.root, sv.udpEcho, stdout)
	if err != nil {
		return err
	}
	// Runs before s.Close (deferred earlier): conns close on a live stack.
	defer a.close()
	if *statsAddr != "" {
		stop, err := startStats(s, *statsAddr, title, stdout)
		if err != nil {
			return err
		}
		defer stop()
	}
	fmt.Fprintf(stdout, "wisp: serving on %s (%s), %s; SIGUSR1 prints stats, SIGINT/SIGTERM stops\n", *name, describeAddrs(addrs, *useDHCP, *useDHCPv6), how)

	return waitSignals(s, stdout)
}

// waitDAD waits until duplicate address detection has ended for every address of nif (IPv6
// on an Ethernet link: about a second; nothing to wait for elsewhere), so that services can
// bind them. An address another node holds is an error.
func waitDAD(nif *stack.Netif, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pending := false
		for _, a := range nif.Addrs() {
			switch a.State {
			case ip.Tentative:
				pending = true
			case ip.Duplicated:
				return fmt.Errorf("%s: address %v is in use by another node on the link (duplicate address detection)", nif.Name(), a.Prefix)
			}
		}
		if !pending {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: duplicate address detection did not end within %v: %+v", nif.Name(), timeout, nif.Addrs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitSignals prints s's TCP connections and stats on SIGUSR1 and returns after printing
// them once more on SIGINT or SIGTERM.
func waitSignals(s *stack.Stack, stdout io.Writer) error {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	var conns []tcp.Info
	for v := range sig {
		conns = s.TCPConns(conns[:0])
		fmt.Fprintf(stdout, "wisp: %d TCP connections\n", len(conns))
		for _, c := range conns {
			fmt.Fprintf(stdout, "  %v\n", c)
		}
		snap := s.Stats()
		if err := snap.WriteTable(stdout); err != nil {
			return err
		}
		if v != syscall.SIGUSR1 {
			fmt.Fprintf(stdout, "wisp: %v, stopping\n", v)
			return nil
		}
	}
	return nil
}

// services are the flags of the services `wisp serve` and `wisp wg` run.
type services struct {
	echo, discard, http, udpEcho portList
	root                         string
}

func (sv *services) register(fs *flag.FlagSet) {
	fs.Var(&sv.echo, "echo", "serve TCP echo (RFC 862) on this port of every address (repeatable)")
	fs.Var(&sv.discard, "discard", "serve TCP discard (RFC 863) on this port of every address (repeatable)")
	fs.Var(&sv.http, "http", "serve HTTP (net/http on wisp's socket layer) on this port of every address (repeatable)")
	fs.StringVar(&sv.root, "http-root", "", "with --http: serve the files of this directory instead of the built-in site\n(an index page and /bytes/N: N bytes of the test pattern)")
	fs.Var(&sv.udpEcho, "udp-echo", "serve UDP echo (RFC 862) on this port of every address (repeatable)")
}

// parse parses the command's flags (registered with register among them) and checks the
// services'.
func (sv *services) parse(fs *flag.FlagSet, args []string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	return sv.check()
}

// check validates the service flags after parsing.
func (sv *services) check() error {
	if err := distinctPorts("--echo, --discard and --http", sv.echo, sv.discard, sv.http); err != nil {
		return err
	}
	if err := distinctPorts("--udp-echo", sv.udpEcho); err != nil {
		return err
	}
	if sv.root != "" && len(sv.http) == 0 {
		return fmt.Errorf("%w: --http-root needs --http PORT", errUsage)
	}
	return httpRoot(sv.root)
}

// startTCPApps starts TCP echo and discard (raw-API services of internal/tcpapp) on every
// port given, on every address of addrs. They stop with the stack.
func startTCPApps(s *stack.Stack, addrs []netip.Prefix, echo, discard portList, stdout io.Writer) error {
	for _, sv := range []struct {
		name  string
		ports portList
		start func(*stack.Stack, netip.AddrPort) (*tcpapp.Listener, error)
	}{{"echo", echo, tcpapp.Echo}, {"discard", discard, tcpapp.Discard}} {
		for _, port := range sv.ports {
			for _, a := range addrs {
				if _, err := sv.start(s, netip.AddrPortFrom(a.Addr(), port)); err != nil {
					return fmt.Errorf("%s: %w", sv.name, err)
				}
			}
			fmt.Fprintf(stdout, "wisp: tcp %s on port %d\n", sv.name, port)
		}
	}
	return nil
}

// distinctPorts rejects a port given twice to the flags named (which share one port space).
func distinctPorts(flags string, lists ...portList) error {
	seen := map[uint16]bool{}
	for _, l := range lists {
		for _, p := range l {
			if seen[p] {
				return fmt.Errorf("%w: port %d is given twice (%s need distinct ports)", errUsage, p, flags)
			}
			seen[p] = true
		}
	}
	return nil
}

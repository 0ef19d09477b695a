package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pcap"
	"github.com/wispstack/wisp/link/tun"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	name := fs.String("tun", "", "TUN device to create or attach to (required)")
	var addrs prefixList
	fs.Var(&addrs, "addr", "address with prefix length, like 198.18.0.1/24 or fd42:5eed::1/64 (repeatable, at least one)")
	pcapFile := fs.String("pcap", "", "write every frame to this pcap file")
	mtu := fs.Int("mtu", 1500, "MTU of the TUN device")
	noOffload := fs.Bool("no-offload", false, "open the TUN device without offloads (virtio-net headers, TSO, checksum offload):\nevery packet fits the MTU, as with a kernel that refuses them")
	queues := fs.Int("queues", 1, "TUN queues (IFF_MULTI_QUEUE), each with its own reader: the kernel spreads flows over them")
	cores := fs.Int("cores", 1, "stack cores: TCP connections spread over them by their 4-tuple, each core with its own lock (use with --queues)")
	presetName := presetFlag(fs, "tunnel")
	var sv services
	sv.register(fs)
	if err := sv.parse(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return fmt.Errorf("%w: --tun NAME is required", errUsage)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%w: at least one --addr CIDR is required", errUsage)
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
	dev, err := tun.OpenConfig(tun.Config{Name: *name, MTU: *mtu, Offload: !*noOffload, Queues: *queues,
		Logf: func(format string, args ...any) { fmt.Fprintf(stderr, "wisp: "+format+"\n", args...) }})
	if err != nil {
		return err
	}
	var ep link.Endpoint = dev
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
	s, err := stack.New(stack.Config{Options: o, Cores: *cores})
	if err != nil {
		ep.Close()
		return err
	}
	defer s.Close()
	if _, err := s.AddNetif(ep, stack.NetifConfig{Name: *name, Addrs: addrs}); err != nil {
		ep.Close()
		return err
	}
	if err := startTCPApps(s, addrs, sv.echo, sv.discard, stdout); err != nil {
		return err
	}
	title := fmt.Sprintf("wisp serve on %s (%s)", *name, addrs.String())
	a, err := startApps(endpoint.New(s), addrs, title, sv.http, sv.root, sv.udpEcho, stdout)
	if err != nil {
		return err
	}
	// Runs before s.Close (deferred earlier): conns close on a live stack.
	defer a.close()
	offloads := "offloads on (TSO, checksum)"
	if dev.Offloads() == (link.Offloads{}) {
		offloads = "offloads off"
	}
	fmt.Fprintf(stdout, "wisp: serving on %s (%s), mtu %d, %s; SIGUSR1 prints stats, SIGINT/SIGTERM stops\n", *name, addrs.String(), *mtu, offloads)

	return waitSignals(s, stdout)
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

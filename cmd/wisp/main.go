// Command wisp runs a wisp stack: `wisp demo` runs two WireGuard peers over wisp in one
// process (--plain: two stacks on an Ethernet pipe), `wisp serve` attaches a stack to a TUN
// device or to a network interface through AF_XDP, `wisp wg` is a userspace WireGuard peer with wisp as its stack,
// `wisp proxy` is a transparent TUN-to-SOCKS5 (or direct) proxy, `wisp budget` prints the memory budget,
// `wisp doctor` diagnoses a running stack (its --stats server) or a saved snapshot.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/wispstack/wisp/opt"
)

const usage = `usage: wisp <command> [flags]

commands:
  demo     two WireGuard peers in this process (wireguard-go over wisp, in-memory binds):
           pings and a 256 MiB TCP transfer through the tunnel, its throughput and wisp's
           memory budget; --plain: two wisp stacks on an in-memory Ethernet link instead
           (ARP, NDP, fragmented pings, TCP each way)
  serve    attach a wisp stack to a TUN device or, through AF_XDP, to a network interface;
           answer pings and serve TCP echo/discard, HTTP and UDP echo:
           wisp serve --tun NAME --addr CIDR [--addr CIDR...] [--echo PORT] [--discard PORT]
                      [--http PORT [--http-root DIR]] [--udp-echo PORT]
                      [--pcap FILE] [--mtu N] [--no-offload] [--queues N] [--cores N]
                      [--preset NAME] [--stats HOST:PORT]
           wisp serve --tap NAME (--addr CIDR... | --dhcp [--addr CIDR...]) [--dhcpv6] [...the same]
           wisp serve --xdp IFACE --addr CIDR [...the same services] [--queues N] [--cores N]
           (the TUN device uses offloads, TSO and checksum, unless --no-offload;
           --queues N opens it multi-queue with a reader per queue. --xdp takes queues
           0..N-1 of IFACE, one AF_XDP socket each, and by default as many cores; its XDP
           program gives wisp only the frames for its addresses and passes the rest to the
           kernel; run it as root in IFACE's namespace: ip netns exec NS wisp serve --xdp ...;
           --tap: an Ethernet TAP device, where --dhcp gets the IPv4 address by DHCP and prints
           the lease, --dhcpv6 the DNS servers by stateless DHCPv6; --stats HOST:PORT serves
           /metrics (Prometheus), a live page, /snapshot.json and /diagnose for wisp doctor)
  wg       a userspace WireGuard peer (wireguard-go) with wisp as its stack, configured by a
           wg-quick file; serves the services of serve on its tunnel addresses and can run a
           SOCKS5 proxy on the host that dials through the tunnel:
           wisp wg --config FILE [--echo PORT] [--discard PORT] [--http PORT [--http-root DIR]]
                   [--udp-echo PORT] [--socks5 HOST:PORT] [--preset NAME] [--stats HOST:PORT] [-v]
  proxy    a transparent TUN proxy: every TCP connection, UDP session and ping a device
           sends into the TUN device, to any address, is caught by wisp and carried by a
           SOCKS5 server (CONNECT, UDP ASSOCIATE) or by this host's own sockets:
           wisp proxy --tun NAME (--socks5 IP:PORT [--udp] | --direct) [--exclude PREFIX...]
                      [--icmp local|drop|host] [--deferred=false] [--mtu N] [--no-offload]
                      [--queues N] [--cores N] [--preset NAME] [--stats HOST:PORT] [-v]
           (TCP handshakes complete only once upstream has connected, a refusal is a RST;
           pings are answered by wisp unless --icmp says otherwise: host, with --direct,
           pings for real through the host's ICMP socket)
  budget   print the memory budget of a preset: wisp budget [--preset NAME]
  doctor   read a stack's counters, pools, connections and timers and say in plain words what
           is wrong and which option to change:
           wisp doctor (--url http://HOST:PORT | --file SNAPSHOT [--file LATER]) [--interval 1s]
                       [--save FILE] [--json]
           (--url: a wisp serve/wg/proxy started with --stats HOST:PORT; exit status 0 healthy,
           1 findings, 2 bad input)

Run 'wisp <command> -h' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks errors that should print the command's usage.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "demo":
		err = cmdDemo(args[1:], stdout, stderr)
	case "serve":
		err = cmdServe(args[1:], stdout, stderr)
	case "wg":
		err = cmdWg(args[1:], stdout, stderr)
	case "proxy":
		err = cmdProxy(args[1:], stdout, stderr)
	case "budget":
		err = cmdBudget(args[1:], stdout, stderr)
	case "doctor":
		err = cmdDoctor(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "wisp: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errFindings):
		return 1
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "wisp %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "wisp %s: %v\n", args[0], err)
		return 1
	}
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wisp "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses flags and rejects stray arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

func presetFlag(fs *flag.FlagSet, def string) *string {
	return fs.String("preset", def, "options preset: "+strings.Join(opt.PresetNames(), ", "))
}

func preset(name string) (opt.Options, error) {
	o, err := opt.Preset(name)
	if err != nil {
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	return o, nil
}

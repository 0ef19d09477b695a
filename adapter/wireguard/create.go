package wireguard

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/endpoint/dns"
	"github.com/wispstack/wisp/link/packet"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
)

// Options are wisp's knobs beyond netstack's CreateNetTUN arguments.
type Options struct {
	// Stack sizes the stack (pools, heap, windows); the zero value means opt.Client(): a
	// tunnel endpoint carries one host's connections, and Client's ~6 MiB budget is made
	// only as it is used. Set opt.Tunnel() for a server or a relay of thousands.
	Stack opt.Options
	// Clock drives the stack's timers and the DNS cache; nil means the real clock.
	Clock clock.Clock
	// Seed fixes the stack's pseudo-random choices (tests); 0 picks one.
	Seed uint64
	// BatchSize is the device's BatchSize: packets per Read and per DeliverPackets
	// (0: DefaultBatchSize).
	BatchSize int
	// QueueLen bounds the frames queued from the stack to wireguard-go; a full queue drops,
	// as a NIC's does (0: DefaultQueueLen). The room the device reports to the stack
	// (link.TxRoomer) counts packets: a large segment takes the room of the packets Read
	// cuts it into.
	QueueLen int
	// DNSTimeout, when set, is the wait for an answer before the stack's resolver asks the
	// next server (it sets Stack.DNSRetryInterval, within 10 ms..1 min) and bounds the TCP
	// retry of a truncated answer; 0 keeps Stack's DNSRetryInterval (1 s, DNSMaxRetries 4
	// tries in all, rotating through the servers) and a 5 s TCP retry.
	DNSTimeout time.Duration
	// DNSCacheSize, when positive, sets Stack.DNSTableSize: the names the stack's resolver
	// holds, in flight or cached for their TTL. 0 or negative keeps Stack's (64 in
	// opt.Client); the table always caches answers for their TTL, as lwIP's does, so
	// netstack's "no cache" has no equivalent.
	DNSCacheSize int
	// NoOffload turns the large-segment path off: the stack then hands the device
	// MTU-sized packets with complete checksums, as before offloads. By default (false)
	// the device tells the stack it segments TCP and completes checksums
	// (link.Offloads{TxChecksum, TSO4, TSO6, GSOMax: 65535}): TCP sends segments of up to
	// 64 KiB with one header, and Read cuts them into MTU-sized packets, completing every
	// checksum in the same pass.
	NoOffload bool
}

// Defaults of Options. wireguard-go keeps a 64 KiB buffer for every packet it holds and
// preallocates BatchSize of them per reader, so larger values cost the host process memory
// outside wisp's budget: in bench's wg/bulk, 128 and 1024 made the process's resident set
// grow ~2.5x netstack's under load for no throughput gain, and 32 held 4 MiB of Go heap
// in a pair of idle devices (netstack's batch of 1 holds 128 KiB); 4 holds 0.5 MiB with
// the same throughput and CPU per GB.
const (
	DefaultBatchSize = 4
	DefaultQueueLen  = packet.DefaultQueueLen
)

// CreateNetTUN creates a wisp stack with the given local addresses, reached through the
// returned tun.Device, and the socket layer on it, as wireguard-go's
// tun/netstack.CreateNetTUN does: every address gets a host prefix (/32, /128) and the
// default route of its family points at the device. dnsServers answer LookupHost and names
// given to Dial, queried over the tunnel on port 53.
//
// mtu is the device's MTU, in [68, 65535] as IPv4 allows (larger datagrams, UDP's
// included, are fragmented to fit). An IPv6 link needs at least 1280 (RFC 8200 §5): with
// an IPv6 address among localAddresses a smaller mtu is an error, where netstack accepts
// it and then sends no IPv6 at all (gVisor's IPv6 output fails on a NIC whose MTU is below
// 1280).
func CreateNetTUN(localAddresses, dnsServers []netip.Addr, mtu int) (tun.Device, *Net, error) {
	return CreateNetTUNWithOptions(localAddresses, dnsServers, mtu, Options{})
}

// CreateNetTUNWithOptions is CreateNetTUN with wisp's options. The device it returns is a
// *Device.
func CreateNetTUNWithOptions(localAddresses, dnsServers []netip.Addr, mtu int, o Options) (tun.Device, *Net, error) {
	if o.Stack == (opt.Options{}) {
		o.Stack = opt.Client()
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.DNSTimeout > 0 {
		o.Stack.DNSRetryInterval = min(max(o.DNSTimeout, 10*time.Millisecond), time.Minute)
	}
	if o.DNSCacheSize > 0 {
		o.Stack.DNSTableSize = min(o.DNSCacheSize, 1<<16)
	}
	o.Stack.DNSMaxServers = min(max(o.Stack.DNSMaxServers, len(dnsServers)), 16)
	// packet.New checks the MTU against [68, 65535] (IPv4's range); 1280 for IPv6 is
	// checked below when an IPv6 address is configured.
	pl, err := packet.New(packet.Config{MTU: mtu, Batch: o.BatchSize, QueueLen: max(o.QueueLen, 0), Offload: !o.NoOffload})
	if err != nil {
		return nil, nil, fmt.Errorf("wireguard: %w", err)
	}
	var prefixes []netip.Prefix
	var hasV4, hasV6 bool
	for _, a := range localAddresses {
		a = a.Unmap()
		switch {
		case !a.IsValid():
			return nil, nil, errors.New("wireguard: invalid local address")
		case a.Is4():
			hasV4 = true
		default:
			hasV6 = true
			if mtu < 1280 {
				// RFC 8200 §5: "IPv6 requires that every link in the Internet have an MTU of
				// 1280 octets or greater."
				return nil, nil, fmt.Errorf("wireguard: MTU %d below IPv6's minimum of 1280", mtu)
			}
		}
		prefixes = append(prefixes, netip.PrefixFrom(a.WithZone(""), a.BitLen()))
	}
	s, err := stack.New(stack.Config{Options: o.Stack, Clock: o.Clock, Seed: o.Seed})
	if err != nil {
		return nil, nil, err
	}
	dev := newDevice(pl)
	dev.closer = s.Close
	nif, err := s.AddNetif(dev.Link(), stack.NetifConfig{Name: "wg0", MTU: mtu, Addrs: prefixes})
	if err != nil {
		s.Close()
		dev.Close()
		return nil, nil, err
	}
	for _, r := range []struct {
		dst netip.Prefix
		on  bool
	}{
		{netip.PrefixFrom(netip.IPv4Unspecified(), 0), hasV4},
		{netip.PrefixFrom(netip.IPv6Unspecified(), 0), hasV6},
	} {
		if !r.on {
			continue
		}
		if err := s.AddRoute(stack.Route{Dst: r.dst, Netif: nif}); err != nil {
			dev.Close()
			return nil, nil, fmt.Errorf("wireguard: default route %v: %w", r.dst, err)
		}
	}
	n := &Net{
		ep:    endpoint.New(s),
		dev:   dev,
		hasV4: hasV4,
		hasV6: hasV6,
	}
	// The stack's resolver asks the servers (the first DNSMaxServers of them) in turn.
	s.Lock()
	for i, a := range dnsServers {
		if i < o.Stack.DNSMaxServers {
			_ = s.DNS().SetServer(i, netip.AddrPortFrom(a.Unmap(), 53))
		}
	}
	s.Unlock()
	n.res = &dns.Resolver{Stack: s, DialTCP: n.dialDNS, TCPTimeout: o.DNSTimeout}
	return dev, n, nil
}

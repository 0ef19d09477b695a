package wgconf

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// UAPI returns the configuration in wireguard-go's UAPI "set" format
// (https://www.wireguard.com/xplatform/), for device.IpcSet: keys in hex, one key=value
// per line, replace_peers and replace_allowed_ips so that the device ends up with exactly
// this configuration. A peer whose Endpoint is a host name gets its endpoint only once
// ResolveEndpoints has set EndpointAddr. Address, DNS and MTU are the tunnel's business,
// not the device's, and are not part of it.
func (c *Config) UAPI() string {
	var b strings.Builder
	kv := func(k, v string) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	kv("private_key", c.PrivateKey.Hex())
	if c.ListenPort != 0 {
		kv("listen_port", strconv.Itoa(int(c.ListenPort)))
	}
	if c.FwMark != 0 {
		kv("fwmark", strconv.FormatUint(uint64(c.FwMark), 10))
	}
	kv("replace_peers", "true")
	for _, p := range c.Peers {
		kv("public_key", p.PublicKey.Hex())
		if !p.PresharedKey.IsZero() {
			kv("preshared_key", p.PresharedKey.Hex())
		}
		if p.EndpointAddr.IsValid() {
			kv("endpoint", p.EndpointAddr.String())
		}
		if p.PersistentKeepalive != 0 {
			kv("persistent_keepalive_interval", strconv.Itoa(int(p.PersistentKeepalive)))
		}
		kv("replace_allowed_ips", "true")
		for _, a := range p.AllowedIPs {
			kv("allowed_ip", a.String())
		}
	}
	return b.String()
}

// LookupFunc resolves a host name to addresses; net.DefaultResolver.LookupNetIP is one.
type LookupFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

// ResolveEndpoints sets the EndpointAddr of every peer whose Endpoint is a host name,
// with lookup (the operating system's resolver: endpoints live on the underlay, outside the
// tunnel). The first address returned is used, as wg(8) uses getaddrinfo's first. Errors
// name the peer's line.
func (c *Config) ResolveEndpoints(ctx context.Context, lookup LookupFunc) error {
	for i := range c.Peers {
		p := &c.Peers[i]
		if p.Endpoint == "" || p.EndpointAddr.IsValid() {
			continue
		}
		host, sport, err := net.SplitHostPort(p.Endpoint)
		if err != nil {
			return &ParseError{Line: p.Line, Err: fmt.Errorf("Endpoint: %v", err)}
		}
		port, err := strconv.ParseUint(sport, 10, 16)
		if err != nil {
			return &ParseError{Line: p.Line, Err: fmt.Errorf("Endpoint: port %q", sport)}
		}
		addrs, err := lookup(ctx, "ip", host)
		if err == nil && len(addrs) == 0 {
			err = fmt.Errorf("no address for %s", host)
		}
		if err != nil {
			return &ParseError{Line: p.Line, Err: fmt.Errorf("[Peer] Endpoint %s: %w", p.Endpoint, err)}
		}
		p.EndpointAddr = netip.AddrPortFrom(addrs[0].Unmap().WithZone(""), uint16(port))
	}
	return nil
}

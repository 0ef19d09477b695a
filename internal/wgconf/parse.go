package wgconf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Config is a parsed configuration file: one [Interface] and its [Peer]s.
type Config struct {
	PrivateKey Key
	// Addresses are the tunnel addresses (Address=), with their prefix lengths; a bare
	// address gets /32 or /128, as wg-quick gives it.
	Addresses []netip.Prefix
	// DNS are the DNS servers (DNS= entries that are IP addresses).
	DNS []netip.Addr
	// DNSSearch are the DNS= entries that are not IP addresses: search domains to wg-quick.
	DNSSearch []string
	// MTU is the tunnel's MTU; 0 when the file does not set it.
	MTU int
	// ListenPort is the UDP port to listen on; 0 (unset) picks one.
	ListenPort uint16
	// FwMark marks the UDP packets of the underlay (Linux SO_MARK); 0 is none.
	FwMark uint32
	// Ignored lists wg-quick settings that only make sense to wg-quick (Table, PreUp,
	// PostUp, PreDown, PostDown, SaveConfig) as "line N: Key", for the caller to warn about.
	Ignored []string
	Peers   []Peer
}

// Peer is one [Peer] section.
type Peer struct {
	PublicKey    Key
	PresharedKey Key // zero when unset, which the UAPI means as "none"
	// Endpoint is the Endpoint= value as written ("host:port"), "" when unset.
	Endpoint string
	// EndpointAddr is the endpoint's address: set by Parse when the host is an IP literal,
	// by Config.ResolveEndpoints when it is a name.
	EndpointAddr netip.AddrPort
	// AllowedIPs are masked prefixes (a bare address is /32 or /128).
	AllowedIPs []netip.Prefix
	// PersistentKeepalive is in seconds; 0 is off.
	PersistentKeepalive uint16
	// Line is the line of the [Peer] header, for messages.
	Line int
}

// ParseError is an error in a configuration file, at a line (1-based).
type ParseError struct {
	Line int
	Err  error
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *ParseError) Unwrap() error { return e.Err }

// MaxLine bounds a line's length: a key is 44 characters, and no sane line needs 64 KiB.
const MaxLine = 64 << 10

// section is where a line stands.
type section int

const (
	sectionNone section = iota
	sectionInterface
	sectionPeer
)

// parser holds the state of one Parse.
type parser struct {
	c         Config
	line      int
	sec       section
	iface     int            // line of [Interface], 0 before it
	seen      map[string]int // single-valued keys of the current section → line
	peerLines map[Key]int
}

// Parse reads a configuration file. Keys and section names are case-insensitive, as in
// wg(8); '#' starts a comment; Address, DNS and AllowedIPs take comma-separated lists and
// may repeat; other keys may appear once per section. Errors are *ParseError.
func Parse(r io.Reader) (*Config, error) {
	p := &parser{peerLines: map[Key]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), MaxLine)
	for sc.Scan() {
		p.line++
		if err := p.parseLine(sc.Text()); err != nil {
			return nil, &ParseError{Line: p.line, Err: err}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{Line: p.line + 1, Err: fmt.Errorf("line longer than %d bytes", MaxLine)}
		}
		return nil, err
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return &p.c, nil
}

func (p *parser) parseLine(text string) error {
	if i := strings.IndexByte(text, '#'); i >= 0 {
		text = text[:i]
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return nil
	}
	if text[0] == '[' {
		if text[len(text)-1] != ']' {
			return fmt.Errorf("%q: a section header is [Interface] or [Peer]", text)
		}
		return p.startSection(strings.TrimSpace(text[1 : len(text)-1]))
	}
	key, value, ok := strings.Cut(text, "=")
	if !ok {
		return fmt.Errorf("%q is neither a [Section] nor Key = Value", text)
	}
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if key == "" {
		return fmt.Errorf("%q: the key before '=' is missing", text)
	}
	switch p.sec {
	case sectionInterface:
		return p.interfaceKey(key, value)
	case sectionPeer:
		return p.peerKey(&p.c.Peers[len(p.c.Peers)-1], key, value)
	}
	return fmt.Errorf("%s comes before any [Interface] or [Peer] section", key)
}

func (p *parser) startSection(name string) error {
	if err := p.endSection(); err != nil {
		return err
	}
	p.seen = map[string]int{}
	switch strings.ToLower(name) {
	case "interface":
		if p.iface != 0 {
			return fmt.Errorf("a second [Interface] (the first is on line %d)", p.iface)
		}
		p.iface, p.sec = p.line, sectionInterface
	case "peer":
		p.sec = sectionPeer
		p.c.Peers = append(p.c.Peers, Peer{Line: p.line})
	default:
		return fmt.Errorf("unknown section [%s]: a file has [Interface] and [Peer] sections", name)
	}
	return nil
}

// endSection checks the section that ends (at a new header or at the end of the file).
func (p *parser) endSection() error {
	if p.sec != sectionPeer {
		return nil
	}
	peer := &p.c.Peers[len(p.c.Peers)-1]
	if _, ok := p.seen["publickey"]; !ok {
		return &ParseError{Line: peer.Line, Err: errors.New("[Peer] has no PublicKey")}
	}
	if first, dup := p.peerLines[peer.PublicKey]; dup {
		return &ParseError{Line: peer.Line, Err: fmt.Errorf("[Peer] has the same PublicKey as the [Peer] on line %d", first)}
	}
	p.peerLines[peer.PublicKey] = peer.Line
	return nil
}

func (p *parser) finish() error {
	if err := p.endSection(); err != nil {
		return err
	}
	if p.iface == 0 {
		return &ParseError{Line: max(p.line, 1), Err: errors.New("no [Interface] section")}
	}
	if p.c.PrivateKey.IsZero() { // a zero key is refused where it is written: zero is unset
		return &ParseError{Line: p.iface, Err: errors.New("[Interface] has no PrivateKey")}
	}
	pub, err := p.c.PrivateKey.PublicKey()
	if err != nil {
		return &ParseError{Line: p.iface, Err: fmt.Errorf("PrivateKey: %v", err)}
	}
	for _, peer := range p.c.Peers {
		if peer.PublicKey == pub {
			return &ParseError{Line: peer.Line, Err: errors.New("[Peer]'s PublicKey is this interface's own public key")}
		}
	}
	return nil
}

// once rejects a second occurrence of a single-valued key in the current section.
func (p *parser) once(key string) error {
	k := strings.ToLower(key)
	if first, ok := p.seen[k]; ok {
		return fmt.Errorf("%s is given twice in this section (first on line %d)", key, first)
	}
	p.seen[k] = p.line
	return nil
}

// interfaceKey handles one Key = Value of [Interface].
func (p *parser) interfaceKey(key, value string) error {
	c := &p.c
	var err error
	switch strings.ToLower(key) {
	case "privatekey":
		if err = p.once(key); err == nil {
			c.PrivateKey, err = ParseKey(value)
			if err == nil && c.PrivateKey.IsZero() {
				err = errors.New("the key is all zeros")
			}
		}
	case "address":
		var l []netip.Prefix
		if l, err = prefixes(value, false); err == nil {
			c.Addresses = append(c.Addresses, l...)
		}
	case "dns":
		err = p.dns(value)
	case "mtu":
		if err = p.once(key); err == nil {
			// 68: the smallest MTU IPv4 allows (RFC 791), as Linux's ip link and
			// wireguard-go's netstack accept. An IPv6 address needs 1280 (RFC 8200 §5),
			// which the tunnel checks.
			var n uint64
			n, err = number(value, 68, 65535)
			c.MTU = int(n)
		}
	case "listenport":
		if err = p.once(key); err == nil {
			var n uint64
			n, err = number(value, 0, 65535)
			c.ListenPort = uint16(n)
		}
	case "fwmark":
		if err = p.once(key); err == nil {
			c.FwMark, err = fwmark(value)
		}
	case "table", "preup", "postup", "predown", "postdown", "saveconfig":
		c.Ignored = append(c.Ignored, fmt.Sprintf("line %d: %s", p.line, key))
		return nil
	default:
		return fmt.Errorf("unknown key %q in [Interface] (known: PrivateKey, Address, DNS, MTU, ListenPort, FwMark)", key)
	}
	if err != nil {
		return fmt.Errorf("%s: %v", key, err)
	}
	return nil
}

func (p *parser) dns(value string) error {
	for _, f := range fields(value) {
		if f == "" {
			return errors.New("empty entry in the list")
		}
		if a, err := netip.ParseAddr(f); err == nil {
			if a.Zone() != "" {
				return fmt.Errorf("%q: zones are not supported", f)
			}
			p.c.DNS = append(p.c.DNS, a.Unmap())
			continue
		}
		if !validDomain(f) {
			return fmt.Errorf("%q is neither an IP address nor a search domain", f)
		}
		p.c.DNSSearch = append(p.c.DNSSearch, f)
	}
	return nil
}

// peerKey handles one Key = Value of a [Peer].
func (p *parser) peerKey(peer *Peer, key, value string) error {
	var err error
	switch strings.ToLower(key) {
	case "publickey":
		if err = p.once(key); err == nil {
			peer.PublicKey, err = ParseKey(value)
		}
	case "presharedkey":
		if err = p.once(key); err == nil {
			peer.PresharedKey, err = ParseKey(value)
		}
	case "endpoint":
		if err = p.once(key); err == nil {
			peer.EndpointAddr, err = endpoint(value)
			peer.Endpoint = value
		}
	case "allowedips":
		var l []netip.Prefix
		if l, err = prefixes(value, true); err == nil {
			peer.AllowedIPs = append(peer.AllowedIPs, l...)
		}
	case "persistentkeepalive":
		if err = p.once(key); err == nil {
			if strings.EqualFold(value, "off") {
				peer.PersistentKeepalive = 0
				break
			}
			var n uint64
			n, err = number(value, 0, 65535)
			peer.PersistentKeepalive = uint16(n)
		}
	default:
		return fmt.Errorf("unknown key %q in [Peer] (known: PublicKey, PresharedKey, Endpoint, AllowedIPs, PersistentKeepalive)", key)
	}
	if err != nil {
		return fmt.Errorf("%s: %v", key, err)
	}
	return nil
}

// fields splits a comma-separated list and trims its entries. An empty value is no entry.
func fields(value string) []string {
	if value == "" {
		return nil
	}
	l := strings.Split(value, ",")
	for i := range l {
		l[i] = strings.TrimSpace(l[i])
	}
	return l
}

// prefixes parses a list of addresses with optional prefix lengths. Allowed IPs are
// routes, kept masked (198.18.0.7/24 is 198.18.0.0/24); Address keeps its host part.
func prefixes(value string, masked bool) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range fields(value) {
		if f == "" {
			return nil, errors.New("empty entry in the list")
		}
		var pf netip.Prefix
		if strings.Contains(f, "/") {
			var err error
			if pf, err = netip.ParsePrefix(f); err != nil {
				return nil, fmt.Errorf("%q is not an address with a prefix length (like 198.18.0.1/24 or fd42:5eed::1/64)", f)
			}
		} else {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP address", f)
			}
			if a.Zone() != "" {
				return nil, fmt.Errorf("%q: zones are not supported", f)
			}
			pf = netip.PrefixFrom(a, a.BitLen())
		}
		if pf.Addr().Is4In6() {
			pf = netip.PrefixFrom(pf.Addr().Unmap(), max(pf.Bits()-96, 0))
		}
		if masked {
			pf = pf.Masked()
		}
		out = append(out, pf)
	}
	return out, nil
}

// number parses a decimal in [lo, hi].
func number(value string, lo, hi uint64) (uint64, error) {
	n, err := strconv.ParseUint(value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", value)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d out of range [%d, %d]", n, lo, hi)
	}
	return n, nil
}

// fwmark parses FwMark as wg(8): "off", a decimal or 0x hex 32-bit number.
func fwmark(value string) (uint32, error) {
	if strings.EqualFold(value, "off") {
		return 0, nil
	}
	n, err := strconv.ParseUint(value, 0, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not off or a 32-bit number", value)
	}
	return uint32(n), nil
}

// endpoint checks host:port and returns the address when the host is an IP literal.
func endpoint(value string) (netip.AddrPort, error) {
	host, sport, err := net.SplitHostPort(value)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not host:port (write an IPv6 address in brackets: [fd42:5eed::1]:51820)", value)
	}
	port, err := number(sport, 1, 65535)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %v", err)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("%q: zones are not supported", value)
		}
		if a.IsUnspecified() {
			return netip.AddrPort{}, fmt.Errorf("%q: the unspecified address is no endpoint", value)
		}
		return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
	}
	if !validDomain(host) {
		return netip.AddrPort{}, fmt.Errorf("%q: host %q is neither an IP address nor a host name", value, host)
	}
	return netip.AddrPort{}, nil
}

// validDomain accepts a host name as RFC 1123 §2.1 writes them: labels of letters, digits
// and hyphens (underscores too, which real names use), at most 63 bytes each and 253 in all.
func validDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

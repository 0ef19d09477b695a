package socks5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// Version is the protocol version byte, X'05' (RFC 1928 §3).
const Version = 5

// Authentication methods (RFC 1928 §3).
const (
	MethodNoAuth       = 0x00
	MethodNoAcceptable = 0xff
)

// Commands (RFC 1928 §4).
const (
	CmdConnect      = 1
	CmdBind         = 2
	CmdUDPAssociate = 3
)

// Address types (RFC 1928 §5).
const (
	AtypIPv4   = 1
	AtypDomain = 3
	AtypIPv6   = 4
)

// Reply is a reply's REP field (RFC 1928 §6).
type Reply byte

// Replies, as RFC 1928 §6 lists them.
const (
	Succeeded           Reply = 0
	GeneralFailure      Reply = 1
	NotAllowed          Reply = 2
	NetworkUnreachable  Reply = 3
	HostUnreachable     Reply = 4
	ConnectionRefused   Reply = 5
	TTLExpired          Reply = 6
	CommandNotSupported Reply = 7
	AddressNotSupported Reply = 8
)

var replyNames = [...]string{"succeeded", "general SOCKS server failure", "connection not allowed by ruleset",
	"network unreachable", "host unreachable", "connection refused", "TTL expired", "command not supported",
	"address type not supported"}

func (r Reply) String() string {
	if int(r) < len(replyNames) {
		return replyNames[r]
	}
	return "reply " + strconv.Itoa(int(r))
}

// Request is a client's request (RFC 1928 §4): a command and a destination, which is an
// IP address (Addr) or a domain name (Domain), and a port.
//
// Addr is kept as the wire carried it: an IPv4-mapped IPv6 address (::ffff:a.b.c.d, ATYP
// X'04') stays a 16-byte address, so that Append re-encodes the request exactly.
type Request struct {
	Cmd    byte
	Addr   netip.Addr // valid for AtypIPv4 (Is4) and AtypIPv6 (Is6, 4-in-6 included)
	Domain string     // set for AtypDomain
	Port   uint16
}

// Target returns the destination as host:port, for a dial function. A 4-in-6 address is
// given as the IPv4 address it maps: that is the host to reach, and a dialer that picks a
// family or route from the literal (a tunnel's with IPv4 only) must not take it for IPv6.
func (r Request) Target() string {
	host := r.Domain
	if host == "" {
		host = r.Addr.Unmap().String()
	}
	return net.JoinHostPort(host, strconv.Itoa(int(r.Port)))
}

// Append appends the request's wire form to b (what a client sends).
func (r Request) Append(b []byte) []byte {
	b = append(b, Version, r.Cmd, 0)
	b = appendAddr(b, r.Addr, r.Domain)
	return binary.BigEndian.AppendUint16(b, r.Port)
}

// appendAddr appends ATYP and DST.ADDR / BND.ADDR. The ATYP follows a's own form: a 4-in-6
// address is written as IPv6 (ATYP X'04'), as it was read; unmap it first for X'01'.
func appendAddr(b []byte, a netip.Addr, domain string) []byte {
	switch {
	case domain != "":
		b = append(b, AtypDomain, byte(len(domain)))
		return append(b, domain...)
	case a.Is6():
		a16 := a.As16() // without the zone, which the wire has no room for
		b = append(b, AtypIPv6)
		return append(b, a16[:]...)
	case a.Is4():
		a4 := a.As4()
		b = append(b, AtypIPv4)
		return append(b, a4[:]...)
	default:
		// No address: 0.0.0.0, which replies to failed requests carry.
		return append(b, AtypIPv4, 0, 0, 0, 0)
	}
}

// RequestError is a request the server cannot parse; Reply is the answer owed to the
// client before the connection closes (RFC 1928 §6), or Succeeded when none can be sent
// (the client does not speak SOCKS 5, or the stream ended).
type RequestError struct {
	Reply Reply
	Err   error
}

func (e *RequestError) Error() string { return "socks5: " + e.Err.Error() }
func (e *RequestError) Unwrap() error { return e.Err }

// ReadRequest reads one request (RFC 1928 §4):
//
//	+----+-----+-------+------+----------+----------+
//	|VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
//	+----+-----+-------+------+----------+----------+
//	| 1  |  1  | X'00' |  1   | Variable |    2     |
//
// It reads exactly the request's bytes. Every command is returned, the server decides what
// it supports. Errors are *RequestError (wrapping io.ErrUnexpectedEOF for a short request).
func ReadRequest(r io.Reader) (Request, error) {
	var req Request
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return req, &RequestError{Err: short(err)}
	}
	if hdr[0] != Version {
		return req, &RequestError{Err: fmt.Errorf("request of version %d, not 5", hdr[0])}
	}
	// RSV is "X'00'"; no implementation relies on it, so it is not checked (be liberal
	// in what you accept, RFC 1122 §1.2.2).
	req.Cmd = hdr[1]
	var buf [255 + 2]byte
	switch hdr[3] {
	case AtypIPv4:
		if _, err := io.ReadFull(r, buf[:4+2]); err != nil {
			return req, &RequestError{Reply: GeneralFailure, Err: short(err)}
		}
		req.Addr = netip.AddrFrom4([4]byte(buf[:4]))
		req.Port = binary.BigEndian.Uint16(buf[4:])
	case AtypIPv6:
		if _, err := io.ReadFull(r, buf[:16+2]); err != nil {
			return req, &RequestError{Reply: GeneralFailure, Err: short(err)}
		}
		req.Addr = netip.AddrFrom16([16]byte(buf[:16]))
		req.Port = binary.BigEndian.Uint16(buf[16:])
	case AtypDomain:
		// §5: "the first octet of the address field contains the number of octets of
		// name that follow, there is no terminating NUL octet."
		if _, err := io.ReadFull(r, buf[:1]); err != nil {
			return req, &RequestError{Reply: GeneralFailure, Err: short(err)}
		}
		n := int(buf[0])
		if _, err := io.ReadFull(r, buf[:n+2]); err != nil {
			return req, &RequestError{Reply: GeneralFailure, Err: short(err)}
		}
		if n == 0 {
			return req, &RequestError{Reply: HostUnreachable, Err: errors.New("empty domain name")}
		}
		req.Domain = string(buf[:n])
		req.Port = binary.BigEndian.Uint16(buf[n:])
	default:
		// The address's length is unknown: the request cannot be read to its end. §6:
		// X'08' "Address type not supported", then close.
		return req, &RequestError{Reply: AddressNotSupported, Err: fmt.Errorf("address type %d", hdr[3])}
	}
	return req, nil
}

func short(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadGreeting reads the version identifier/method selection message (RFC 1928 §3) and
// returns the methods offered.
func ReadGreeting(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, &RequestError{Err: short(err)}
	}
	if hdr[0] != Version {
		return nil, &RequestError{Err: fmt.Errorf("greeting of version %d, not 5", hdr[0])}
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return nil, &RequestError{Err: short(err)}
	}
	return methods, nil
}

// AppendReply appends a reply (RFC 1928 §6) with bound address bnd (the zero AddrPort
// writes 0.0.0.0:0, for failures). A 4-in-6 bnd, as a dual-stack socket reports an IPv4
// connection's address, is written as IPv4 (ATYP X'01').
func AppendReply(b []byte, rep Reply, bnd netip.AddrPort) []byte {
	b = append(b, Version, byte(rep), 0)
	b = appendAddr(b, bnd.Addr().Unmap(), "")
	return binary.BigEndian.AppendUint16(b, bnd.Port())
}

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/forwarder"
	"github.com/wispstack/wisp/wire"
)

// pingTimeout is how long `wisp proxy --icmp host` waits for the host's ping to be answered.
const pingTimeout = 5 * time.Second

// pingFailed counts echo requests the host's ping did not get an answer for.
var pingFailed atomic.Uint64

// ICMP echo types (RFC 792, RFC 4443 §4).
const (
	icmp4EchoRequest = 8
	icmp4EchoReply   = 0
	icmp6EchoRequest = 128
	icmp6EchoReply   = 129
)

// rawPing is set when the host refuses ping sockets but allows raw ones (root outside
// net.ipv4.ping_group_range, which is the default in a new network namespace).
var rawPing atomic.Bool

// pingSocket opens an ICMP socket of the family: an unprivileged "ping socket" (SOCK_DGRAM
// with IPPROTO_ICMP/ICMPV6: the kernel picks the identifier, fills the checksum and gives
// back only this socket's replies), or with raw a raw socket (every echo reply of the
// host; the caller checks the identifier).
func pingSocket(v6, raw bool) (int, error) {
	typ := unix.SOCK_DGRAM
	if raw {
		typ = unix.SOCK_RAW
	}
	if v6 {
		return unix.Socket(unix.AF_INET6, typ|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
	}
	return unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
}

// checkPingSocket picks how the host pings: ping sockets, else raw sockets (root, or
// CAP_NET_RAW); neither is an error that says what to change.
func checkPingSocket() error {
	for _, raw := range []bool{false, true} {
		fd, err := pingSocket(false, raw)
		if err == nil {
			unix.Close(fd)
			rawPing.Store(raw)
			return nil
		}
		if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("--icmp host: ICMP socket: %w", err)
		}
	}
	return errors.New("--icmp host: the host refuses ICMP sockets: allow this user's group in sysctl net.ipv4.ping_group_range, or run with CAP_NET_RAW")
}

// pingHost pings r.Dst from the host with r's data and, when the host's ping is answered,
// answers r: the client sees the real round trip.
func pingHost(r *forwarder.EchoRequest) {
	if err := hostPing(r.Dst, r.Seq, r.Data, pingTimeout); err != nil {
		pingFailed.Add(1)
		return
	}
	_ = r.Reply()
}

// hostPing sends one echo request to dst and waits for its reply (same identifier where
// the socket is raw, same sequence number and data) until timeout.
func hostPing(dst netip.Addr, seq uint16, data []byte, timeout time.Duration) error {
	dst = dst.Unmap()
	v6, raw := dst.Is6(), rawPing.Load()
	fd, err := pingSocket(v6, raw)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	typ, want := byte(icmp4EchoRequest), byte(icmp4EchoReply)
	var sa unix.Sockaddr
	if v6 {
		typ, want = icmp6EchoRequest, icmp6EchoReply
		sa = &unix.SockaddrInet6{Addr: dst.As16()}
	} else {
		sa = &unix.SockaddrInet4{Addr: dst.As4()}
	}
	// A ping socket fills the identifier (its "port") and the checksum. A raw socket sends
	// what it is given: a random identifier to tell our reply from others', and for IPv4
	// the checksum (the kernel computes ICMPv6's, RFC 3542 §3.1).
	msg := make([]byte, 8+len(data))
	msg[0] = typ
	id := uint16(rand.Uint32())
	binary.BigEndian.PutUint16(msg[4:], id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	copy(msg[8:], data)
	if raw && !v6 {
		wire.ICMPv4(msg).SetChecksum()
	}
	if err := unix.Sendto(fd, msg, 0, sa); err != nil {
		return err
	}
	buf := make([]byte, 60+len(msg)+64)
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return unix.ETIMEDOUT
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, int(left/time.Millisecond)+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		n, from, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			return err
		}
		m := buf[:n]
		if raw {
			if !fromAddr(from, dst) {
				continue
			}
			if !v6 { // an IPv4 raw socket gives the IP header too
				if len(m) < 20 || int(m[0]&0x0f)*4 > len(m) {
					continue
				}
				m = m[int(m[0]&0x0f)*4:]
			}
			if len(m) < 8 || binary.BigEndian.Uint16(m[4:]) != id {
				continue
			}
		}
		if len(m) >= 8 && m[0] == want && binary.BigEndian.Uint16(m[6:]) == seq && string(m[8:]) == string(data) {
			return nil
		}
	}
}

// fromAddr reports whether a received packet's source is a.
func fromAddr(sa unix.Sockaddr, a netip.Addr) bool {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(sa.Addr) == a
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(sa.Addr) == a
	}
	return false
}

package socks5

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
)

// Byte fixtures from RFC 1928 §4/§5's layout.
var requestFixtures = []struct {
	name string
	wire []byte
	req  Request
}{
	{"IPv4", []byte{5, 1, 0, 1, 198, 18, 0, 7, 0x1f, 0x90},
		Request{Cmd: CmdConnect, Addr: netip.MustParseAddr("198.18.0.7"), Port: 8080}},
	{"IPv6", append(append([]byte{5, 1, 0, 4}, netip.MustParseAddr("fd42:5eed::7").AsSlice()...), 0, 80),
		Request{Cmd: CmdConnect, Addr: netip.MustParseAddr("fd42:5eed::7"), Port: 80}},
	{"domain", append(append([]byte{5, 1, 0, 3, 11}, "example.org"...), 1, 187),
		Request{Cmd: CmdConnect, Domain: "example.org", Port: 443}},
	{"BIND", []byte{5, 2, 0, 1, 0, 0, 0, 0, 0, 0}, Request{Cmd: CmdBind, Addr: netip.AddrFrom4([4]byte{}), Port: 0}},
}

func TestReadRequest(t *testing.T) {
	for _, f := range requestFixtures {
		// A byte after the request must be left unread.
		r := bytes.NewReader(append(append([]byte{}, f.wire...), 0xAA))
		req, err := ReadRequest(r)
		if err != nil || req != f.req {
			t.Errorf("%s: ReadRequest = %+v, %v; want %+v", f.name, req, err, f.req)
		}
		if r.Len() != 1 {
			t.Errorf("%s: %d bytes left, want 1", f.name, r.Len())
		}
		if got := f.req.Append(nil); !bytes.Equal(got, f.wire) {
			t.Errorf("%s: Append = %x, want %x", f.name, got, f.wire)
		}
	}
	if got := requestFixtures[1].req.Target(); got != "[fd42:5eed::7]:80" {
		t.Errorf("Target = %q", got)
	}
	if got := requestFixtures[2].req.Target(); got != "example.org:443" {
		t.Errorf("Target = %q", got)
	}
}

// An IPv4-mapped IPv6 address (ATYP X'04', ::ffff:a.b.c.d) stays IPv6 when re-encoded, and
// is dialed as the IPv4 host it maps. The wire is the input FuzzReadRequest found
// (testdata/fuzz/FuzzReadRequest/8bb6afc63ab8ae75): Append used to write it as ATYP X'01'.
func TestReadRequest4In6(t *testing.T) {
	wire := []byte("\x050\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff000000")
	want := Request{Cmd: '0', Addr: netip.MustParseAddr("::ffff:48.48.48.48"), Port: 0x3030}
	req, err := ReadRequest(bytes.NewReader(wire))
	if err != nil || req != want {
		t.Fatalf("ReadRequest = %+v, %v; want %+v", req, err, want)
	}
	if got := req.Append(nil); !bytes.Equal(got, wire) {
		t.Errorf("Append = %x, want %x", got, wire)
	}
	if got := req.Target(); got != "48.48.48.48:12336" {
		t.Errorf("Target = %q, want the IPv4 host", got)
	}
}

func TestReadRequestErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		wire []byte
		rep  Reply
		want string
	}{
		{"empty", nil, Succeeded, "unexpected EOF"},
		{"SOCKS4", []byte{4, 1, 0, 80, 198, 18, 0, 1}, Succeeded, "version 4"},
		{"short IPv4", []byte{5, 1, 0, 1, 198, 18}, GeneralFailure, "unexpected EOF"},
		{"short IPv6", []byte{5, 1, 0, 4, 0xfd}, GeneralFailure, "unexpected EOF"},
		{"short domain", []byte{5, 1, 0, 3, 10, 'a'}, GeneralFailure, "unexpected EOF"},
		{"no domain length", []byte{5, 1, 0, 3}, GeneralFailure, "unexpected EOF"},
		{"empty domain", []byte{5, 1, 0, 3, 0, 0, 80}, HostUnreachable, "empty domain"},
		{"address type 2", []byte{5, 1, 0, 2, 1, 2, 3, 4, 0, 80}, AddressNotSupported, "address type 2"},
	} {
		_, err := ReadRequest(bytes.NewReader(c.wire))
		var re *RequestError
		if !errors.As(err, &re) || re.Reply != c.rep || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (%#v), want reply %v and %q", c.name, err, err, c.rep, c.want)
		}
	}
}

func TestReadGreeting(t *testing.T) {
	m, err := ReadGreeting(bytes.NewReader([]byte{5, 2, 0, 2}))
	if err != nil || !bytes.Equal(m, []byte{0, 2}) {
		t.Fatalf("ReadGreeting = %v, %v", m, err)
	}
	if _, err := ReadGreeting(bytes.NewReader([]byte{5, 3, 0})); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short greeting: %v", err)
	}
	if _, err := ReadGreeting(bytes.NewReader([]byte{'G', 'E'})); err == nil || !strings.Contains(err.Error(), "version 71") {
		t.Errorf("HTTP greeting: %v", err)
	}
}

func TestAppendReply(t *testing.T) {
	for _, c := range []struct {
		rep  Reply
		bnd  netip.AddrPort
		want []byte
	}{
		{ConnectionRefused, netip.AddrPort{}, []byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}},
		{Succeeded, netip.MustParseAddrPort("198.18.0.1:40000"), []byte{5, 0, 0, 1, 198, 18, 0, 1, 0x9c, 0x40}},
		{Succeeded, netip.MustParseAddrPort("[::ffff:198.18.0.1]:1"), []byte{5, 0, 0, 1, 198, 18, 0, 1, 0, 1}},
		{Succeeded, netip.MustParseAddrPort("[fd42:5eed::1]:2"),
			append(append([]byte{5, 0, 0, 4}, netip.MustParseAddr("fd42:5eed::1").AsSlice()...), 0, 2)},
	} {
		if got := AppendReply(nil, c.rep, c.bnd); !bytes.Equal(got, c.want) {
			t.Errorf("AppendReply(%v, %v) = %v, want %v", c.rep, c.bnd, got, c.want)
		}
	}
	if s := TTLExpired.String(); s != "TTL expired" {
		t.Errorf("String = %q", s)
	}
	if s := Reply(9).String(); s != "reply 9" {
		t.Errorf("String = %q", s)
	}
}

// timeoutErr is an error with Timeout() true, as net's are.
type timeoutErr struct{}

func (timeoutErr) Error() string { return "timeout" }
func (timeoutErr) Timeout() bool { return true }

func TestReplyFor(t *testing.T) {
	op := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	for _, c := range []struct {
		err  error
		want Reply
	}{
		{nil, Succeeded},
		{op(syscall.ECONNREFUSED), ConnectionRefused},
		{op(os.NewSyscallError("connect", syscall.ECONNREFUSED)), ConnectionRefused},
		{op(syscall.ENETUNREACH), NetworkUnreachable},
		{op(syscall.ENETDOWN), NetworkUnreachable},
		{op(syscall.EHOSTUNREACH), HostUnreachable},
		{op(syscall.EHOSTDOWN), HostUnreachable},
		{op(&net.DNSError{Err: "no such host", Name: "x.example", IsNotFound: true}), HostUnreachable},
		{op(&net.DNSError{Err: "i/o timeout", Name: "x.example", IsTimeout: true}), TTLExpired},
		{op(syscall.ETIMEDOUT), TTLExpired},
		{op(context.DeadlineExceeded), TTLExpired},
		{op(os.ErrDeadlineExceeded), TTLExpired},
		{fmt.Errorf("dial: %w", timeoutErr{}), TTLExpired},
		{op(syscall.EACCES), NotAllowed},
		{op(syscall.EPERM), NotAllowed},
		{op(syscall.ENOMEM), GeneralFailure},
		{errors.New("something"), GeneralFailure},
	} {
		if got := ReplyFor(c.err); got != c.want {
			t.Errorf("ReplyFor(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func FuzzReadRequest(f *testing.F) {
	for _, fx := range requestFixtures {
		f.Add(fx.wire)
	}
	f.Add([]byte{5, 1, 0, 3, 0, 0, 80})
	f.Add([]byte{5, 1, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		req, err := ReadRequest(r)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *RequestError", err)
			}
			return
		}
		// What parses re-encodes to exactly the bytes it consumed.
		used := len(b) - r.Len()
		if got := req.Append(nil); !bytes.Equal(got, b[:used]) && b[2] == 0 {
			t.Fatalf("Append = %x, consumed %x", got, b[:used])
		}
		if req.Domain == "" && !req.Addr.IsValid() {
			t.Fatalf("no destination: %+v", req)
		}
		if _, _, err := net.SplitHostPort(req.Target()); err != nil && req.Domain == "" {
			t.Fatalf("Target %q: %v", req.Target(), err)
		}
	})
}

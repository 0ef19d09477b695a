//go:build linux

package xdp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
)

// Test frames. The program is loaded with XDP_TX as its fallback verdict, so that with an
// empty XSKMAP "would redirect" reads XDP_TX and "pass to the kernel" XDP_PASS.

var (
	progV4 = []netip.Addr{netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.7.9")}
	progV6 = []netip.Addr{netip.MustParseAddr("fd42:5eed::2"), netip.MustParseAddr("fe80::2")}
)

func ether(typ uint16, payload []byte) []byte {
	b := make([]byte, 14, 14+len(payload))
	copy(b, []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(b[12:], typ)
	return append(b, payload...)
}

func ipv4(dst netip.Addr, frag uint16, n int) []byte {
	b := make([]byte, 20+n)
	b[0], b[8], b[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[6:], frag)
	copy(b[12:], []byte{198, 18, 0, 1})
	d := dst.As4()
	copy(b[16:], d[:])
	return b
}

func ipv6(dst netip.Addr, next byte, payload []byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	b[0], b[6], b[7] = 0x60, next, 255
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	s := netip.MustParseAddr("fd42:5eed::1").As16()
	copy(b[8:], s[:])
	d := dst.As16()
	copy(b[24:], d[:])
	return append(b, payload...)
}

func arp(op uint16, tpa netip.Addr) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1)
	binary.BigEndian.PutUint16(b[2:], 0x0800)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], op)
	copy(b[14:], []byte{198, 18, 0, 1})
	t := tpa.As4()
	copy(b[24:], t[:])
	return b
}

func icmp6(typ byte, target netip.Addr) []byte {
	b := make([]byte, 24)
	b[0] = typ
	t := target.As16()
	copy(b[8:], t[:])
	return b
}

func solicited(a netip.Addr) netip.Addr {
	b := a.As16()
	m := netip.MustParseAddr("ff02::1:ff00:0").As16()
	copy(m[13:], b[13:])
	return netip.AddrFrom16(m)
}

// modelRedirect is the program's rule in Go: whether a frame is redirected.
func modelRedirect(f []byte, v4, v6 map[netip.Addr]bool) bool {
	if len(f) < 14 {
		return false
	}
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0800:
		return len(f) >= endIPv4 && v4[netip.AddrFrom4([4]byte(f[offIPv4Dst:]))]
	case 0x0806:
		return len(f) >= endARP && v4[netip.AddrFrom4([4]byte(f[offARPTPA:]))]
	case 0x86dd:
		if len(f) < endIPv6 {
			return false
		}
		if f[offIPv6Next] == 58 && len(f) >= endNS && f[offICMPv6] == 135 {
			return v6[netip.AddrFrom16([16]byte(f[offNSTarget:]))]
		}
		return v6[netip.AddrFrom16([16]byte(f[offIPv6Dst:]))]
	}
	return false
}

var testProg struct {
	once sync.Once
	obj  *objects
	err  error
}

// loadTestProgram loads the program once for the package's tests (XDP_TX fallback) with
// progV4 and progV6 in its maps; it skips without root or BPF.
func loadTestProgram(t testing.TB) *ebpf.Program {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs")
	}
	testProg.once.Do(func() {
		testProg.obj, testProg.err = loadRedirect(1, xdpTx)
		if testProg.err == nil {
			testProg.err = testProg.obj.setAddrs(append(append([]netip.Addr(nil), progV4...), progV6...))
		}
	})
	if testProg.err != nil {
		if errors.Is(testProg.err, ebpf.ErrNotSupported) {
			t.Skipf("no BPF: %v", testProg.err)
		}
		t.Fatal(testProg.err)
	}
	return testProg.obj.prog
}

func set(as []netip.Addr) map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for _, a := range as {
		m[a] = true
	}
	return m
}

func verdict(t testing.TB, prog *ebpf.Program, f []byte) uint32 {
	t.Helper()
	v, err := prog.Run(&ebpf.RunOptions{Data: f})
	if err != nil {
		t.Fatalf("run on %x: %v", f, err)
	}
	return v
}

func TestProgramVerdicts(t *testing.T) {
	prog := loadTestProgram(t)
	us4, us6 := progV4[0], progV6[0]
	other4, other6 := netip.MustParseAddr("198.18.0.9"), netip.MustParseAddr("fd42:5eed::9")
	full := ether(0x0800, ipv4(us4, 0, 8))
	cases := []struct {
		name     string
		frame    []byte
		redirect bool
	}{
		{"v4 to us", ether(0x0800, ipv4(us4, 0, 8)), true},
		{"v4 to our second address", ether(0x0800, ipv4(progV4[1], 0, 0)), true},
		{"v4 to another", ether(0x0800, ipv4(other4, 0, 8)), false},
		{"v4 fragment to us", ether(0x0800, ipv4(us4, 0x2000|185, 8)), true},
		{"v4 last fragment to us", ether(0x0800, ipv4(us4, 185, 8)), true},
		{"v4 header cut before the destination", full[:33], false},
		{"v4 header ending at the destination", full[:34], true},
		{"ethernet header only", full[:14], false},
		{"v6 to us", ether(0x86dd, ipv6(us6, 17, make([]byte, 8))), true},
		{"v6 to our link-local", ether(0x86dd, ipv6(progV6[1], 6, make([]byte, 20))), true},
		{"v6 to another", ether(0x86dd, ipv6(other6, 17, make([]byte, 8))), false},
		{"v6 cut", ether(0x86dd, ipv6(us6, 17, nil))[:53], false},
		{"NS for us", ether(0x86dd, ipv6(solicited(us6), 58, icmp6(135, us6))), true},
		{"NS for another", ether(0x86dd, ipv6(solicited(other6), 58, icmp6(135, other6))), false},
		{"NS for us, truncated", ether(0x86dd, ipv6(solicited(us6), 58, icmp6(135, us6)[:20])), false},
		{"NS to us for another", ether(0x86dd, ipv6(us6, 58, icmp6(135, other6))), false},
		{"NA to us", ether(0x86dd, ipv6(us6, 58, icmp6(136, other6))), true},
		{"RA to all nodes", ether(0x86dd, ipv6(netip.MustParseAddr("ff02::1"), 58, icmp6(134, us6))), false},
		{"ARP request for us", ether(0x0806, arp(1, us4)), true},
		{"ARP reply to us", ether(0x0806, arp(2, us4)), true},
		{"ARP request for another", ether(0x0806, arp(1, other4)), false},
		{"ARP cut", ether(0x0806, arp(1, us4))[:41], false},
		{"VLAN-tagged v4 to us", ether(0x8100, append([]byte{0, 5, 8, 0}, ipv4(us4, 0, 8)...)), false},
		{"other ethertype", ether(0x88cc, make([]byte, 46)), false},
	}
	v4, v6 := set(progV4), set(progV6)
	for _, c := range cases {
		want := uint32(xdpPass)
		if c.redirect {
			want = xdpTx
		}
		if got := verdict(t, prog, c.frame); got != want {
			t.Errorf("%s: verdict %d, want %d", c.name, got, want)
		}
		if modelRedirect(c.frame, v4, v6) != c.redirect {
			t.Errorf("%s: the model disagrees", c.name)
		}
	}
}

// FuzzRedirectProgram checks the program's verdict against modelRedirect on any frame.
func FuzzRedirectProgram(f *testing.F) {
	us4, us6 := progV4[0], progV6[0]
	f.Add(ether(0x0800, ipv4(us4, 0, 8)))
	f.Add(ether(0x86dd, ipv6(us6, 17, make([]byte, 8))))
	f.Add(ether(0x86dd, ipv6(solicited(us6), 58, icmp6(135, us6))))
	f.Add(ether(0x0806, arp(1, us4)))
	f.Add(ether(0x0806, arp(1, us4))[:30])
	v4, v6 := set(progV4), set(progV6)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 || len(frame) > 3000 {
			return // BPF_PROG_TEST_RUN wants an Ethernet header and a page at most
		}
		prog := loadTestProgram(t)
		want := uint32(xdpPass)
		if modelRedirect(frame, v4, v6) {
			want = xdpTx
		}
		if got := verdict(t, prog, frame); got != want {
			t.Fatalf("verdict %d, model says %d, on %x", got, want, frame)
		}
	})
}

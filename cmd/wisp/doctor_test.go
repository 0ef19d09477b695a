package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/apps/doctor"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
)

// `wisp serve`, `wisp wg` and `wisp proxy` reject bad --stats, --tap and --dhcp combinations
// before they open anything: exit 2 and a message that names the flag.
func TestStatsTapDHCPBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--tun", "wt0", "--addr", "198.18.0.1/24", "--stats", "8080"}, `--stats: "8080" is not HOST:PORT`},
		{[]string{"serve", "--tun", "wt0", "--addr", "198.18.0.1/24", "--stats", "stats.example:8080"}, "is not an IP address"},
		{[]string{"serve", "--tun", "wt0", "--addr", "198.18.0.1/24", "--stats", "127.0.0.1:0"}, "out of range"},
		{[]string{"serve", "--tun", "wt0", "--dhcp"}, "--dhcp and --dhcpv6 need an Ethernet link: --tap NAME"},
		{[]string{"serve", "--tun", "wt0", "--addr", "198.18.0.1/24", "--dhcpv6"}, "need an Ethernet link"},
		{[]string{"serve", "--xdp", "veth0", "--dhcp"}, "need an Ethernet link"},
		{[]string{"serve", "--tun", "wt0", "--tap", "wt1", "--addr", "198.18.0.1/24"}, "exclude each other"},
		{[]string{"serve", "--tap", "wt1", "--xdp", "veth0", "--dhcp"}, "exclude each other"},
		{[]string{"serve", "--tap", "wt1"}, "at least one --addr CIDR is required (or --tap NAME --dhcp)"},
		{[]string{"serve", "--tap", "wt1", "--dhcpv6"}, "at least one --addr CIDR is required"},
		{[]string{"serve", "--addr", "198.18.0.1/24"}, "--tun NAME is required (or --tap NAME, or --xdp IFACE)"},
		{[]string{"serve", "--tap", "wt1", "--dhcp", "--mtu", "70000"}, "--mtu 70000 out of range"},
		{[]string{"proxy", "--tun", "wpxt0", "--direct", "--stats", "nope"}, `--stats: "nope" is not HOST:PORT`},
		{[]string{"wg", "--config", "x.conf", "--stats", "1:2:3"}, "--stats"},
	} {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, errOut.String(), c.want)
		}
	}
}

func TestStatsURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:9100":               "http://127.0.0.1:9100/snapshot.json",
		"http://127.0.0.1:9100/":              "http://127.0.0.1:9100/snapshot.json",
		"http://[::1]:9100/wisp/":             "http://[::1]:9100/wisp/snapshot.json",
		"http://127.0.0.1:9100/snapshot.json": "http://127.0.0.1:9100/snapshot.json",
	} {
		if got, err := snapshotURL(in); err != nil || got != want {
			t.Errorf("snapshotURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// input returns a real doctor.Input of an idle stack of preset o: what /snapshot.json
// serves (stack.DoctorInput), built here from the stack's own accessors.
func input(t *testing.T, o opt.Options) *doctor.Input {
	t.Helper()
	s, err := stack.New(stack.Config{Options: o})
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, s)
	return &doctor.Input{At: time.Now(), Cores: len(s.Cores()), Options: s.Options(), Stats: s.Stats()}
}

func save(t *testing.T, in *doctor.Input, name string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := writeSnapshot(f, in); err != nil {
		t.Fatal(err)
	}
	return f
}

// `wisp doctor --file`: a healthy snapshot has no findings (exit 0), a starved one names
// the option (exit 1), --json prints the findings as JSON and --save writes a snapshot
// that reads back the same.
func TestDoctorFile(t *testing.T) {
	stacktest.NoGoroutineLeak(t)
	healthy := input(t, opt.Embedded())
	f := save(t, healthy, "healthy.json")
	var out, errOut bytes.Buffer
	if code := run([]string{"doctor", "--file", f}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "no findings:") {
		t.Fatalf("healthy: exit %d\n%s%s", code, out.String(), errOut.String())
	}

	// The same stack a second later, its TCP_PCB pool exhausted: connections refused.
	sick := *healthy
	sick.Stats.Pools = append(sick.Stats.Pools[:0:0], healthy.Stats.Pools...)
	sick.At = healthy.At.Add(time.Second)
	for i := range sick.Stats.Pools {
		if p := &sick.Stats.Pools[i]; p.Name == "TCP_PCB" {
			p.Used, p.Max, p.Err = p.Avail, p.Avail, 40
		}
	}
	sick.Stats.TCPExt.PCBExhausted = 40
	g := save(t, &sick, "sick.json")
	saved := filepath.Join(t.TempDir(), "again.json")
	out.Reset()
	errOut.Reset()
	code := run([]string{"doctor", "--file", f, "--file", g, "--save", saved}, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "TCP connections ran out of PCBs") ||
		!strings.Contains(out.String(), "MempNumTCPPCB") || !strings.Contains(out.String(), "in the last 1s") {
		t.Fatalf("sick: exit %d, want 1 and the PCB finding\n%s%s", code, out.String(), errOut.String())
	}
	back, err := readSnapshot(saved)
	if err != nil || !back.At.Equal(sick.At) || back.Stats.TCPExt.PCBExhausted != 40 {
		t.Fatalf("--save: %+v, %v", back, err)
	}

	out.Reset()
	if code := run([]string{"doctor", "--file", g, "--json"}, &out, &errOut); code != 1 {
		t.Fatalf("--json: exit %d\n%s", code, errOut.String())
	}
	var fs []doctor.Finding
	if err := json.Unmarshal(out.Bytes(), &fs); err != nil || len(fs) == 0 || fs[0].Option != "MempNumTCPPCB" {
		t.Fatalf("--json: %v, %+v\n%s", err, fs, out.String())
	}
}

// Bad input is status 2 with a message: no source, two sources, a file that is not a
// snapshot, snapshots in the wrong order, a server that is not there.
func TestDoctorBadInput(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.json")
	os.WriteFile(junk, []byte(`{"hello": 1}`), 0o644)
	empty := filepath.Join(dir, "empty.json")
	os.WriteFile(empty, []byte(`{"At": "2026-01-01T00:00:00Z"}`), 0o644)
	in := input(t, opt.Embedded())
	a := save(t, in, "a.json")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"doctor"}, "--url http://HOST:PORT or --file SNAPSHOT is required"},
		{[]string{"doctor", "--url", "http://127.0.0.1:1", "--file", a}, "exclude each other"},
		{[]string{"doctor", "--file", a, "--file", a, "--file", a}, "at most twice"},
		{[]string{"doctor", "--file", filepath.Join(dir, "none.json")}, "no such file"},
		{[]string{"doctor", "--file", junk}, "not a wisp snapshot"},
		{[]string{"doctor", "--file", empty}, "not a wisp snapshot: no time or no pools"},
		{[]string{"doctor", "--file", a, "--file", a}, "give the earlier snapshot first"},
		{[]string{"doctor", "--url", "ftp://127.0.0.1:1"}, "is not http://HOST:PORT"},
		{[]string{"doctor", "--url", "http://127.0.0.1:1", "--interval", "0s"}, "connection refused"},
		{[]string{"doctor", "--file", a, "--interval", "-1s"}, "--interval -1s out of range"},
		{[]string{"doctor", "--file", a, "stray"}, `unexpected argument "stray"`},
	} {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, errOut.String(), c.want)
		}
	}
}

// decodeSnapshot takes any bytes without panicking, and what it accepts has a time and
// pools and survives a write and a read.
func FuzzDecodeSnapshot(f *testing.F) {
	f.Add([]byte(`{"At":"2026-01-01T00:00:00Z","Stats":{"Pools":[{"Name":"TCP_PCB","Avail":5}]}}`))
	f.Add([]byte(`{"At":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := decodeSnapshot(bytes.NewReader(b))
		if err != nil {
			return
		}
		if in.At.IsZero() || len(in.Stats.Pools) == 0 {
			t.Fatalf("accepted %q", b)
		}
		out, err := json.Marshal(in)
		if err != nil {
			return // e.g. a year out of JSON's range
		}
		if _, err := decodeSnapshot(bytes.NewReader(out)); err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
	})
}

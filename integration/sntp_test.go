package integration

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/apps/sntp"
	"github.com/wispstack/wisp/link/tun"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
)

// sntpEnv is wisp on a TUN interface (wisp0) inside a namespace, with chronyd serving NTP
// on the kernel's side: 198.18.218.1 and fd42:5eed::da:1 (wisp .2 and ::2).
type sntpEnv struct {
	ns   *netns
	s    *stack.Stack
	dir  string
	conf string
	kern [2]netip.Addr
	mu   sync.Mutex
	chr  *proc
}

// extra is appended to chronyd's configuration.
func newSNTPEnv(t *testing.T, extra string) *sntpEnv {
	t.Helper()
	requireRoot(t)
	requireTool(t, "chronyd")
	ns := newNamedNetns(t, "wisp-sntp")
	stacktest.NoGoroutineLeak(t)
	e := &sntpEnv{ns: ns, dir: t.TempDir(),
		kern: [2]netip.Addr{netip.MustParseAddr("198.18.218.1"), netip.MustParseAddr("fd42:5eed::da:1")}}
	var dev *tun.Device
	var err error
	ns.do(t, func() { dev, err = tun.OpenConfig(tun.Config{Name: "wisp0", MTU: 1500}) })
	if err != nil {
		t.Fatal(err)
	}
	if e.s, err = stack.New(stack.Config{}); err != nil {
		dev.Close()
		t.Fatal(err)
	}
	stacktest.Closed(t, e.s)
	if _, err := e.s.AddNetif(dev, stack.NetifConfig{Name: "wisp0", Addrs: []netip.Prefix{
		netip.MustParsePrefix("198.18.218.2/24"), netip.MustParsePrefix("fd42:5eed::da:2/64")}}); err != nil {
		dev.Close()
		t.Fatal(err)
	}
	ns.run(t, "ip", "addr", "add", "198.18.218.1/24", "dev", "wisp0")
	ns.run(t, "ip", "-6", "addr", "add", "fd42:5eed::da:1/64", "dev", "wisp0", "nodad")
	ns.run(t, "ip", "link", "set", "wisp0", "up")
	// chronyd: serve the local clock at stratum 8 to the test's addresses; never touch the
	// host's clock (-x); no command port or socket; its files in the test's directory.
	e.conf = filepath.Join(e.dir, "chrony.conf")
	conf := fmt.Sprintf("allow 198.18.0.0/15\nallow fd42:5eed::/48\nlocal stratum 8\n"+
		"pidfile %s/chronyd.pid\ndriftfile %s/drift\ncmdport 0\nbindcmdaddress /\n%s\n", e.dir, e.dir, extra)
	if err := os.WriteFile(e.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	stacktest.OnFail(t, stacktest.Side{Name: "wisp", Stack: e.s, Links: []any{dev}},
		stacktest.Side{Name: "chronyd (namespace " + ns.name + ")", More: func(w io.Writer) {
			b, _ := os.ReadFile(filepath.Join(e.dir, "chronyd.log"))
			fmt.Fprintf(w, "chronyd log:\n%s", b)
			ns.writeKernel(w)
			for _, args := range [][]string{{"ss", "-uapn"}, {"ip", "-6", "addr"}, {"nstat", "-az", "Udp6*", "Ip6InNoRoutes", "Ip6InDiscards", "Ip6InAddrErrors"}} {
				out, _ := ns.cmd(args...).CombinedOutput()
				fmt.Fprintf(w, "$ %v\n%s", args, out)
			}
		}})
	return e
}

// startChrony runs chronyd in the foreground in the namespace until stopChrony or the end
// of the test, and waits until it answers.
func (e *sntpEnv) startChrony(t *testing.T) {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(e.dir, "chronyd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	c := e.ns.cmd("chronyd", "-d", "-x", "-u", "root", "-f", e.conf)
	c.Stdout, c.Stderr = log, log
	p := startProc(t, c)
	e.mu.Lock()
	e.chr = p
	e.mu.Unlock()
	// Wait until its socket is bound: a request sent before would be refused.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if out, err := e.ns.cmd("ss", "-Hlun", "sport", "= :123").Output(); err == nil && len(out) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("chronyd did not bind port 123")
}

func (e *sntpEnv) stopChrony(t *testing.T) {
	t.Helper()
	e.mu.Lock()
	p := e.chr
	e.mu.Unlock()
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatal("chronyd did not exit")
	}
}

// wisp's SNTP offset from chrony, which serves the same host clock, is within a few ms of
// zero, over IPv4 and IPv6.
func TestSNTPChrony(t *testing.T) {
	e := newSNTPEnv(t, "")
	e.startChrony(t)
	for i, fam := range []string{"IPv4", "IPv6"} {
		t.Run(fam, func(t *testing.T) {
			synced := make(chan sntp.Sample, 4)
			c, err := e.s.StartSNTP(sntp.Config{Servers: []netip.AddrPort{netip.AddrPortFrom(e.kern[i], 123)},
				Interval: time.Second, MinInterval: time.Second, Timeout: time.Second,
				OnSync: func(s sntp.Sample) {
					select {
					case synced <- s:
					default:
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Stop()
			var samples []sntp.Sample
			for len(samples) < 3 {
				select {
				case s := <-synced:
					samples = append(samples, s)
				case <-time.After(10 * time.Second):
					t.Fatalf("no reply from chronyd: %+v", c.Stats())
				}
			}
			for _, s := range samples {
				t.Logf("offset %v delay %v stratum %d", s.Offset, s.Delay, s.Stratum)
				// Both run on the host clock: the offset is zero but for the path's asymmetry,
				// which is at most half the delay (RFC 5905 §8).
				if tol := 5*time.Millisecond + s.Delay/2; s.Offset < -tol || s.Offset > tol || s.Stratum != 8 ||
					s.Delay < 0 || s.Delay > 50*time.Millisecond {
					t.Errorf("sample %+v", s)
				}
			}
			if d := time.Until(c.Now()); d < -10*time.Millisecond || d > 10*time.Millisecond {
				t.Errorf("Now is %v from the host clock", d)
			}
			if st := c.Stats(); st.Bogus != 0 || st.Replies < 3 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// chronyd goes away: the client's requests time out and it backs off, doubling its delay
// up to Interval; chronyd comes back: the next request syncs and the backoff resets.
func TestSNTPChronySilent(t *testing.T) {
	e := newSNTPEnv(t, "")
	e.startChrony(t)
	c, err := e.s.StartSNTP(sntp.Config{Servers: []netip.AddrPort{netip.AddrPortFrom(e.kern[0], 123)},
		Interval: 4 * time.Second, MinInterval: 500 * time.Millisecond, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitStats(t, c, 5*time.Second, "first reply", func(st sntp.Stats) bool { return st.Replies >= 1 })
	e.stopChrony(t)
	before := c.Stats()
	// Silence: timeouts at +0.3 s, then backoffs of 0.5, 1, 2, 4, 4 s.
	waitStats(t, c, 20*time.Second, "backoff to Interval", func(st sntp.Stats) bool {
		return st.Timeouts >= before.Timeouts+4 && st.Backoff == 4*time.Second
	})
	if st := c.Stats(); st.Replies != before.Replies {
		t.Fatalf("replies while chronyd was down: %+v", st)
	}
	e.startChrony(t)
	after := c.Stats()
	waitStats(t, c, 15*time.Second, "sync after chronyd came back", func(st sntp.Stats) bool {
		return st.Replies > after.Replies && st.Backoff == 0
	})
	if off, ok := c.Offset(); !ok || off < -5*time.Millisecond || off > 5*time.Millisecond {
		t.Errorf("offset %v %v", off, ok)
	}
	t.Logf("stats %+v", c.Stats())
}

func waitStats(t *testing.T, c *sntp.Client, d time.Duration, what string, ok func(sntp.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok(c.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %+v", what, d, c.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chronyd limits its response rate: chrony 4.3 drops the requests over the limit (its
// ratelimit directive has no KoD option, so the RATE kiss is tested against the unit tests'
// responder). The client, polling every second, sees the drops as silence — timeouts and
// backoff — and keeps syncing from the replies that pass.
func TestSNTPChronyRateLimit(t *testing.T) {
	e := newSNTPEnv(t, "ratelimit interval 2 burst 1 leak 4")
	e.startChrony(t)
	c, err := e.s.StartSNTP(sntp.Config{Servers: []netip.AddrPort{netip.AddrPortFrom(e.kern[0], 123)},
		Interval: time.Second, MinInterval: 500 * time.Millisecond, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitStats(t, c, 20*time.Second, "drops and replies", func(st sntp.Stats) bool {
		return st.Timeouts >= 2 && st.Replies >= 2
	})
	if off, ok := c.Offset(); !ok || off < -5*time.Millisecond || off > 5*time.Millisecond {
		t.Errorf("offset %v %v", off, ok)
	}
	t.Logf("stats %+v", c.Stats())
}

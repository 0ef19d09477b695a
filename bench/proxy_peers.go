package main

// The programs of the proxy family: the engines (wisp proxy, tun2socks, hev-socks5-tunnel),
// the SOCKS5 server, iperf3; where they come from and how they run.
//
// The peers are built by scripts/bench-peers into $WISP_BENCH_PEERS/bin (default
// /var/cache/wisp-bench/bin); a peer that is not there is skipped with a line saying so.
// wisp is built from this tree (`go build ./cmd/wisp`, once per bench process) unless
// $WISP_BENCH_WISP names a binary.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// peersDir is where scripts/bench-peers puts the peers.
func peersDir() string {
	if d := os.Getenv("WISP_BENCH_PEERS"); d != "" {
		return d
	}
	return "/var/cache/wisp-bench"
}

func peerBinary(name string) (string, string) {
	p := filepath.Join(peersDir(), "bin", name)
	if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
		return "", name + " not built (scripts/bench-peers puts it in " + filepath.Dir(p) + ")"
	}
	return p, ""
}

// proxyEngine is one column's program.
type proxyEngine struct {
	col    string // the bench engine whose column it takes
	label  string
	binary func() (string, string) // its path, or why there is none
	args   func(bin string) []string
	// config, when set, is written to a file whose path is appended to the arguments.
	config string
}

var proxyEngines = []*proxyEngine{
	{col: "wisp", label: "wisp proxy", binary: wispBinary,
		args: func(bin string) []string {
			return []string{bin, "proxy", "--tun", proxyTUNDev, "--socks5", proxySOCKS.String(), "--udp", "--mtu", fmt.Sprint(proxyMTU)}
		}},
	{col: "netstack", label: "tun2socks", binary: func() (string, string) { return peerBinary("tun2socks") },
		args: func(bin string) []string {
			return []string{bin, "--device", proxyTUNDev, "--proxy", "socks5://" + proxySOCKS.String(),
				"--mtu", fmt.Sprint(proxyMTU), "--loglevel", "warn"}
		}},
	{col: "kernel", label: "hev-socks5-tunnel", binary: func() (string, string) { return peerBinary("hev-socks5-tunnel") },
		args: func(bin string) []string { return []string{bin} },
		config: fmt.Sprintf(`tunnel:
  name: %s
  mtu: %d
  multi-queue: false
  ipv4: %s
socks5:
  port: %d
  address: %s
  udp: 'udp'
misc:
  limit-nofile: 65535
  log-level: warn
`, proxyTUNDev, proxyMTU, proxyTUNAddr, proxySOCKS.Port(), proxySOCKS.Addr())},
}

func proxyEngineOf(col string) *proxyEngine {
	for _, e := range proxyEngines {
		if e.col == col {
			return e
		}
	}
	return nil
}

// start runs the engine in the client namespace.
func (e *proxyEngine) start(bin string) (*proxyProc, error) {
	args := e.args(bin)
	if e.config != "" {
		f, err := writeTemp("wispbench-"+strconv.Itoa(os.Getpid())+"-"+e.col+"-*.yml", e.config)
		if err != nil {
			return nil, err
		}
		args = append(args, f)
	}
	return startProc(e.label, proxyNSC, args[0], args[1:]...)
}

// commandLine is how the engine runs, for the notes (the program by its name).
func (e *proxyEngine) commandLine(bin string) string {
	args := e.args(bin)
	args[0] = strings.Fields(e.label)[0]
	if e.config != "" {
		args = append(args, "CONFIG.yml (its tunnel section: "+proxyTUNDev+", MTU 8500; socks5 "+proxySOCKS.String()+", udp: 'udp')")
	}
	return strings.Join(args, " ")
}

var wispBuild struct {
	once sync.Once
	path string
	why  string
}

// wispBinary builds cmd/wisp from this tree once (or takes $WISP_BENCH_WISP) and checks that
// it has the proxy subcommand.
func wispBinary() (string, string) {
	wispBuild.once.Do(func() {
		bin := os.Getenv("WISP_BENCH_WISP")
		if bin == "" {
			out, err := exec.Command("go", "env", "GOMOD").Output()
			mod := strings.TrimSpace(string(out))
			if err != nil || mod == "" || mod == os.DevNull {
				wispBuild.why = "cannot find the module to build cmd/wisp (set WISP_BENCH_WISP)"
				return
			}
			bin = wispBinaryPath()
			cmd := exec.Command("go", "build", "-o", bin, "./cmd/wisp")
			cmd.Dir = filepath.Dir(mod)
			if out, err := cmd.CombinedOutput(); err != nil {
				wispBuild.why = "go build ./cmd/wisp: " + firstLine(string(out))
				return
			}
		}
		out, _ := exec.Command(bin, "proxy", "-h").CombinedOutput()
		if strings.Contains(string(out), "unknown command") || !strings.Contains(string(out), "socks5") {
			wispBuild.why = "this wisp has no proxy subcommand (`wisp proxy -h`: " + firstLine(string(out)) + ")"
			return
		}
		wispBuild.path = bin
	})
	return wispBuild.path, wispBuild.why
}

// wispBinaryPath is where this process builds cmd/wisp: the user's cache directory,
// wisp-bench/wisp-<pid>; the binaries of earlier runs whose process is gone are removed.
func wispBinaryPath() string {
	dir := os.TempDir()
	if d, err := os.UserCacheDir(); err == nil {
		dir = d
	}
	dir = filepath.Join(dir, "wisp-bench")
	_ = os.MkdirAll(dir, 0o755)
	old, _ := filepath.Glob(filepath.Join(dir, "wisp-*"))
	for _, f := range old {
		pid := strings.TrimPrefix(filepath.Base(f), "wisp-")
		if _, err := os.Stat("/proc/" + pid); err != nil {
			os.Remove(f)
		}
	}
	return filepath.Join(dir, fmt.Sprintf("wisp-%d", os.Getpid()))
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// socks is the SOCKS5 server behind every engine.
type socks struct {
	name string
	note string // for the table's notes
	udp  bool   // serves UDP ASSOCIATE
	bin  string
}

// socksServer is hev-socks5-server from the peers, else microsocks from the PATH.
func socksServer() (socks, string) {
	if p, why := peerBinary("hev-socks5-server"); why == "" {
		return socks{name: "hev-socks5-server", note: "hev-socks5-server", udp: true, bin: p}, ""
	}
	if p, err := exec.LookPath("microsocks"); err == nil {
		return socks{name: "microsocks", note: "microsocks, since hev-socks5-server is not built (microsocks caps every engine near 1 Gbit/s here)", bin: p}, ""
	}
	return socks{}, "no SOCKS5 server: neither hev-socks5-server (scripts/bench-peers) nor microsocks (apt-get install microsocks)"
}

// start runs the server in the server namespace on proxySOCKS.
func (s socks) start() (*proxyProc, error) {
	if !s.udp {
		return startProc("microsocks", proxyNSS, s.bin, "-i", proxySOCKS.Addr().String(), "-p", fmt.Sprint(proxySOCKS.Port()))
	}
	f, err := writeTemp(fmt.Sprintf("wispbench-%d-socks-*.yml", os.Getpid()), fmt.Sprintf(`main:
  workers: 2
  port: %d
  listen-address: '%s'
  udp-listen-address: '%s'
misc:
  limit-nofile: 65535
  log-level: warn
`, proxySOCKS.Port(), proxySOCKS.Addr(), proxySOCKS.Addr()))
	if err != nil {
		return nil, err
	}
	return startProc("hev-socks5-server", proxyNSS, s.bin, f)
}

// writeTemp writes a file in the temporary directory, removed when the process it configures
// stops.
func writeTemp(pattern, content string) (string, error) {
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}

// proxyProc is a child process in a namespace.
type proxyProc struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed when it exited
	err  error         // its exit status, after done
	tmp  []string      // files to remove when it stops
}

// startProc runs prog in namespace ns (ip netns exec: the pid is the program's). It dies
// with the bench (PR_SET_PDEATHSIG).
func startProc(name, ns, prog string, args ...string) (*proxyProc, error) {
	p := &proxyProc{name: name, out: &tailBuffer{max: 4096}, done: make(chan struct{})}
	for _, a := range args {
		if strings.HasPrefix(a, os.TempDir()) && strings.HasSuffix(a, ".yml") {
			p.tmp = append(p.tmp, a)
		}
	}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns, prog}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		p.removeTemp()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proxyProc) pid() int { return p.cmd.Process.Pid }

func (p *proxyProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process: SIGTERM, SIGKILL after 2 s.
func (p *proxyProc) stop() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(2 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.removeTemp()
}

func (p *proxyProc) removeTemp() {
	for _, f := range p.tmp {
		os.Remove(f)
	}
	p.tmp = nil
}

// tail is the end of its output, on one line.
func (p *proxyProc) tail() string {
	s := strings.Join(strings.Fields(p.out.String()), " ")
	if p.exited() {
		s = fmt.Sprintf("[exited: %v] %s", p.err, s)
	}
	if s == "" {
		return "(no output)"
	}
	return s
}

// procMem is what /proc/PID/status says of a process: VmRSS, VmHWM and RssAnon (the resident
// pages that are not the program's files), in bytes.
type procMem struct{ rss, hwm, anon int64 }

func (p *proxyProc) mem() (procMem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return procMem{}, err
	}
	var m procMem
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 1 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			m.rss = n << 10
		case "VmHWM":
			m.hwm = n << 10
		case "RssAnon":
			m.anon = n << 10
		}
	}
	if m.rss == 0 {
		return m, errors.New("no VmRSS in /proc/PID/status")
	}
	return m, nil
}

// cpu is the process's user+system time so far.
func (p *proxyProc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(u+s) * jiffy
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// waitListen waits until a TCP socket listens on addr in ns (its /proc/net/tcp), or p
// exits, or 5 s pass.
func waitListen(ns *namespace, addr netip.AddrPort, p *proxyProc) error {
	deadline := time.Now().Add(5 * time.Second)
	want := fmt.Sprintf(":%04X", addr.Port())
	for {
		found := false
		err := ns.in(func() error {
			// IPv4 sockets and IPv6 ones with v4-mapped addresses (hev-socks5-server's).
			for _, file := range []string{"tcp", "tcp6"} {
				b, err := os.ReadFile("/proc/thread-self/net/" + file)
				if err != nil {
					return err
				}
				for _, line := range strings.Split(string(b), "\n")[1:] {
					f := strings.Fields(line)
					if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "0A" {
						found = true
					}
				}
			}
			return nil
		})
		switch {
		case err != nil:
			return err
		case found:
			return nil
		case p.exited():
			return fmt.Errorf("%s exited: %s", p.name, p.tail())
		case time.Now().After(deadline):
			return fmt.Errorf("%s does not listen on %v after 5 s: %s", p.name, addr, p.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/internal/ping"
	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
)

// optInt is an int flag that knows whether it was set, for defaults that depend on
// another flag.
type optInt struct {
	v   int
	set bool
}

func (f *optInt) String() string { return strconv.Itoa(f.v) }

func (f *optInt) Set(s string) error {
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	f.v, f.set = v, true
	return nil
}

func (f *optInt) or(def int) int {
	if f.set {
		return f.v
	}
	return def
}

// cmdDemo runs the WireGuard demo (wgdemo.go), or with --plain the Ethernet one.
func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	presetName := presetFlag(fs, "tunnel")
	plain := fs.Bool("plain", false, "instead of the WireGuard demo: two wisp stacks on an in-memory Ethernet link\n(ARP, NDP, fragmented pings, TCP each way over IPv4 and IPv6)")
	count := fs.Int("count", 3, "pings per target")
	var tcpMiB optInt
	fs.Var(&tcpMiB, "tcp-mib", "MiB to send over TCP: through the tunnel (default 256), or with --plain each way\nin each family (default 64); 0: none")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *count < 1 || *count > 10000 {
		return fmt.Errorf("%w: --count %d out of range [1, 10000]", errUsage, *count)
	}
	mib := tcpMiB.or(256)
	if *plain {
		mib = tcpMiB.or(64)
	}
	if mib < 0 || mib > 1<<16 {
		return fmt.Errorf("%w: --tcp-mib %d out of range [0, 65536]", errUsage, mib)
	}
	o, err := preset(*presetName)
	if err != nil {
		return err
	}
	if !*plain {
		return wgDemo(stdout, o, *presetName, *count, mib)
	}
	return plainDemo(stdout, o, *presetName, *count, mib)
}

// plainDemo is the demo of two wisp stacks on an in-memory Ethernet link.
func plainDemo(stdout io.Writer, o opt.Options, presetName string, count, tcpMiB int) error {
	a, b := pipe.New(pipe.Config{MTU: 1500, Medium: link.MediumEthernet})
	sa, err := stack.New(stack.Config{Options: o})
	if err != nil {
		return err
	}
	defer sa.Close()
	sb, err := stack.New(stack.Config{Options: o})
	if err != nil {
		return err
	}
	defer sb.Close()
	na, err := sa.AddNetif(a, stack.NetifConfig{Name: "a0", Addrs: []netip.Prefix{
		netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("fd42:5eed::1/64")}})
	if err != nil {
		return err
	}
	nb, err := sb.AddNetif(b, stack.NetifConfig{Name: "b0", Addrs: []netip.Prefix{
		netip.MustParsePrefix("198.18.0.2/24"), netip.MustParsePrefix("fd42:5eed::2/64")}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range []*stack.Netif{na, nb} {
		if err := waitPreferred(ctx, n); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "two wisp stacks (preset %q) on an in-memory Ethernet pipe: a0 198.18.0.1 fd42:5eed::1, b0 198.18.0.2 fd42:5eed::2\n\n", presetName)
	for _, t := range []struct {
		dst  string
		size int
		note string
	}{
		{"198.18.0.2", 56, "IPv4, resolved with ARP"},
		{"fd42:5eed::2", 56, "IPv6, resolved with NDP"},
		{"198.18.0.2", 4000, "IPv4, fragmented and reassembled"},
		{"fd42:5eed::2", 4000, "IPv6, fragmented and reassembled"},
	} {
		dst := netip.MustParseAddr(t.dst)
		err := ping.Run(ctx, endpoint.New(sa), dst, t.size, count, func(seq int, rtt time.Duration) {
			fmt.Fprintf(stdout, "%d bytes from %v: seq=%d time=%v  (%s)\n", t.size+8, dst, seq, rtt.Round(time.Microsecond), t.note)
		})
		if err != nil {
			return fmt.Errorf("ping %v: %w", dst, err)
		}
	}
	if tcpMiB > 0 {
		fmt.Fprintln(stdout)
		for _, dst := range []string{"198.18.0.2", "fd42:5eed::2"} {
			if err := demoTCP(ctx, stdout, sa, sb, netip.MustParseAddr(dst), int64(tcpMiB)<<20); err != nil {
				return err
			}
		}
	}
	for _, s := range []struct {
		name string
		st   *stack.Stack
	}{{"a", sa}, {"b", sb}} {
		fmt.Fprintf(stdout, "\nstack %s:\n", s.name)
		snap := s.st.Stats()
		if err := snap.WriteTable(stdout); err != nil {
			return err
		}
	}
	return nil
}

// demoTCP streams n bytes from a to a sink on b over TCP and checks them with sha256.
func demoTCP(ctx context.Context, w io.Writer, a, b *stack.Stack, dst netip.Addr, n int64) error {
	const seed = 42
	srv, err := tcpapp.Sink(b, netip.AddrPortFrom(dst, 5001))
	if err != nil {
		return err
	}
	defer srv.Close()
	start := time.Now()
	tx := tcpapp.Send(a, srv.Addr(), n, seed)
	rx, err := srv.Accept(ctx)
	if err != nil {
		return fmt.Errorf("tcp %v: accept: %w", srv.Addr(), err)
	}
	if _, _, err := tx.Wait(ctx); err != nil {
		return fmt.Errorf("tcp %v: send: %w", srv.Addr(), err)
	}
	got, sum, err := rx.Wait(ctx)
	if err != nil {
		return fmt.Errorf("tcp %v: receive: %w", srv.Addr(), err)
	}
	d := time.Since(start)
	if got != n || sum != tcpapp.PatternSum(n, seed) {
		return fmt.Errorf("tcp %v: received %d bytes (sent %d) and they differ", srv.Addr(), got, n)
	}
	fmt.Fprintf(w, "TCP %v: %d MiB in %v = %.2f Gbit/s, sha256 verified\n", srv.Addr(), n>>20,
		d.Round(time.Millisecond), float64(n)*8/d.Seconds()/1e9)
	return nil
}

// waitPreferred waits until duplicate address detection has finished on every address.
func waitPreferred(ctx context.Context, n *stack.Netif) error {
	for {
		ready := true
		for _, a := range n.Addrs() {
			switch a.State {
			case ip.Tentative:
				ready = false
			case ip.Duplicated:
				return fmt.Errorf("%s: address %v is a duplicate", n.Name(), a.Prefix)
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: duplicate address detection did not finish: %w", n.Name(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

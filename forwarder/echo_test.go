package forwarder_test

import (
	"context"
	"testing"
	"time"

	"github.com/wispstack/wisp/forwarder"
	"github.com/wispstack/wisp/internal/ping"
)

// TestEcho pings intercepted addresses of both families under each echo mode: answered
// by the core, by the host after its own round trip, or not at all; each counted.
func TestEcho(t *testing.T) {
	for _, c := range []struct {
		name   string
		cfg    forwarder.ICMPConfig
		answer bool
		count  func(forwarder.Stats) uint64
	}{
		{"local", forwarder.ICMPConfig{}, true, func(s forwarder.Stats) uint64 { return s.EchoLocal }},
		{"host", forwarder.ICMPConfig{Mode: forwarder.EchoHost, Handler: func(r *forwarder.EchoRequest) {
			time.Sleep(5 * time.Millisecond) // the real round trip
			if err := r.Reply(); err != nil {
				panic(err)
			}
		}}, true, func(s forwarder.Stats) uint64 { return s.EchoHost }},
		{"host without handler", forwarder.ICMPConfig{Mode: forwarder.EchoHost}, false, func(s forwarder.Stats) uint64 { return s.EchoDropped }},
		{"drop", forwarder.ICMPConfig{Mode: forwarder.EchoDrop}, false, func(s forwarder.Stats) uint64 { return s.EchoDropped }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, forwarder.Config{ICMP: c.cfg}, rigConfig{})
			for _, far := range append(fars, far4.Next(), far6.Next()) {
				d := 5 * time.Second
				if !c.answer {
					d = 100 * time.Millisecond
				}
				ctx, cancel := context.WithTimeout(context.Background(), d)
				_, err := ping.Once(ctx, r.cli, far, 100)
				cancel()
				if c.answer != (err == nil) {
					t.Errorf("ping %v: %v", far, err)
				}
			}
			if n := c.count(r.f.Stats()); n != 4 {
				t.Errorf("counted %d of 4:\n%v", n, r.f.Stats())
			}
		})
	}
}

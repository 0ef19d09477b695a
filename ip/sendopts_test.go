package ip_test

import (
	"testing"

	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/ip/iptest"
)

// SendOptions start with Linux's defaults, read back what was set, build the
// OutputOptions of unicast and multicast sends, and check the core rule as the layer does.
func TestSendOptions(t *testing.T) {
	n := iptest.NewPair(t, iptest.PairConfig{}).A
	var o ip.SendOptions
	n.Do(func() {
		o.Init(n.IP)
		if o.TTL() != 0 || o.TOS() != 0 || o.MulticastTTL() != 1 || !o.MulticastLoop() || o.MulticastNetif() != 0 {
			t.Errorf("defaults: TTL %d TOS %d multicast TTL %d loop %v netif %d", o.TTL(), o.TOS(), o.MulticastTTL(), o.MulticastLoop(), o.MulticastNetif())
		}
		o.SetTTL(9)
		o.SetTOS(0x10)
		o.SetMulticastTTL(0)
		o.SetMulticastLoop(false)
		o.SetMulticastNetif(3)
		if o.TTL() != 9 || o.TOS() != 0x10 || o.MulticastTTL() != 0 || o.MulticastLoop() || o.MulticastNetif() != 3 {
			t.Errorf("set: TTL %d TOS %d multicast TTL %d loop %v netif %d", o.TTL(), o.TOS(), o.MulticastTTL(), o.MulticastLoop(), o.MulticastNetif())
		}
		if got, want := o.OutputOptions(false), (ip.OutputOptions{TTL: 9, TOS: 0x10, FailIfFull: true}); got != want {
			t.Errorf("unicast %+v, want %+v", got, want)
		}
		o.SetMulticastLoop(true)
		if got, want := o.OutputOptions(true), (ip.OutputOptions{TOS: 0x10, FailIfFull: true, MulticastLoop: true, LoopOnly: true}); got != want {
			t.Errorf("multicast TTL 0 %+v, want %+v", got, want)
		}
	})
	// Outside the core every accessor panics exactly when the layer's check does (the
	// wispcheck tag).
	want := panics(func() { n.IP.AssertCore() })
	for name, f := range map[string]func(){
		"SetTTL": func() { o.SetTTL(1) }, "TTL": func() { o.TTL() },
		"SetTOS": func() { o.SetTOS(1) }, "TOS": func() { o.TOS() },
		"SetMulticastTTL": func() { o.SetMulticastTTL(1) }, "MulticastTTL": func() { o.MulticastTTL() },
		"SetMulticastLoop": func() { o.SetMulticastLoop(true) }, "MulticastLoop": func() { o.MulticastLoop() },
		"SetMulticastNetif": func() { o.SetMulticastNetif(1) }, "MulticastNetif": func() { o.MulticastNetif() },
		"OutputOptions": func() { o.OutputOptions(true) },
	} {
		if got := panics(f); got != want {
			t.Errorf("%s outside the core: panicked %v, want %v", name, got, want)
		}
	}
}

func panics(f func()) (p bool) {
	defer func() { p = recover() != nil }()
	f()
	return false
}

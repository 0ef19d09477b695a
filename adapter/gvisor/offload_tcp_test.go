package gvisor_test

import (
	"testing"

	"github.com/wispstack/wisp/link"
)

// TestTCPOffload moves transferBytes byte-exact (SHA-256) in each of the four directions,
// IPv4 and IPv6, over socketpairs whose fdbased ends do host GSO: every frame carries a
// virtio-net header, gVisor's TCP sends packets of up to 64 KiB with partial checksums,
// wisp's Link offers TSO and so gets them from wisp too. The counters show that large
// packets crossed each way: wisp's Link handed GSOOptions to fdbased (TxGSO) and received
// packets larger than the MTU (RxGSO), and wisp's stack counted them (stats.Offload).
// Through viaEndpoint, gVisor's GSO packets also cross NewEndpoint as wisp GSO packets.
func TestTCPOffload(t *testing.T) {
	configs := []netConfig{
		{medium: link.MediumEthernet, fd: true, gso: true},
		{medium: link.MediumIP, fd: true, gso: true},
		{medium: link.MediumEthernet, fd: true, gso: true, viaEndpoint: true},
	}
	for _, c := range configs {
		t.Run(c.String(), func(t *testing.T) {
			nt := newNet(t, c)
			runBulk(t, nt, transferBytes(false))
			st := nt.ws.Stats()
			wl := nt.wl.Stats()
			t.Logf("wisp Link: %+v", wl)
			t.Logf("wisp offload: %+v", st.Offload)
			if wl.TxGSO == 0 || st.Offload.TSOOut == 0 {
				t.Errorf("no GSO packet went from wisp to fdbased: Link TxGSO %d, stack TSOOut %d", wl.TxGSO, st.Offload.TSOOut)
			}
			if wl.RxGSO == 0 || st.Offload.RxGSO == 0 {
				t.Errorf("no coalesced packet reached wisp: Link RxGSO %d, stack RxGSO %d", wl.RxGSO, st.Offload.RxGSO)
			}
			if nt.gep != nil {
				ge := nt.gep.Stats()
				t.Logf("gVisor-side Endpoint: %+v", ge)
				if ge.TxGSO == 0 {
					t.Error("no gVisor GSO packet crossed NewEndpoint as a wisp GSO packet")
				}
			}
		})
	}
}

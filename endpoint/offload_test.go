package endpoint

import (
	"fmt"
	"testing"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/stats"
)

// Large segments end to end: TCP over a pipe that offers GSO, either segmenting them
// itself (TSO: the GSO packet crosses whole and is received as one coalesced segment) or
// not (the stack cuts it in software before the link), on both media and families. The
// bytes arrive exact and the counters show which path they took.
func TestTCPOffloadTransfer(t *testing.T) {
	const size = 8 << 20
	for _, c := range []struct {
		name string
		off  link.Offloads
		med  link.Medium
	}{
		{"tso-ip", link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: 65535}, link.MediumIP},
		{"tso-eth", link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: 65535}, link.MediumEthernet},
		{"soft-ip", link.Offloads{GSOMax: 65535}, link.MediumIP},
		{"soft-eth", link.Offloads{GSOMax: 32768}, link.MediumEthernet},
		{"csum-only", link.Offloads{TxChecksum: true}, link.MediumIP},
	} {
		for fam := range 2 {
			t.Run(fmt.Sprintf("%s/v%d", c.name, 4+2*fam), func(t *testing.T) {
				p := newPair(t, pairConfig{medium: c.med, offloads: c.off})
				a, b := p.tcpPair(t, fam)
				stacktest.Transfer(t, a, b, size, 3, ioTimeout)
				stacktest.Transfer(t, b, a, size, 7, ioTimeout)
				for _, s := range []stats.Snapshot{p.a.Stats(), p.b.Stats()} {
					o := s.Offload
					switch {
					case c.off.GSOMax == 0:
						if o.GSOOut != 0 {
							t.Errorf("GSO packets on a link without GSO: %+v", o)
						}
					case c.off.TSO4:
						if o.TSOOut == 0 || o.GSOSoft != 0 {
							t.Errorf("want GSO packets handed to the link whole: %+v", o)
						}
					default:
						if o.GSOSoft == 0 || o.GSOSoftSegs <= o.GSOSoft || o.TSOOut != 0 {
							t.Errorf("want GSO packets cut in software: %+v", o)
						}
					}
					if o.GSOErr != 0 || s.TCP.Chkerr != 0 {
						t.Errorf("GSO errors %d, TCP checksum errors %d", o.GSOErr, s.TCP.Chkerr)
					}
				}
			})
		}
	}
}

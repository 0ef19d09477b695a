package wire

import (
	"strconv"
	"testing"
)

// BenchmarkChecksum measures Checksum over the sizes the stack sees: bare
// IPv4 and TCP headers, a minimum-size frame, the IPv4 minimum MTU, a TCP
// MSS, an Ethernet MTU, a jumbo frame and a maximal GSO/GRO aggregate.
func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{20, 40, 64, 576, 1460, 1500, 9000, 65536} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			buf := make([]byte, n)
			for i := range buf {
				buf[i] = byte(i * 7)
			}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			var s uint16
			for b.Loop() {
				s += Finish(Checksum(buf, 0))
			}
			sink = s
		})
	}
}

var sink uint16

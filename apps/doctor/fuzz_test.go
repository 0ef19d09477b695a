package doctor_test

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/apps/doctor"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stats"
)

// FuzzDiagnose: any pair of inputs a file or a server may hand `wisp doctor` is diagnosed
// without a panic, and each finding says what it is about.
func FuzzDiagnose(f *testing.F) {
	in := doctor.Input{At: time.Unix(100, 0), Cores: 1, Options: opt.Embedded()}
	in.Stats.Pools = []stats.Pool{{Name: "TCP_PCB", Avail: 5, Used: 5, Max: 5, Err: 2}, {Name: "PBUF_POOL", Avail: 16, Err: 3}}
	in.Stats.Heap = stats.Heap{Avail: 1600, Used: 1600, Max: 1600, Err: 9}
	in.Stats.TCPExt.Retransmits, in.Stats.TCP.Xmit = 50, 100
	in.Stats.DNS = stats.DNS{Failures: 1, Servers: 1}
	c := stats.Conn{Proto: "tcp", State: "ESTABLISHED", Local: netip.MustParseAddrPort("198.18.0.1:1"), Remote: netip.MustParseAddrPort("198.18.0.2:2"),
		RTT: 50 * time.Millisecond, Cwnd: 10000, SndWnd: 2144, SndBufSize: 1072, SndQueued: 1072, BytesAcked: 1000, BytesReceived: 1000}
	in.Conns = []stats.Conn{c}
	cur := in
	cur.At = in.At.Add(time.Second)
	cur.Conns = []stats.Conn{c}
	cur.Conns[0].BytesAcked, cur.Conns[0].BytesReceived = 30000, 90000
	a, _ := json.Marshal(&in)
	b, _ := json.Marshal(&cur)
	f.Add(a, b)
	f.Add([]byte(`{}`), []byte(`{"Stats":{"Pools":[{"Name":"TCP_PCB","Avail":1,"Used":1}]}}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var prev, cur doctor.Input
		if json.Unmarshal(a, &prev) != nil || json.Unmarshal(b, &cur) != nil {
			return
		}
		for _, fs := range [][]doctor.Finding{doctor.Diagnose(&prev, &cur), doctor.Diagnose(nil, &cur)} {
			for _, f := range fs {
				if f.Title == "" || f.Severity == "" || f.String() == "" {
					t.Fatalf("finding without a title or severity: %#v", f)
				}
			}
		}
	})
}

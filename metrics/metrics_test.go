package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/stats"
)

// busyPair is a stacktest.Pair that has moved TCP both ways over one connection, now
// closed (TIME-WAIT on A), the stacks then idle.
func busyPair(t *testing.T) *stacktest.Pair {
	t.Helper()
	p := stacktest.NewPair(t, stacktest.PairConfig{})
	stacktest.WaitReady(t, p.NetifA, p.NetifB)
	l, err := netconn.ListenTCP(p.B, netip.AddrPortFrom(stacktest.AddrB[0], 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Ev.Close(l)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	a, b := stacktest.Connect(t, p.Ev, time.Minute, func() (*netconn.TCPConn, error) {
		return netconn.DialTCP(ctx, p.A, netip.AddrPort{}, l.Addr(), nil)
	}, l.Accept)
	p.Ev.Close(a)
	p.Ev.Close(b)
	stacktest.Transfer(t, a, b, 256<<10, 1, time.Minute)
	stacktest.Transfer(t, b, a, 64<<10, 2, time.Minute)
	return p
}

// serve serves h on 127.0.0.1 (never another address) until the test ends, and returns its
// base URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skip("no loopback listener:", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return "http://" + l.Addr().String()
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v\n%s", url, resp.Status, err, b)
	}
	return string(b)
}

// /metrics parses with the Prometheus text parser, and every value is the stack's: each
// counter between the snapshots taken just before and just after the scrape (the timers
// may tick in between), the gauges of pools, heap and budget, the connection summary.
func TestMetricsMatchStats(t *testing.T) {
	p := busyPair(t)
	url := serve(t, Handler(p.A))
	before := p.A.Stats()
	body := get(t, url+"/metrics")
	after := p.A.Stats()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	for name, f := range fams {
		if f.GetHelp() == "" || strings.HasPrefix(f.GetHelp(), "TCPExt.") {
			t.Errorf("%s: no help string", name)
		}
	}
	// value returns the one sample of name whose labels are labels (name=value pairs).
	value := func(name string, labels ...string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
		}
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue next
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	between := func(name string, lo, hi float64, labels ...string) {
		t.Helper()
		v, ok := value(name, labels...)
		if !ok {
			t.Errorf("%s%v missing", name, labels)
			return
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if v < lo || v > hi {
			t.Errorf("%s%v = %v, want within [%v, %v]", name, labels, v, lo, hi)
		}
	}
	record := func(sub string, b, a any, labels ...string) {
		t.Helper()
		vb, va := reflect.ValueOf(b).Elem(), reflect.ValueOf(a).Elem()
		for i := range vb.NumField() {
			f := vb.Type().Field(i)
			switch f.Type.Kind() {
			case reflect.Uint64:
				between("wisp_"+sub+"_"+snake(f.Name)+"_total", float64(vb.Field(i).Uint()), float64(va.Field(i).Uint()), labels...)
			case reflect.Int:
				between("wisp_"+sub+"_"+snake(f.Name), float64(vb.Field(i).Int()), float64(va.Field(i).Int()), labels...)
			}
		}
	}
	pb, pa := before.Protos(), after.Protos()
	for i := range pb {
		record("proto", pb[i].P, pa[i].P, "proto", pb[i].Name)
	}
	record("tcp", &before.TCPExt, &after.TCPExt)
	record("offload", &before.Offload, &after.Offload)
	record("dns", &before.DNS, &after.DNS)
	if after.TCP.Xmit == 0 || after.TCPExt.ActiveOpens != 1 {
		t.Errorf("the pair moved no TCP: %+v %+v", after.TCP, after.TCPExt)
	}
	between("wisp_proto_xmit_total", float64(before.TCP.Xmit), float64(after.TCP.Xmit), "proto", "TCP")
	for i, pool := range after.Pools {
		pbf := before.Pools[i]
		between("wisp_pool_used", float64(pbf.Used), float64(pool.Used), "pool", pool.Name)
		between("wisp_pool_max", float64(pbf.Max), float64(pool.Max), "pool", pool.Name)
		between("wisp_pool_avail", float64(pool.Avail), float64(pool.Avail), "pool", pool.Name)
		between("wisp_pool_err_total", float64(pbf.Err), float64(pool.Err), "pool", pool.Name)
		between("wisp_pool_element_bytes", float64(pool.Size), float64(pool.Size), "pool", pool.Name)
	}
	if _, ok := value("wisp_pool_used", "pool", "TCP_PCB"); !ok {
		t.Errorf("no wisp_pool_used{pool=\"TCP_PCB\"}")
	}
	between("wisp_heap_avail_bytes", float64(after.Heap.Avail), float64(after.Heap.Avail))
	between("wisp_heap_used_bytes", float64(before.Heap.Used), float64(after.Heap.Used))
	between("wisp_heap_max_bytes", float64(before.Heap.Max), float64(after.Heap.Max))
	between("wisp_timer_wakeups_total", float64(before.TimerWakeups), float64(after.TimerWakeups))
	between("wisp_timer_late_total", float64(before.TimerLate), float64(after.TimerLate))
	bud := p.A.Budget()
	between("wisp_budget_total_bytes", float64(bud.Total), float64(bud.Total))
	for _, l := range bud.Lines {
		between("wisp_budget_bytes", float64(l.Bytes), float64(l.Bytes), "line", l.Name)
		between("wisp_budget_count", float64(l.Count), float64(l.Count), "line", l.Name)
	}
	between("wisp_cores", 1, 1)
	// Transfer closed the connection: A, which closed first, holds it in TIME-WAIT.
	conns := p.A.Conns()
	if len(conns) != 1 || conns[0].State != "TIME-WAIT" {
		t.Errorf("A has %d connections, want 1 in TIME-WAIT: %v", len(conns), conns)
	}
	between("wisp_conns", 1, 1, "proto", "tcp", "state", "TIME-WAIT")
	if testing.Verbose() {
		t.Logf("%d metric families; TCP xmit %d", len(fams), after.TCP.Xmit)
	}
}

// snapCollector collects a fixed snapshot through the collector's code.
type snapCollector struct {
	c    *collector
	snap stats.Snapshot
}

func (s snapCollector) Describe(ch chan<- *prometheus.Desc) { s.c.Describe(ch) }
func (s snapCollector) Collect(ch chan<- prometheus.Metric) { s.c.collectSnapshot(ch, &s.snap) }

// Device counters are labelled by netif and queue; a pedantic registry accepts them.
func TestMetricsDevices(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(snapCollector{newCollector(nil), stats.Snapshot{Devices: []stats.Device{
		{Name: "x0", Queues: []stats.Queue{{RxPackets: 3}, {RxPackets: 4, TxFull: 2}}}}}})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			k := f.GetName()
			for _, l := range m.GetLabel() {
				k += "," + l.GetName() + "=" + l.GetValue()
			}
			got[k] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for k, want := range map[string]float64{
		"wisp_device_rx_packets_total,device=x0,queue=0": 3,
		"wisp_device_rx_packets_total,device=x0,queue=1": 4,
		"wisp_device_tx_full_total,device=x0,queue=1":    2,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (%v), want %v", k, v, ok, want)
		}
	}
}

// The names of metrics from Go field names.
func TestSnake(t *testing.T) {
	for in, want := range map[string]string{
		"ActiveOpens": "active_opens", "RTOs": "rtos", "TLPs": "tlps", "DSACKRecv": "dsack_recv",
		"ChallengeACKsLimited": "challenge_acks_limited", "GSOOut": "gso_out", "OOOQueued": "ooo_queued",
		"RxGSO": "rx_gso", "SpuriousRTOs": "spurious_rtos", "Xmit": "xmit", "NXDomain": "nx_domain",
		"RACKLosses": "rack_losses", "PCBExhausted": "pcb_exhausted", "TxRingEmpty": "tx_ring_empty",
	} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
	// Every name is unique across the records.
	seen := map[string]string{}
	for _, r := range []reflect.Type{reflect.TypeFor[stats.Proto](), reflect.TypeFor[stats.TCPExt](),
		reflect.TypeFor[stats.Offload](), reflect.TypeFor[stats.Queue](), reflect.TypeFor[stats.DNS]()} {
		for i := range r.NumField() {
			n := r.Name() + ":" + snake(r.Field(i).Name)
			if o, dup := seen[n]; dup {
				t.Errorf("%s and %s both map to %s", o, r.Field(i).Name, n)
			}
			seen[n] = r.Field(i).Name
		}
	}
}

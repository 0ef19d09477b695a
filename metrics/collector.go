package metrics

import (
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stats"
)

// ns prefixes every metric name.
const ns = "wisp"

// collector is a prometheus.Collector over one stack: every Collect reads a fresh
// s.Stats(), s.Budget() and the connection list, so a scrape sees one moment of the stack
// (and a scrape is the only time the stack is read).
type collector struct {
	s *stack.Stack

	proto   []fieldDesc // stats.Proto, labelled proto
	tcpExt  []fieldDesc // stats.TCPExt
	offload []fieldDesc // stats.Offload
	device  []fieldDesc // stats.Queue, labelled device and queue
	dns     []fieldDesc // stats.DNS (Servers, an int, is a gauge)

	heapAvail, heapUsed, heapMax, heapErr, heapIllegal      *prometheus.Desc
	poolUsed, poolMax, poolAvail, poolErr, poolSize         *prometheus.Desc
	timerWakeups, timerLate, timerMaxLate                   *prometheus.Desc
	budgetBytes, budgetCount, budgetTotal, cores, connsDesc *prometheus.Desc
}

// fieldDesc exports field index of a stats record.
type fieldDesc struct {
	index int
	desc  *prometheus.Desc
	kind  reflect.Kind
}

// NewCollector returns a prometheus.Collector that reads s at every scrape (what Handler
// registers; for a program with its own registry).
func NewCollector(s *stack.Stack) prometheus.Collector { return newCollector(s) }

func newCollector(s *stack.Stack) *collector {
	c := &collector{s: s}
	c.proto = fieldDescs("proto", reflect.TypeFor[stats.Proto](), "Proto", " (lwIP stats_proto, per protocol record)", "proto")
	c.tcpExt = fieldDescs("tcp", reflect.TypeFor[stats.TCPExt](), "TCPExt", "")
	c.offload = fieldDescs("offload", reflect.TypeFor[stats.Offload](), "Offload", "")
	c.device = fieldDescs("device", reflect.TypeFor[stats.Queue](), "Queue", " (link device counters, per queue)", "device", "queue")
	c.dns = fieldDescs("dns", reflect.TypeFor[stats.DNS](), "DNS", " (the stack's resolver)")
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(ns+"_"+name, help, labels, nil)
	}
	c.heapAvail = d("heap_avail_bytes", "Bytes in the pbuf heap (MEM_HEAP avail).")
	c.heapUsed = d("heap_used_bytes", "Bytes of the pbuf heap allocated now, block sizes after rounding.")
	c.heapMax = d("heap_max_bytes", "Most bytes of the pbuf heap ever allocated at once (high-water mark).")
	c.heapErr = d("heap_err_total", "Heap allocations refused (ERR_MEM).")
	c.heapIllegal = d("heap_illegal_total", "Frees of heap memory that was not allocated (always 0 unless there is a bug).")
	c.poolUsed = d("pool_used", "Elements of the memp pool in use now.", "pool")
	c.poolMax = d("pool_max", "Most elements of the memp pool ever in use at once (high-water mark).", "pool")
	c.poolAvail = d("pool_avail", "Elements in the memp pool (its fixed size).", "pool")
	c.poolErr = d("pool_err_total", "Allocations the memp pool refused because it was empty.", "pool")
	c.poolSize = d("pool_element_bytes", "Bytes one element of the memp pool reserves.", "pool")
	c.timerWakeups = d("timer_wakeups_total", "Wakeups of the stack's timer queue (an idle stack has none).")
	c.timerLate = d("timer_late_total", "Timer wakeups that ran at least "+stats.LateTimer.String()+" after their deadline (the core was held, or the process starved).")
	c.timerMaxLate = d("timer_max_late_seconds", "The worst lateness of a timer wakeup seen.")
	c.budgetBytes = d("budget_bytes", "Bytes the stack reserved for one line of its memory budget (a pool, the heap, a fixed table).", "line")
	c.budgetCount = d("budget_count", "Elements of one line of the memory budget.", "line")
	c.budgetTotal = d("budget_total_bytes", "Every byte the stack reserved when it started (nothing grows).")
	c.cores = d("cores", "Cores (each with its own lock and PCBs) of the stack.")
	c.connsDesc = d("conns", "PCBs of the stack (stack.Conns) by protocol (tcp, udp, raw, ping) and state (TCP's, TIME-WAIT included, listeners not; bound or connected).", "proto", "state")
	return c
}

// fieldDescs describes every exported numeric field of record t as wisp_<sub>_<field>,
// a counter (_total) for uint64 fields and a gauge otherwise.
func fieldDescs(sub string, t reflect.Type, record, suffix string, labels ...string) []fieldDesc {
	var out []fieldDesc
	for i := range t.NumField() {
		f := t.Field(i)
		k := f.Type.Kind()
		if k != reflect.Uint64 && k != reflect.Int {
			continue
		}
		name := ns + "_" + sub + "_" + snake(f.Name)
		if k == reflect.Uint64 {
			name += "_total"
		}
		h := help[record+"."+f.Name]
		if h == "" {
			h = record + "." + f.Name
		}
		h = strings.ToUpper(h[:1]) + h[1:] + suffix + "."
		out = append(out, fieldDesc{index: i, kind: k, desc: prometheus.NewDesc(name, h, labels, nil)})
	}
	return out
}

// snake turns a Go field name into a metric name part: ActiveOpens → active_opens,
// DSACKRecv → dsack_recv, ChallengeACKsLimited → challenge_acks_limited, RTOs → rtos.
func snake(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if i > 0 && unicode.IsUpper(c) {
			prev := r[i-1]
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			// An 's' after an acronym is its plural (RTOs, ACKsLimited), not a new word.
			plural := nextLower && r[i+1] == 's' && (i+2 == len(r) || unicode.IsUpper(r[i+2]))
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower && !plural) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// Describe sends every descriptor.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, l := range [][]fieldDesc{c.proto, c.tcpExt, c.offload, c.device, c.dns} {
		for _, f := range l {
			ch <- f.desc
		}
	}
	for _, d := range []*prometheus.Desc{c.heapAvail, c.heapUsed, c.heapMax, c.heapErr, c.heapIllegal,
		c.poolUsed, c.poolMax, c.poolAvail, c.poolErr, c.poolSize, c.timerWakeups, c.timerLate, c.timerMaxLate,
		c.budgetBytes, c.budgetCount, c.budgetTotal, c.cores, c.connsDesc} {
		ch <- d
	}
}

// Collect reads the stack once and sends every metric.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.s.Stats()
	c.collectSnapshot(ch, &snap)
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b := c.s.Budget()
	for _, l := range b.Lines {
		g(c.budgetBytes, float64(l.Bytes), l.Name)
		g(c.budgetCount, float64(l.Count), l.Name)
	}
	g(c.budgetTotal, float64(b.Total))
	g(c.cores, float64(len(c.s.Cores())))
	for k, v := range connCounts(c.s) {
		g(c.connsDesc, float64(v), k.proto, k.state)
	}
}

// collectSnapshot sends the metrics of snap's records.
func (c *collector) collectSnapshot(ch chan<- prometheus.Metric, snap *stats.Snapshot) {
	for _, p := range snap.Protos() {
		emitFields(ch, c.proto, reflect.ValueOf(p.P).Elem(), p.Name)
	}
	emitFields(ch, c.tcpExt, reflect.ValueOf(&snap.TCPExt).Elem())
	emitFields(ch, c.offload, reflect.ValueOf(&snap.Offload).Elem())
	for _, d := range snap.Devices {
		for q := range d.Queues {
			emitFields(ch, c.device, reflect.ValueOf(&d.Queues[q]).Elem(), d.Name, strconv.Itoa(q))
		}
	}
	emitFields(ch, c.dns, reflect.ValueOf(&snap.DNS).Elem())
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	n := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	h := snap.Heap
	g(c.heapAvail, float64(h.Avail))
	g(c.heapUsed, float64(h.Used))
	g(c.heapMax, float64(h.Max))
	n(c.heapErr, h.Err)
	n(c.heapIllegal, h.Illegal)
	for _, p := range snap.Pools {
		g(c.poolUsed, float64(p.Used), p.Name)
		g(c.poolMax, float64(p.Max), p.Name)
		g(c.poolAvail, float64(p.Avail), p.Name)
		n(c.poolErr, p.Err, p.Name)
		g(c.poolSize, float64(p.Size), p.Name)
	}
	n(c.timerWakeups, snap.TimerWakeups)
	n(c.timerLate, snap.TimerLate)
	g(c.timerMaxLate, snap.TimerMaxLate.Seconds())
}

// emitFields sends the fields of record v described by fs.
func emitFields(ch chan<- prometheus.Metric, fs []fieldDesc, v reflect.Value, labels ...string) {
	for _, f := range fs {
		if f.kind == reflect.Uint64 {
			ch <- prometheus.MustNewConstMetric(f.desc, prometheus.CounterValue, float64(v.Field(f.index).Uint()), labels...)
		} else {
			ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, float64(v.Field(f.index).Int()), labels...)
		}
	}
}

package stats

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
)

// Proto counts one protocol's traffic, with the fields of lwIP's struct stats_proto.
type Proto struct {
	Xmit     uint64 // transmitted packets
	Recv     uint64 // received packets
	Fw       uint64 // forwarded packets
	Drop     uint64 // dropped packets (the sum of every reason below and a few others)
	Chkerr   uint64 // checksum errors
	Lenerr   uint64 // invalid length
	Memerr   uint64 // out of memory (a pool or the heap was exhausted)
	Rterr    uint64 // no route
	Proterr  uint64 // protocol error
	Opterr   uint64 // error in options
	Err      uint64 // other errors
	Cachehit uint64 // cache hits (ARP, ND)
}

// Add accumulates o into p.
func (p *Proto) Add(o *Proto) {
	p.Xmit += o.Xmit
	p.Recv += o.Recv
	p.Fw += o.Fw
	p.Drop += o.Drop
	p.Chkerr += o.Chkerr
	p.Lenerr += o.Lenerr
	p.Memerr += o.Memerr
	p.Rterr += o.Rterr
	p.Proterr += o.Proterr
	p.Opterr += o.Opterr
	p.Err += o.Err
	p.Cachehit += o.Cachehit
}

// Pool describes one memp pool (lwIP struct stats_mem for a pool).
type Pool struct {
	Name  string // the lwIP name, e.g. "PBUF_POOL"
	Size  int    // bytes one element reserves
	Avail int    // elements in the pool
	Used  int    // elements in use now
	Max   int    // most elements ever in use at once
	Err   uint64 // allocations refused because the pool was empty
}

// Bytes is the memory the pool reserves.
func (p Pool) Bytes() int { return p.Size * p.Avail }

// Heap describes the RAM pbuf heap (lwIP's "MEM HEAP" record), in bytes.
type Heap struct {
	Avail   int    // bytes in the heap
	Used    int    // bytes allocated now (block sizes, after rounding)
	Max     int    // most bytes ever allocated at once
	Err     uint64 // allocations refused
	Illegal uint64 // frees of memory not allocated (always 0 unless there is a bug)
}

// Snapshot is every counter of a stack at one moment. Protocol records that a stack does not
// run stay zero.
type Snapshot struct {
	Link    Proto
	Etharp  Proto
	IPFrag  Proto
	IP      Proto
	ICMP    Proto
	IGMP    Proto
	ND6     Proto
	IP6Frag Proto
	IP6     Proto
	ICMP6   Proto
	MLD6    Proto
	UDP     Proto
	TCP     Proto
	TCPExt  TCPExt
	Offload Offload
	// Devices are the device counters of the links that keep them (link.DeviceStater).
	Devices []Device
	Heap    Heap
	Pools   []Pool
	// Timers counts how often the stack's timer queue woke up; an idle stack does not.
	TimerWakeups uint64
	// TimerLate counts timer wakeups that ran at least LateTimer after their deadline (the
	// core was held, or the process starved); TimerMaxLate is the worst lateness seen.
	TimerLate    uint64
	TimerMaxLate time.Duration
	// DNS counts the stack's resolver (package apps/dns).
	DNS DNS
}

// LateTimer is the lateness from which a timer wakeup counts in Snapshot.TimerLate.
const LateTimer = 100 * time.Millisecond

// DNS counts the work of a stack's resolver (lwIP has no such record; wisp's doctor reads
// it).
type DNS struct {
	Queries   uint64 // queries sent to servers or mDNS, retries included
	Retries   uint64 // queries sent again after no answer within DNSRetryInterval
	Answers   uint64 // names resolved by an answer
	CacheHits uint64 // lookups answered from the table without a query
	NXDomain  uint64 // names a server said do not exist (or have no address)
	Failures  uint64 // names that failed: no answer after DNSMaxRetries, or a server error
	Mem       uint64 // lookups refused because every table entry was in flight (ERR_MEM)
	Servers   int    // servers configured at the snapshot
}

// Protos lists the protocol records with lwIP's display names, in display order.
func (s *Snapshot) Protos() []struct {
	Name string
	P    *Proto
} {
	return []struct {
		Name string
		P    *Proto
	}{
		{"LINK", &s.Link}, {"ETHARP", &s.Etharp}, {"IP_FRAG", &s.IPFrag}, {"IP", &s.IP},
		{"ICMP", &s.ICMP}, {"IGMP", &s.IGMP}, {"ND6", &s.ND6}, {"IP6_FRAG", &s.IP6Frag},
		{"IPv6", &s.IP6}, {"ICMPv6", &s.ICMP6}, {"MLD", &s.MLD6}, {"UDP", &s.UDP}, {"TCP", &s.TCP},
	}
}

// Pool returns the record of the named pool, or false.
func (s *Snapshot) Pool(name string) (Pool, bool) {
	for _, p := range s.Pools {
		if p.Name == name {
			return p, true
		}
	}
	return Pool{}, false
}

// PoolsInUse returns the pools whose Used count is not zero: after a test has closed
// everything it opened, this is empty (lwIP's unit tests check the same).
func (s *Snapshot) PoolsInUse() []Pool {
	var in []Pool
	for _, p := range s.Pools {
		if p.Used != 0 {
			in = append(in, p)
		}
	}
	return in
}

var protoFields = func() []string {
	t := reflect.TypeOf(Proto{})
	names := make([]string, t.NumField())
	for i := range names {
		names[i] = t.Field(i).Name
	}
	return names
}()

// String returns the table WriteTable prints, for logs and test failures.
func (s *Snapshot) String() string {
	var b strings.Builder
	s.WriteTable(&b)
	return b.String()
}

// WriteTable prints the snapshot as a table, like lwIP's stats_display(): one row per
// protocol that saw traffic, then the heap and every pool.
func (s *Snapshot) WriteTable(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("%-9s", "proto")
	for _, f := range protoFields {
		ew.printf(" %9s", lower(f))
	}
	ew.printf("\n")
	for _, p := range s.Protos() {
		if *p.P == (Proto{}) {
			continue
		}
		ew.printf("%-9s", p.Name)
		v := reflect.ValueOf(p.P).Elem()
		for i := range protoFields {
			ew.printf(" %9d", v.Field(i).Uint())
		}
		ew.printf("\n")
	}
	s.writeTCPExt(ew)
	s.writeOffload(ew)
	s.writeDevices(ew)
	ew.printf("\n%-16s %9s %9s %9s %9s %12s\n", "memory", "avail", "used", "max", "err", "bytes")
	h := s.Heap
	ew.printf("%-16s %9d %9d %9d %9d %12d\n", "MEM_HEAP", h.Avail, h.Used, h.Max, h.Err, h.Avail)
	for _, p := range s.Pools {
		ew.printf("%-16s %9d %9d %9d %9d %12d\n", "MEMP_"+p.Name, p.Avail, p.Used, p.Max, p.Err, p.Bytes())
	}
	if s.TimerWakeups > 0 {
		ew.printf("\ntimer wakeups: %d (late by %v or more: %d, worst %v)\n", s.TimerWakeups, LateTimer, s.TimerLate, s.TimerMaxLate)
	}
	if d := s.DNS; d != (DNS{}) {
		ew.printf("dns: %d servers, %d queries (%d retries), %d answers, %d cache hits, %d nxdomain, %d failures, %d refused (table full)\n",
			d.Servers, d.Queries, d.Retries, d.Answers, d.CacheHits, d.NXDomain, d.Failures, d.Mem)
	}
	return ew.err
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

package stack

import (
	"expvar"
	"fmt"
	"io"

	"github.com/wispstack/wisp/apps/dns"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/raw"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/transport/udp"
)

// BudgetLine is one row of the memory budget: a pool, or the heap (Count 1).
type BudgetLine struct {
	Name  string
	Count int
	Size  int // bytes per element
	Bytes int
}

// Budget is the memory a stack reserves, line by line: the table lwIP users compute by
// hand from lwipopts.h. Nothing in wisp's packet path allocates beyond it.
type Budget struct {
	Lines []BudgetLine
	Total int
}

// BudgetFor computes the budget of a stack created with o, without creating it. Per-netif
// tables (ARP, neighbour caches) are per netif and listed for one netif.
func BudgetFor(o opt.Options) Budget {
	var decls []memp.Decl
	decls = append(decls, pbuf.PoolDecls(allocConfig(o))...)
	decls = append(decls, ip.PoolDecls(o)...)
	decls = append(decls, tcp.PoolDecls(o)...)
	decls = append(decls, udp.PoolDecls(o)...)
	decls = append(decls, raw.PoolDecls(o)...)
	var b Budget
	for id := memp.ID(0); id < memp.NumIDs; id++ {
		for _, d := range decls {
			if d.ID == id {
				b.add(id.String(), d.Count, d.Size)
			}
		}
	}
	b.add("MEM_HEAP", 1, pbuf.HeapBytes(allocConfig(o)))
	for _, t := range transportTables(ip.TableDecls(o), o) {
		b.add(t.Name, t.Count, t.Size)
	}
	return b
}

// Budget reports what this stack really reserved, from its live pools and heap.
func (s *Stack) Budget() Budget {
	snap := s.Stats()
	var b Budget
	for _, p := range snap.Pools {
		b.add(p.Name, p.Avail, p.Size)
	}
	b.add("MEM_HEAP", 1, s.alloc.HeapReserved())
	s.core.Lock()
	tables := transportTables(s.ip.Tables(), s.opts)
	s.core.Unlock()
	for _, t := range tables {
		b.add(t.Name, t.Count, t.Size)
	}
	return b
}

// transportTables appends the transports' fixed tables, and the resolver's (DNS_TABLE:
// DNSTableSize entries, each with its name and up to dns.MaxAddrs addresses), to the ip
// layer's.
func transportTables(t []memp.TableDecl, o opt.Options) []memp.TableDecl {
	t = append(t, tcp.TableDecls(o)...)
	t = append(t, udp.TableDecls(o)...)
	return append(t, dns.TableDecls(o)...)
}

func (b *Budget) add(name string, count, size int) {
	b.Lines = append(b.Lines, BudgetLine{Name: name, Count: count, Size: size, Bytes: count * size})
	b.Total += count * size
}

// WriteTable prints the budget.
func (b Budget) WriteTable(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "%-18s %9s %9s %14s\n", "memory", "count", "size", "bytes"); err != nil {
		return err
	}
	for _, l := range b.Lines {
		if _, err := fmt.Fprintf(w, "%-18s %9d %9d %14d\n", l.Name, l.Count, l.Size, l.Bytes); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%-18s %9s %9s %14d  (%.2f MiB)\n", "TOTAL", "", "", b.Total, float64(b.Total)/(1<<20))
	return err
}

// Publish exports the stack's stats snapshot through expvar under name (visible at
// /debug/vars when net/http serves expvar). It fails if the name is taken.
func (s *Stack) Publish(name string) (err error) {
	if expvar.Get(name) != nil {
		return fmt.Errorf("wisp: expvar %q already published", name)
	}
	expvar.Publish(name, expvar.Func(func() any { return s.Stats() }))
	return nil
}

package ethernet

import (
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/pbuf"
)

// PoolDecls declares the ARP_QUEUE pool (shared by every Iface of a stack) for the budget
// report.
func PoolDecls(queueLen int) []memp.Decl {
	return []memp.Decl{memp.DeclFor[pbuf.QueueNode](memp.ARPQueue, queueLen, 0)}
}

// TableDecl declares one Iface's ARP table of tableSize entries.
func TableDecl(tableSize int) memp.TableDecl {
	return memp.TableDeclFor[entry]("ARP_TABLE", tableSize)
}

// Table reports this Iface's ARP table as TableDecl would declare it.
func (e *Iface) Table() memp.TableDecl { return TableDecl(len(e.table)) }

// RegisterQueue creates the stack's shared ARP_QUEUE pool in pools unless it is there
// already, so the pool exists (and shows in the budget) before any Ethernet netif does.
func RegisterQueue(pools *memp.Table, queueLen int) {
	if pools.Lookup(memp.ARPQueue) == nil {
		pools.Register(memp.ARPQueue, memp.New[pbuf.QueueNode](memp.ARPQueue, max(queueLen, 0), 0))
	}
}

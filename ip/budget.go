package ip

import (
	"github.com/wispstack/wisp/ip/frag"
	"github.com/wispstack/wisp/link/ethernet"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
)

// PoolDecls declares the pools New creates from o (reassembly, fragmentation, the ND6 and
// ARP queues, the IGMP and MLD group tables), for the budget report.
func PoolDecls(o opt.Options) []memp.Decl {
	d := frag.PoolDecls(o.MempNumReassData, o.IPReassMaxPbufs, o.MempNumFragPbuf)
	d = append(d, memp.DeclFor[pbuf.QueueNode](memp.ND6Queue, max(o.MempNumND6Queue, 0), 0))
	d = append(d, memp.DeclFor[group](memp.IGMPGroup, max(o.MempNumIGMPGroup, 0), 0))
	d = append(d, memp.DeclFor[group](memp.MLD6Group, max(o.MempNumMLD6Group, 0), 0))
	return append(d, ethernet.PoolDecls(max(o.MempNumARPQueue, 0))...)
}

// TableDecls declares the fixed tables of a Layer with one Ethernet netif: the neighbour
// cache and that netif's ARP table (each further Ethernet netif adds an ARP table).
func TableDecls(o opt.Options) []memp.TableDecl {
	return []memp.TableDecl{
		memp.TableDeclFor[neighbor]("ND6_NEIGHBORS", max(o.ND6NumNeighbors, 0)),
		ethernet.TableDecl(o.ARPTableSize),
	}
}

// Tables reports the fixed tables this Layer holds now.
func (l *Layer) Tables() []memp.TableDecl {
	t := []memp.TableDecl{memp.TableDeclFor[neighbor]("ND6_NEIGHBORS", len(l.nd.cache))}
	for _, n := range l.netifs {
		if n != nil && n.eth != nil {
			t = append(t, n.eth.Table())
		}
	}
	return t
}

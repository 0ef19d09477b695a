package pbuf

import "sync/atomic"

// freer releases the pbufs of the chains Free walks. It holds one allocator's lock across
// a run of releases (a chain's pbufs, the parents of its REF pbufs), instead of taking a
// lock per pool and heap operation, and drops it before calling out (a Releaser) or
// switching allocators.
type freer struct {
	a *Allocator // whose lock is held; nil: none
}

func (f *freer) lock(a *Allocator) {
	if f.a == a {
		return
	}
	f.unlock()
	a.mu.Lock()
	f.a = a
}

func (f *freer) unlock() {
	if f.a != nil {
		f.a.mu.Unlock()
		f.a = nil
	}
}

// free is Pbuf.Free.
func (f *freer) free(p *Pbuf) int {
	n := 0
	for p != nil {
		// A count of 1 is the caller's own reference: nobody else holds p, so nobody can
		// change the count concurrently, and it drops to zero without an atomic
		// read-modify-write (the pool zeroes it). The load still orders this release
		// after another holder's atomic decrement from 2 to 1.
		if r := atomic.LoadInt32(&p.ref); r != 1 {
			switch r = atomic.AddInt32(&p.ref, -1); {
			case r > 0:
				return n
			case r < 0:
				panic("pbuf: Free of a pbuf that is already free")
			}
		}
		next := p.next
		f.release(p)
		n++
		p = next
	}
	return n
}

// release returns one pbuf whose count reached zero.
func (f *freer) release(p *Pbuf) {
	a := p.a
	switch p.typ {
	case POOL:
		f.lock(a)
		a.pool.PutIndexLocked(p, int(p.idx))
	case RAM:
		f.lock(a)
		a.heap.releaseLocked(p.blk)
		a.ramPool.PutIndexLocked(p, int(p.idx))
	case REF, ROM:
		owner, parent, pool := p.owner, p.parent, p.pool
		if pool == a.refPool {
			f.lock(a)
			pool.PutIndexLocked(p, int(p.idx))
		} else {
			// A pool of another owner (ip/frag's FRAG_PBUF) has its own lock.
			f.unlock()
			pool.PutIndex(p, int(p.idx))
		}
		if parent != nil {
			f.free(parent)
		}
		if owner != nil {
			f.unlock() // the Releaser may allocate or free
			owner.Release()
		}
	default:
		panic("pbuf: release of a pbuf with no type")
	}
}

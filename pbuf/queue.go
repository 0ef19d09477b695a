package pbuf

import (
	"iter"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/memp"
)

// QueueNode is one element of a Queue. A stack's ARP_QUEUE and ND6_QUEUE pools are pools
// of QueueNodes shared by every queue of that kind.
type QueueNode struct {
	p    *Pbuf
	next *QueueNode
}

// Queue holds whole packets, oldest first, in nodes drawn from a shared fixed pool: the
// packets waiting for a neighbour's link-layer address (lwIP's etharp and nd6 queues). The
// zero value is an empty queue. Not safe for concurrent use (it lives in core context).
type Queue struct {
	head, tail *QueueNode
}

// Push appends p, taking ownership. When pool is empty the queue's own oldest packet is
// freed to make room (lwIP does the same); a queue with nothing to give up frees p and
// returns errs.Mem. dropped is the number of packets freed (0 or 1) either way, for the
// caller's drop counters.
func (q *Queue) Push(pool *memp.Pool[QueueNode], p *Pbuf) (dropped int, err error) {
	n := pool.Get()
	if n == nil {
		if q.head == nil {
			p.Free()
			return 1, errs.Mem
		}
		n = q.head
		q.head = n.next
		if q.head == nil {
			q.tail = nil
		}
		n.p.Free()
		n.next = nil
		dropped = 1
	}
	n.p = p
	if q.tail == nil {
		q.head = n
	} else {
		q.tail.next = n
	}
	q.tail = n
	return dropped, nil
}

// Pop removes the oldest packet and returns it (the caller owns it), or nil when empty.
func (q *Queue) Pop(pool *memp.Pool[QueueNode]) *Pbuf {
	n := q.head
	if n == nil {
		return nil
	}
	q.head = n.next
	if q.head == nil {
		q.tail = nil
	}
	p := n.p
	pool.Put(n)
	return p
}

// Empty reports whether the queue holds nothing.
func (q *Queue) Empty() bool { return q.head == nil }

// Clear frees every packet and returns how many there were.
func (q *Queue) Clear(pool *memp.Pool[QueueNode]) int {
	n := 0
	for p := q.Pop(pool); p != nil; p = q.Pop(pool) {
		p.Free()
		n++
	}
	return n
}

// All yields the queued packets, oldest first; they stay owned by the queue.
func (q *Queue) All() iter.Seq[*Pbuf] {
	return func(yield func(*Pbuf) bool) {
		for n := q.head; n != nil; n = n.next {
			if !yield(n.p) {
				return
			}
		}
	}
}

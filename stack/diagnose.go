package stack

import (
	"net/netip"
	"slices"
	"time"

	"github.com/wispstack/wisp/apps/doctor"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/transport/raw"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/transport/udp"
)

// timerStats fills snap's timer lateness from every core's timer queue: the late wakeups
// summed, the worst lateness of any core. Core 0's lock is held.
func (s *Stack) timerStats(snap *stats.Snapshot) {
	for k := range s.cores {
		s.withCore(k, func(c *Core) {
			n, worst := c.timers.Late()
			snap.TimerLate += n
			snap.TimerMaxLate = max(snap.TimerMaxLate, worst)
		})
	}
}

// QueueStater is what an upper layer may hang on a PCB as its argument (SetArg) to report
// what it holds for it: a netconn's mailbox, its bytes, POOL pbufs and heap bytes, and the
// datagrams it dropped when full. Conns asks it in core context.
type QueueStater interface {
	QueueStats() (bytes, pbufs, heap int, drops uint64)
}

// Conns lists every PCB of the stack — TCP connections (TIME-WAIT included, listeners
// not) of every core, UDP, raw and ping PCBs — as the live view and the doctor see them.
// It takes every core's lock at once, so the list is one moment of the stack; not from
// core context.
func (s *Stack) Conns() []stats.Conn {
	var out []stats.Conn
	for _, c := range s.cores {
		c.lk.Lock()
	}
	for _, c := range s.cores {
		c.tcp.EachConn(func(pcb *tcp.PCB, i tcp.Info) {
			k := tcpConn(&i, c.id)
			if q, ok := pcb.Arg().(QueueStater); ok {
				// What the application holds of the data delivered (RcvQueued already
				// counts its bytes as unread).
				_, pbufs, heap, _ := q.QueueStats()
				k.Pbufs += pbufs
				k.Heap += heap
			}
			out = append(out, k)
		})
	}
	c0 := s.cores[0]
	if p, ok := c0.pools.Lookup(memp.UDPPCB).(*memp.Pool[udp.PCB]); ok {
		for i := range p.Cap() {
			if p.InUse(i) {
				out = append(out, udpConn(p.At(i)))
			}
		}
	}
	if p, ok := c0.pools.Lookup(memp.RawPCB).(*memp.Pool[raw.PCB]); ok {
		for i := range p.Cap() {
			if p.InUse(i) {
				out = append(out, rawConn(p.At(i)))
			}
		}
	}
	for _, c := range slices.Backward(s.cores) {
		c.lk.Unlock()
	}
	return out
}

func tcpConn(i *tcp.Info, core int) stats.Conn {
	return stats.Conn{Proto: "tcp", State: i.State.String(), Local: i.Local, Remote: i.Remote, Core: core,
		SndQueued: i.SndBuf, RcvQueued: i.RcvUnread + i.OOBytes, Pbufs: i.Pbufs, Heap: i.HeapBytes,
		RTT: i.SRTT, RTTVar: i.RTTVar, Cwnd: i.Cwnd, SndWnd: i.SndWnd, RcvWnd: i.RcvWnd, MSS: i.MSS,
		Retransmits: i.Retransmits, BytesAcked: i.BytesAcked, BytesReceived: i.BytesReceived,
		InFlight: i.Unacked, SndBufSize: i.SndBufSize, InRecovery: i.InRecovery}
}

func udpConn(p *udp.PCB) stats.Conn {
	c := stats.Conn{Proto: "udp", State: "bound", Local: p.LocalAddr(), Remote: p.RemoteAddr()}
	if c.Remote.IsValid() && c.Remote.Port() != 0 {
		c.State = "connected"
	}
	if q, ok := p.Arg().(QueueStater); ok {
		c.RcvQueued, c.Pbufs, c.Heap, c.Drops = q.QueueStats()
	}
	return c
}

func rawConn(p *raw.PCB) stats.Conn {
	c := stats.Conn{Proto: "raw", State: "bound", Local: netip.AddrPortFrom(p.LocalAddr(), 0), Remote: netip.AddrPortFrom(p.RemoteAddr(), 0)}
	if p.IsPing() {
		c.Proto = "ping"
	}
	if p.RemoteAddr().IsValid() && !p.RemoteAddr().IsUnspecified() {
		c.State = "connected"
	}
	if q, ok := p.Arg().(QueueStater); ok {
		c.RcvQueued, c.Pbufs, c.Heap, c.Drops = q.QueueStats()
	}
	return c
}

// DoctorInput takes one moment of the stack for the doctor (and /snapshot.json): the time
// on the stack's clock, the options, every counter (Stats) and every PCB (Conns). Not from
// core context.
func (s *Stack) DoctorInput() doctor.Input {
	return doctor.Input{At: s.cores[0].timers.Now(), Cores: len(s.cores), Options: s.opts, Stats: s.Stats(), Conns: s.Conns()}
}

// DiagnoseInterval is the time between the two samples Diagnose compares.
const DiagnoseInterval = time.Second

// Diagnose returns the doctor's findings about the stack (package apps/doctor); a healthy
// stack has none. It takes two samples (DoctorInput) DiagnoseInterval apart — it blocks
// that long, on the wall clock — and judges the counters' growth between them and the
// connections' rates over that second. (A stack on a fake clock that does not move has no
// rates: its counters are then judged since the start.) To compare samples of your own
// choosing, call doctor.Diagnose(prev, cur) with two DoctorInputs.
func (s *Stack) Diagnose() []doctor.Finding {
	prev := s.DoctorInput()
	time.Sleep(DiagnoseInterval)
	cur := s.DoctorInput()
	return doctor.Diagnose(&prev, &cur)
}

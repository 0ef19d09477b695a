package stats

import "reflect"

// Offload counts large segments through the stack: GSO packets built and cut, coalesced
// packets received and made (Linux keeps the like in its per-device and per-protocol GRO
// counters). Every field counts packets unless its name says segments.
type Offload struct {
	GSOOut        uint64 // GSO packets transports handed to IP (each up to the link's GSOMax)
	TSOOut        uint64 // GSO packets handed to a link that segments them itself (TSO/USO)
	GSOSoft       uint64 // GSO packets cut into segments in software just before the link
	GSOSoftSegs   uint64 // segments those cuts produced
	GSOErr        uint64 // GSO packets dropped: malformed, or no memory to cut them
	CsumCompleted uint64 // partial checksums completed in software for a link without TxChecksum
	RxGSO         uint64 // coalesced packets links delivered (a TUN's virtio-net GSO)
	GROMerged     uint64 // segments software GRO merged into the segment before them
	GROPackets    uint64 // packets software GRO made of more than one segment
}

// writeOffload prints every non-zero offload counter, four to a line.
func (s *Snapshot) writeOffload(ew *errWriter) {
	writeCounters(ew, "offload:", reflect.ValueOf(&s.Offload).Elem())
}

// Add accumulates o into f (a stack with several cores reports their sum).
func (f *Offload) Add(o *Offload) {
	f.GSOOut += o.GSOOut
	f.TSOOut += o.TSOOut
	f.GSOSoft += o.GSOSoft
	f.GSOSoftSegs += o.GSOSoftSegs
	f.GSOErr += o.GSOErr
	f.CsumCompleted += o.CsumCompleted
	f.RxGSO += o.RxGSO
	f.GROMerged += o.GROMerged
	f.GROPackets += o.GROPackets
}

package stats

import (
	"fmt"
	"reflect"
)

// Queue counts what one queue of a link's device saw: its own packets and bytes, and the
// drops that happen below the stack (an AF_XDP socket's rings, XDP_STATISTICS). A link
// that has such counters implements link.DeviceStater; the stack adds them to its Snapshot.
type Queue struct {
	RxPackets uint64 // frames delivered to the stack
	RxBytes   uint64
	TxPackets uint64 // frames handed to the device
	TxBytes   uint64
	TxKicks   uint64 // wakeups of the device's transmit (an AF_XDP sendto)
	// Drops and faults, each a frame the stack never saw or a frame that never left.
	RxNoBuf       uint64 // received frames dropped: no pbuf (the stack's pool was exhausted)
	RxDropped     uint64 // frames the kernel dropped for the socket (XDP_STATISTICS rx_dropped)
	RxRingFull    uint64 // frames dropped because the RX ring was full (rx_ring_full)
	FillRingEmpty uint64 // frames dropped because the fill ring had no frame (rx_fill_ring_empty_descs)
	RxInvalid     uint64 // invalid RX descriptors (rx_invalid_descs)
	TxInvalid     uint64 // invalid TX descriptors (tx_invalid_descs)
	TxRingEmpty   uint64 // kernel found the TX ring empty when woken (tx_ring_empty_descs)
	TxFull        uint64 // frames refused because the TX ring or its frames were all in use
	TxTooBig      uint64 // frames refused because they do not fit a device frame
}

// Add accumulates o into q.
func (q *Queue) Add(o *Queue) {
	a, b := reflect.ValueOf(q).Elem(), reflect.ValueOf(o).Elem()
	for i := range a.NumField() {
		a.Field(i).SetUint(a.Field(i).Uint() + b.Field(i).Uint())
	}
}

// Device is one link's device counters, one Queue per queue.
type Device struct {
	Name   string // the netif's name
	Queues []Queue
}

// Total returns the sum over the device's queues.
func (d *Device) Total() Queue {
	var t Queue
	for i := range d.Queues {
		t.Add(&d.Queues[i])
	}
	return t
}

// writeDevices prints every device's non-zero counters, per queue when it has several.
func (s *Snapshot) writeDevices(ew *errWriter) {
	for i := range s.Devices {
		d := &s.Devices[i]
		t := d.Total()
		writeCounters(ew, "device "+d.Name+":", reflect.ValueOf(&t).Elem())
		if len(d.Queues) < 2 {
			continue
		}
		for q := range d.Queues {
			writeCounters(ew, fmt.Sprintf("  queue %d:", q), reflect.ValueOf(&d.Queues[q]).Elem())
		}
	}
}

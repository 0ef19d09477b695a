package wireguard

import (
	"os"
	"sync"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/packet"
)

// Device is wireguard-go's tun.Device over a wisp stack: a link/packet Link, whose Read and
// Write have tun.Device's batch shape, with the rest of tun.Device around it. wireguard-go
// reads the packets the stack sends and writes the packets it decrypts. Link returns the
// same device seen from the stack (a link.Endpoint, MediumIP).
//
// Concurrency: Read, Write and every other method are safe for concurrent use. Close (of
// the tun.Device) closes the stack, unblocks Read (os.ErrClosed) and makes Write fail with
// os.ErrClosed.
type Device struct {
	l          *packet.Link
	events     chan tun.Event
	closer     func() error // closes the stack (set by CreateNetTUNWithOptions)
	eventsOnce sync.Once
}

var _ tun.Device = (*Device)(nil)

// newDevice returns a device over l.
func newDevice(l *packet.Link) *Device {
	d := &Device{l: l, events: make(chan tun.Event, 4)}
	d.events <- tun.EventUp
	return d
}

// File implements tun.Device: there is no file.
func (d *Device) File() *os.File { return nil }

// Name implements tun.Device.
func (d *Device) Name() (string, error) { return "wisp", nil }

// MTU implements tun.Device.
func (d *Device) MTU() (int, error) { return d.l.MTU(), nil }

// Events implements tun.Device: EventUp, sent at creation; the channel closes with the
// device.
func (d *Device) Events() <-chan tun.Event { return d.events }

// BatchSize implements tun.Device: how many packets one Read returns at most, and the
// batch wireguard-go hands to Write.
func (d *Device) BatchSize() int { return d.l.BatchSize() }

// Read implements tun.Device: packet.Link's Read (large segments cut to the MTU, partial
// checksums completed, os.ErrClosed after Close).
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	return d.l.Read(bufs, sizes, offset)
}

// Write implements tun.Device: packet.Link's Write (one DeliverPackets per call; every
// packet reported written, os.ErrClosed after Close).
func (d *Device) Write(bufs [][]byte, offset int) (int, error) { return d.l.Write(bufs, offset) }

// Link returns the device as the stack's link.
func (d *Device) Link() link.Endpoint { return d.l.Endpoint() }

// Packet returns the packet link under the device.
func (d *Device) Packet() *packet.Link { return d.l }

// Stats returns packet.Link's Stats: packets read by wireguard-go and dropped on the way
// out, written by it and dropped on the way in.
func (d *Device) Stats() (tx, txDropped, rx, rxDropped uint64) { return d.l.Stats() }

// OffloadStats returns packet.Link's OffloadStats: large segments cut, the packets cut
// from them, and checksums completed.
func (d *Device) OffloadStats() (gsoFrames, gsoSegments, csumCompleted uint64) {
	return d.l.OffloadStats()
}

// Close implements tun.Device: it closes the stack (and with it every socket), unblocks
// Read, waits for a Write in progress and closes the Events channel. Idempotent.
func (d *Device) Close() error {
	var err error
	if d.closer != nil {
		err = d.closer() // the stack closes its link
	}
	d.l.Close()
	d.eventsOnce.Do(func() { close(d.events) })
	return err
}

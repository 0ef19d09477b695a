//go:build !linux

package xdp

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
)

// Link is unavailable off Linux.
type Link struct{}

// Open fails off Linux with an error wrapping errors.ErrUnsupported.
func Open(cfg Config) (*Link, error) {
	return nil, fmt.Errorf("xdp: %s: AF_XDP is Linux-only: %w", cfg.Interface, errors.ErrUnsupported)
}

func (l *Link) Medium() link.Medium                              { return link.MediumEthernet }
func (l *Link) MTU() int                                         { return 0 }
func (l *Link) HardwareAddr() [6]byte                            { return [6]byte{} }
func (l *Link) Attach(d link.Dispatcher)                         {}
func (l *Link) WritePackets(pkts []*pbuf.Pbuf) (int, error)      { return 0, errors.ErrUnsupported }
func (l *Link) WriteQueue(q int, pkts []*pbuf.Pbuf) (int, error) { return 0, errors.ErrUnsupported }
func (l *Link) TxRoom() int                                      { return 0 }
func (l *Link) QueueRoom(q int) int                              { return 0 }
func (l *Link) TxQueues() int                                    { return 1 }
func (l *Link) Queues() int                                      { return 0 }
func (l *Link) Info() Info                                       { return Info{} }
func (l *Link) Offloads() link.Offloads                          { return link.Offloads{} }
func (l *Link) SetAddrs(addrs []netip.Addr) error                { return errors.ErrUnsupported }
func (l *Link) DeviceStats(dst []stats.Queue) []stats.Queue      { return dst }
func (l *Link) Err() error                                       { return nil }
func (l *Link) Close() error                                     { return nil }

// Dropper is unavailable off Linux.
type Dropper struct{ Mode string }

// NewDropper fails off Linux.
func NewDropper(ifname string, mode AttachMode) (*Dropper, error) {
	return nil, fmt.Errorf("xdp: %s: XDP is Linux-only: %w", ifname, errors.ErrUnsupported)
}

func (d *Dropper) Count() (uint64, error) { return 0, errors.ErrUnsupported }
func (d *Dropper) Close() error           { return nil }

// Redirect is unavailable off Linux.
type Redirect struct{}

// AttachRedirect fails off Linux.
func AttachRedirect(ifname string, mode AttachMode, fds []int, addrs []netip.Addr) (*Redirect, error) {
	return nil, fmt.Errorf("xdp: %s: XDP is Linux-only: %w", ifname, errors.ErrUnsupported)
}

func (r *Redirect) Mode() string                      { return "" }
func (r *Redirect) SetAddrs(addrs []netip.Addr) error { return errors.ErrUnsupported }
func (r *Redirect) Close() error                      { return nil }

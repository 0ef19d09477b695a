package main

// The small-packet sender of the xdp/* scenarios: UDP frames with correct checksums, built
// once, sent from an AF_PACKET socket with PACKET_QDISC_BYPASS (straight into the device's
// transmit routine, no qdisc) in sendmmsg batches, at the highest rate one thread reaches,
// bounded by a duration and a frame count. It runs on a thread inside the sender's
// namespace and sends only what blastFrames built: datagrams to the engine's address in
// 198.18.0.0/15.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/wire"
)

const (
	ethHdrLen     = 14
	udpFrameMin   = ethHdrLen + wire.IPv4MinHeaderLen + wire.UDPHeaderLen // 42: no payload
	senderBatch   = 64                                                    // frames per sendmmsg
	senderFlows   = 64                                                    // distinct source ports: spread over the queues by the flow hash
	senderPortLo  = 40000                                                 // first source port
	senderMaxSent = 200_000_000                                           // the flood's bound besides its duration
)

// frameSpec describes the frames of a flood.
type frameSpec struct {
	eth            bool // an Ethernet header first (veth); false: bare IPv4 (a TUN)
	srcMAC, dstMAC [6]byte
	src, dst       netip.Addr
	dport          uint16
	// size is the frame's length on the wire with its Ethernet header (60, 1514); for a
	// bare-IP frame the IP packet is size-14 bytes, the same datagram.
	size int
}

// udpFrame builds the frame of spec from source port sport into a new slice: Ethernet
// (when spec.eth), IPv4 (DF, TTL 64, header checksum), UDP with its checksum, the payload
// a counting pattern.
func udpFrame(spec frameSpec, sport uint16) ([]byte, error) {
	if !spec.src.Is4() || !spec.dst.Is4() {
		return nil, errors.New("sender: IPv4 addresses only")
	}
	if !benchPrefix.Contains(spec.src) || !benchPrefix.Contains(spec.dst) {
		return nil, fmt.Errorf("sender: %v → %v is outside %v", spec.src, spec.dst, benchPrefix)
	}
	if spec.size < udpFrameMin || spec.size > ethHdrLen+1500 {
		return nil, fmt.Errorf("sender: frame size %d outside [%d, %d]", spec.size, udpFrameMin, ethHdrLen+1500)
	}
	n, off := spec.size, 0
	if !spec.eth {
		n -= ethHdrLen
	}
	b := make([]byte, n)
	if spec.eth {
		copy(b[0:6], spec.dstMAC[:])
		copy(b[6:12], spec.srcMAC[:])
		binary.BigEndian.PutUint16(b[12:14], 0x0800)
		off = ethHdrLen
	}
	ip := wire.IPv4(b[off:])
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], uint16(len(ip)))
	binary.BigEndian.PutUint16(ip[4:6], sport) // an ID per flow
	ip[6] = 0x40                               // DF
	ip[8] = 64
	ip[9] = 17
	ip.SetSrc(spec.src)
	ip.SetDst(spec.dst)
	ip.SetChecksum()
	u := wire.UDP(ip[wire.IPv4MinHeaderLen:])
	u.SetSrcPort(sport)
	u.SetDstPort(spec.dport)
	u.SetLength(uint16(len(u)))
	for i := wire.UDPHeaderLen; i < len(u); i++ {
		u[i] = byte(i)
	}
	u.SetChecksumField(0)
	u.SetChecksum(spec.src, spec.dst)
	return b, nil
}

// benchPrefix is where every address the sender writes must lie (198.18.0.0/15).
var benchPrefix = netip.MustParsePrefix("198.18.0.0/15")

// mmsghdr is struct mmsghdr (x/sys/unix has no type for it).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// flood is a running sender.
type flood struct {
	sent  atomic.Uint64 // frames the kernel accepted
	fails atomic.Uint64 // sendmmsg calls that failed (ENOBUFS: the device's queue was full)
	stop  atomic.Bool
	done  chan error
}

// startFlood opens an AF_PACKET socket on ifname inside the namespace nsfd and sends the
// frames of spec (senderFlows source ports, round robin) until stop, dur or
// senderMaxSent, whichever comes first. The socket is bound to the device: nothing leaves
// by another route.
func startFlood(nsfd int, ifname string, spec frameSpec, dur time.Duration) (*flood, error) {
	frames := make([][]byte, senderFlows)
	for i := range frames {
		f, err := udpFrame(spec, uint16(senderPortLo+i))
		if err != nil {
			return nil, err
		}
		frames[i] = f
	}
	var fd int
	err := inNamespace(nsfd, func() error {
		// SOCK_RAW: the frame carries its Ethernet header; on a TUN (no link header)
		// SOCK_DGRAM with nothing to add. Protocol 0: the socket receives nothing.
		typ := unix.SOCK_DGRAM
		if spec.eth {
			typ = unix.SOCK_RAW
		}
		s, err := unix.Socket(unix.AF_PACKET, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		idx, err := ifIndex(s, ifname)
		if err != nil {
			unix.Close(s)
			return err
		}
		if err := unix.SetsockoptInt(s, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			unix.Close(s)
			return fmt.Errorf("PACKET_QDISC_BYPASS: %w", err)
		}
		if err := unix.Bind(s, &unix.SockaddrLinklayer{Protocol: 0, Ifindex: idx}); err != nil {
			unix.Close(s)
			return fmt.Errorf("bind %s: %w", ifname, err)
		}
		fd = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	f := &flood{done: make(chan error, 1)}
	go f.run(fd, frames, spec, dur)
	return f, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// ifIndex returns the index of the device ifname as seen from s's namespace.
func ifIndex(s int, ifname string) (int, error) {
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("%s: %w", ifname, err)
	}
	return int(ifr.Uint32()), nil
}

// run sends until told to stop, then closes fd.
func (f *flood) run(fd int, frames [][]byte, spec frameSpec, dur time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer unix.Close(fd)
	var sll unix.RawSockaddrLinklayer // the destination: the bound device, the frame's own protocol
	sll.Family = unix.AF_PACKET
	sll.Protocol = htons(unix.ETH_P_IP)
	idx, err := ifIndexFd(fd)
	if err != nil {
		f.done <- err
		return
	}
	sll.Ifindex = int32(idx)
	sll.Halen = 6
	copy(sll.Addr[:], spec.dstMAC[:])
	// One batch: senderBatch messages, the flows round robin.
	iovs := make([]unix.Iovec, senderBatch)
	msgs := make([]mmsghdr, senderBatch)
	for i := range msgs {
		fr := frames[i%len(frames)]
		iovs[i].Base = &fr[0]
		iovs[i].SetLen(len(fr))
		msgs[i].hdr.Iov = &iovs[i]
		msgs[i].hdr.Iovlen = 1
		msgs[i].hdr.Name = (*byte)(unsafe.Pointer(&sll))
		msgs[i].hdr.Namelen = uint32(unsafe.Sizeof(sll))
	}
	deadline := time.Now().Add(dur)
	var sent uint64
	for calls := 0; !f.stop.Load() && sent < senderMaxSent; calls++ {
		if calls&63 == 0 && time.Now().After(deadline) {
			break
		}
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), 0, 0, 0)
		if errno != 0 {
			if errno == unix.ENOBUFS || errno == unix.EAGAIN || errno == unix.EINTR {
				f.fails.Add(1)
				runtime.Gosched()
				continue
			}
			f.done <- fmt.Errorf("sendmmsg: %w", errno)
			return
		}
		sent += uint64(r)
		f.sent.Store(sent)
	}
	runtime.KeepAlive(frames)
	runtime.KeepAlive(&sll)
	f.done <- nil
}

// ifIndexFd returns the device an AF_PACKET socket is bound to.
func ifIndexFd(fd int) (int, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, err
	}
	ll, ok := sa.(*unix.SockaddrLinklayer)
	if !ok {
		return 0, errors.New("sender: socket not bound to a device")
	}
	return ll.Ifindex, nil
}

// halt stops the flood and returns its error.
func (f *flood) halt() error {
	f.stop.Store(true)
	return <-f.done
}

// Package xdp is an AF_XDP link: wisp on a NIC queue (or a veth) without a TUN in between,
// one socket per queue.
//
// Open binds one AF_XDP socket per queue of an interface, each with its own UMEM (an
// anonymous mapping outside the Go heap of (RxFrames+TxFrames) × FrameSize bytes) and its
// four rings (fill, completion, RX, TX), and attaches an XDP program built in Go with
// cilium/ebpf's asm (RedirectProgram: no clang, no object file) through a BPF link, so the
// kernel detaches it when the process dies. The program redirects to the socket of the
// frame's receive queue only the frames for the link's addresses (IPv4 and IPv6
// destinations, ARP and neighbor solicitations for them; SetAddrs updates its maps) and
// passes everything else to the kernel, so the host keeps working.
//
// What the program does not redirect, and the stack therefore never sees: IPv4 broadcasts
// and IPv6 multicast other than neighbor solicitations for its addresses (router
// advertisements to ff02::1, MLD queries), ARP and IPv6 carried in VLAN tags, and a DHCP
// offer to an address not yet assigned. A NIC steers flows over its queues by its own hash:
// frames on a queue without a socket go to the kernel, so Config.Queues should cover every
// RX queue of the interface (Info.DeviceQueues; Open says so through Logf).
//
// Rings (ring.go): the producer and consumer indices live in the shared mapping; the other
// side's is read with an atomic load when the cached copy says the ring looks full or
// empty, ours is published with an atomic store once per batch. need_wakeup is always
// asked for: the TX ring is kicked with one sendto per batch when the kernel asks (copy
// mode always does), and the fill ring with a recvfrom.
//
// Receive: each queue has a goroutine that waits in poll(2) (250 ms at most: a socket whose
// interface went away is not reported by poll, so an idle receiver probes it with a
// recvfrom, and stops on ENXIO; a link merely down is waited out), takes up to Batch descriptors, makes a pbuf of
// each and delivers them with one Dispatcher.DeliverPackets, refilling the fill ring once
// per batch. Without a dispatcher or a pbuf (AllocRx nil) a frame is counted and dropped.
// Transmit: WritePackets (queue 0) and WriteQueue copy each frame into a free TX frame,
// post the descriptors, wake the queue's kicker goroutine and free the batch's pbufs in one
// pass (pbuf.FreeAll); completed frames are reaped on every write. The kicker makes the
// sendto kicks (as many as the skb budget needs) until the kernel has taken every posted
// descriptor: in copy mode a kick is where the kernel does its whole transmit (an skb per
// frame, the veth, and the peer's receive up to its TCP, in softirq), so a writer that
// kicked itself would do the kernel's work serially with its own — for the receiver that
// sends ACKs, the kernel sender's next data too. (poll(2) in the receiver also transmits
// what the TX ring holds, so TxKicks may stay below the writes.) Neither path allocates
// per frame.
//
// Who owns a UMEM frame when. A queue's frames are two disjoint pools; a frame is in at
// most one ring at a time.
//
//	RX frame:  receiver's free list → fill ring → kernel → RX ring → receiver
//	           → copy mode: its bytes are copied into the dispatcher's POOL pbufs (AllocRx),
//	             and the frame goes back to the free list at once (and the fill ring
//	             before the batch is delivered);
//	           → RxZeroCopy: lent to the stack as a REF pbuf (Config.Alloc.AllocRef); its
//	             Releaser puts it on the queue's returns list when the last reference is
//	             freed, and the receiver moves it to the free list. At most RxFrames/2 are
//	             lent at once; beyond that frames are copied.
//	TX frame:  free list → (WriteQueue copies a frame in) → TX ring → kernel
//	           → completion ring → free list (reaped by the next write or TxRoom).
//
// Copy is the default: on this project's 2-vCPU veth, RxZeroCopy received as many small
// frames (about 0.5 Mpps either way, the sender being the limit) and more 1514-byte frames
// (0.50 against 0.39 Mpps into a dispatcher that frees at once), but a wisp stack's TCP
// receive was no faster with it (2.7 against 2.8 Gbit/s): the stack holds received
// segments, and with them UMEM frames, which then fall back to copying anyway.
//
// Frames and checksums. A received frame must fit a UMEM chunk less the kernel's 256
// bytes of headroom (MTU ≤ FrameSize − 270). In generic mode the kernel may hand the
// program GRO- or TSO-built packets of up to 64 KiB, which the socket drops (RxDropped):
// turn GRO off on the interface (and TSO off on a veth peer). Frames that a veth peer's own
// kernel sends carry partial checksums (CHECKSUM_PARTIAL, invisible through AF_XDP), which
// the stack rejects: turn TX checksum offload off on the peer (ethtool -K peer tx off).
// Frames from a real wire have complete checksums.
//
// Where the time goes (TCP bulk kernel↔wisp on this project's 2-vCPU veth, copy mode,
// 1500-byte frames; measure_tcp_linux_test.go, WISP_XDP_MEASURE=1): 2–4 Gbit/s each way,
// about what the kernel reaches to itself over the same veth with the program attached
// (native XDP on a veth clears GSO on its peer, so the kernel sends 1500-byte skbs). The
// process's CPU is 55–65 % kernel (the sender's skb_segment and checksum, veth NAPI, the
// skb copy into a page-pool page and the copy into the UMEM; on the way out an skb built
// per frame and the kernel's TCP receive without GRO) and 35–45 % wisp (its copy into
// POOL pbufs, the application's copy, GRO, TCP). Driver or generic attach, busy polling,
// RxZeroCopy, batches of 256 and rings of 8192 did not help; two queues do not scale on
// two vCPUs that one queue already fills (the kernel's sender on one, wisp on the other).
//
// Close detaches the program, stops the receivers and the kickers, closes the sockets and
// unmaps the UMEM; frames still lent to the stack keep their UMEM mapped until the last one
// is released.
//
// Open makes every socket and BPF object on the calling goroutine's OS thread, so a
// caller that locked its thread into another network namespace (setns) gets a link in
// that namespace; the goroutines started later may run on any thread.
//
// Layer: xdp (imports link, pbuf, stats, errs, golang.org/x/sys/unix, cilium/ebpf; never
// ip, transport or stack). Only this package imports cilium/ebpf. A Link is safe for
// concurrent use: writes to one queue are serialized by a mutex (the caller must not
// overlap them anyway, see link.MultiQueue), writes to different queues run in parallel,
// and each receiver delivers from its own goroutine.
package xdp

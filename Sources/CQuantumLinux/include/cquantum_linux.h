// The Linux interfaces Swift cannot express cleanly: TUN ioctls, interface
// configuration ioctls and batched datagram I/O (recvmmsg/sendmmsg, UDP GSO and GRO).
// Every function returns >= 0 on success and -errno on failure.
#ifndef CQUANTUM_LINUX_H
#define CQUANTUM_LINUX_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <malloc.h>  // mallopt, for the daemon's malloc settings (QuantumDevice/MallocTuning.swift)

/// Most datagrams one qt_recv_batch/qt_send_batch call moves.
#define QT_MAX_BATCH 64

/// Most datagrams one UDP GSO message may carry (the kernel's UDP_MAX_SEGMENTS).
#define QT_MAX_SEGMENTS 64

/// Largest total length of one UDP GSO message (a UDP payload in an IPv4 packet: 65,535 − 20 − 8).
#define QT_MAX_SEGMENTED_LENGTH 65507

/// One datagram of a batch: a caller-owned buffer and the peer address.
/// For receive, `capacity` is the buffer size and `length`/`addr` are filled in
/// (`truncated` is set when the datagram did not fit). For send, `length` bytes
/// of `buffer` go to `addr`.
///
/// `segment_size` makes one slot several datagrams of that size (the last may be shorter),
/// consecutive in the buffer:
/// - send: when > 0 and `length` > `segment_size`, the slot goes out as one message with a
///   UDP_SEGMENT cmsg (kernel UDP GSO); at most QT_MAX_SEGMENTS segments and
///   QT_MAX_SEGMENTED_LENGTH bytes, or the message is refused with EMSGSIZE. 0: one datagram.
/// - receive: on a socket with UDP_GRO on, the size of the datagrams the kernel coalesced into
///   this slot (the last may be shorter), or 0 when the slot holds one datagram. A coalesced
///   slot may hold up to 65,535 bytes: smaller buffers get it truncated.
struct qt_datagram {
    void *buffer;
    uint32_t capacity;
    uint32_t length;
    uint32_t truncated;
    socklen_t addr_length;
    struct sockaddr_in6 addr;   // large enough for sockaddr_in as well
    uint16_t segment_size;
};

/// Opens one queue of the TUN device `name` (IFF_TUN | IFF_NO_PI, plus
/// IFF_MULTI_QUEUE when `multi_queue`, plus IFF_VNET_HDR with a 10-byte
/// struct virtio_net_hdr when `vnet_header`). `name` may hold a "%d" pattern;
/// the kernel's chosen name is written to `actual_name` (IFNAMSIZ bytes).
int qt_tun_open(const char *name, int multi_queue, int vnet_header, char *actual_name);

/// Whether the TUN queue `fd` carries a virtio-net header (IFF_VNET_HDR, read with
/// TUNGETIFF): 1 or 0, or -errno.
int qt_tun_has_vnet_header(int fd);

/// Sets the offloads (TUN_F_* bits) the device accepts from the stack (TUNSETOFFLOAD).
/// Returns 0, or -errno (-EINVAL when the kernel does not know a bit).
int qt_tun_set_offload(int fd, unsigned offloads);

/// Sets the IPv4 address and netmask (network byte order), the MTU and the
/// up flag of interface `name`. `stage` receives which step failed (1 address,
/// 2 netmask, 3 mtu, 4 flags).
int qt_interface_configure(const char *name, uint32_t address_be, uint32_t netmask_be, int mtu, int *stage);

/// What one qt_send_batch call did.
struct qt_send_result {
    /// Slots (messages) whose datagrams were all accepted by the kernel.
    uint32_t accepted;
    /// Datagrams on the wire accepted by the kernel (a GSO slot counts its segments).
    uint32_t datagrams_accepted;
    /// The errno of the last refusal (0 when nothing was refused).
    int32_t last_error;
    /// GSO slots the kernel refused as GSO (EIO, EINVAL, EOPNOTSUPP, ENOPROTOOPT) and that
    /// were resent as separate datagrams; the first turns `*segmentation` off.
    uint32_t fallbacks;
};

/// Receives up to `count` datagrams without blocking, reading each slot's UDP_GRO
/// segment size. Returns how many slots were filled (0 when none are waiting) or -errno.
int qt_recv_batch(int fd, struct qt_datagram *datagrams, unsigned count);

/// Sends `count` slots (at most QT_MAX_BATCH) in as few sendmmsg calls as it can.
/// Slots with more than one segment go out as UDP GSO messages while `*segmentation` is
/// non-zero, and as one datagram per segment (iovecs into the same buffer, no copy) when it is 0.
/// When the kernel refuses a GSO message for a reason GSO causes and at least one of its
/// segments then goes out as a separate datagram, `*segmentation` is set to 0 and the
/// fallback counted. Returns `result->accepted`; nothing is lost silently: a slot is either
/// accepted or counted as refused.
int qt_send_batch(int fd, struct qt_datagram *datagrams, unsigned count, int *segmentation,
                  struct qt_send_result *result);

/// Whether the socket supports UDP_SEGMENT (kernel >= 4.18): 1/0.
int qt_udp_segmentation_supported(int fd);

/// Turns UDP_GRO on (1) or off (0) on the socket (kernel >= 5.0). Returns 0 or -errno.
int qt_udp_set_receive_offload(int fd, int enabled);

/// Whether UDP_GRO is on for the socket: 1/0, or -errno when the kernel cannot say.
int qt_udp_receive_offload(int fd);

/// Creates a non-blocking, close-on-exec eventfd (a wake-up signal for poll).
int qt_eventfd(void);

/// Whether the calling process has CAP_NET_ADMIN in its effective set (1/0), or -errno.
int qt_has_cap_net_admin(void);

/// Most descriptors one qt_send_fds/qt_recv_fds call carries.
#define QT_MAX_PASSED_FDS 128

/// Sends `length` bytes of `data` on the stream socket `sock` together with `fd_count`
/// descriptors (SCM_RIGHTS), in one sendmsg. Returns bytes sent or -errno.
int qt_send_fds(int sock, const void *data, size_t length, const int *fds, unsigned fd_count);

/// Receives up to `capacity` bytes from `sock`, and any descriptors passed with them
/// (made close-on-exec, at most `fd_capacity`; `*fd_count` receives how many).
/// Returns bytes received (0 at end of stream) or -errno; -EMSGSIZE if descriptors were cut off.
int qt_recv_fds(int sock, void *data, size_t capacity, int *fds, unsigned fd_capacity, unsigned *fd_count);

/// Starts `path` with `argv` and `envp` (NULL-terminated) through posix_spawn, keeping
/// descriptor `keep_fd` open in the child (its close-on-exec flag is cleared there only).
/// Returns 0 and the child's pid in `*pid`, or -errno.
int qt_spawn_keeping_fd(const char *path, char *const argv[], char *const envp[], int keep_fd, int *pid);

#endif

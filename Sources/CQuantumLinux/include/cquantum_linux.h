// The Linux interfaces Swift cannot express cleanly: TUN ioctls, interface
// configuration ioctls and batched datagram I/O (recvmmsg/sendmmsg).
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

/// One datagram of a batch: a caller-owned buffer and the peer address.
/// For receive, `capacity` is the buffer size and `length`/`addr` are filled in
/// (`truncated` is set when the datagram did not fit). For send, `length` bytes
/// of `buffer` go to `addr`.
struct qt_datagram {
    void *buffer;
    uint32_t capacity;
    uint32_t length;
    uint32_t truncated;
    socklen_t addr_length;
    struct sockaddr_in6 addr;   // large enough for sockaddr_in as well
};

/// Opens one queue of the TUN device `name` (IFF_TUN | IFF_NO_PI, plus
/// IFF_MULTI_QUEUE when `multi_queue`). `name` may hold a "%d" pattern; the
/// kernel's chosen name is written to `actual_name` (IFNAMSIZ bytes).
int qt_tun_open(const char *name, int multi_queue, char *actual_name);

/// Sets the IPv4 address and netmask (network byte order), the MTU and the
/// up flag of interface `name`. `stage` receives which step failed (1 address,
/// 2 netmask, 3 mtu, 4 flags).
int qt_interface_configure(const char *name, uint32_t address_be, uint32_t netmask_be, int mtu, int *stage);

/// Receives up to `count` datagrams without blocking. Returns how many arrived
/// (0 when none are waiting) or -errno.
int qt_recv_batch(int fd, struct qt_datagram *datagrams, unsigned count);

/// Sends `count` datagrams. Returns exactly how many the kernel accepted; every
/// other one was refused, and `last_error` receives the errno of the last refusal
/// (0 when none was refused).
int qt_send_batch(int fd, struct qt_datagram *datagrams, unsigned count, int *last_error);

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

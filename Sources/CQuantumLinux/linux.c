#include "cquantum_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <netinet/udp.h>
#include <string.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int qt_tun_open(const char *name, int multi_queue, int vnet_header, char *actual_name) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -errno;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    request.ifr_flags = IFF_TUN | IFF_NO_PI | (multi_queue ? IFF_MULTI_QUEUE : 0) | (vnet_header ? IFF_VNET_HDR : 0);
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    int header_size = (int)sizeof(struct virtio_net_hdr);
    if (ioctl(fd, TUNSETIFF, &request) < 0 || (vnet_header && ioctl(fd, TUNSETVNETHDRSZ, &header_size) < 0)) {
        int error = errno;
        close(fd);
        return -error;
    }
    memcpy(actual_name, request.ifr_name, IFNAMSIZ);
    return fd;
}

int qt_tun_has_vnet_header(int fd) {
    struct ifreq request;
    memset(&request, 0, sizeof request);
    if (ioctl(fd, TUNGETIFF, &request) < 0) return -errno;
    return (request.ifr_flags & IFF_VNET_HDR) != 0;
}

int qt_tun_set_offload(int fd, unsigned offloads) {
    return ioctl(fd, TUNSETOFFLOAD, (unsigned long)offloads) < 0 ? -errno : 0;
}

static int set_ipv4(int sock, unsigned long request_code, const char *name, uint32_t value_be) {
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    struct sockaddr_in *address = (struct sockaddr_in *)&request.ifr_addr;
    address->sin_family = AF_INET;
    address->sin_addr.s_addr = value_be;
    return ioctl(sock, request_code, &request) < 0 ? -errno : 0;
}

int qt_interface_configure(const char *name, uint32_t address_be, uint32_t netmask_be, int mtu, int *stage) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) { *stage = 0; return -errno; }
    int result;
    *stage = 1;
    if ((result = set_ipv4(sock, SIOCSIFADDR, name, address_be)) < 0) goto done;
    *stage = 2;
    if ((result = set_ipv4(sock, SIOCSIFNETMASK, name, netmask_be)) < 0) goto done;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    *stage = 3;
    request.ifr_mtu = mtu;
    if (ioctl(sock, SIOCSIFMTU, &request) < 0) { result = -errno; goto done; }
    *stage = 4;
    if (ioctl(sock, SIOCGIFFLAGS, &request) < 0) { result = -errno; goto done; }
    request.ifr_flags |= IFF_UP | IFF_RUNNING;
    result = ioctl(sock, SIOCSIFFLAGS, &request) < 0 ? -errno : 0;
done:
    close(sock);
    return result;
}

// Room for the one control message a datagram carries: UDP_SEGMENT (a uint16_t) on
// send, UDP_GRO (an int) on receive.
union datagram_control {
    char buffer[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
};

// How many datagrams slot `d` stands for on the wire (at least one).
static unsigned segment_count(const struct qt_datagram *d) {
    if (d->segment_size == 0 || d->length <= d->segment_size) return 1;
    return (d->length + d->segment_size - 1) / d->segment_size;
}

// Whether slot `d` is a GSO message: several segments in one buffer.
static int is_segmented(const struct qt_datagram *d) {
    return segment_count(d) > 1;
}

// Whether a GSO slot is beyond what the kernel accepts in one message.
static int exceeds_segment_limits(const struct qt_datagram *d) {
    return is_segmented(d) && (segment_count(d) > QT_MAX_SEGMENTS || d->length > QT_MAX_SEGMENTED_LENGTH);
}

// The errors with which the kernel refuses UDP GSO itself (no checksum offload on the route,
// UDP_SEGMENT unknown...), as opposed to refusing the destination.
static int is_segmentation_refusal(int error) {
    return error == EIO || error == EINVAL || error == EOPNOTSUPP || error == ENOPROTOOPT;
}

// Fills the kernel's message headers for a batch: for receiving, whole buffers, room for
// any address and a UDP_GRO control message; for sending, the datagram lengths, their
// addresses and, for GSO slots when `segmentation` is on, a UDP_SEGMENT control message.
static void describe_batch(struct qt_datagram *datagrams, unsigned count, int receiving, int segmentation,
                           struct mmsghdr *headers, struct iovec *vectors, union datagram_control *controls) {
    for (unsigned i = 0; i < count; i++) {
        vectors[i].iov_base = datagrams[i].buffer;
        vectors[i].iov_len = receiving ? datagrams[i].capacity : datagrams[i].length;
        memset(&headers[i], 0, sizeof headers[i]);
        struct msghdr *message = &headers[i].msg_hdr;
        message->msg_iov = &vectors[i];
        message->msg_iovlen = 1;
        message->msg_name = &datagrams[i].addr;
        message->msg_namelen = receiving ? sizeof datagrams[i].addr : datagrams[i].addr_length;
        if (receiving) {
            message->msg_control = controls[i].buffer;
            message->msg_controllen = sizeof controls[i].buffer;
        } else if (segmentation && is_segmented(&datagrams[i])) {
            memset(&controls[i], 0, sizeof controls[i]);
            message->msg_control = controls[i].buffer;
            message->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
            struct cmsghdr *header = CMSG_FIRSTHDR(message);
            header->cmsg_level = SOL_UDP;
            header->cmsg_type = UDP_SEGMENT;
            header->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            memcpy(CMSG_DATA(header), &datagrams[i].segment_size, sizeof(uint16_t));
        }
    }
}

// The UDP_GRO segment size of a received message, or 0 when it holds one datagram.
static uint16_t received_segment_size(struct msghdr *message, unsigned length) {
    for (struct cmsghdr *header = CMSG_FIRSTHDR(message); header; header = CMSG_NXTHDR(message, header)) {
        if (header->cmsg_level != SOL_UDP || header->cmsg_type != UDP_GRO) continue;
        int size;
        memcpy(&size, CMSG_DATA(header), sizeof size);
        return (size > 0 && (unsigned)size < length) ? (uint16_t)size : 0;
    }
    return 0;
}

int qt_recv_batch(int fd, struct qt_datagram *datagrams, unsigned count) {
    if (count > QT_MAX_BATCH) count = QT_MAX_BATCH;
    struct mmsghdr headers[QT_MAX_BATCH];
    struct iovec vectors[QT_MAX_BATCH];
    union datagram_control controls[QT_MAX_BATCH];
    describe_batch(datagrams, count, 1, 0, headers, vectors, controls);
    int received;
    do {
        received = recvmmsg(fd, headers, count, MSG_DONTWAIT, NULL);
    } while (received < 0 && errno == EINTR);
    if (received < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    for (int i = 0; i < received; i++) {
        datagrams[i].length = headers[i].msg_len;
        datagrams[i].truncated = (headers[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
        datagrams[i].addr_length = headers[i].msg_hdr.msg_namelen;
        datagrams[i].segment_size = received_segment_size(&headers[i].msg_hdr, headers[i].msg_len);
    }
    return received;
}

// Sends `count` prepared messages, skipping each one the kernel refuses (sendmmsg reports
// an error only for the first message it could not send: unreachable, no buffer, bad
// address...). Returns how many were accepted; `*last_error` receives the last refusal's errno.
static unsigned send_each(int fd, struct mmsghdr *headers, unsigned count, int *last_error) {
    unsigned next = 0, accepted = 0;
    while (next < count) {
        int sent = sendmmsg(fd, headers + next, count - next, 0);
        if (sent < 0) {
            if (errno == EINTR) continue;
            *last_error = errno;
            next++;
            continue;
        }
        next += (unsigned)sent;
        accepted += (unsigned)sent;
    }
    return accepted;
}

// Sends the segments of GSO slot `d` as separate datagrams: one iovec per segment into the
// slot's buffer. Returns how many the kernel accepted; `*last_error` as for send_each.
static unsigned send_segments_separately(int fd, struct qt_datagram *d, int *last_error) {
    struct mmsghdr headers[QT_MAX_SEGMENTS];
    struct iovec vectors[QT_MAX_SEGMENTS];
    unsigned count = segment_count(d);
    for (unsigned i = 0; i < count; i++) {
        uint32_t offset = i * (uint32_t)d->segment_size;
        vectors[i].iov_base = (char *)d->buffer + offset;
        vectors[i].iov_len = d->length - offset < d->segment_size ? d->length - offset : d->segment_size;
        memset(&headers[i], 0, sizeof headers[i]);
        headers[i].msg_hdr.msg_iov = &vectors[i];
        headers[i].msg_hdr.msg_iovlen = 1;
        headers[i].msg_hdr.msg_name = &d->addr;
        headers[i].msg_hdr.msg_namelen = d->addr_length;
    }
    return send_each(fd, headers, count, last_error);
}

// Counts what became of slot `d` after `accepted` of its datagrams went out.
static void account(struct qt_send_result *result, const struct qt_datagram *d, unsigned accepted, int error) {
    result->datagrams_accepted += accepted;
    if (accepted == segment_count(d)) result->accepted++;
    else result->last_error = error;
}

int qt_send_batch(int fd, struct qt_datagram *datagrams, unsigned count, int *segmentation,
                  struct qt_send_result *result) {
    if (count > QT_MAX_BATCH) count = QT_MAX_BATCH;
    memset(result, 0, sizeof *result);
    struct mmsghdr headers[QT_MAX_BATCH];
    struct iovec vectors[QT_MAX_BATCH];
    union datagram_control controls[QT_MAX_BATCH];
    describe_batch(datagrams, count, 0, *segmentation, headers, vectors, controls);
    unsigned next = 0;
    while (next < count) {
        struct qt_datagram *d = &datagrams[next];
        if (exceeds_segment_limits(d)) {
            result->last_error = EMSGSIZE;
            next++;
            continue;
        }
        if (is_segmented(d) && !*segmentation) {
            int error = 0;
            account(result, d, send_segments_separately(fd, d, &error), error);
            next++;
            continue;
        }
        // The longest run from `next` that one sendmmsg can take as prepared.
        unsigned end = next + 1;
        while (end < count && !exceeds_segment_limits(&datagrams[end])
               && (*segmentation || !is_segmented(&datagrams[end]))) end++;
        int sent = sendmmsg(fd, headers + next, end - next, 0);
        if (sent < 0) {
            int error = errno;
            if (error == EINTR) continue;
            if (is_segmented(d) && is_segmentation_refusal(error)) {
                // Perhaps GSO is what the kernel refused: try the segments one by one. If any
                // goes out, it was: no more GSO on this socket. If none does, the destination
                // itself is refused and GSO stays on.
                int split_error = 0;
                unsigned accepted = send_segments_separately(fd, d, &split_error);
                if (accepted > 0) {
                    *segmentation = 0;
                    result->fallbacks++;
                }
                account(result, d, accepted, split_error);
            } else {
                result->last_error = error;
            }
            next++;
            continue;
        }
        for (unsigned i = next; i < next + (unsigned)sent; i++) account(result, &datagrams[i], segment_count(&datagrams[i]), 0);
        next += (unsigned)sent;
    }
    return (int)result->accepted;
}

int qt_udp_segmentation_supported(int fd) {
    int size = 0;
    socklen_t length = sizeof size;
    return getsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, &length) == 0;
}

int qt_udp_set_receive_offload(int fd, int enabled) {
    int value = enabled ? 1 : 0;
    return setsockopt(fd, SOL_UDP, UDP_GRO, &value, sizeof value) == 0 ? 0 : -errno;
}

int qt_udp_receive_offload(int fd) {
    int value = 0;
    socklen_t length = sizeof value;
    if (getsockopt(fd, SOL_UDP, UDP_GRO, &value, &length) < 0) return -errno;
    return value != 0;
}

int qt_has_cap_net_admin(void) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &header, data) < 0) return -errno;
    return (data[CAP_NET_ADMIN / 32].effective >> (CAP_NET_ADMIN % 32)) & 1;
}

int qt_eventfd(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int qt_send_fds(int sock, const void *data, size_t length, const int *fds, unsigned fd_count) {
    if (fd_count > QT_MAX_PASSED_FDS) return -EINVAL;
    struct iovec iov = { .iov_base = (void *)data, .iov_len = length };
    union {
        char buffer[CMSG_SPACE(sizeof(int) * QT_MAX_PASSED_FDS)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (fd_count > 0) {
        message.msg_control = control.buffer;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * fd_count);
    }
    ssize_t sent;
    do { sent = sendmsg(sock, &message, MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    return sent < 0 ? -errno : (int)sent;
}

int qt_recv_fds(int sock, void *data, size_t capacity, int *fds, unsigned fd_capacity, unsigned *fd_count) {
    struct iovec iov = { .iov_base = data, .iov_len = capacity };
    union {
        char buffer[CMSG_SPACE(sizeof(int) * QT_MAX_PASSED_FDS)];
        struct cmsghdr align;
    } control;
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1,
                              .msg_control = control.buffer, .msg_controllen = sizeof control.buffer };
    *fd_count = 0;
    ssize_t received;
    do { received = recvmsg(sock, &message, MSG_CMSG_CLOEXEC); } while (received < 0 && errno == EINTR);
    if (received < 0) return -errno;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        unsigned count = (unsigned)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *passed = (int *)CMSG_DATA(header);
        for (unsigned i = 0; i < count; i++) {
            if (*fd_count < fd_capacity) fds[(*fd_count)++] = passed[i];
            else close(passed[i]);
        }
    }
    if (message.msg_flags & MSG_CTRUNC) return -EMSGSIZE;
    return (int)received;
}

int qt_spawn_keeping_fd(const char *path, char *const argv[], char *const envp[], int keep_fd, int *pid) {
    posix_spawn_file_actions_t actions;
    int result = posix_spawn_file_actions_init(&actions);
    if (result != 0) return -result;
    // dup2 onto itself clears FD_CLOEXEC in the child only (glibc >= 2.29, POSIX 2024).
    result = posix_spawn_file_actions_adddup2(&actions, keep_fd, keep_fd);
    if (result == 0) {
        pid_t child;
        result = posix_spawn(&child, path, &actions, NULL, argv, envp);
        if (result == 0) *pid = child;
    }
    posix_spawn_file_actions_destroy(&actions);
    return -result;
}

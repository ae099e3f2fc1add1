#include "cquantum_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
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

// Fills the kernel's message headers for a batch: for receiving, whole buffers and
// room for any address; for sending, the datagram lengths and their addresses.
static void describe_batch(struct qt_datagram *datagrams, unsigned count, int receiving,
                           struct mmsghdr *headers, struct iovec *vectors) {
    for (unsigned i = 0; i < count; i++) {
        vectors[i].iov_base = datagrams[i].buffer;
        vectors[i].iov_len = receiving ? datagrams[i].capacity : datagrams[i].length;
        memset(&headers[i], 0, sizeof headers[i]);
        headers[i].msg_hdr.msg_iov = &vectors[i];
        headers[i].msg_hdr.msg_iovlen = 1;
        headers[i].msg_hdr.msg_name = &datagrams[i].addr;
        headers[i].msg_hdr.msg_namelen = receiving ? sizeof datagrams[i].addr : datagrams[i].addr_length;
    }
}

int qt_recv_batch(int fd, struct qt_datagram *datagrams, unsigned count) {
    if (count > QT_MAX_BATCH) count = QT_MAX_BATCH;
    struct mmsghdr headers[QT_MAX_BATCH];
    struct iovec vectors[QT_MAX_BATCH];
    describe_batch(datagrams, count, 1, headers, vectors);
    int received;
    do {
        received = recvmmsg(fd, headers, count, MSG_DONTWAIT, NULL);
    } while (received < 0 && errno == EINTR);
    if (received < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    for (int i = 0; i < received; i++) {
        datagrams[i].length = headers[i].msg_len;
        datagrams[i].truncated = (headers[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
        datagrams[i].addr_length = headers[i].msg_hdr.msg_namelen;
    }
    return received;
}

int qt_send_batch(int fd, struct qt_datagram *datagrams, unsigned count, int *last_error) {
    if (count > QT_MAX_BATCH) count = QT_MAX_BATCH;
    struct mmsghdr headers[QT_MAX_BATCH];
    struct iovec vectors[QT_MAX_BATCH];
    describe_batch(datagrams, count, 0, headers, vectors);
    *last_error = 0;
    unsigned next = 0, accepted = 0;
    while (next < count) {
        int result = sendmmsg(fd, headers + next, count - next, 0);
        if (result < 0) {
            if (errno == EINTR) continue;
            // sendmmsg reports an error only for the first datagram it could not send:
            // that one is refused (unreachable, no buffer, bad address...); go on with the rest.
            *last_error = errno;
            next++;
            continue;
        }
        next += (unsigned)result;
        accepted += (unsigned)result;
    }
    return (int)accepted;
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

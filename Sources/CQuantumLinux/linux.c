#include "cquantum_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int qt_tun_open(const char *name, int multi_queue, char *actual_name) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -errno;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    request.ifr_flags = IFF_TUN | IFF_NO_PI | (multi_queue ? IFF_MULTI_QUEUE : 0);
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &request) < 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    memcpy(actual_name, request.ifr_name, IFNAMSIZ);
    return fd;
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

/* Socket options, the same on every OS: which options there are, the range
 * of each one's value, and what a multicast group must be.  The OS layer
 * (sys/net.h: net_posix.c, net_win.c) maps each onto its own option, per
 * family, and says MIO_ENOSYS where it has none. */
#include "sys/net.h"

#include <limits.h>

/* Whether value is in opt's range (false, too, for an unknown opt). */
static bool value_ok(int opt, int value)
{
    switch (opt) {
    case MIO_SO_REUSEPORT:
    case MIO_SO_BROADCAST:
    case MIO_SO_MULTICAST_LOOP:
    case MIO_SO_V6ONLY:
    case MIO_SO_KEEPALIVE:
        return value == 0 || value == 1;
    case MIO_SO_RCVBUF:
    case MIO_SO_SNDBUF:
    case MIO_SO_KEEPIDLE:
    case MIO_SO_KEEPINTVL:
    case MIO_SO_KEEPCNT:
        return value >= 1;
    case MIO_SO_TTL:
        return value >= 1 && value <= 255;
    case MIO_SO_MULTICAST_TTL:
        return value >= 0 && value <= 255;
    case MIO_SO_MULTICAST_IF:
        return value >= 0;
    case MIO_SO_DONTFRAG:
        return value >= 0 && value <= MIO_DONTFRAG_PROBE;
    default:
        return false;
    }
}

int mio_sockopt_set(mio_fd fd, int opt, int value)
{
    if (!value_ok(opt, value))
        return MIO_EINVAL;
    return mio__os_sockopt_set(fd, opt, value);
}

int mio_sockopt_get(mio_fd fd, int opt, int *value)
{
    if (value == NULL || opt < MIO_SO_REUSEPORT || opt > MIO_SO_KEEPCNT)
        return MIO_EINVAL;
    return mio__os_sockopt_get(fd, opt, value);
}

/* An IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast address. */
static bool multicast(const mio_addr *a)
{
    if (a->u.sa.sa_family == AF_INET && a->len == sizeof(struct sockaddr_in)) {
        const unsigned char *b = (const unsigned char *)&a->u.v4.sin_addr;
        return (b[0] & 0xf0) == 0xe0;
    }
    return a->u.sa.sa_family == AF_INET6 && a->len == sizeof(struct sockaddr_in6) &&
           a->u.v6.sin6_addr.s6_addr[0] == 0xff;
}

static int membership(mio_fd fd, bool join, const mio_addr *group, uint32_t ifindex)
{
    if (group == NULL || !multicast(group))
        return MIO_EINVAL;
    return mio__os_multicast(fd, join, group, ifindex);
}

int mio_udp_join(mio_fd fd, const mio_addr *group, uint32_t ifindex)
{
    return membership(fd, true, group, ifindex);
}

int mio_udp_leave(mio_fd fd, const mio_addr *group, uint32_t ifindex)
{
    return membership(fd, false, group, ifindex);
}

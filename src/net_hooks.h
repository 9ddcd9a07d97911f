/* What net.c offers the rest of the library beyond the public calls: the
 * listening sockets of a group of loops. */
#ifndef MIO_NET_HOOKS_H
#define MIO_NET_HOOKS_H

#include "common.h"

/* mio_tcp_listen for a socket that other sockets of this process may bind
 * to the same address, the kernel spreading connections over them
 * (MIO_ENOSYS where it would not: sys/net.h's mio__os_share_port). */
int mio__tcp_listen_shared(const mio_addr *addr, int backlog, mio_fd *out);
/* Makes the sockets sharing listener fd's address give a connection to
 * the one whose number (in the order they started listening) is the
 * receiving CPU's modulo n: Linux, MIO_ENOSYS elsewhere. */
int mio__tcp_steer_by_cpu(mio_fd fd, unsigned n);

#endif

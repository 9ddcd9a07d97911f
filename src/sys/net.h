/* The OS layer under the networking calls: one file per system
 * (net_posix.c, net_win.c) making the socket, pipe and transfer calls and
 * nothing else.  net.c checks the arguments, fills in what the caller gets
 * back and keeps emulated edges true; these functions only talk to the OS.
 *
 * Every function returns 0 (or a count) on success and a negative MIO_E*
 * code on failure (MIO_EAGAIN for a transfer, accept or connect that would
 * block); none of them touches an emulated edge. */
#ifndef MIO_SYS_NET_H
#define MIO_SYS_NET_H

#include "../common.h"

#ifdef _WIN32
#include <limits.h>

/* Winsock's AF_UNIX is stream only: an address check refuses Unix
 * addresses for the datagram calls. */
#define MIO__OS_UNIX_DGRAM 0

/* What one transfer call asks for at most: Winsock counts in int. */
static inline size_t mio__os_io_len(size_t len)
{
    return len > INT_MAX ? INT_MAX : len;
}
#else
#define MIO__OS_UNIX_DGRAM 1

static inline size_t mio__os_io_len(size_t len)
{
    return len;
}
#endif

/* Makes the OS's socket calls usable (Winsock's start-up). */
int mio__os_net_init(void);

/* ---- sockets ---- */

/* A new socket of family and type (SOCK_STREAM or SOCK_DGRAM), in *out:
 * non-blocking and close-on-exec (not inheritable) from creation, never
 * raising SIGPIPE; on Windows overlapped, and a UDP one does not fail its
 * next receive after an ICMP port-unreachable. */
int mio__os_socket(int family, int type, mio_fd *out);
/* Lets a TCP listener bind over connections of an earlier one in TIME_WAIT. */
int mio__os_allow_rebind(mio_fd fd);
/* Lets other sockets of this process bind fd's address, the kernel
 * spreading the connections over them: SO_REUSEPORT where it balances
 * (Linux, DragonFly), SO_REUSEPORT_LB (FreeBSD); MIO_ENOSYS where it would
 * not (elsewhere SO_REUSEPORT gives every connection to one socket). */
int mio__os_share_port(mio_fd fd);
/* Makes the sockets sharing listener fd's port (mio__os_share_port) give
 * a connection to socket number (receiving CPU mod n), numbered in the
 * order they started listening: Linux, MIO_ENOSYS elsewhere. */
int mio__os_steer_by_cpu(mio_fd fd, unsigned n);
int mio__os_bind(mio_fd fd, const struct sockaddr *sa, socklen_t len);
/* Also opens the process's reserve descriptor where there is one (see
 * mio__os_shed). */
int mio__os_listen(mio_fd fd, int backlog);
/* A connect done at once (a datagram socket's peer). */
int mio__os_connect(mio_fd fd, const struct sockaddr *sa, socklen_t len);
/* A stream connect started: 1 when it completed at once, 0 while it goes
 * on in the background; MIO_EAGAIN when a Unix listener's backlog is full. */
int mio__os_connect_start(mio_fd fd, const struct sockaddr *sa, socklen_t len);
/* A Unix stream address (sa, len; its file at path) that bind found in
 * use: 0 when what is there is a socket file that nobody listens on (a
 * connect is refused), which is then removed, or was already gone; else
 * MIO_EADDRINUSE (a listener answers, the file is no socket, or the OS
 * cannot tell), or the error of the removal. */
int mio__os_unix_unstale(const char *path, const struct sockaddr *sa, socklen_t len);
/* One connection off listener's queue, set up as mio__os_socket's are; its
 * peer's address in *ss (*len bytes). */
int mio__os_accept(mio_fd listener, struct sockaddr_storage *ss, socklen_t *len, mio_fd *out);
/* Accepts and closes every connection queued on listener, with the reserve
 * descriptor given up meanwhile where the OS limits descriptors per
 * process; how many, or the error that stopped it (MIO_EAGAIN: the queue is
 * empty, reported as the count). */
int mio__os_shed(mio_fd listener);
int mio__os_set_nodelay(mio_fd fd, bool on);
/* The socket's own (peer false) or its peer's address. */
int mio__os_sockname(mio_fd fd, bool peer, struct sockaddr_storage *ss, socklen_t *len);
/* SO_ERROR, read and cleared: the call's own failure as the result, the
 * socket's pending error (0 if none; else the error kept by
 * mio__os_keep_error, taken) in *pending. */
int mio__os_take_error(mio_fd fd, int *pending);
/* A read or write of fd failed with err.  POSIX forgets a connection's
 * error once a transfer has reported it (SO_ERROR is cleared, later reads
 * say end of stream): an error that ends a stream connection (refused,
 * timed out, unreachable) is kept for mio__os_take_error and for reads at
 * end of stream, until taken or mio__os_close.  A no-op where the OS keeps
 * it (Windows) and for other errors or sockets. */
void mio__os_keep_error(mio_fd fd, int err);
/* The error kept for fd, 0 if none; `take` forgets it.  One relaxed load
 * when nothing is kept. */
int mio__os_kept_error(mio_fd fd, bool take);
/* how is MIO_SHUT_RD, MIO_SHUT_WR or MIO_SHUT_RDWR. */
int mio__os_shutdown(mio_fd fd, int how);
int mio__os_close(mio_fd fd);

/* A connected stream pair, and a pipe (read end first), both set up as
 * mio__os_socket's sockets are; out is written only on success. */
int mio__os_socketpair(mio_fd out[2]);
int mio__os_pipe(mio_fd out[2]);

/* ---- transfers ----
 * Bytes moved, or a MIO_E* code; len at most mio__os_io_len(len).  Reading
 * a socket whose read side was shut is end of stream (0) everywhere.  The
 * vectored calls tell in *want how much they asked for: Winsock takes
 * fewer buffers, and fewer bytes, at once than POSIX. */
ssize_t mio__os_read(mio_fd fd, void *buf, size_t len);
ssize_t mio__os_write(mio_fd fd, const void *buf, size_t len);
ssize_t mio__os_readv(mio_fd fd, const mio_iovec *iov, int iovcnt, size_t *want);
ssize_t mio__os_writev(mio_fd fd, const mio_iovec *iov, int iovcnt, size_t *want);
/* to may be NULL (tolen 0) on a connected socket. */
ssize_t mio__os_sendto(mio_fd fd, const void *buf, size_t len, const struct sockaddr *to,
                       socklen_t tolen);
/* A datagram into buf, cut to len; *truncated says whether it was longer. */
ssize_t mio__os_recvfrom(mio_fd fd, void *buf, size_t len, struct sockaddr_storage *from,
                         socklen_t *fromlen, bool *truncated);

/* ---- datagram batches (dgram_posix.c, dgram_win.c) ----
 * The entries come checked by net.c (buffers, addresses, ecn). */

/* Segments one system call may carry with segmentation offload (Linux's
 * UDP_MAX_SEGMENTS since 4.18), and the bytes at most: an IPv4 datagram's
 * largest payload, which every offload takes. */
#define MIO__GSO_SEGMENTS  64
#define MIO__GSO_MAX_BYTES 65507

/* Sends d[0..n) as mio_udp_send_batch describes: how many entries went out
 * whole, or the error that stopped the first one; an entry sent in part is
 * moved past what went out.  *gso: in, whether segment_size may go to the
 * OS's offload; out, false when the OS refused it (EIO, EINVAL), after
 * which the refused entry and the rest went out segment by segment. */
ssize_t mio__os_send_batch(mio_fd fd, mio_datagram *d, size_t n, bool *gso);
/* Receives into d[0..n) as mio_udp_recv_batch describes. */
ssize_t mio__os_recv_batch(mio_fd fd, mio_datagram *d, size_t n);
/* Turns the receive options in `what` (MIO_UDP_RECV_ECN,
 * MIO_UDP_RECV_LOCAL, MIO_UDP_GRO) on or off: MIO_ENOSYS, with nothing
 * changed, when one is not available on fd. */
int mio__os_udp_enable(mio_fd fd, uint32_t what, bool on);
/* What fd can do and has on, as the OS says (net.c adds what it learnt
 * about the offload). */
int mio__os_udp_caps(mio_fd fd, mio_udp_capabilities *out);
/* A connected Unix datagram pair, set up as mio__os_socket's sockets are;
 * MIO_EAFNOSUPPORT where the OS has none. */
int mio__os_dgram_pair(mio_fd out[2]);

/* ---- socket options (net_posix.c, net_win.c) ----
 * opt is a MIO_SO_* name and value within its range (sockopt.c checks
 * both); group a multicast address of its family's length. */
int mio__os_sockopt_set(mio_fd fd, int opt, int value);
int mio__os_sockopt_get(mio_fd fd, int opt, int *value);
int mio__os_multicast(mio_fd fd, bool join, const mio_addr *group, uint32_t ifindex);
/* The family of socket fd (AF_INET, AF_INET6, AF_UNIX), bound or not. */
int mio__os_family(mio_fd fd, int *family);

#endif

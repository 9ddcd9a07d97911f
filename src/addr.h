/* Socket addresses as the networking calls pass them to the OS (addr.c). */
#ifndef MIO_ADDR_H
#define MIO_ADDR_H

#include "common.h"

#ifdef _WIN32
/* afunix.h's layout (Windows 10 1803 and later); not every SDK has it. */
typedef struct {
    ADDRESS_FAMILY sun_family;
    char sun_path[108];
} mio__sockaddr_un;
#else
#include <sys/un.h>
typedef struct sockaddr_un mio__sockaddr_un;
#endif

/* A Unix socket address for path: MIO_EINVAL for NULL or empty,
 * MIO_ENAMETOOLONG when it does not fit with its terminating NUL; on Linux
 * a leading '@' makes it an abstract name (see mio_addr_unix). */
int mio__unix_addr(const char *path, mio__sockaddr_un *un, socklen_t *len);
/* A socket address of len bytes from the OS into *out. */
void mio__fill_addr(mio_addr *out, const struct sockaddr_storage *ss, socklen_t len);

#endif

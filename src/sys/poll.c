/* The poll(2) backend: being written.  Until then it reports MIO_ENOSYS. */
#include "../sys.h"

struct pollfd_poll { mio_poll base; };

static int pp_init(mio_poll *base) { (void)base; return MIO_ENOSYS; }

const struct mio_backend mio__backend_poll = {
    .name = "poll",
    .size = sizeof(struct pollfd_poll),
    .init = pp_init,
};

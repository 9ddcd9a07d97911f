/* User-space readiness: not yet implemented. */
#include "sys.h"

bool mio__readyq_prepare(mio_poll *p) { (void)p; return false; }
size_t mio__readyq_drain(mio_poll *p, mio_event *e, size_t c) { (void)p; (void)e; (void)c; return 0; }
void mio__readyq_detach(mio_poll *p) { (void)p; }

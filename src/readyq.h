/* The user-space readiness queue's hooks (registration.c), called by poll.c
 * only when p->readyq is set. */
#ifndef MIO_READYQ_H
#define MIO_READYQ_H

#include "common.h"

/* Runs before the backend's wait: if readiness is queued it sets *timeout_ns
 * to 0 and moves up to a fair share of cap into events (so that neither
 * queued nor kernel readiness starves the other), returning how many;
 * otherwise it tells producers the poller may sleep. */
size_t mio__readyq_prepare(mio_poll *p, mio_event *events, size_t cap, int64_t *timeout_ns);
/* Runs after the wait: moves queued readiness into events, returns how many. */
size_t mio__readyq_drain(mio_poll *p, mio_event *events, size_t cap);
/* The poll is being freed: its queue goes, its registrations are unbound. */
void   mio__readyq_detach(mio_poll *p);

#endif

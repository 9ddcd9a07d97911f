/* What the event loop needs from the timer wheel beyond the public calls:
 * the same queries against a clock reading the caller already has, so one
 * loop tick reads the clock once for its wait bound and its expiries. */
#ifndef MIO_TIMER_H
#define MIO_TIMER_H

#include "mio.h"

/* mio_timer_next() as of now_ns (a mio__now_ns() reading): ns until the
 * earliest deadline, 0 once one is due, -1 if none is pending. */
int64_t mio__timer_next_at(const mio_timer *t, int64_t now_ns);

/* Like mio__timer_next_at, but to a lower bound of the earliest deadline
 * while the exact one is not known (after its timeout was cancelled or
 * fired): the bound for the loop's wait, which costs no pass over the
 * wheel.  Waking at the bound at worst finds nothing due. */
int64_t mio__timer_bound_at(const mio_timer *t, int64_t now_ns);

/* mio_timer_poll() as of now_ns.  A reading older than the latest one the
 * timer has seen only makes fewer timeouts due; never any early. */
bool mio__timer_poll_at(mio_timer *t, int64_t now_ns, void **arg);

/* Starts a round: mio__timer_poll_old_at pops no timeout set from now on
 * (until the next round).  The loop makes each tick's expiries a round, so
 * that a timeout a callback sets fires in a later tick. */
void mio__timer_new_round(mio_timer *t);

/* mio__timer_poll_at for the timeouts set before the current round. */
bool mio__timer_poll_old_at(mio_timer *t, int64_t now_ns, void **arg);

/* How many timeouts are pending. */
size_t mio__timer_pending(const mio_timer *t);

#endif

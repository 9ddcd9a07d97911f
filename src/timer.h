/* What the event loop needs from the timer wheel beyond the public calls:
 * the same queries against a clock reading the caller already has, so one
 * loop tick reads the clock once for its wait bound and once for its
 * expiries, and none per set. */
#ifndef MIO_TIMER_H
#define MIO_TIMER_H

#include "mio.h"

/* mio_timer_set for a timer that exists; out may be NULL (*out is 0 on
 * failure). */
int mio__timer_set(mio_timer *t, uint64_t delay_ns, void *arg, mio_timeout *out);

/* Gives the staged timeouts their deadlines as of now_ns, which must be a
 * mio__now_ns() reading taken after they were set (an earlier one would
 * make them early); now_ns < 0 reads the clock, if anything is staged. */
void mio__timer_flush(mio_timer *t, int64_t now_ns);
/* How many timeouts are pending, the staged ones placed first. */
size_t mio__timer_pending(mio_timer *t);

/* defer: sets and resets stay staged until a flush (or a full stage), as
 * on a new timer; !defer: flushes, and each later one is placed at once
 * with a clock reading of its own. */
void mio__timer_defer(mio_timer *t, bool defer);

/* The loop's tick: begin, as of now_ns (its reading before the wait),
 * defers and returns mio__timer_bound_at; new_round (below), as of its
 * reading after the ready and notify callbacks, places what they set and
 * stops deferring.  What those callbacks set thus counts its delay from that
 * reading, and what is set anywhere else from a reading of its own. */
int64_t mio__timer_begin(mio_timer *t, int64_t now_ns);

/* The queries below see only flushed timeouts. */

/* mio_timer_next() as of now_ns (a mio__now_ns() reading): ns until the
 * earliest deadline, 0 once one is due, -1 if none is pending. */
int64_t mio__timer_next_at(const mio_timer *t, int64_t now_ns);

/* Like mio__timer_next_at, but to a lower bound of the earliest deadline
 * while the exact one is not known (after its timeout was cancelled, reset
 * or fired): the bound for the loop's wait, which costs no pass over the
 * wheel.  Waking at the bound at worst finds nothing due. */
int64_t mio__timer_bound_at(const mio_timer *t, int64_t now_ns);

/* mio_timer_poll() as of now_ns.  A reading older than the latest one the
 * timer has seen only makes fewer timeouts due; never any early. */
bool mio__timer_poll_at(mio_timer *t, int64_t now_ns, void **arg);

/* Flushes as of now_ns, stops deferring and starts a round:
 * mio__timer_poll_old_at pops no timeout set from now on (until the next
 * round).  The loop makes each tick's expiries a round, so that a timeout a
 * callback sets fires in a later tick.  Returns false when nothing is due
 * as of now_ns (true: something may be). */
bool mio__timer_new_round(mio_timer *t, int64_t now_ns);

/* mio__timer_poll_at for the timeouts set before the current round. */
bool mio__timer_poll_old_at(mio_timer *t, int64_t now_ns, void **arg);

#endif

/* libFuzzer target: the Poll API as a state machine.
 *
 * The input is a program: the first byte picks the backend, then each three
 * bytes are one operation (register, reregister, deregister, wait, write,
 * read, close and reopen, peer close, wake, set user-space readiness) on
 * SOURCES socket pairs, a waker and a user-space registration.  A model of
 * each source (registered?, token, interest, trigger, bytes pending, peer
 * gone, edge armed, oneshot fired) says what every call must return and what
 * every wait may and must report:
 *   - no event for a source that is not registered, and always its current
 *     token;
 *   - READABLE only while bytes are pending or the peer is gone (nothing
 *     written, or all drained, is never readable);
 *   - level: READABLE on every wait while bytes are pending;
 *   - edge: an event after every rise (registration with data, or a write
 *     after a read that said MIO_EAGAIN);
 *   - oneshot: one event, then none until reregistered;
 *   - a wake: one READABLE event for the waker's token, and none without one.
 * Waits use timeout 0 and room for every source, so "must report" is exact. */
#include "mio.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SOURCES 4
#define WAKER_TOKEN 1000
#define USER_TOKEN_BASE 2000
#define MAX_PENDING 4096

#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz_poll: %s (line %d, op %zu)\n", #cond,       \
                    __LINE__, op_index);                                      \
            abort();                                                          \
        }                                                                     \
    } while (0)

struct source {
    mio_fd fd, peer;        /* fd is registered; writes go to peer */
    bool registered;
    mio_token token;
    uint32_t interest;      /* READABLE/WRITABLE | trigger bits */
    size_t pending;         /* bytes written to peer, not yet read */
    bool peer_gone;
    bool armed;             /* edge: the next readable rise must be reported */
    bool fired;             /* oneshot: reported since the last (re)register */
};

struct user {
    mio_registration *reg;
    mio_set_readiness *set;
    bool registered;
    mio_token token;
    uint32_t interest, readiness;
    bool armed, fired;
};

static size_t op_index;
static unsigned generation;

static mio_token next_token(int i)
{
    return (mio_token)(i * 100 + 1 + (int)(++generation % 90));
}

static void open_pair(struct source *s)
{
    mio_fd sp[2];
    REQUIRE(mio_socketpair(sp) == 0);
    s->fd = sp[0];
    s->peer = sp[1];
    s->registered = false;
    s->token = 0;
    s->interest = 0;
    s->pending = 0;
    s->peer_gone = false;
    s->armed = false;
    s->fired = false;
}

static uint32_t interest_of(uint8_t b)
{
    static const uint32_t dirs[] = { MIO_READABLE, MIO_READABLE, MIO_WRITABLE,
                                     MIO_READABLE | MIO_WRITABLE };
    static const uint32_t modes[] = { MIO_EDGE, MIO_LEVEL, MIO_EDGE | MIO_ONESHOT,
                                      MIO_LEVEL | MIO_ONESHOT };
    return dirs[b & 3] | modes[(b >> 2) & 3];
}

static bool readable(const struct source *s)
{
    return s->pending > 0 || s->peer_gone;
}

static void check_wait(mio_poll *p, struct source *src, struct user *u, bool *woken)
{
    mio_event ev[64];
    bool seen[SOURCES] = { false }, seen_user = false, seen_waker = false;
    uint32_t flags[SOURCES] = { 0 };
    int n = mio_poll_wait(p, ev, 64, 0), i, k;

    REQUIRE(n >= 0 && n < 64);
    if (getenv("FUZZ_TRACE") != NULL)
        for (k = 0; k < n; k++)
            fprintf(stderr, "event %lu %#x\n", (unsigned long)ev[k].token, ev[k].flags);
    for (k = 0; k < n; k++) {
        mio_token t = ev[k].token;
        uint32_t f = ev[k].flags;
        if (t == WAKER_TOKEN) {
            REQUIRE(*woken);
            REQUIRE(f & MIO_READABLE);
            seen_waker = true;
            continue;
        }
        if (u->registered && t == u->token) {
            REQUIRE(!((u->interest & MIO_ONESHOT) && u->fired && !seen_user));
            REQUIRE((f & ~(u->readiness & (u->interest | MIO_ERROR | MIO_READ_CLOSED |
                                           MIO_WRITE_CLOSED))) == 0);
            seen_user = true;
            continue;
        }
        for (i = 0; i < SOURCES; i++)
            if (src[i].registered && src[i].token == t)
                break;
        REQUIRE(i < SOURCES);   /* a token no registered source has */
        /* kqueue reports read and write apart: a oneshot may show twice in
         * one batch, never in a later one. */
        REQUIRE(!((src[i].interest & MIO_ONESHOT) && src[i].fired && !seen[i]));
        if (f & MIO_READABLE)
            REQUIRE(readable(&src[i]));
        seen[i] = true;
        flags[i] |= f;
    }
    if (*woken)
        REQUIRE(seen_waker);
    *woken = false;
    for (i = 0; i < SOURCES; i++) {
        struct source *s = &src[i];
        bool oneshot_done = (s->interest & MIO_ONESHOT) && s->fired;
        if (!s->registered)
            continue;
        if (!oneshot_done && (s->interest & MIO_READABLE) && readable(s)) {
            if (s->interest & MIO_LEVEL)
                REQUIRE(flags[i] & MIO_READABLE);
            else if (s->armed && !s->peer_gone)
                REQUIRE(flags[i] & MIO_READABLE);
        }
        if (!oneshot_done && (s->interest & MIO_WRITABLE) && (s->interest & MIO_LEVEL) &&
            !s->peer_gone)
            REQUIRE(seen[i]);
        if (flags[i] & MIO_READABLE)
            s->armed = false;
        if (seen[i])
            s->fired = true;
    }
    if (u->registered) {
        bool oneshot_done = (u->interest & MIO_ONESHOT) && u->fired;
        uint32_t ready = u->readiness & (u->interest | MIO_ERROR | MIO_READ_CLOSED |
                                         MIO_WRITE_CLOSED);
        if (!oneshot_done && ready != 0 && ((u->interest & MIO_LEVEL) || u->armed))
            REQUIRE(seen_user);
        if (seen_user) {
            u->armed = false;
            u->fired = true;
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Inputs leave sources undrained on purpose: the debug build's drain check
 * still runs, but its warnings (a write to stderr each) are not wanted. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mio_set_log(NULL, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const backends[] = { "epoll", "poll" };
    struct source src[SOURCES];
    struct user u;
    mio_poll *p;
    mio_waker *w;
    bool woken = false;
    static char buf[MAX_PENDING];
    size_t at;
    int i;

    if (size < 1 || mio_poll_new_backend(backends[data[0] & 1], &p) != 0)
        return 0;
    REQUIRE(mio_waker_new(p, WAKER_TOKEN, &w) == 0);
    memset(&u, 0, sizeof u);
    REQUIRE(mio_registration_new(&u.reg, &u.set) == 0);
    for (i = 0; i < SOURCES; i++)
        open_pair(&src[i]);
    op_index = 0;
    for (at = 1; at + 3 <= size; at += 3, op_index++) {
        uint8_t op = data[at] % 12, arg = data[at + 2];
        struct source *s = &src[data[at + 1] % SOURCES];
        ssize_t n;
        int err;
        switch (op) {
        case 0: { /* register */
            mio_token t = next_token(data[at + 1] % SOURCES);
            err = mio_register(p, s->fd, t, interest_of(arg));
            if (s->registered) {
                REQUIRE(err == MIO_EEXIST);
                break;
            }
            REQUIRE(err == 0);
            s->token = t;
            s->registered = true;
            s->interest = interest_of(arg);
            s->armed = true;
            s->fired = false;
            break;
        }
        case 1: { /* reregister */
            mio_token t = next_token(data[at + 1] % SOURCES);
            err = mio_reregister(p, s->fd, t, interest_of(arg));
            if (!s->registered) {
                REQUIRE(err == MIO_ENOENT);
                break;
            }
            REQUIRE(err == 0);
            s->token = t;
            s->interest = interest_of(arg);
            s->armed = true;
            s->fired = false;
            break;
        }
        case 2: /* deregister */
            err = mio_deregister(p, s->fd);
            REQUIRE(err == (s->registered ? 0 : MIO_ENOENT));
            s->registered = false;
            break;
        case 3: /* wait */
        case 4:
            check_wait(p, src, &u, &woken);
            break;
        case 5: /* the peer writes */
            if (s->peer_gone || s->pending + arg + 1 > MAX_PENDING)
                break;
            memset(buf, arg, (size_t)arg + 1);
            REQUIRE(mio_write(s->peer, buf, (size_t)arg + 1) == (ssize_t)arg + 1);
            s->pending += (size_t)arg + 1;
            break;
        case 6: /* read */
            n = mio_read(s->fd, buf, (size_t)arg + 1);
            if (s->pending > 0) {
                size_t want = s->pending < (size_t)arg + 1 ? s->pending : (size_t)arg + 1;
                REQUIRE(n == (ssize_t)want);
                s->pending -= want;
            } else if (s->peer_gone) {
                REQUIRE(n == 0);
            } else {
                REQUIRE(n == MIO_EAGAIN);
                s->armed = true;
            }
            break;
        case 7: /* close (without deregistering) and open a new pair */
            REQUIRE(mio_close(s->fd) == 0);
            if (!s->peer_gone)
                REQUIRE(mio_close(s->peer) == 0);
            open_pair(s);
            break;
        case 8: /* the peer goes away */
            if (!s->peer_gone) {
                REQUIRE(mio_close(s->peer) == 0);
                s->peer = MIO_INVALID_FD;
                s->peer_gone = true;
                s->armed = true;    /* hang-up is a new readiness */
            }
            break;
        case 9: /* wake */
            REQUIRE(mio_waker_wake(w) == 0);
            woken = true;
            break;
        case 10: { /* user-space readiness */
            uint32_t r = arg & (MIO_READABLE | MIO_WRITABLE);
            uint32_t old = u.readiness & (u.interest | MIO_ERROR | MIO_READ_CLOSED |
                                          MIO_WRITE_CLOSED);
            REQUIRE(mio_set_readiness_set(u.set, r) == 0);
            u.readiness = r;
            if ((r & u.interest) & ~old)
                u.armed = true;
            break;
        }
        case 11: /* user-space (re|de)registration */
            if (arg & 0x80) {
                err = mio_registration_deregister(p, u.reg);
                REQUIRE(err == (u.registered ? 0 : MIO_ENOENT));
                u.registered = false;
            } else if (u.registered) {
                u.token++;
                u.interest = interest_of(arg);
                REQUIRE(mio_registration_reregister(p, u.reg, u.token, u.interest) == 0);
                u.armed = true;
                u.fired = false;
            } else {
                u.token = USER_TOKEN_BASE + (generation++ % 100) * 2;
                u.interest = interest_of(arg);
                REQUIRE(mio_registration_register(p, u.reg, u.token, u.interest) == 0);
                u.registered = true;
                u.armed = true;
                u.fired = false;
            }
            break;
        }
    }
    check_wait(p, src, &u, &woken);
    for (i = 0; i < SOURCES; i++) {
        if (src[i].registered)
            REQUIRE(mio_deregister(p, src[i].fd) == 0);
        mio_close(src[i].fd);
        if (!src[i].peer_gone)
            mio_close(src[i].peer);
    }
    mio_registration_free(u.reg);
    mio_set_readiness_free(u.set);
    mio_waker_free(w);
    mio_poll_free(p);
    return 0;
}

#!/usr/bin/env python3
"""Runs the benchmark suite and writes bench/RESULTS.md (and bench/dispatch.png).

    bench/run.py BUILD_DIR [--quick] [--out FILE] [--only multicore|datagrams]

--only multicore (or datagrams) runs the multi-core (or datagram) section
alone and puts it in place of the one in the results file, leaving the rest
of the file as it was.

BUILD_DIR holds the programs CMake builds with -DMIO_BUILD_BENCH=ON.  Every
figure is the median of at least five runs; the callgrind table counts
user-space instructions, the stable figure on a loaded machine.  A program
whose peer library was not found at configure time is skipped with a line.
"""
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time

QUICK = "--quick" in sys.argv
ONLY = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
ARGS = [a for i, a in enumerate(sys.argv[1:], 1)
        if not a.startswith("--") and sys.argv[i - 1] not in ("--only", "--out")]
BUILD = os.path.abspath(ARGS[0] if ARGS else "build-bench")
SHOWN = ARGS[0] if ARGS else "build-bench"     # the build directory as the commands show it
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "RESULTS.md")
if "--out" in sys.argv:
    OUT = os.path.abspath(sys.argv[sys.argv.index("--out") + 1])
PLOT = os.path.join(os.path.dirname(OUT), "dispatch.png")

RUNS = 5 if QUICK else 9
DISPATCH_N = [100, 1000, 9000] if QUICK else [100, 1000, 5000, 9000]
DISPATCH_W = 5000 if QUICK else 10000
ECHO_SECONDS = 0.3 if QUICK else 2.0
CG_ACTIVE = (100,) if QUICK else (1, 100)
TIMER_ACTIVE = (100,) if QUICK else (1, 100)
ECHO_RUNS = 5
ECHO_CONNS = 100
ECHO_SIZES = [64, 16384]
SERVER_CPU, CLIENT_CPU = "0", "1"
CG_N = 1000
CG_W1, CG_W2 = (1000, 6000) if QUICK else (2000, 12000)

# (label, program, extra options).  The first is the reference.
DISPATCH_LIBS = [
    ("epoll (by hand, edge)", "dispatch_epoll", []),
    ("epoll (by hand, level)", "dispatch_epoll", ["trigger=level"]),
    ("libmio epoll (edge)", "dispatch_mio", ["backend=epoll"]),
    ("libmio epoll (level)", "dispatch_mio", ["backend=epoll", "trigger=level"]),
    ("libmio poll (level)", "dispatch_mio", ["backend=poll", "trigger=level"]),
    ("libmio uring (edge)", "dispatch_mio", ["backend=uring"]),
    ("libmio uring (level)", "dispatch_mio", ["backend=uring", "trigger=level"]),
    ("libev", "dispatch_libev", []),
    ("libevent", "dispatch_libevent", []),
    ("libuv", "dispatch_libuv", []),
]
TIMER_LIBS = [
    ("libmio event loop (edge)", "dispatch_mio", ["backend=epoll"]),
    ("libev", "dispatch_libev", []),
    ("libevent", "dispatch_libevent", []),
    ("libuv", "dispatch_libuv", []),
]
TIMERS_N = 100_000 if QUICK else 1_000_000
TIMERS_LIBS = [("libmio timer wheel", "timers_mio"), ("libev", "timers_libev"),
               ("libevent", "timers_libevent"), ("libuv", "timers_libuv")]
HTTP_SECONDS, HTTP_RUNS = 2, 5
WAKE_N = 10_000 if QUICK else 50_000
CHILD_N = 500 if QUICK else 2000
CHILD_RUNS = [("epoll, pidfd", ["backend=epoll"]), ("poll(2), pidfd", ["backend=poll"]),
              ("epoll, SIGCHLD path", ["backend=epoll", "path=sigchld"])]
WAKE_LIBS = [("epoll (by hand, eventfd)", "wake_epoll"), ("libmio mio_waker", "wake_mio"),
             ("libmio mio_waker on uring", "wake_mio backend=uring"),
             ("libev ev_async", "wake_libev"), ("libevent event_active", "wake_libevent"),
             ("libuv uv_async", "wake_libuv")]
ECHO_LIBS = [
    ("epoll (by hand, edge)", "echo_epoll", []),
    ("epoll (by hand, level)", "echo_epoll", ["trigger=level"]),
    ("libmio epoll (edge)", "echo_mio", ["backend=epoll"]),
    ("libmio poll (level)", "echo_mio", ["backend=poll", "trigger=level"]),
    ("libmio uring (edge)", "echo_mio", ["backend=uring"]),
    ("libev", "echo_libev", []),
    ("libevent", "echo_libevent", []),
    ("libuv", "echo_libuv", []),
]

# The group of loops: each mode with 1 and 2 loops (bench/group_mio.c).
GROUP_MODES = [
    ("reuseport", "MIO_GROUP_REUSEPORT", True),
    ("cpu", "MIO_GROUP_REUSEPORT_CPU", False),
    ("exclusive", "MIO_GROUP_EXCLUSIVE", True),
    ("handoff", "MIO_GROUP_HANDOFF", True),
    ("least", "MIO_GROUP_HANDOFF_LEAST", True),
]   # (mode=, name, whether the server can be held to SERVER_CPU by taskset)
GROUP_LOOPS = (1, 2)
GROUP_RUNS = 3 if QUICK else 5
GROUP_CONNS = 20_000 if QUICK else 100_000
GROUP_CONCURRENCY = 50
PINGPONG_N = 10_000 if QUICK else 50_000

# Datagrams: (side, how, options, label); the first of each side is its
# reference.
DGRAM_CASES = [
    ("send", "single", [], "one mio_udp_send_to per datagram"),
    ("send", "batch", ["batch=32"], "mio_udp_send_batch, 32 datagrams per call"),
    ("send", "gso", ["batch=8", "segs=32"], "mio_udp_send_batch, 8 entries of 32 segments (GSO)"),
    ("recv", "single", [], "one mio_udp_recv_from per datagram"),
    ("recv", "batch", ["batch=32"], "mio_udp_recv_batch, up to 32 per call"),
    ("recv", "gro", ["batch=32"], "mio_udp_recv_batch with MIO_UDP_GRO, up to 32 per call"),
]
DGRAM_RUNS = 3 if QUICK else 7
DGRAM_SECONDS = 0.5 if QUICK else 1.0

commands = []
skipped = set()


def log(msg):
    print(msg, flush=True)


def exe(prog):
    path = os.path.join(BUILD, prog)
    if not os.access(path, os.X_OK):
        if prog not in skipped:
            skipped.add(prog)
            log(f"skipped: {prog} not built (its library was not found)")
        return None
    return path


def fields(line):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", line)}


def median(values):
    v = sorted(values)
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def run_dispatch(prog, extra, n, a, timers, runs=RUNS, w=DISPATCH_W):
    path = exe(prog)
    if path is None:
        return None
    # poll(2) scans every descriptor per wait: fewer writes keep it short.
    if "backend=poll" in extra and n * (w // a) > 2_000_000:
        w = max(200, 2_000_000 * a // n)
    cmd = [path, f"n={n}", f"a={a}", f"w={w}", f"timers={timers}", f"runs={runs}"] + extra
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        log(f"failed: {' '.join(cmd)}: {out.stderr.strip()}")
        return None
    return fields(out.stdout)


def callgrind_ir(cmd):
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + cmd,
                         capture_output=True, text=True)
    m = re.search(r"Collected : (\d+)", out.stderr)
    return int(m.group(1)) if m else None


def instructions_per_event(prog, extra, a, timers):
    """Two runs that differ only in their writes: the difference in
    instructions over the difference in events leaves setup out."""
    path = exe(prog)
    if path is None:
        return None
    base = [path, f"n={CG_N}", f"a={a}", f"timers={timers}", "runs=1"] + extra
    ir1 = callgrind_ir(base + [f"w={CG_W1}"])
    ir2 = callgrind_ir(base + [f"w={CG_W2}"])
    if ir1 is None or ir2 is None:
        return None
    return (ir2 - ir1) / (CG_W2 - CG_W1)


def pin(cpu, cmd):
    return (["taskset", "-c", cpu] + cmd) if shutil.which("taskset") else cmd


ECHO_RE = re.compile(r"requests/s (\d+)\s+p50 ([\d.]+) us\s+p99 ([\d.]+) us\s+errors (\d+)"
                     r"\s+bytes verified (\d+)")


def echo_client(port, size, seconds):
    """One load run: (req/s, p50 us, p99 us, requests) or None."""
    client = exe("bench_echo_client")
    cmd = pin(CLIENT_CPU, [client, "-c", str(ECHO_CONNS), "-d", str(seconds), "-s", str(size),
                           f"127.0.0.1:{port}"])
    out = subprocess.run(cmd, capture_output=True, text=True)
    m = ECHO_RE.search(out.stdout)
    if out.returncode != 0 or not m or int(m.group(4)) != 0:
        log(f"failed: {' '.join(cmd)}: {out.stdout.strip()} {out.stderr.strip()[:200]}")
        return None
    return float(m.group(1)), float(m.group(2)), float(m.group(3)), int(m.group(5)) // size


def run_echo_all(size, base_port):
    """Every server runs at once on its own port and the runs go round-robin,
    so a change in the machine's load falls on all of them alike."""
    servers, samples = {}, {}
    try:
        for i, (label, prog, extra) in enumerate(ECHO_LIBS):
            path = exe(prog)
            if path is not None and exe("bench_echo_client") is not None:
                servers[label] = (base_port + i, subprocess.Popen(
                    pin(SERVER_CPU, [path, f"port={base_port + i}"] + extra)))
        time.sleep(0.5)
        for _ in range(ECHO_RUNS):
            for label, (port, proc) in servers.items():
                cpu0 = cpu_seconds(proc.pid)
                r = echo_client(port, size, ECHO_SECONDS)
                cpu1 = cpu_seconds(proc.pid)
                if r is not None:
                    cpu = (cpu1 - cpu0) * 1e6 / r[3] if r[3] and cpu0 is not None and cpu1 is not None else 0.0
                    samples.setdefault(label, []).append(r[:3] + (cpu,))
    finally:
        for _, proc in servers.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait()
    return {label: tuple(median([r[i] for r in rs]) for i in range(4))
            for label, rs in samples.items() if len(rs) == ECHO_RUNS}


def cpu_seconds(pid):
    """The process's CPU time so far (user and system), from /proc."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def echo_instructions(prog, extra, size, port):
    """Server instructions per request under callgrind: two server lifetimes
    loaded for 1 s and 3 s; the difference over the difference in requests
    leaves start-up and accepts out."""
    path = exe(prog)
    if path is None or exe("bench_echo_client") is None:
        return None
    points = []
    for seconds in (1, 3):
        outfile = os.path.join(BUILD, f"callgrind.echo.{os.getpid()}")
        server = subprocess.Popen(pin(SERVER_CPU, ["valgrind", "--tool=callgrind",
                                                   f"--callgrind-out-file={outfile}", path,
                                                   f"port={port}"] + extra),
                                  stderr=subprocess.DEVNULL)
        time.sleep(2.5)     # valgrind's start-up
        r = echo_client(port, size, seconds)
        server.send_signal(signal.SIGTERM)
        server.wait()
        ir = None
        if os.path.exists(outfile):
            m = re.search(r"^(?:summary|totals): (\d+)", open(outfile).read(), re.M)
            ir = int(m.group(1)) if m else None
            os.unlink(outfile)
        if r is None or ir is None:
            return None
        points.append((r[3], ir))
        port += 1
    (r1, i1), (r2, i2) = points
    return (i2 - i1) / (r2 - r1) if r2 > r1 else None


WRK_RE = re.compile(r"Requests/sec:\s*([\d.]+)")
WRK_N = re.compile(r"(\d+) requests in")
# The reference for server CPU per request: what a careful hand-written server
# costs, level-triggered, where no read ends a request in EAGAIN.
CPU_REF = "epoll (by hand, level)"
WRK_PCT = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def wrk_run(port):
    cmd = pin(CLIENT_CPU, ["wrk", "-t1", f"-c{ECHO_CONNS}", f"-d{HTTP_SECONDS}", "--latency",
                           f"http://127.0.0.1:{port}/"])
    out = subprocess.run(cmd, capture_output=True, text=True)
    m = WRK_RE.search(out.stdout)
    if out.returncode != 0 or not m or "Non-2xx" in out.stdout or "Socket errors" in out.stdout:
        log(f"failed: {' '.join(cmd)}: {out.stdout.strip()[-300:]}")
        return None
    unit = {"us": 1, "ms": 1e3, "s": 1e6}
    pct = {p: float(v) * unit[u] for p, v, u in WRK_PCT.findall(out.stdout)}
    n = WRK_N.search(out.stdout)
    return float(m.group(1)), pct.get("50", 0.0), pct.get("99", 0.0), int(n.group(1)) if n else 0


def run_http_all(base_port):
    """The echo servers with http=1, loaded by wrk round-robin."""
    servers, samples = {}, {}
    try:
        for i, (label, prog, extra) in enumerate(ECHO_LIBS):
            path = exe(prog)
            if path is not None:
                servers[label] = (base_port + i, subprocess.Popen(
                    pin(SERVER_CPU, [path, f"port={base_port + i}", "http=1"] + extra)))
        time.sleep(0.5)
        for _ in range(HTTP_RUNS):
            for label, (port, proc) in servers.items():
                cpu0 = cpu_seconds(proc.pid)
                r = wrk_run(port)
                cpu1 = cpu_seconds(proc.pid)
                if r is not None:
                    cpu = (cpu1 - cpu0) * 1e6 / r[3] if r[3] and cpu0 is not None and cpu1 is not None else 0.0
                    samples.setdefault(label, []).append(r[:3] + (cpu,))
    finally:
        for _, proc in servers.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait()
    return {label: tuple(median([r[i] for r in rs]) for i in range(4))
            for label, rs in samples.items() if len(rs) == HTTP_RUNS}


def group_snapshot(proc):
    """The server's counters (SIGUSR1 makes it print them): served and ticks
    per loop, CPU time in us."""
    proc.send_signal(signal.SIGUSR1)
    f = fields(proc.stdout.readline())
    return ([int(x) for x in f["served"].split(",")], [int(x) for x in f["ticks"].split(",")],
            int(f["cpu_us"]))


def group_start(mode, loops, port, held):
    """group_mio held to SERVER_CPU (all its loops on one core) when `held`,
    else free to use both cores (its own pinning for mode=cpu)."""
    cmd = [exe("group_mio"), f"port={port}", f"loops={loops}", f"mode={mode}"]
    return subprocess.Popen(pin(SERVER_CPU, cmd) if held else cmd, stdout=subprocess.PIPE,
                            text=True)


def where(key):
    mode, _, held = key
    return f"CPU {SERVER_CPU}" if held else ("CPU i" if mode == "cpu" else "both")


def run_group():
    """Echo (round-robin over every server, as run_echo_all), balance over
    short connections, instructions per request, cross-loop latency."""
    res = {"echo": {}, "balance": {}, "ir": {}, "pingpong": {}}
    if exe("group_mio") is None or exe("bench_echo_client") is None or exe("connects_mio") is None:
        return res
    port = 21000 + os.getpid() % 400 * 20
    configs = [("reference", 1, True)]
    for mode, _, held in GROUP_MODES:
        configs += [(mode, loops, held) for loops in GROUP_LOOPS]
        if held:
            configs.append((mode, 2, False))
    servers, samples = {}, {}
    try:
        for i, key in enumerate(configs):
            if key[0] == "reference":
                proc = subprocess.Popen(pin(SERVER_CPU, [exe("echo_mio"), f"port={port + i}",
                                                         "backend=epoll"]))
            else:
                proc = group_start(key[0], key[1], port + i, key[2])
            servers[key] = (port + i, proc)
        time.sleep(0.5)
        for _ in range(GROUP_RUNS):
            for key, (p, proc) in servers.items():
                grouped = key[0] != "reference"
                before = group_snapshot(proc) if grouped else None
                r = echo_client(p, 64, ECHO_SECONDS)
                after = group_snapshot(proc) if grouped else None
                if r is None:
                    continue
                cpu = per_wait = None
                if grouped:
                    cpu = (after[2] - before[2]) / r[3]
                    waits = sum(after[1]) - sum(before[1])
                    per_wait = r[3] / waits if waits else None
                samples.setdefault(key, []).append((r[0], r[1], r[2], cpu, per_wait))
        for key, (p, proc) in servers.items():
            if key[0] == "reference" or key[1] < 2:
                continue
            before = group_snapshot(proc)
            cmd = pin(CLIENT_CPU, [exe("connects_mio"), f"port={p}", f"conns={GROUP_CONNS}",
                                   f"concurrency={GROUP_CONCURRENCY}", "size=64"])
            out = subprocess.run(cmd, capture_output=True, text=True)
            after = group_snapshot(proc)
            f = fields(out.stdout)
            if out.returncode != 0 or f.get("errors") != "0":
                log(f"failed: {' '.join(cmd)}: {out.stdout.strip()} {out.stderr.strip()[:200]}")
                continue
            served = [a - b for a, b in zip(after[0], before[0])]
            res["balance"][key] = (served, max(served) / max(1, min(served)),
                                   float(f["conns_per_s"]))
            log(f"balance {key[0]:10} on {where(key):6}: {served} "
                f"{res['balance'][key][1]:.3f}, {f['conns_per_s']} connections/s")
    finally:
        for _, proc in servers.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait()
    for key, rs in samples.items():
        if len(rs) == GROUP_RUNS:
            res["echo"][key] = tuple(None if rs[0][i] is None else median([r[i] for r in rs])
                                     for i in range(5))
            e = res["echo"][key]
            log(f"group echo {key[0]:10} {key[1]} loops on {where(key):6}: {e[0]:.0f} req/s"
                + (f", {e[3]:.2f} us CPU/request, {e[4]:.1f} requests/wait" if e[3] else ""))

    # User-space instructions per request with 1 and 2 loops: valgrind runs
    # one thread at a time, so what the loops cost each other in user space.
    if shutil.which("valgrind") and not QUICK:
        for loops in GROUP_LOOPS:
            port += 40
            res["ir"][loops] = echo_instructions("group_mio",
                                                 [f"loops={loops}", "mode=reuseport"], 64, port)
            log(f"group callgrind {loops} loops: {res['ir'][loops]} instructions per request")

    for pinned in (True, False):
        out = subprocess.run([exe("group_mio"), f"pingpong={PINGPONG_N}", f"runs={GROUP_RUNS}",
                              f"pin={int(pinned)}"], capture_output=True, text=True)
        if out.returncode == 0:
            res["pingpong"][pinned] = fields(out.stdout)
            log(f"pingpong pin={int(pinned)}: {out.stdout.strip()}")
        else:
            log(f"failed: group_mio pingpong: {out.stderr.strip()}")
    return res


def group_markdown(res):
    md = ["## Multi-core: a group of loops\n"]
    md.append("`bench/group_mio.c`: a `mio_group` of 1 or 2 loops serving the echo "
              f"workload above ({ECHO_CONNS} connections, 64 B messages, "
              f"{ECHO_SECONDS} s per run, {GROUP_RUNS} runs round-robin over the servers, "
              "medians), its listener spread over the loops in each mode; the client "
              f"(`examples/echo_client.c`) on CPU {CLIENT_CPU}.  \"CPU {SERVER_CPU}\": the whole "
              f"server held to CPU {SERVER_CPU} by taskset (with 2 loops, two threads on one "
              "core); \"both\": the server free to use both cores, one of them the "
              "client's; \"CPU i\": `REUSEPORT_CPU` pins loop i to CPU i itself.  "
              "CPU/request is the server's user + system time (getrusage, read by the "
              "server before and after each run) over the run's requests; requests per "
              "wait are the requests over the loops' ticks (a tick is one wait).  The "
              "reference is `echo_mio`, the same server on the bare poll API, in the "
              "same round-robin.\n")
    md.append("| mode | loops | on | req/s | p50 us | p99 us | CPU us/request | vs 1 loop | requests per wait |")
    md.append("|---|---|---|---|---|---|---|---|---|")
    e = res["echo"]
    ref = e.get(("reference", 1, True))
    if ref:
        md.append(f"| reference: `echo_mio` (poll API) | 1 | CPU {SERVER_CPU} | {ref[0]:.0f} | "
                  f"{ref[1]:.0f} | {ref[2]:.0f} | | | |")
    for mode, name, held in GROUP_MODES:
        one = e.get((mode, 1, held))
        for key in [(mode, 1, held), (mode, 2, held)] + ([(mode, 2, False)] if held else []):
            r = e.get(key)
            if not r:
                md.append(f"| `{name}` | {key[1]} | {where(key)} | | | | | | |")
                continue
            vs = f"{r[3] / one[3]:.2f}x" if one and one[3] and r[3] and key[1] > 1 else ""
            md.append(f"| `{name}` | {key[1]} | {where(key)} | "
                      f"{r[0]:.0f}{fmt_ratio(r[0], ref[0] if ref else None)} | {r[1]:.0f} | "
                      f"{r[2]:.0f} | {r[3]:.2f} | {vs} | {r[4]:.1f} |")
    md.append("\nRatios after req/s are to the reference.\n")
    if res["ir"]:
        md.append("User-space instructions per 64 B request (callgrind, two server lifetimes "
                  "as for the echo servers above, mode `REUSEPORT`; valgrind runs one thread "
                  "at a time): " +
                  ", ".join(f"{loops} loop{'s' if loops > 1 else ''}: "
                            f"{'?' if v is None else f'{v:.0f}'}" for loops, v in res["ir"].items())
                  + ".\n")
    md.append(f"### Balance over {GROUP_CONNS} short connections\n")
    md.append(f"`bench/connects_mio.c` on CPU {CLIENT_CPU}: {GROUP_CONNS} connections, "
              f"{GROUP_CONCURRENCY} at a time, each sending 64 B, reading the echo and "
              "closing; the connections each of 2 loops adopted, and the busiest loop's "
              "count over the quietest's (goal: at most 1.10 for the modes that spread by "
              "design; `REUSEPORT` spreads by a hash of the addresses, `REUSEPORT_CPU` by "
              "the CPU that received the connection, `HANDOFF_LEAST` by the connections "
              "each loop holds, not by how many it served).\n")
    md.append("| mode | on | loop 0 | loop 1 | busiest / quietest | connections/s |")
    md.append("|---|---|---|---|---|---|")
    for mode, name, held in GROUP_MODES:
        for key in [(mode, 2, held)] + ([(mode, 2, False)] if held else []):
            b = res["balance"].get(key)
            if b:
                ratio = (f"{b[1]:.3f}" if min(b[0]) > 0 else
                         f"all on loop {b[0].index(max(b[0]))}")
                md.append(f"| `{name}` | {where(key)} | {b[0][0]} | {b[0][1]} | {ratio} | "
                          f"{b[2]:.0f} |")
            else:
                md.append(f"| `{name}` | {where(key)} | | | | |")
    md.append("")
    if res["pingpong"]:
        md.append("### Messages between loops\n")
        md.append(f"`group_mio pingpong={PINGPONG_N}`: loop 0 sends a message to loop 1 "
                  "with `mio_group_send`, loop 1 sends it back; round-trip times, medians "
                  f"of {GROUP_RUNS} runs.  Each message finds the other loop asleep, so a "
                  "round trip is two wake-ups through the loops' own wake descriptors.\n")
        md.append("| loops | RTT p50 us | RTT p99 us |")
        md.append("|---|---|---|")
        for pinned, f in res["pingpong"].items():
            md.append(f"| {'pinned to CPUs 0 and 1' if pinned else 'not pinned'} | "
                      f"{float(f['rtt_p50_ns']) / 1000:.1f} | {float(f['rtt_p99_ns']) / 1000:.1f} |")
        md.append("")
    md.append("**What two cores can and cannot show.**  The client needs a core of its own, so "
              "the server gets one core (\"CPU 0\") or shares the client's (\"both\").  Neither"
              " shows what a second core adds: held to one core, two loops take turns on it; "
              "free to use both, the second loop competes with the client, which is the "
              "bottleneck here (100 connections in lock-step keep the server far from "
              "saturated: a wait finds about two requests).  What the run does show is what the"
              " second loop costs (CPU time and user-space instructions per request, where "
              "contention between the loops, a lock or a cache line both write, would appear), "
              "how each mode spreads connections, and the price of a message between loops.  As"
              " for scaling: the loops share no lock on the I/O path and, on epoll, write no "
              "common cache line there, so with cores to spare and the load generated elsewhere, throughput should grow"
              " with the loops until something they do share limits it (the NIC and its queues,"
              " memory bandwidth, the one accept queue of `EXCLUSIVE`, loop 0's accepts in "
              "`HANDOFF`); this machine measures none of that, and these figures say nothing "
              "about where that limit lies." + "\n")
    commands.append(f"[taskset -c {SERVER_CPU}] {SHOWN}/group_mio port=P loops=1|2 "
                    "mode=reuseport|cpu|exclusive|handoff|least  (SIGUSR1: counters); "
                    f"taskset -c {CLIENT_CPU} {SHOWN}/bench_echo_client -c {ECHO_CONNS} -d "
                    f"{ECHO_SECONDS} -s 64 127.0.0.1:P  ({GROUP_RUNS} runs); taskset -c "
                    f"{CLIENT_CPU} {SHOWN}/connects_mio port=P conns={GROUP_CONNS} "
                    f"concurrency={GROUP_CONCURRENCY} size=64")
    commands.append(f"{SHOWN}/group_mio pingpong={PINGPONG_N} runs={GROUP_RUNS} pin=0|1")
    return md


def splice_section(text, section, heading):
    """Puts `section` (lines) in place of text's section whose heading starts
    with `heading`, or before its notes, plot or commands when it has none."""
    lines = text.split("\n")
    start = next((i for i, l in enumerate(lines) if l.startswith(heading)), None)
    if start is not None:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
    else:
        start = end = next((i for i, l in enumerate(lines)
                            if l.startswith(("## Notes on this run", "## Plot", "## Commands"))),
                           len(lines))
    return "\n".join(lines[:start] + "\n".join(section).split("\n") + lines[end:])


def run_timers(prog):
    """Medians over RUNS runs of each figure of the two result lines."""
    path = exe(prog)
    if path is None:
        return None
    values = {}
    for _ in range(RUNS if not QUICK else 5):
        out = subprocess.run([path, str(TIMERS_N), str(TIMERS_N)], capture_output=True, text=True)
        if out.returncode != 0:
            log(f"failed: {prog}: {out.stderr.strip()}")
            return None
        for line in out.stdout.splitlines():
            shape = line.split()[1]
            for k, v in fields(line).items():
                try:
                    values.setdefault(f"{shape}.{k}", []).append(float(v))
                except ValueError:
                    pass
    return {k: median(v) for k, v in values.items()}


# ---- system calls per event: perf's syscall tracepoints, else strace -c ----
ONESHOT_N = 1000
ONESHOT_W1, ONESHOT_W2 = (1000, 6000) if QUICK else (2000, 12000)
POLL_SYSCALLS = ("io_uring_enter", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2")


def syscall_counter():
    """How this machine counts a program's system calls: "perf" (the kernel's
    syscall tracepoints, no ptrace, no cost to the program), "strace" (-f -c,
    ptrace), or None."""
    if shutil.which("perf"):
        out = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "true"],
                             capture_output=True, text=True)
        if out.returncode == 0 and re.search(r"^\d+,", out.stderr, re.M):
            return "perf"
    if shutil.which("strace"):
        out = subprocess.run(["strace", "-f", "-c", "-o", "/dev/null", "true"],
                             capture_output=True, text=True)
        if out.returncode == 0:
            return "strace"
    return None


def count_syscalls(cmd, how):
    """{"total": all system calls, "poll": those of POLL_SYSCALLS} of one run."""
    if how == "perf":
        events = ["raw_syscalls:sys_enter"] + [f"syscalls:sys_enter_{n}" for n in POLL_SYSCALLS]
        args = ["perf", "stat", "-x,"]
        for e in events:
            args += ["-e", e]
        out = subprocess.run(args + ["--"] + cmd, capture_output=True, text=True)
        if out.returncode != 0:
            log(f"failed: {' '.join(args + cmd)}: {out.stderr.strip()[-300:]}")
            return None
        counts = {}
        for line in out.stderr.splitlines():
            f = line.split(",")
            if len(f) > 2 and f[0].isdigit():
                counts[f[2]] = int(f[0])
        return {"total": counts.get("raw_syscalls:sys_enter", 0),
                "poll": sum(counts.get(f"syscalls:sys_enter_{n}", 0) for n in POLL_SYSCALLS)}
    path = os.path.join(BUILD, f"strace.{os.getpid()}")
    out = subprocess.run(["strace", "-f", "-c", "-o", path] + cmd, capture_output=True, text=True)
    if out.returncode != 0:
        log(f"failed: strace {' '.join(cmd)}: {out.stderr.strip()[-300:]}")
        return None
    total, poll = 0, 0
    for line in open(path):
        f = line.split()
        if len(f) >= 5 and f[3].isdigit() and f[-1] != "total":
            total += int(f[3])
            poll += int(f[3]) if f[-1] in POLL_SYSCALLS else 0
    os.unlink(path)
    return {"total": total, "poll": poll}


def syscalls_per_event(backend, a, how):
    """The oneshot re-arm workload (dispatch with trigger=oneshot: each event
    is read, passed on and re-armed with mio_reregister) counted twice, with
    w = ONESHOT_W1 and ONESHOT_W2: the difference over the difference in
    events leaves setup and exit out."""
    path = exe("dispatch_mio")
    if path is None or how is None:
        return None
    base = [path, f"n={ONESHOT_N}", f"a={a}", "runs=1", "trigger=oneshot", f"backend={backend}"]
    c1 = count_syscalls(base + [f"w={ONESHOT_W1}"], how)
    c2 = count_syscalls(base + [f"w={ONESHOT_W2}"], how)
    if c1 is None or c2 is None:
        return None
    return {k: (c2[k] - c1[k]) / (ONESHOT_W2 - ONESHOT_W1) for k in c1}


def run_datagrams():
    """Each case once per round, the rounds round-robin over the cases (the
    machine's load drifts alike for all); medians of the rounds."""
    res = {}
    path = exe("dgram_mio")
    if path is None:
        return res
    for _ in range(DGRAM_RUNS):
        for side, how, extra, label in DGRAM_CASES:
            cmd = [path, f"side={side}", f"how={how}", "runs=1", f"seconds={DGRAM_SECONDS}"] + extra
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                log(f"failed: {' '.join(cmd)}: {out.stderr.strip()}")
                continue
            res.setdefault((side, how), []).append(fields(out.stdout))
    summary = {}
    for key, runs in res.items():
        summary[key] = {k: median([float(r[k]) for r in runs])
                        for k in ("dgrams_per_s", "cpu_ns", "per_call")}
        summary[key]["gso"] = runs[0].get("gso", "0")
        label = dict(((s, h), l) for s, h, _, l in DGRAM_CASES)[key]
        log(f"datagrams {label:52} {summary[key]['dgrams_per_s']:>10.0f}/s "
            f"{summary[key]['cpu_ns']:>8.0f} ns CPU each")
    return summary


def datagram_markdown(dg):
    md = ["## Datagrams\n"]
    md.append("1200-byte UDP datagrams over loopback, `bench/dgram_mio.c` on the epoll "
              "backend.  The measured thread runs on CPU 0, its partner on CPU 1.  Send "
              "side: the measured thread sends to a socket its partner drains with "
              "batches, one call per datagram against batches, and against batches of "
              "segmented entries that the kernel cuts (UDP_SEGMENT: one system call and "
              "one pass through the stack for 32 datagrams).  Receive side: the partner "
              "keeps the measured thread's socket full with segmented batches, and the "
              "measured thread drains it on each readable edge, one call per datagram "
              "against batches (recvmmsg), and against batches with MIO_UDP_GRO on, where "
              "on loopback the sender's segments reach the socket unsplit (on a real "
              "interface GRO coalesces what the wire split).  Datagrams per second are "
              "what the measured thread moved over the run's wall-clock time; CPU per "
              "datagram is that thread's own CPU time (CLOCK_THREAD_CPUTIME_ID) over the "
              "datagrams, which on loopback includes the receiving socket's share of the "
              "stack for the sender (the kernel delivers in the sender's context) and "
              "leaves out what ksoftirqd takes over under load.  Each case runs "
              f"{DGRAM_SECONDS} s, once per round, the rounds going round-robin over the "
              f"cases; medians of {DGRAM_RUNS} rounds.  Ratios are to one call per "
              "datagram on the same side, in the same run.\n")
    md.append("| side | how | datagrams/s | CPU ns per datagram | datagrams per call |")
    md.append("|---|---|---|---|---|")
    for side, how, _, label in DGRAM_CASES:
        r = dg.get((side, how))
        ref = dg.get((side, DGRAM_CASES[0 if side == "send" else 3][1]))
        if not r:
            md.append(f"| {side} | {label} | | | |")
            continue
        rate = f"{r['dgrams_per_s']:.0f}" + (fmt_ratio(r["dgrams_per_s"], ref["dgrams_per_s"])
                                              if ref else "")
        cpu = f"{r['cpu_ns']:.0f}" + (fmt_ratio(r["cpu_ns"], ref["cpu_ns"]) if ref else "")
        note = "" if how != "gso" or r["gso"] == "1" else " (no offload here: cut by the library)"
        md.append(f"| {side} | {label}{note} | {rate} | {cpu} | {r['per_call']:.1f} |")
    md.append("")
    return md


def fmt_ratio(v, ref):
    if v is None or ref is None or ref == 0:
        return ""
    return f" ({v / ref:.2f}x)"


def machine():
    model, cores = platform.processor(), os.cpu_count()
    try:
        info = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"Model name:\s*(.+)", info)
        model = m.group(1).strip() if m else model
    except OSError:
        pass
    return model, cores, platform.release()


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main():
    sections = {"multicore": (lambda: group_markdown(run_group()), "## Multi-core",
                              "multi-core"),
                "datagrams": (lambda: datagram_markdown(run_datagrams()), "## Datagrams",
                              "datagram")}
    if ONLY in sections:
        make, heading, name = sections[ONLY]
        started = time.time()
        section = make()
        section.append(f"(This section alone: `bench/run.py {SHOWN} --only {ONLY}"
                       f"{' --quick' if QUICK else ''}`, "
                       f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                       f"{time.time() - started:.0f} s; load average after: {loadavg()}.)\n")
        text = open(OUT).read() if os.path.exists(OUT) else "# libmio benchmark results\n"
        with open(OUT, "w") as f:
            f.write(splice_section(text, section, heading))
        log(f"wrote the {name} section of {OUT} in {time.time() - started:.0f} s")
        return
    if ONLY is not None:
        sys.exit(f"--only: no section {ONLY} (multicore or datagrams)")
    started = time.time()
    load_before = loadavg()
    model, cores, kernel = machine()
    md = []

    # ---- callgrind: instructions per dispatched event -------------------
    cg = {}
    if shutil.which("valgrind"):
        log("callgrind: instructions per dispatched event")
        for a in CG_ACTIVE:
            for label, prog, extra in DISPATCH_LIBS:
                cg[(label, a, 0)] = instructions_per_event(prog, extra, a, 0)
            for label, prog, extra in TIMER_LIBS:
                cg[(label, a, 1)] = instructions_per_event(prog, extra, a, 1)
    else:
        log("skipped: callgrind (valgrind not installed)")

    log(f"callgrind done at {time.time() - started:.0f} s")

    # ---- dispatch --------------------------------------------------------
    disp = {}
    for timers, libs in ((0, DISPATCH_LIBS), (1, TIMER_LIBS)):
        for a in (TIMER_ACTIVE if timers else (1, 100)):
            for n in DISPATCH_N:
                for label, prog, extra in libs:
                    r = run_dispatch(prog, extra, n, a, timers)
                    disp[(label, n, a, timers)] = r
                    if r:
                        log(f"dispatch {label:24} n={n:<5} a={a:<3} timers={timers} "
                            f"setup {r['setup_us']:>9} us  {r['event_ns']:>8} ns/event")
    commands.append(f"{SHOWN}/dispatch_<lib> n=N a=A w={DISPATCH_W} timers=0|1 runs={RUNS} "
                    "[backend=epoll|poll|uring] [trigger=edge|level]")

    log(f"dispatch done at {time.time() - started:.0f} s")

    # ---- echo ------------------------------------------------------------
    echo, echo_ir = {}, {}
    port = 19000 + os.getpid() % 500 * 20
    for size in ECHO_SIZES:
        for label, r in run_echo_all(size, port).items():
            echo[(label, size)] = r
            log(f"echo {label:24} {size:>5} B  {r[0]:>9.0f} req/s  p50 {r[1]:.0f} us  p99 {r[2]:.0f} us")
        port += len(ECHO_LIBS)
    if shutil.which("valgrind") and not QUICK:
        for label, prog, extra in ECHO_LIBS:
            port += 2
            echo_ir[label] = echo_instructions(prog, extra, 64, port)
            if echo_ir[label] is None:     # once more, on fresh ports
                port += 2
                echo_ir[label] = echo_instructions(prog, extra, 64, port)
            log(f"echo callgrind {label:24} {echo_ir[label]} instructions per request")
    commands.append(f"taskset -c {SERVER_CPU} {SHOWN}/echo_<lib> port=P [backend=...] [trigger=...]; "
                    f"taskset -c {CLIENT_CPU} {SHOWN}/bench_echo_client -c {ECHO_CONNS} "
                    f"-d {ECHO_SECONDS} -s 64|16384 127.0.0.1:P  ({ECHO_RUNS} runs)")

    # ---- http ------------------------------------------------------------
    http = {}
    if QUICK:
        log("skipped: http (not in QUICK runs)")
    elif not shutil.which("wrk"):
        log("skipped: http (wrk not installed)")
    else:
        http = run_http_all(port + 100)
        for label, r in http.items():
            log(f"http {label:24} {r[0]:>9.0f} req/s  p50 {r[1]:.0f} us  p99 {r[2]:.0f} us")
        commands.append(f"taskset -c {SERVER_CPU} {SHOWN}/echo_<lib> port=P http=1; taskset -c "
                        f"{CLIENT_CPU} wrk -t1 -c{ECHO_CONNS} -d{HTTP_SECONDS} --latency "
                        f"http://127.0.0.1:P/  ({HTTP_RUNS} runs)")

    # ---- timers ----------------------------------------------------------
    timer_res = {}
    for label, prog in TIMERS_LIBS:
        timer_res[label] = run_timers(prog)
        if timer_res[label]:
            t = timer_res[label]
            log(f"timers {label:24} set {t.get('set_cancel.set_ns', 0):.0f} ns  cancel "
                f"{t.get('set_cancel.cancel_ns', 0):.0f} ns  million fire "
                f"{t.get('million_timers.fire_ns', 0):.0f} ns")
    commands.append(f"{SHOWN}/timers_<lib> {TIMERS_N} {TIMERS_N}   ({RUNS} runs)")
    log(f"timers done at {time.time() - started:.0f} s")

    # ---- wake ------------------------------------------------------------
    wake = {}
    for label, prog in WAKE_LIBS:
        prog, *extra = prog.split()
        path = exe(prog)
        if path is None:
            continue
        out = subprocess.run([path, f"n={WAKE_N}", f"runs={5 if QUICK else RUNS}"] + extra,
                             capture_output=True, text=True)
        if out.returncode != 0:
            log(f"failed: {prog}: {out.stderr.strip()}")
            continue
        wake[label] = fields(out.stdout)
        log(f"wake {label:24} {out.stdout.strip()}")
    commands.append(f"{SHOWN}/wake_<lib> n={WAKE_N} runs={5 if QUICK else RUNS}")
    log(f"wake done at {time.time() - started:.0f} s")

    # ---- uring against epoll: the oneshot re-arm workload -----------------
    how = syscall_counter()
    oneshot_sc, oneshot_ns = {}, {}
    if how is None:
        log("skipped: system call counts (neither perf nor strace works here)")
    for backend in ("epoll", "uring"):
        for a in (1, 100):
            if how is not None:
                oneshot_sc[(backend, a)] = syscalls_per_event(backend, a, how)
                log(f"oneshot {backend:6} a={a:<3} syscalls per event: {oneshot_sc[(backend, a)]}")
            for n in (ONESHOT_N, DISPATCH_N[-1]):
                r = run_dispatch("dispatch_mio", [f"backend={backend}", "trigger=oneshot"], n, a, 0)
                oneshot_ns[(backend, n, a)] = r
                if r:
                    log(f"oneshot {backend:6} n={n:<5} a={a:<3} {r['event_ns']:>8} ns/event")
    commands.append(f"{SHOWN}/dispatch_mio n=N a=A w={DISPATCH_W} runs={RUNS} trigger=oneshot "
                    "backend=epoll|uring")
    if how == "perf":
        commands.append(f"perf stat -x, -e raw_syscalls:sys_enter -e syscalls:sys_enter_<call> "
                        f"{SHOWN}/dispatch_mio n={ONESHOT_N} a=A runs=1 trigger=oneshot "
                        f"backend=epoll|uring w={ONESHOT_W1}|{ONESHOT_W2}")
    elif how == "strace":
        commands.append(f"strace -f -c {SHOWN}/dispatch_mio n={ONESHOT_N} a=A runs=1 "
                        f"trigger=oneshot backend=epoll|uring w={ONESHOT_W1}|{ONESHOT_W2}")

    # ---- child exit --------------------------------------------------------
    child = {}
    path = exe("child_exit_mio")
    for label, args in CHILD_RUNS if path else []:
        out = subprocess.run([path, f"n={CHILD_N}"] + args, capture_output=True, text=True)
        if out.returncode != 0:
            log(f"failed: child_exit_mio {' '.join(args)}: {out.stderr.strip()}")
            continue
        child[label] = fields(out.stdout)
        log(f"child exit {label:22} {out.stdout.strip()}")
    commands.append(f"{SHOWN}/child_exit_mio n={CHILD_N} backend=epoll|poll [path=sigchld]")

    # ---- multi-core ------------------------------------------------------
    group = run_group()
    log(f"multi-core done at {time.time() - started:.0f} s")

    # ---- datagrams -------------------------------------------------------
    dgram = run_datagrams()
    commands.append(f"{SHOWN}/dgram_mio side=send|recv how=single|batch|gso|gro runs=1 "
                    f"seconds={DGRAM_SECONDS} [batch=32|8 segs=32]   ({DGRAM_RUNS} rounds)")
    log(f"datagrams done at {time.time() - started:.0f} s")

    load_after = loadavg()

    # ---- RESULTS.md ------------------------------------------------------
    ref = DISPATCH_LIBS[0][0]
    md.append("# libmio benchmark results\n")
    md.append(f"Generated by `bench/run.py{' --quick' if QUICK else ''}` (`make bench"
              f"{' QUICK=1' if QUICK else ''}`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"{time.time() - started:.0f} s.\n")
    md.append(f"- Machine: {model}, {cores} cores, Linux {kernel}")
    md.append(f"- Load average (1/5/15 min) before: {load_before}; after: {load_after}. "
              "The machine was shared with other work: wall-clock figures are medians "
              "and still noisy; the callgrind counts are exact and repeatable.")
    md.append(f"- Medians of {RUNS} runs (dispatch) and {ECHO_RUNS} runs (echo); "
              "ratios are to hand-written edge-triggered epoll (lower is better for times, "
              "higher for requests/s).")
    md.append("- Peers: the Debian packages libev-dev, libevent-dev, libuv1-dev, each on "
              "epoll; programs in `bench/<workload>_<lib>.c` on the driver `bench/driver.c`.")
    if skipped:
        md.append(f"- Skipped (library not found): {', '.join(sorted(skipped))}")
    md.append("")

    md.append("## Dispatch\n")
    md.append("libevent's `test/bench.c` / libev's benchmark: n socket pairs, a active "
              "chains; each byte read is written on (one byte, one write) to the next "
              f"pair, until w more writes were made (w = {DISPATCH_W}; fewer for poll(2) "
              "at large n, which scans every descriptor per wait, so compare ns per "
              "event).  Level-triggered programs read one byte per callback, as "
              "libevent's bench does; edge-triggered ones (hand-written epoll edge, "
              "libmio edge) must empty the socket, so they read up to 16 bytes and pass "
              "each on by itself: the same read and write per event while no two chains "
              "meet in one pair (at n = a = 100 they do, and edge then saves reads).  "
              "Every program calls the same inline function.  Setup registers all n read "
              "ends (after the first run: removes, then adds them).  timers=1 gives each "
              "fd a 10-11 s idle timeout re-armed on every event (libev's `-t`; libmio "
              "through its event loop).  n = 10000 pairs needs 20000 descriptors, more "
              "than RLIMIT_NOFILE (20000 hard, some already open) allows: 9000 is the "
              "largest n here.  Edge-triggered libmio is compared with edge-triggered "
              "epoll, level with level.\n")
    if cg:
        md.append(f"### Instructions per dispatched event (callgrind, n = {CG_N})\n")
        md.append("User-space instructions: (Ir(w=%d) - Ir(w=%d)) / %d events; the "
                  "read and write system calls themselves are not counted (and cost "
                  "the same in every program)." % (CG_W2, CG_W1, CG_W2 - CG_W1) + "\n")
        md.append("| library | a=1 | a=100 | a=1, timers | a=100, timers |")
        md.append("|---|---|---|---|---|")
        labels = []
        for label, _, _ in DISPATCH_LIBS + TIMER_LIBS:
            if label not in labels:
                labels.append(label)
        for label in labels:
            row = [label]
            for timers in (0, 1):
                for a in (1, 100):
                    v = cg.get((label, a, timers))
                    r = cg.get((ref, a, 0))
                    row.append("" if v is None else f"{v:.0f}{fmt_ratio(v, r)}")
            md.append("| " + " | ".join(row) + " |")
        md.append("")

    for timers, libs in ((0, DISPATCH_LIBS), (1, TIMER_LIBS)):
        for a in (TIMER_ACTIVE if timers else (1, 100)):
            title = f"a = {a}" + (", with a re-armed timeout per fd" if timers else "")
            md.append(f"### Dispatch time per event, ns ({title})\n")
            if timers:
                md.append("Ratios are to hand-written epoll without timers.\n")
            md.append("| library | " + " | ".join(f"n={n}" for n in DISPATCH_N) + " |")
            md.append("|---|" + "---|" * len(DISPATCH_N))
            for label, _, _ in libs:
                row = [label]
                for n in DISPATCH_N:
                    r = disp.get((label, n, a, timers))
                    base = disp.get((ref, n, a, 0))
                    v = float(r["event_ns"]) if r else None
                    b = float(base["event_ns"]) if base else None
                    row.append("" if v is None else f"{v:.0f}{fmt_ratio(v, b)}")
                md.append("| " + " | ".join(row) + " |")
            md.append("")
            md.append(f"Setup time, us ({title}):\n")
            md.append("| library | " + " | ".join(f"n={n}" for n in DISPATCH_N) + " |")
            md.append("|---|" + "---|" * len(DISPATCH_N))
            for label, _, _ in libs:
                row = [label]
                for n in DISPATCH_N:
                    r = disp.get((label, n, a, timers))
                    row.append(f"{float(r['setup_us']):.0f}" if r else "")
                md.append("| " + " | ".join(row) + " |")
            md.append("")
    md.append("libev's setup only queues its changes: it calls epoll_ctl in the next "
              "loop iteration, inside the dispatch time (and a stop and start of the "
              "same fd in one iteration costs it no system call at all).  libmio's uring "
              "backend queues them too, but the driver makes a wait with a zero timeout "
              "after libmio's setup and leaves it out of the dispatch time: that wait "
              "hands uring's registrations to the kernel (setup plus that wait is "
              "`armed_us`, in the io_uring section below).\n")

    md.append("## Echo\n")
    md.append(f"TCP ping-pong over loopback: {ECHO_CONNS} connections, each sending a "
              "message and waiting for its whole echo before the next; server on CPU "
              f"{SERVER_CPU}, client (`examples/echo_client.c` on libmio) on CPU "
              f"{CLIENT_CPU}.  {ECHO_SECONDS} s per run.  Every server but libuv's reads "
              "64 KiB at a time and writes each read straight back with the same "
              "function; libuv's uses its streams (uv_read_start into a 64 KiB buffer, "
              "uv_try_write).\n")
    if echo_ir:
        md.append("Server instructions per 64 B request (callgrind, user space; two server "
                  "lifetimes loaded 1 s and 3 s, the difference in instructions over the "
                  "difference in requests):\n")
        md.append("| library | instructions per request |")
        md.append("|---|---|")
        iref = echo_ir.get(ECHO_LIBS[0][0])
        for label, _, _ in ECHO_LIBS:
            v = echo_ir.get(label)
            md.append(f"| {label} | {'' if v is None else f'{v:.0f}{fmt_ratio(v, iref)}'} |")
        md.append("\nWall clock (medians; the runs go round-robin over the servers):\n")
    md.append("| library | 64 B req/s | p50 us | p99 us | 16 KiB req/s | p50 us | p99 us |")
    md.append("|---|---|---|---|---|---|---|")
    for label, _, _ in ECHO_LIBS:
        row = [label]
        for size in ECHO_SIZES:
            r, b = echo.get((label, size)), echo.get((ref, size))
            if r:
                row += [f"{r[0]:.0f}{fmt_ratio(r[0], b[0] if b else None)}", f"{r[1]:.0f}", f"{r[2]:.0f}"]
            else:
                row += ["", "", ""]
        md.append("| " + " | ".join(row) + " |")
    md.append("")
    md.append("Server CPU time (user and system, from `/proc/PID/stat`) per request, "
              "medians; ratios are to hand-written level-triggered epoll, which never "
              "makes a read that ends in EAGAIN.  The edge-triggered servers read until "
              "a read comes back shorter than the buffer (a short read drains a stream, "
              "`mio.h`), not until EAGAIN:\n")
    md.append("| library | 64 B us/request | 16 KiB us/request |")
    md.append("|---|---|---|")
    for label, _, _ in ECHO_LIBS:
        row = [label]
        for size in ECHO_SIZES:
            r, b = echo.get((label, size)), echo.get((CPU_REF, size))
            row.append(f"{r[3]:.2f}{fmt_ratio(r[3], b[3] if b else None)}" if r and r[3] else "")
        md.append("| " + " | ".join(row) + " |")
    md.append("")

    if http:
        md.append("## HTTP\n")
        md.append("Keep-alive HTTP/1.1 \"hello\" servers (the echo servers with http=1: "
                  "each complete request gets the same 77-byte response) driven by `wrk` "
                  f"with one thread and {ECHO_CONNS} connections, {HTTP_SECONDS} s per run, "
                  "round-robin over the servers; medians of the runs.\n")
        md.append("| library | req/s | p50 us | p99 us | server CPU us/request |")
        md.append("|---|---|---|---|---|")
        href, cref = http.get(ECHO_LIBS[0][0]), http.get(CPU_REF)
        for label, _, _ in ECHO_LIBS:
            r = http.get(label)
            md.append(f"| {label} | " + (f"{r[0]:.0f}{fmt_ratio(r[0], href[0] if href else None)} | "
                                         f"{r[1]:.0f} | {r[2]:.0f} | "
                                         f"{r[3]:.2f}{fmt_ratio(r[3], cref[3] if cref else None)} |"
                                         if r else " | | | |"))
        md.append("\nCPU ratios here are to hand-written level-triggered epoll.")
        md.append("")

    md.append("## Timers\n")
    md.append(f"set_cancel: {TIMERS_N} timeouts of random delays (1 ms .. 10 s, the same "
              "for every library) armed, then half of them cancelled in random order.  "
              f"million_timers: libuv's benchmark shape with {TIMERS_N} timeouts, the delay "
              "1 ms more every 1000, run until all fired (CPU time per fired timeout; the "
              "wall time is mostly waiting for the last deadline).  Handles are initialised "
              "before the clock starts.  libmio is its timer wheel (`bench/timers_mio.c`, "
              "1024 slots of 1 ms), which reads the clock on every set; libev, libevent and "
              "libuv keep heaps and use the loop's cached time.\n")
    md.append("| library | set ns | cancel ns | million: set ns | million: CPU ns per fired |")
    md.append("|---|---|---|---|---|")
    tref = timer_res.get(TIMERS_LIBS[0][0]) or {}
    for label, _ in TIMERS_LIBS:
        t = timer_res.get(label)
        if not t:
            md.append(f"| {label} | | | | |")
            continue
        row = [label]
        for key in ("set_cancel.set_ns", "set_cancel.cancel_ns", "million_timers.set_ns",
                    "million_timers.fire_ns"):
            v = t.get(key)
            row.append("" if v is None else f"{v:.0f}{fmt_ratio(v, tref.get(key))}")
        md.append("| " + " | ".join(row) + " |")
    md.append("\nRatios here are to libmio.\n")

    md.append("## Wake\n")
    md.append(f"Cross-thread wake-ups.  Ping-pong: two threads, each waiting on its own "
              f"loop, wake each other in turn, {WAKE_N} round trips: round trips per second "
              "and the round trip's p50/p99.  Flood: one thread wakes the other's loop "
              f"{WAKE_N} times as fast as it can; wakes coalesce, so this is the rate of "
              "the wake call itself.\n")
    md.append("| library | round trips/s | RTT p50 ns | RTT p99 ns | flood wakes/s |")
    md.append("|---|---|---|---|---|")
    wref = wake.get(WAKE_LIBS[0][0])
    for label, _ in WAKE_LIBS:
        w = wake.get(label)
        if not w:
            md.append(f"| {label} | | | | |")
            continue
        def ratio(key):
            return fmt_ratio(float(w[key]), float(wref[key])) if wref else ""
        md.append(f"| {label} | {float(w['pingpong_per_s']):.0f}{ratio('pingpong_per_s')} | "
                  f"{float(w['rtt_p50_ns']):.0f} | {float(w['rtt_p99_ns']):.0f} | "
                  f"{float(w['flood_per_s']):.0f}{ratio('flood_per_s')} |")
    md.append("")

    # ---- uring against epoll ---------------------------------------------
    md.append("## io_uring against epoll\n")
    md.append("The uring backend (`mio_poll_new_backend(\"uring\", ...)`) beside the epoll "
              "backend, both through libmio, from the runs above and two of their own.  "
              "Registration changes on uring make no system call (register only its "
              "`fstat`, deregister likewise): they go to the kernel as SQEs with the next "
              "wait, in the one `io_uring_enter` that waits.\n")
    md.append("- **Setup**: the dispatch setup above, registering n read ends (after the first "
              "run: deregistering, then registering them again).")
    md.append("- **Oneshot re-arm**: `dispatch_mio trigger=oneshot`, the dispatch workload "
              "with every registration oneshot and re-armed with `mio_reregister` after its "
              "event (a thread handing each ready connection on and taking it back).  System "
              "calls per event are counted from outside the program, "
              + ("with perf's syscall tracepoints (`perf stat -e raw_syscalls:sys_enter -e "
                 "syscalls:sys_enter_io_uring_enter ...`: the kernel counts, no ptrace, the "
                 "program unchanged)" if how == "perf" else
                 "with `strace -f -c` (ptrace: the counts are exact, the program slower)"
                 if how == "strace" else "(not counted: neither perf nor strace works here)")
              + f", at n = {ONESHOT_N} for w = {ONESHOT_W1} and w = {ONESHOT_W2}: the "
              "difference over the difference in events, which leaves setup and exit out.  "
              "\"Poll calls\" are `epoll_ctl`, `epoll_wait`, `epoll_pwait`, `epoll_pwait2` and "
              "`io_uring_enter`; \"all\" includes the workload's own reads and writes.")
    md.append("- **Dispatch** and **echo**: the tables above, edge-triggered.  Beside the wall "
              "clock, the CPU time the program (the echo server) spent, user and system, which "
              "other work on a shared machine inflates far less: `setup_cpu_us` and "
              "`cpu_event_ns` from the dispatch driver, the server's `/proc/PID/stat` times "
              "over each echo run divided by its requests.\n")
    rows = []

    def row(what, e, u, target, better_low=True):
        if e is None or u is None or e == 0:
            rows.append(f"| {what} | {'' if e is None else f'{e:.3g}'} | "
                        f"{'' if u is None else f'{u:.3g}'} | | {target[0]} | |")
            return
        ratio = u / e
        if target[1] is None:
            met = ""
        else:
            ok = ratio <= target[1] if better_low else ratio >= target[1]
            met = "yes" if ok else "**no**"
        rows.append(f"| {what} | {e:.3g} | {u:.3g} | {ratio:.2f}x | {target[0]} | {met} |")

    nmax = DISPATCH_N[-1]
    for a in (1, 100):
        e = disp.get(("libmio epoll (edge)", nmax, a, 0))
        u = disp.get(("libmio uring (edge)", nmax, a, 0))
        for key, what in (("setup_us", "setup"), ("setup_cpu_us", "setup, CPU time"),
                          ("armed_us", "setup and the wait that arms it")):
            row(f"{what}, n = {nmax}, a = {a} (us)", float(e[key]) if e else None,
                float(u[key]) if u else None,
                ("<= 0.30x", 0.30) if key != "armed_us" else ("", None))
    for a in (1, 100):
        e, u = oneshot_sc.get(("epoll", a)), oneshot_sc.get(("uring", a))
        row(f"oneshot re-arm, a = {a}: poll calls per event", e and e["poll"], u and u["poll"],
            ("<= 0.50x", 0.50))
        row(f"oneshot re-arm, a = {a}: all system calls per event", e and e["total"],
            u and u["total"], ("", None))
    for a in (1, 100):
        for n in (ONESHOT_N, nmax):
            e, u = oneshot_ns.get(("epoll", n, a)), oneshot_ns.get(("uring", n, a))
            row(f"oneshot re-arm, n = {n}, a = {a} (ns/event)", e and float(e["event_ns"]),
                u and float(u["event_ns"]), ("", None))
            row(f"oneshot re-arm, n = {n}, a = {a} (CPU ns/event)",
                e and float(e["cpu_event_ns"]), u and float(u["cpu_event_ns"]), ("", None))
    for a in (1, 100):
        for n in DISPATCH_N:
            e = disp.get(("libmio epoll (edge)", n, a, 0))
            u = disp.get(("libmio uring (edge)", n, a, 0))
            row(f"dispatch edge, n = {n}, a = {a} (ns/event)", e and float(e["event_ns"]),
                u and float(u["event_ns"]), ("<= 1.05x", 1.05))
            row(f"dispatch edge, n = {n}, a = {a} (CPU ns/event)",
                e and float(e["cpu_event_ns"]), u and float(u["cpu_event_ns"]), ("<= 1.05x", 1.05))
            e = disp.get(("libmio epoll (level)", n, a, 0))
            u = disp.get(("libmio uring (level)", n, a, 0))
            row(f"dispatch level, n = {n}, a = {a} (ns/event)", e and float(e["event_ns"]),
                u and float(u["event_ns"]), ("<= 1.05x", 1.05))
    for size in ECHO_SIZES:
        e, u = echo.get(("libmio epoll (edge)", size)), echo.get(("libmio uring (edge)", size))
        row(f"echo {size} B (req/s)", e and e[0], u and u[0], (">= 0.95x", 0.95), False)
        row(f"echo {size} B (server CPU us/request)", e and e[3], u and u[3], ("<= 1.05x", 1.05))
    if http:
        e, u = http.get("libmio epoll (edge)"), http.get("libmio uring (edge)")
        row("http (req/s)", e and e[0], u and u[0], (">= 0.95x", 0.95), False)
    if cg:
        for a in (1, 100):
            row(f"callgrind, a = {a}: user-space instructions per event",
                cg.get(("libmio epoll (edge)", a, 0)), cg.get(("libmio uring (edge)", a, 0)),
                ("", None))
    md.append("| measure | epoll | uring | uring/epoll | target | met |")
    md.append("|---|---|---|---|---|---|")
    md.extend(rows)
    md.append("")


    md.append("## Child exit\n")
    md.append(f"From a child's exit to its event: {CHILD_N} children, one at a time, each "
              "writing its monotonic clock to a pipe and exiting at once; the parent reads "
              "the clock when mio_poll_wait reports the child (the kernel's teardown of the "
              "child is inside the number).  The spawn column is mio_process_spawn itself "
              "(vfork and exec, up to the exec's success).\n")
    md.append("| path | exit to event p50 us | p99 us | spawn p50 us | spawn p99 us |")
    md.append("|---|---|---|---|---|")
    for label, _ in CHILD_RUNS:
        c = child.get(label)
        if not c:
            md.append(f"| {label} | | | | |")
            continue
        md.append(f"| {label} | {float(c['exit_event_p50_us']):.0f} | "
                  f"{float(c['exit_event_p99_us']):.0f} | {float(c['spawn_p50_us']):.0f} | "
                  f"{float(c['spawn_p99_us']):.0f} |")
    md.append("")

    md.extend(group_markdown(group))

    md += datagram_markdown(dgram)

    # ---- plot ------------------------------------------------------------
    if shutil.which("gnuplot"):
        data = os.path.join(BUILD, "dispatch.dat")
        with open(data, "w") as f:
            for a in (1, 100):
                for label, _, _ in DISPATCH_LIBS:
                    f.write(f'"{label}"\n')
                    for n in DISPATCH_N:
                        r = disp.get((label, n, a, 0))
                        if r:
                            f.write(f"{n} {r['event_ns']}\n")
                    f.write("\n\n")
        k = len(DISPATCH_LIBS)
        script = (f"set terminal pngcairo size 1200,500 noenhanced\n"
                  f"set output '{PLOT}'\nset multiplot layout 1,2\n"
                  "set logscale xy\nset xlabel 'socket pairs (n)'\n"
                  "set ylabel 'dispatch time per event (ns, log)'\nset key top left\nset grid\n"
                  f"set title 'dispatch, a = 1'\nplot for [i=0:{k - 1}] '{data}' index i "
                  "using 1:2 with linespoints title columnheader(1)\n"
                  f"set title 'dispatch, a = 100'\nplot for [i={k}:{2 * k - 1}] '{data}' index i "
                  "using 1:2 with linespoints title columnheader(1)\nunset multiplot\n")
        res = subprocess.run(["gnuplot"], input=script.encode(), capture_output=True)
        if res.returncode == 0 and os.path.exists(PLOT):
            md.append("## Plot\n")
            md.append(f"![dispatch time per event against n]({os.path.basename(PLOT)})\n")
        else:
            log(f"plot failed: {res.stderr.decode(errors='replace').strip()}")
    else:
        log("skipped: plot (gnuplot not installed)")

    md.append("## Commands\n")
    md.append("```")
    md.append(f"make bench{' QUICK=1' if QUICK else ''}    # = cmake -DMIO_BUILD_BENCH=ON; bench/run.py")
    for c in commands:
        md.append(c)
    md.append(f"valgrind --tool=callgrind {SHOWN}/dispatch_<lib> n={CG_N} a=A runs=1 w={CG_W1}|{CG_W2}")
    md.append("```")
    with open(OUT, "w") as f:
        f.write("\n".join(md) + "\n")
    log(f"wrote {OUT} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()

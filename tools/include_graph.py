#!/usr/bin/env python3
"""Prints the include graph of src/ in layers, lowest first, and fails on a
cycle: every file's layer is one above the highest it includes, so the
platform services and helpers sit at the bottom and the public calls at the
top.  A quoted include that names no file of src/ (other than mio.h) is an
error too.

With --objects DIR it does the same for the calls between the library's
objects (every *.o / *.obj under DIR, as nm sees them: which object uses a
symbol another defines), so a file that calls up into one that calls it back
fails as well.

  tools/include_graph.py
  tools/include_graph.py --objects build/CMakeFiles/mio_objects.dir
  tools/include_graph.py --objects build-windows/CMakeFiles/mio_objects.dir \\
                         --nm x86_64-w64-mingw32-nm
"""
import argparse
import os
import re
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(TOP, "src")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def include_graph():
    graph, bad = {}, []
    for root, _, files in os.walk(SRC):
        for name in sorted(files):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(root, name)
            node = os.path.relpath(path, SRC)
            graph[node] = []
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m or m.group(1) == "mio.h":
                        continue
                    # As the compiler looks: beside the file, then -Isrc.
                    for base in (root, SRC):
                        target = os.path.normpath(os.path.join(base, m.group(1)))
                        if os.path.isfile(target):
                            graph[node].append(os.path.relpath(target, SRC))
                            break
                    else:
                        bad.append(f"src/{node}:{lineno}: no such file in src/: {m.group(1)}")
    return graph, bad


def object_graph(directory, nm):
    defined, used = {}, {}
    for root, _, files in os.walk(directory):
        for name in sorted(files):
            if not name.endswith((".o", ".obj")):
                continue
            path = os.path.join(root, name)
            node = re.sub(r"\.(o|obj)$", "", os.path.relpath(path, directory))
            if not os.path.isfile(os.path.join(TOP, node)):
                continue    # left from a source that is gone: not linked
            out = subprocess.run([nm, path], capture_output=True, text=True, check=True).stdout
            defined[node], used[node] = set(), set()
            for line in out.splitlines():
                fields = line.split()
                if len(fields) == 2 and fields[0] == "U":
                    used[node].add(fields[1])
                elif len(fields) == 3 and fields[1] in "TDBRC":
                    defined[node].add(fields[2])
    owner = {sym: node for node, syms in defined.items() for sym in syms}
    return {node: sorted({owner[s] for s in syms if s in owner and owner[s] != node})
            for node, syms in used.items()}, []


def find_cycle(graph):
    """A cycle as a list of nodes (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in graph.get(node, ()):
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def layers(graph):
    level = {}

    def depth(node):
        if node not in level:
            level[node] = 1 + max((depth(d) for d in graph.get(node, ())), default=-1)
        return level[node]

    for node in graph:
        depth(node)
    return level


def report(title, graph, bad):
    print(f"{title}: {len(graph)} files")
    for line in bad:
        print(line, file=sys.stderr)
    cycle = find_cycle(graph)
    if cycle:
        print(f"{title}: cycle: " + " -> ".join(cycle), file=sys.stderr)
        return False
    level = layers(graph)
    for n in range(max(level.values(), default=-1) + 1):
        print(f"  layer {n}")
        for node in sorted(k for k, v in level.items() if v == n):
            deps = graph[node]
            print(f"    {node}" + (" -> " + ", ".join(deps) if deps else ""))
    print(f"{title}: no cycle")
    return not bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", metavar="DIR", help="also the call graph of the objects under DIR")
    ap.add_argument("--nm", default="nm", help="the nm that reads those objects")
    args = ap.parse_args()
    ok = report("include graph of src/", *include_graph())
    if args.objects:
        ok = report(f"call graph of {args.objects}", *object_graph(args.objects, args.nm)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

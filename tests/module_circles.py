#!/usr/bin/env python3
"""Import circles between the modules of a crate, from cargo-modules' graph.

    cargo install cargo-modules --version 0.27.0 --locked
    cargo modules dependencies -p rekap-node --lib --no-externs --no-sysroot \
        --no-owns > node.dot
    python3 tests/module_circles.py node.dot

Each "uses" edge between items is lifted to the modules that hold them, and
the strongly connected components of modules are printed, leaving out a
module's edges to its own ancestors or descendants (a parent re-exporting a
child's item, a child using its parent's). cargo-modules' own --acyclic
judges items, and stops at a type and its own method, which is no circle
between modules.
"""
import re, sys
dot = open(sys.argv[1]).read()
mods = set(re.findall(r'^\s*"([^"]+)" \[label="[^|"]*mod\|', dot, re.M)) | {re.search(r'"(\w+)" \[label="crate\|', dot).group(1)}
def mod_of(item):
    while item not in mods:
        item = item.rsplit('::', 1)[0]
    return item
edges = {}
for a, b in re.findall(r'^\s*"([^"]+)" -> "([^"]+)" \[label="uses"', dot, re.M):
    ma, mb = mod_of(a), mod_of(b)
    if ma == mb or ma.startswith(mb + '::') or mb.startswith(ma + '::'):
        continue
    edges.setdefault(ma, set()).add(mb)
idx, low, st, on, out, c = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(100000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        s = []
        while True:
            w = st.pop(); on.discard(w); s.append(w)
            if w == v: break
        if len(s) > 1: out.append(sorted(s))
for v in sorted(mods):
    if v not in idx: sc(v)
print(f"{len(mods)} modules, {sum(len(v) for v in edges.values())} module-to-module use edges, {len(out)} circle(s)")
for s in out:
    print("circle:", ", ".join(m.split('::',1)[1] if '::' in m else m for m in s))
    for a in s:
        for b in sorted(edges.get(a, ())):
            if b in s:
                print("   ", a.split('::',1)[1], "->", b.split('::',1)[1])

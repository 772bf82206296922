#!/usr/bin/env python3
"""Refuse import cycles among the crate's top-level modules.

Usage: tools/module_cycles.py [SRC_DIR]      (default: src)

Every file under SRC_DIR belongs to the top-level module named by its first
path component (`src/config.rs` and `src/config/*.rs` are `config`). A module
depends on another when its code names `crate::other`, either directly
(`crate::token::claim_at`, `use crate::jwks::{Alg, Key}`) or inside a grouped
import (`use crate::{authz::Mode, extract}`, over several lines too).

Not counted: comments (`//`, `//!`, `///`, `/* */`), test code (files named
`tests.rs` or `*_test.rs`, and anything after `#[cfg(test)]` followed by a
`mod tests {`), `src/bin/` (binaries sit above the library) and `lib.rs`.

The dependency graph must be acyclic. For every strongly connected group of
modules the script prints the group and each edge inside it with the first
`file:line` that makes it, and exits 1; it exits 0 (printing nothing) when
there is no cycle. `./build.sh lint` runs it.

It reads source text with regular expressions, not the compiler's resolution:
`super::` paths stay inside a module and are ignored, and a `crate::` inside a
string literal would be counted (none is today).
"""

import collections
import os
import pathlib
import re
import sys

GROUP = re.compile(r"\bcrate::\{")
PLAIN = re.compile(r"\bcrate::(\w+)")


def is_test_file(f: pathlib.Path) -> bool:
    return f.name == "tests.rs" or f.name.endswith("_test.rs")


def strip_comments(text: str) -> str:
    """Blank out comments, keeping line breaks so line numbers hold."""
    text = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.split("\n"))


def group_members(text: str, start: int):
    """Top-level names in the brace group opening at text[start] ('{'),
    each with its offset: `{a, b::c, d::{e, f}}` -> a, b, d."""
    depth, i, names, expect = 0, start, [], True
    while i < len(text):
        c = text[i]
        if c == "{":
            depth += 1
            expect = depth == 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                break
        elif c == "," and depth == 1:
            expect = True
        elif depth == 1 and expect and (c.isalpha() or c == "_"):
            m = re.match(r"\w+", text[i:])
            if m:
                names.append((m.group(0), i))
                i += len(m.group(0))
                expect = False
                continue
        i += 1
    return names


def edges(root: pathlib.Path):
    graph = collections.defaultdict(lambda: collections.defaultdict(list))
    for f in sorted(root.rglob("*.rs")):
        rel = f.relative_to(root)
        if is_test_file(f) or rel.parts[0] == "bin":
            continue
        mod = rel.with_suffix("").parts[0]
        if mod in ("lib", "main"):
            continue
        text = strip_comments(f.read_text())
        text = re.split(r"#\[cfg\(test\)\]\s*mod tests\s*\{", text)[0]

        def line_of(pos: int) -> int:
            return text.count("\n", 0, pos) + 1

        uses = [(m.group(1), m.start()) for m in PLAIN.finditer(text)]
        for m in GROUP.finditer(text):
            uses.extend(group_members(text, m.end() - 1))
        for name, pos in uses:
            if name not in (mod, "self"):
                graph[mod][name].append((f, line_of(pos)))
    return graph


def cycles(graph):
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    if not root.is_dir():
        print(f"module_cycles: {root} is not a directory", file=sys.stderr)
        return 2
    graph = edges(root)
    found = cycles(graph)
    for group in found:
        print("import cycle among modules: " + ", ".join(group))
        for a in group:
            for b in sorted(set(graph[a]) & set(group)):
                f, line = graph[a][b][0]
                more = len(graph[a][b]) - 1
                extra = f" (+{more} more)" if more else ""
                print(f"  {a} -> {b}  at {os.path.relpath(f)}:{line}{extra}")
    if found:
        print(
            "Break each cycle: move the shared type to the module that owns it or to "
            "a leaf module (see docs/design.md, Module map).",
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Turn `perf script` text output into an SVG flame graph (or folded stacks).

Why this exists: the bench workflow needs flame graphs, and a ~150-line
standard-library script keeps the repo free of any extra tool to install.

Usage:
    perf record -F 999 -g -p <pid> -- sleep 30      # sample the running node
    perf script -i perf.data | python3 deploy/bench/flamegraph.py \
        --title "node, direct burst, before" > out.svg
    python3 deploy/bench/flamegraph.py --input script.txt --folded > out.folded

--folded prints "root;...;leaf count" lines, sorted, so two runs can be
compared with plain `diff`.  The SVG is static: hover a frame for its full
name, sample count and percentage (the <title> tooltip).
"""
import argparse
import hashlib
import re
import sys
from collections import Counter
from xml.sax.saxutils import escape

WIDTH, ROW, PAD, TOP, CHAR_W, MIN_FRAC = 1200, 16, 10, 50, 7, 0.001

# Event header: starts with a non-space; the command (thread name) may contain
# spaces, so anchor on "pid[/tid] [cpu] time:" and take everything before it.
HEADER_RE = re.compile(r"^(\S.*?)\s+\d+(?:/\d+)?\s+(?:\[\d+\]\s+)?\d+\.\d+:")
# Stack line: "<hex addr> <symbol, may contain spaces> (<dso>)".
FRAME_RE = re.compile(r"^\s*[0-9a-fA-F]+\s+(.*?)\s+\((.*)\)\s*$")
OFFSET_RE = re.compile(r"\+0x[0-9a-fA-F]+$")


def frame_name(line):
    m = FRAME_RE.match(line)
    if not m:
        return line.strip()
    sym, dso = OFFSET_RE.sub("", m.group(1)), m.group(2)
    if sym.startswith("[unknown]"):
        # An unresolved address is still useful if we know which binary it is in.
        return "[%s]" % dso.rsplit("/", 1)[-1].strip("[]")
    return sym


def parse_perf_script(lines):
    """Yield one stack per sample, root first, the command name as root."""
    comm, stack = None, []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():  # blank line ends a sample
            if comm is not None:
                yield tuple([comm] + stack[::-1])  # perf prints leaf first
            comm, stack = None, []
        elif not line[0].isspace():
            m = HEADER_RE.match(line)
            comm, stack = (m.group(1) if m else line.split()[0]), []
        elif comm is not None:
            stack.append(frame_name(line))
    if comm is not None:
        yield tuple([comm] + stack[::-1])


def short_name(name, limit=60):
    """Rust symbols get huge from generics and module paths: if needed, hide
    generic arguments, then type-name module prefixes, then keep the tail."""
    if len(name) <= limit:
        return name
    out, stack = [], []  # stack: per open '<', are its contents shown?
    for ch in name:
        shown = all(stack)
        if ch == "<":
            # After an identifier or '::' it is a generic argument list; at the
            # start or after '&'/'<'/' ' it is a qualified path "<T as Trait>".
            generic = bool(out) and (out[-1].isalnum() or out[-1] in "_:")
            out.append(("<..>" if generic else "<") if shown else "")
            stack.append(shown and not generic)
        elif ch == ">" and stack:
            out.append(">" if stack.pop() else "")
        elif shown:
            out.append(ch)
    short = "".join(out)
    if len(short) > limit:  # "mio::net::tcp::stream::TcpStream" -> "TcpStream"
        short = re.sub(r"\b(?:[a-z_][a-z0-9_]*::)+(?=[A-Z])", "", short)
    return short if len(short) <= limit else ".." + short[-(limit - 2):]


def colour(name):
    # md5 rather than hash(): Python's str hash is randomised per process and
    # the same function should keep its colour across graphs.
    h = int.from_bytes(hashlib.md5(name.encode()).digest()[:4], "little")
    return "rgb(%d,%d,%d)" % (205 + h % 50, 60 + (h >> 8) % 170, (h >> 16) % 55)


def build_tree(counts):
    """Nested dict tree: node = [samples, {child name: node}]."""
    root = [0, {}]
    for stack, n in counts.items():
        root[0] += n
        node = root
        for name in stack:
            node = node[1].setdefault(name, [0, {}])
            node[0] += n
    return root


def render_svg(counts, title):
    root = build_tree(counts)
    total = root[0] or 1
    scale = (WIDTH - 2 * PAD) / total
    rects = []  # (depth, x, width, name, samples)

    def walk(node, depth, x):
        for name in sorted(node[1]):  # alphabetical, like classic flame graphs
            child = node[1][name]
            if child[0] / total >= MIN_FRAC:  # too-narrow frames (and kids) dropped
                rects.append((depth, x, child[0] * scale, name, child[0]))
                walk(child, depth + 1, x)
            x += child[0] * scale

    walk(root, 0, PAD)
    max_depth = max((r[0] for r in rects), default=0)
    height = TOP + (max_depth + 1) * ROW + PAD
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="monospace" font-size="12">' % (WIDTH, height),
           '<rect width="100%" height="100%" fill="#f8f8f0"/>',
           '<text x="%d" y="20" font-size="16" text-anchor="middle">%s</text>'
           % (WIDTH // 2, escape(title)),
           '<text x="%d" y="38" text-anchor="middle">%d samples</text>'
           % (WIDTH // 2, root[0])]
    for depth, x, w, name, n in rects:
        y = height - PAD - (depth + 1) * ROW  # root at the bottom
        tip = "%s (%d samples, %.2f%%)" % (name, n, 100.0 * n / total)
        out.append('<g><title>%s</title><rect x="%.1f" y="%d" width="%.1f" height="%d" '
                   'fill="%s" rx="2"/>' % (escape(tip), x, y, w, ROW - 1, colour(name)))
        label, fit = short_name(name), int((w - 4) // CHAR_W)
        if fit >= 3:  # no SVG text clipping: cut the label to the box ourselves
            label = label if len(label) <= fit else label[:fit - 2] + ".."
            out.append('<text x="%.1f" y="%d">%s</text>' % (x + 2, y + ROW - 4, escape(label)))
        out.append("</g>")
    return "\n".join(out + ["</svg>"]) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--title", default="Flame Graph")
    ap.add_argument("--input", help="perf script output file (default: stdin)")
    ap.add_argument("--folded", action="store_true", help="print folded stacks, not SVG")
    args = ap.parse_args()
    # errors="replace": a stray non-UTF-8 symbol must not abort the whole graph.
    src = open(args.input if args.input else sys.stdin.fileno(), errors="replace",
               closefd=bool(args.input))
    with src:
        counts = Counter(parse_perf_script(src))
    if args.folded:
        # ';' separates frames, so it must not appear inside a name (e.g. [u8; 4]).
        folded = Counter()
        for stack, n in counts.items():
            folded[";".join(f.replace(";", ",") for f in stack)] += n
        sys.stdout.write("".join("%s %d\n" % kv for kv in sorted(folded.items())))
    else:
        sys.stdout.write(render_svg(counts, args.title))


if __name__ == "__main__":
    main()

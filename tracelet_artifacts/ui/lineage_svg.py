"""A version's lineage as an inline SVG drawn by the server: data flows left to right (what it was made from,
the version itself, what used it), one column per step; versions are boxes that link to their page (a
deleted one is dashed, with no link), runs are rounded pills, each edge says how the data was used.

The SVG holds numbers and escaped text only, and no script (the view's CSP allows none).
"""

from __future__ import annotations

import html
from collections import defaultdict
from urllib.parse import quote

from tracelet_artifacts.store.lineage import PRODUCED, LineageGraph, LineageNode

COLUMN, ROW = 226, 60
NODE_W, NODE_H = 156, 38
MARGIN = 16
MAX_LABEL = 23


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[:MAX_LABEL - 1] + "…"


def _positions(graph: LineageGraph) -> dict[str, tuple[float, float]]:
    columns: dict[int, list[LineageNode]] = defaultdict(list)
    for node in graph.nodes:
        columns[node.depth].append(node)
    low = min(columns)
    tallest = max(len(nodes) for nodes in columns.values())
    out: dict[str, tuple[float, float]] = {}
    for depth, nodes in columns.items():
        offset = (tallest - len(nodes)) * ROW / 2  # centre shorter columns
        for row, node in enumerate(nodes):
            out[node.id] = (MARGIN + (depth - low) * COLUMN, MARGIN + offset + row * ROW)
    return out


def _node(node: LineageNode, x: float, y: float, root: bool) -> str:
    label = node.label if node.kind == "version" else f"run {node.label}"
    sub = ("deleted" if not node.present else node.detail) if node.kind == "version" else "run"
    kind = "run" if node.kind == "run" else ("version deleted" if not node.present else "version")
    classes = f"node {kind}" + (" root" if root else "")
    radius = NODE_H / 2 if node.kind == "run" else 6
    body = (f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="{radius:.0f}"/>'
            f'<text class="name" x="{x + 10:.0f}" y="{y + 16:.0f}">{html.escape(_short(label))}</text>'
            f'<text class="kind" x="{x + 10:.0f}" y="{y + 31:.0f}">{html.escape(sub)}</text>'
            f"<title>{html.escape(label)} ({html.escape(sub)})</title>")
    attrs = f'class="{classes}" data-id="{html.escape(node.id)}"'
    if node.kind == "version" and node.present and not root:
        href = "/artifacts/" + quote(node.id, safe="/:@")
        return f'<a href="{html.escape(href)}" {attrs}>{body}</a>'
    return f"<g {attrs}>{body}</g>"


def lineage_svg(graph: LineageGraph) -> str:
    """The graph as an ``<svg>`` element (a string safe to embed)."""
    where = _positions(graph)
    width = max(x for x, _ in where.values()) + NODE_W + MARGIN
    height = max(y for _, y in where.values()) + NODE_H + MARGIN
    out = [f'<svg class="lineage" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
           f'role="img" aria-label="lineage of {html.escape(graph.root)}" xmlns="http://www.w3.org/2000/svg">']
    for edge in graph.edges:
        (x1, y1), (x2, y2) = where[edge.source], where[edge.target]
        start, end = (x1 + NODE_W, y1 + NODE_H / 2), (x2, y2 + NODE_H / 2)
        middle = (start[0] + end[0]) / 2
        kind = "produced" if edge.how == PRODUCED else "used"
        out.append(f'<g class="edge {kind}"><path d="M{start[0]:.0f},{start[1]:.0f} C{middle:.0f},{start[1]:.0f} '
                   f'{middle:.0f},{end[1]:.0f} {end[0] - 4:.0f},{end[1]:.0f}"/>'
                   f'<polygon points="{end[0]:.0f},{end[1]:.0f} {end[0] - 8:.0f},{end[1] - 4:.0f} '
                   f'{end[0] - 8:.0f},{end[1] + 4:.0f}"/>')
        if edge.how != PRODUCED:
            out.append(f'<text class="how" x="{middle:.0f}" y="{(start[1] + end[1]) / 2 - 4:.0f}" '
                       f'text-anchor="middle">{html.escape(edge.how)}</text>')
        out.append(f"<title>{html.escape(edge.source)} → {html.escape(edge.target)}: {html.escape(edge.how)}</title>"
                   "</g>")
    for node in graph.nodes:
        out.append(_node(node, *where[node.id], root=node.id == graph.root))
    out.append("</svg>")
    return "".join(out)

"""A lineage graph as people and tools read it: a text tree (``tracelet-artifacts lineage``), Graphviz DOT
and JSON (``--format dot|json``).

    print("\\n".join(tree_lines(graph)))
    dataset:v1 (dataset)
    └─ used by run train (3f2a1b2c) · use_artifact
       └─ model:v1 (model)
"""

from __future__ import annotations

import json

from tracelet_artifacts.store.lineage import PRODUCED, LineageEdge, LineageGraph, LineageNode

FORMATS = ("tree", "json", "dot")


def _label(node: LineageNode) -> str:
    if node.kind == "run":
        return f"run {node.label}"
    return f"{node.label} ({node.detail})" if node.present else f"{node.label} (deleted)"


def _step(edge: LineageEdge, node: LineageNode, upward: bool) -> str:
    """How one line of the tree reads: the node reached and the edge that reached it."""
    if node.kind == "run":
        return f"{'produced by' if upward else 'used by'} {_label(node)}" + ("" if upward else f" · {edge.how}")
    return _label(node) + (f" · {edge.how}" if upward and edge.how != PRODUCED else "")


def _tree(graph: LineageGraph, upward: bool) -> list[str]:
    lines = [_label(graph.node(graph.root))]
    shown = {graph.root}

    def walk(node_id: str, prefix: str) -> None:
        edges = graph.parents(node_id) if upward else graph.children(node_id)
        for index, edge in enumerate(edges):
            last = index == len(edges) - 1
            other = edge.source if upward else edge.target
            node = graph.node(other)
            again = other in shown
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{_step(edge, node, upward)}"
                         + (" (see above)" if again and node.kind == "version" else ""))
            if not again:
                shown.add(other)
                walk(other, prefix + ("   " if last else "│  "))

    walk(graph.root, "")
    return lines


def tree_lines(graph: LineageGraph) -> list[str]:
    """The graph as an indented tree: where the root came from (up), then what used it (down)."""
    lines: list[str] = []
    if graph.direction in ("up", "both"):
        lines += _tree(graph, upward=True)
    if graph.direction in ("down", "both"):
        down = _tree(graph, upward=False)
        lines += down if not lines else down[1:]
    if len(lines) == 1:
        why = {"up": "no run produced it", "down": "no run consumed it", "both": "no run produced or consumed it"}
        lines.append(f"   (no lineage recorded: {why[graph.direction]})")
    if graph.truncated:
        lines.append(f"… more nodes exist past the limit of {len(graph.nodes)}; pass --limit to see them")
    return lines


def _dot_id(text: str) -> str:
    return json.dumps(text)  # a quoted DOT id: JSON string escaping is valid DOT escaping


def to_dot(graph: LineageGraph) -> str:
    """Graphviz DOT: versions as boxes (deleted ones dashed), runs as ellipses, edges labelled by how."""
    out = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for node in graph.nodes:
        style = 'shape=box, style="rounded' + (',dashed"' if not node.present else '"')
        if node.kind == "run":
            style = "shape=ellipse"
        bold = ", penwidth=2" if node.id == graph.root else ""
        out.append(f"  {_dot_id(node.id)} [label={_dot_id(_label(node))}, {style}{bold}];")
    for edge in graph.edges:
        out.append(f"  {_dot_id(edge.source)} -> {_dot_id(edge.target)} [label={_dot_id(edge.how)}];")
    out.append("}")
    return "\n".join(out)


def render(graph: LineageGraph, fmt: str) -> str:
    """The graph in one of ``FORMATS``."""
    if fmt == "json":
        return json.dumps(graph.to_dict(), indent=2)
    if fmt == "dot":
        return to_dot(graph)
    return "\n".join(tree_lines(graph))

"""What a browser does with the hub's messages, in Python: for the tests and the benchmarks.

A live page applies each message as htmx's ws extension does: every top-level element is swapped
out-of-band by its `hx-swap-oob` (default: replace the element with the same id; `delete`;
`beforebegin:#id` / `beforeend:#id` put the element's children there). `Replica` keeps a small
element tree and does the same, so a test can apply a socket's messages and compare the result
with a fresh page (`normal` drops what legitimately differs: ages, CSRF tokens, whitespace).
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str] | None = None) -> None:
        self.tag = tag
        self.attrs = attrs or {}
        self.children: list[Node | str] = []
        self.parent: Node | None = None

    def add(self, child: Node | str, at: int | None = None) -> None:
        if isinstance(child, Node):
            child.parent = self
        self.children.insert(len(self.children) if at is None else at, child)

    def elements(self) -> list[Node]:
        out = []
        for c in self.children:
            if isinstance(c, Node):
                out.append(c)
                out.extend(c.elements())
        return out


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#fragment")
        self.at = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.at.add(node)
        if tag not in VOID:
            self.at = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.at.add(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.at
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.at = node.parent

    def handle_data(self, data: str) -> None:
        self.at.add(data)


def parse(html: str) -> Node:
    tree = _Tree()
    tree.feed(html)
    tree.close()
    return tree.root


class Replica:
    """A page's live regions; `apply` each message in the order the socket delivered it.

    Elements are found through an index of ids kept as subtrees come and go, so applying a
    message costs what the message holds, not what the page holds (a long-lived board in the
    soak applied every message by walking its whole tree, and that walk, growing with the
    board, slowed the soak's own client)."""

    def __init__(self, page: str = '<div id="board-body"></div><span id="live-beat"></span>'):
        self.root = parse(page)
        self._ids: dict[str, list[Node]] = {}
        self._index(self.root, +1)

    def _index(self, node: Node, step: int) -> None:
        """Count a subtree's ids in (+1) or out (-1) of the index."""
        for n in (node, *node.elements()):
            id_ = n.attrs.get("id")
            if id_ is None:
                continue
            if step > 0:
                self._ids.setdefault(id_, []).append(n)
            else:
                held = self._ids.get(id_, [])
                held[:] = [m for m in held if m is not n]
                if not held:
                    self._ids.pop(id_, None)

    def by_id(self, id_: str) -> list[Node]:
        return list(self._ids.get(id_, ()))

    def apply(self, message: str) -> None:
        for el in [c for c in parse(message).children if isinstance(c, Node)]:
            how = el.attrs.pop("hx-swap-oob", "true")
            style, _, selector = how.partition(":")
            if not selector:
                selector = "#" + el.attrs.get("id", "")
                style = "outerHTML" if style == "true" else style
            for target in self.by_id(selector.removeprefix("#")):
                parent = target.parent
                assert parent is not None
                i = parent.children.index(target)
                if style == "outerHTML":
                    self._index(target, -1)
                    parent.children[i] = el
                    el.parent = parent
                    self._index(el, +1)
                elif style == "delete":
                    self._index(target, -1)
                    del parent.children[i]
                elif style in ("beforebegin", "beforeend"):
                    into = parent if style == "beforebegin" else target
                    for k, child in enumerate(el.children):
                        into.add(child, i + k if style == "beforebegin" else None)
                        if isinstance(child, Node):
                            self._index(child, +1)
                else:
                    raise ValueError(f"swap style {how!r} is not one the hub sends")

    def html(self, id_: str) -> str:
        """The element with this id, normalised (see `normal`)."""
        found = self.by_id(id_)
        assert len(found) == 1, f"{len(found)} elements with id {id_}"
        return _serialize(found[0])

    def ids(self, prefix: str) -> list[str]:
        return [n.attrs["id"] for n in self.root.elements()
                if n.attrs.get("id", "").startswith(prefix)]


def normal(html: str, id_: str) -> str:
    """A rendered page's element with this id, normalised like `Replica.html`."""
    root = Replica(html)
    return root.html(id_)


def _serialize(node: Node) -> str:
    out: list[str] = []

    def walk(n: Node | str) -> None:
        if isinstance(n, str):
            text = re.sub(r"\s+", " ", n).strip()
            if text:
                out.append(escape(text, quote=False))
            return
        attrs = dict(n.attrs)
        if n.tag == "input" and attrs.get("name") == "csrf":
            attrs["value"] = ""
        out.append("<" + n.tag + "".join(f' {k}="{escape(v)}"' for k, v in sorted(attrs.items()))
                   + ">")
        if "age" not in attrs.get("class", "").split():
            for c in n.children:
                walk(c)
        if n.tag not in VOID:
            out.append(f"</{n.tag}>")

    walk(node)
    return "".join(out)

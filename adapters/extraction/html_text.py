"""HTML: the visible text, by a WHATWG HTML5 parser (Lexbor, through selectolax).

What a reader does not see is dropped before the text is taken: scripts, styles, templates,
noscript, embedded objects, and elements hidden by the `hidden` attribute, `aria-hidden`, a
hidden input, or an inline `display:none` / `visibility:hidden` (text hidden from people but
indexed would let a page plant instructions or canaries in the index).
"""

from __future__ import annotations

import re
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser, LexborNode

from adapters.extraction.config import ExtractionLimits
from adapters.extraction.text_decoding import decode_text
from application.ingestion_ports import ExtractedText
from domain.artifact import ExtractionMethod

_INVISIBLE = (
    "script, style, noscript, template, iframe, object, embed, svg, canvas, head > *:not(title),"
    " [hidden], [aria-hidden=true], input[type=hidden]"
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_SPACE = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def extract_html(path: Path, limits: ExtractionLimits) -> ExtractedText:
    """The page's visible text, title first."""
    with path.open("rb") as file:
        data = file.read(limits.max_html_bytes)
    return ExtractedText(method=ExtractionMethod.HTML, pages=[visible_text(decode_text(data))])


def visible_text(html: str) -> str:
    """The text a reader of `html` sees."""
    tree = LexborHTMLParser(html)
    hidden = tree.css(_INVISIBLE) + [
        node for node in tree.css("[style]") if _HIDDEN_STYLE.search(node.attributes["style"] or "")
    ]
    # Latest in document order first: a node's descendants go before it, so no node freed
    # with its ancestor is touched again (selectors match nested hidden elements too).
    order: dict[int, int] = {}
    if hidden and tree.root is not None:
        order = {node.mem_id: index for index, node in enumerate(tree.root.traverse())}
    seen: set[int] = set()
    for node in sorted(hidden, key=lambda n: order.get(n.mem_id, -1), reverse=True):
        if node.mem_id not in seen:
            seen.add(node.mem_id)
            node.decompose()
    title = tree.css_first("title")
    body = tree.body or tree.root
    parts = [_text(title)] if title is not None else []
    if body is not None:
        parts.append(_text(body))
    return "\n".join(part for part in parts if part)


def _text(node: LexborNode) -> str:
    # Blocks and inline elements alike are separated by a space; runs of blanks fold.
    text = node.text(separator=" ")
    lines = (_SPACE.sub(" ", line).strip() for line in text.splitlines())
    return _BLANK_LINES.sub("\n", "\n".join(line for line in lines if line))

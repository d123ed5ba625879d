"""The page's inline style sheet, script and prose as the page carries them: minified, and the
prose unwrapped.  The source keeps them readable; the page need not repeat them line for line
(a browser reflows prose anyway), and a smaller page opens faster from disk."""

from __future__ import annotations

import re

# a CSS string literal: left as it is (`content: " \25B2"`, `"Segoe UI"`)
_CSS_STRING = re.compile(r"""("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')""")
# where whitespace carries no meaning in CSS: around braces, semicolons, commas, after a colon
_CSS_SPACE = re.compile(r"\s*([{};,])\s*|:\s+")


def css(text: str) -> str:
    """``text`` minified: comments out, whitespace squeezed where it has no meaning, strings kept."""
    parts = _CSS_STRING.split(text)
    for i in range(0, len(parts), 2):  # even parts are outside strings
        code = re.sub(r"/\*.*?\*/", "", parts[i], flags=re.S)
        code = re.sub(r"\s+", " ", code)
        parts[i] = _CSS_SPACE.sub(lambda m: m.group(1) or ":", code)
    return "".join(parts).replace(";}", "}").strip()


def js(text: str) -> str:
    """``text`` on one line.  Joining lines changes no meaning only where no statement ends at a
    line break without its semicolon (automatic semicolon insertion) and no ``//`` comment runs
    to the end of a line; a script that relies on either is refused (ValueError), not broken."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "//" in line:
            raise ValueError(f"inline script: a // comment would swallow the joined line: {line!r}")
        if not line.endswith(("{", "}", ";", ",", "(")):
            raise ValueError(f"inline script: a line ends without ; or a brace (semicolon insertion): {line!r}")
    return " ".join(lines)


def prose(text: str) -> str:
    """HTML prose with its hard line breaks joined: a new line only before a block (``<li>``,
    ``<section>``, ``</ul>``), so the page holds a paragraph on one line."""
    text = re.sub(r"\s*\n\s*(?=<(?:li|section|/ul|/section|ul|p)\b)", "\n", text.strip())
    return re.sub(r"\s*\n\s*(?!<(?:li|section|/ul|/section|ul|p)\b)", " ", text)

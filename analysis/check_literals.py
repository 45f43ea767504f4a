"""The rules on literals: escaped, base64 and hex blobs in strings and templates."""

from __future__ import annotations

from typing import Any

from analysis.check_state import CheckerState
from analysis.nodejs import _BASE64, _ESCAPE, _HEX


class LiteralRules(CheckerState):
    """Strings and template parts."""

    def _literal(self, node: Any) -> None:
        raw = node.raw
        if type(raw) is str and len(raw) >= 64 and type(node.value) is str:
            self._blob(raw, node.value, node)

    def _template_element(self, node: Any) -> None:
        raw = node.value.raw if node.value is not None else None
        if isinstance(raw, str) and len(raw) >= 64:
            cooked = node.value.cooked
            self._blob(raw, cooked if isinstance(cooked, str) else raw, node)

    def _blob(self, raw: str, value: str, node: Any) -> None:
        if raw.count("\\") >= 32:
            escapes = len(_ESCAPE.findall(raw))
            if escapes >= 32 and escapes * 4 >= len(raw) // 2:
                self.hit("encoded-blob", f"a string of {escapes} escape sequences", node)
                return
        if len(value) >= 256 and " " not in value:
            if _HEX.fullmatch(value):
                self.hit("encoded-blob", f"a hex-encoded string of {len(value)} characters", node)
            elif _BASE64.fullmatch(value):
                self.hit("encoded-blob", f"a base64-encoded string of {len(value)} characters",
                         node)

"""PHP's own reading of a form body or query string, for the MailWizz stand-in.

`parse_php_input` mirrors how PHP fills `$_POST`/`$_GET` (php_default_treat_data + php_register_variable_ex):
pairs split on `&`, `+` and `%XX` decoded, `a[b][c]=v` building nested arrays, `a[]=v` appending, canonical
integer keys becoming integers, spaces and dots in the top-level name turned into `_`, a later value replacing an
earlier one, nesting deeper than `max_input_nesting_level` dropped, and pairs past `max_input_vars` silently
dropped (PHP only logs a warning: "Input variables exceeded 1000").

`http_build_query` is PHP's function of that name with its defaults (`&`, PHP_QUERY_RFC1738 encoding), which the
1.x API signature is computed over. PHP arrays are Python dicts here (ordered, int or str keys).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote_plus, unquote_plus

PhpArray = dict[int | str, Any]

_CANONICAL_INT = re.compile(r"^(0|-?[1-9][0-9]*)$")
PHP_INT_MAX = 2**63 - 1


def _key(raw: str) -> int | str:
    if _CANONICAL_INT.match(raw) and -PHP_INT_MAX - 1 <= int(raw) <= PHP_INT_MAX:
        return int(raw)
    return raw


def _split_name(name: str) -> tuple[str, list[str | None]] | None:
    """Top-level name and the bracket indexes after it (None for `[]`), as PHP reads `a[b][]`."""
    name = name.lstrip(" ")
    bracket = name.find("[")
    if bracket == -1:
        base, rest = name, ""
    elif "]" not in name[bracket:]:
        # An unmatched '[' is an ordinary character of the name, turned into '_' like spaces and dots.
        base, rest = name, ""
    else:
        base, rest = name[:bracket], name[bracket:]
    base = re.sub(r"[ .\[]", "_", base)
    if not base:
        return None
    indexes: list[str | None] = []
    while rest.startswith("["):
        close = rest.find("]")
        if close == -1:
            break
        inner = rest[1:close]
        indexes.append(inner if inner != "" else None)
        rest = rest[close + 1 :]
    return base, indexes


def _next_index(array: PhpArray) -> int:
    ints = [k for k in array if isinstance(k, int)]
    return max(ints) + 1 if ints and max(ints) >= 0 else 0


def _register(target: PhpArray, base: str, indexes: list[str | None], value: str) -> None:
    keys: list[int | str | None] = [_key(base), *[None if i is None else _key(i) for i in indexes]]
    node = target
    for position, key in enumerate(keys):
        last = position == len(keys) - 1
        if key is None:
            key = _next_index(node)
        if last:
            node[key] = value
            return
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child


def parse_php_input(
    text: str, *, max_input_vars: int | None = None, max_nesting_level: int = 64
) -> tuple[PhpArray, int]:
    """`(variables, dropped)`: the array PHP would build from `text`, and how many pairs it dropped."""
    result: PhpArray = {}
    count = 0
    dropped = 0
    for pair in text.split("&"):
        if not pair:
            continue
        count += 1
        if max_input_vars is not None and count > max_input_vars:
            dropped += 1
            continue
        raw_name, _, raw_value = pair.partition("=")
        split = _split_name(unquote_plus(raw_name))
        if split is None:
            continue
        base, indexes = split
        if len(indexes) >= max_nesting_level:
            continue
        _register(result, base, indexes, unquote_plus(raw_value))
    return result, dropped


def php_urlencode(value: str) -> str:
    """PHP's urlencode(): alphanumerics and `-_.` kept, space as `+`, everything else `%XX` (so `~` too)."""
    return quote_plus(value, safe="").replace("~", "%7E")


def _scalar(value: Any) -> str | None:
    if value is None:
        return None
    if value is True:
        return "1"
    if value is False:
        return "0"
    return str(value)


def _build(prefix: str, value: Any, out: list[str]) -> None:
    if isinstance(value, dict | list | tuple):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            _build(f"{prefix}[{key}]", item, out)
        return
    scalar = _scalar(value)
    if scalar is not None:
        out.append(f"{php_urlencode(prefix)}={php_urlencode(scalar)}")


def http_build_query(data: PhpArray) -> str:
    out: list[str] = []
    for key, value in data.items():
        _build(str(key), value, out)
    return "&".join(out)


def php_ksort(data: PhpArray) -> PhpArray:
    """ksort($data, SORT_STRING): top-level keys ordered as byte strings."""
    return dict(sorted(data.items(), key=lambda item: str(item[0]).encode()))

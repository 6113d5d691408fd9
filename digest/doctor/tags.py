"""Tag lists, the ``tag=value; tag=value`` form DKIM (RFC 6376 §3.2) and DMARC records share."""

from __future__ import annotations

import re

# "k=rsa p=abc": a forgotten ';' leaves a second tag inside a value (a key's base64 padding
# "=" ends a value, so it does not look like this).
_RUN_ON_TAG = re.compile(r"\s[A-Za-z][A-Za-z0-9_]*=\S")


def parse_tags(record: str) -> dict[str, str] | None:
    """The tags, names lower-cased, white space dropped from values (a long key may be folded);
    None when a part is not ``tag=value`` or two tags run into each other."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        if not part.strip():
            continue
        name, equals, value = part.partition("=")
        if not equals or not name.strip() or _RUN_ON_TAG.search(value):
            return None
        tags[name.strip().lower()] = "".join(value.split())
    return tags

"""Hostile strings shared by the property tests: what a careless or malicious contributor, or a
signup form, could put into a field."""

from __future__ import annotations

from hypothesis import strategies as st

PAYLOADS = (
    "<script>alert(1)</script>",
    "</style><script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "javascript:alert(1)",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java\tscript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<javascript:alert(1)>",
    "&#106;avascript:alert(1)",
    "`<script>alert(1)</script>`",
    "&lt;script&gt;",
    "<!-- comment -->",
    "{{ 'EV' ~ 'AL' }}",
    "{% for x in 'ab' %}LOOP{{ x }}{% endfor %}",
    "{{ settings.secret }}",
    "{# hidden #}",
    "%recipient.email%",
    "%recipient.name%",
    "%RECIPIENT.unsubscribe_url%",
    "%unsubscribe_url%",
    "%tag_unsubscribe_url%",
    "\r\nBcc: victim@example.net",
    "x\nSubject: injected",
    "nul\x00byte",
    "line\u2028separator",
    "next\x85line",
    "\x1b[31mred",
    "\ufeffbom",
    '"quoted", with, commas',
    "A" * 5000,
    "é" * 400,
    "👩‍👩‍👧" * 50,
)
URL_PAYLOADS = (
    "javascript:alert(1)",
    " JAVASCRIPT:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    'https://example.org/"><script>alert(1)</script>',
    "https://example.org/' onmouseover='alert(1)",
    "https://example.org/{{ 'EV' ~ 'AL' }}",
    "https://example.org/%recipient.email%",
    "https://example.org/\r\nBcc: x@example.net",
    "https://example.org/" + "a" * 3000,
    "//example.org/no-scheme",
    "https://exa mple.org/",
)

hostile_text = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(max_size=60),
    st.builds(
        lambda before, payload, after: before + payload + after,
        st.text(max_size=12),
        st.sampled_from(PAYLOADS),
        st.text(max_size=12),
    ),
)
hostile_url = st.one_of(st.sampled_from(URL_PAYLOADS), hostile_text)


def maybe_hostile(
    draw: st.DrawFn, default: str, share: float, hostile: st.SearchStrategy[str] = hostile_text
) -> str:
    """A hostile value with chance ``share``, else ``default``: a few hostile fields per edition,
    so that some editions pass validation and their rendering is checked too."""
    # Shrinks towards 0, the default value: a failure is reported with the fewest hostile fields.
    if draw(st.integers(min_value=0, max_value=999)) >= (1 - share) * 1000:
        return draw(hostile)
    return default

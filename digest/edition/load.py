"""Read an edition file: YAML with positions -> a validated :class:`Edition`.

PyYAML's composer gives nodes that remember their line and column; we build plain Python values
from them ourselves (so duplicate keys and alias bombs can be caught) while recording where each
value sits. Pydantic then validates, and each of its errors is mapped back to that position, so
every problem reads ``content/2026-03.yaml:42:7: sections[0].items[3].url: must be an https or
http URL``. All problems of a file are reported at once, sorted by line.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from digest.edition.markdown import MarkdownProblem
from digest.edition.model import Edition
from digest.errors import EditionError, Problem, files_beside, similar_files
from digest.newsletter import NEWSLETTER_FILE, Newsletter, find_newsletter

MAX_FILE_BYTES = 1_000_000  # an edition is a few KB; anything this big is a mistake or an attack
MAX_NODES = 10_000  # values built, aliases expanded: the bundled edition needs ~400
MAX_DEPTH = 64  # nesting an edition never needs; also stops recursive aliases early

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_constructor = yaml.constructor.SafeConstructor()
_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"

Loc = tuple[str | int, ...]  # a place in the data: ("sections", 0, "items", 3, "url")
Position = tuple[int, int]


class _BesideTheEdition:
    """The default of ``newsletter=``: the ``digest.toml`` beside the edition's folder."""


BESIDE_THE_EDITION: Any = _BesideTheEdition()


def load_edition(
    path: str | os.PathLike[str], *, newsletter: Newsletter | None = BESIDE_THE_EDITION
) -> Edition:
    """Load and validate the edition file at ``path``; raise :class:`EditionError` listing every
    problem. Problems name the path as given (a ``str`` is kept exactly as the user typed it).

    The newsletter's name comes from ``newsletter`` (by default the ``digest.toml`` found by
    :func:`~digest.newsletter.newsletter_file_for`) when the edition has no ``newsletter:`` key;
    when both name it, they must agree. A broken ``digest.toml`` raises
    :class:`~digest.newsletter.NewsletterError`."""
    shown = path if isinstance(path, str) else os.fspath(path)
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _fail(shown, None, _too_big(size))
        with file.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise _fail(shown, None, "no such file", hint=_missing_file_hint(shown)) from None
    except IsADirectoryError:
        raise _fail(
            shown, None, "is a folder, not an edition file", hint=_folder_hint(shown)
        ) from None
    except OSError as exc:
        raise _fail(shown, None, f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:  # the file grew between stat() and read()
        raise _fail(shown, None, _too_big(len(data)))
    try:
        text = data.decode("utf-8-sig")  # a BOM from a Windows editor is fine
    except UnicodeDecodeError as exc:
        start = exc.start
        line_start = data.rfind(b"\n", 0, start) + 1
        line = data.count(b"\n", 0, start) + 1
        col = len(data[line_start:start].decode("utf-8", errors="replace")) + 1
        raise EditionError(
            [
                Problem(
                    shown,
                    line,
                    col,
                    f"is not UTF-8 (byte 0x{data[start]:02x}); save the file as UTF-8",
                )
            ]
        ) from None
    if isinstance(newsletter, _BesideTheEdition):
        newsletter = find_newsletter(shown)
    edition = load_edition_text(text, shown, stem=file.stem, newsletter=newsletter)
    if edition.number is None:
        edition = edition.model_copy(update={"number": edition_number(file)})
    return edition


EDITION_SUFFIXES = (".yaml", ".yml")


def edition_number(path: Path) -> int:
    """The issue number of the edition file at ``path`` when it names none: its place among the
    edition files of its folder, by name (``2026-03.yaml`` sorts after ``2026-02.yaml``)."""
    try:
        names = [
            entry.name
            for entry in os.scandir(path.parent)
            if entry.name.lower().endswith(EDITION_SUFFIXES) and entry.is_file()
        ]
    except OSError:
        return 1
    return 1 + sum(1 for name in names if name < path.name)


def load_edition_text(
    text: str,
    path: str,
    *,
    stem: str | None = None,
    newsletter: Newsletter | None = None,
) -> Edition:
    """Validate an edition given as YAML text; ``path`` is used in messages only. ``slug``
    defaults to ``stem`` (the file's stem), else to the stem of ``path``. ``newsletter`` as in
    :func:`load_edition` (here no file is looked for: None means no digest.toml)."""
    if len(text) > MAX_FILE_BYTES // 4:  # only then can the UTF-8 size exceed the limit
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_FILE_BYTES:
            raise _fail(path, None, _too_big(size))
    text = text.removeprefix("\ufeff")
    root = _compose(text, path)
    if root is None:
        raise _fail(
            path, (1, 1), "the file is empty; an edition is a mapping (newsletter:, edition: ...)"
        )
    if not isinstance(root, yaml.MappingNode):
        raise _fail(
            path,
            _mark(root),
            "the top level must be a mapping of keys (newsletter:, edition:, sections: ...), "
            f"not {_kind(root)}",
        )
    builder = _Builder(path, text)
    data = builder.build(root, ())
    slug_from_name = "slug" not in data
    if slug_from_name:
        data["slug"] = stem if stem is not None else Path(path).stem
    problems = builder.problems
    try:
        edition = Edition.model_validate(data)
    except ValidationError as exc:
        for error in _without_consequences(exc.errors()):
            for problem in _problems_for(error, builder, path):
                if slug_from_name and tuple(error["loc"]) == ("slug",):
                    problem = replace(
                        problem,
                        message=problem.message + "; it comes from the file's name: add a "
                        "`slug:` line or rename the file",
                    )
                problems = [*problems, problem]
    else:
        problems = [*problems, *_newsletter_problems(edition, newsletter, builder, path)]
        if not problems:
            if edition.newsletter is None and newsletter is not None:
                edition = edition.model_copy(update={"newsletter": newsletter.name})
            return edition
    raise EditionError(_dedupe_sorted(problems))


def _newsletter_problems(
    edition: Edition, newsletter: Newsletter | None, builder: _Builder, path: str
) -> list[Problem]:
    """The newsletter is named once: in digest.toml, or in the edition, or in both alike."""
    if newsletter is None and edition.newsletter is None:
        return [
            Problem(
                path,
                1,
                1,
                "is required: add `newsletter: Your newsletter` here, or name it once for every "
                f"edition in {NEWSLETTER_FILE} ([newsletter] name = ...)",
                "newsletter",
            )
        ]
    if newsletter is not None and edition.newsletter not in (None, newsletter.name):
        line, col = _nearest(builder.values, ("newsletter",))
        return [
            Problem(
                path,
                line,
                col,
                f"says {edition.newsletter!r} but {NEWSLETTER_FILE} names the newsletter "
                f"{newsletter.name!r}; make them agree, or drop this line",
                "newsletter",
            )
        ]
    return []


# --- YAML -> plain values with positions ---------------------------------------------------------


def _compose(text: str, path: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_Loader)  # type: ignore[no-any-return]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = _yaml_message(exc, text, mark)
        if exc.context_mark is not None and (
            exc.context == "while scanning a quoted scalar"
            or exc.problem == "could not find expected ':'"
        ):
            # Point at the cause (the quote never closed, the line without ':'), not at where
            # the parser gave up.
            mark = exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark is not None else None
        raise _fail(path, where, message) from None
    except yaml.reader.ReaderError as exc:
        offset = exc.position
        if _Loader is not yaml.SafeLoader:  # libyaml counts UTF-8 bytes, not characters
            offset = len(text.encode("utf-8", "surrogatepass")[:offset].decode("utf-8", "replace"))
        char = (
            exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or " ")
        )
        raise _fail(
            path,
            _line_col(text, offset),
            f"holds a control character (U+{char:04X}) that YAML does not allow; delete it",
        ) from None
    except yaml.YAMLError as exc:  # anything else PyYAML raises carries no mark
        raise _fail(path, None, f"is not valid YAML: {exc}") from None
    except RecursionError:
        raise _fail(path, None, "is nested too deeply") from None


def _yaml_message(exc: yaml.MarkedYAMLError, text: str, mark: Any) -> str:
    if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
        return "a tab character; YAML indents with spaces, never tabs"
    problem = (exc.problem or "").strip()
    if "expected a single document" in (exc.context or ""):
        return "holds more than one YAML document (a second '---'); keep one edition per file"
    context = (exc.context or "").strip()
    start = exc.context_mark
    if mark is not None:
        explained = _explain_yaml_mistake(problem, context, start, text, mark)
        if explained is not None:
            return f"invalid YAML: {explained}"
    if context and start is not None and mark is not None and start.line != mark.line:
        # Say where the unfinished construct began: that is usually where the typo is.
        return (
            f"invalid YAML: {problem} ({context} that starts at line {start.line + 1}, "
            f"column {start.column + 1})"
        )
    if context and problem:
        return f"invalid YAML: {problem} ({context})"
    return f"invalid YAML: {problem or context or exc}"


# Characters that give a plain (unquoted) YAML value another meaning when they start it.
_SPECIAL_START = "[{\"'*&!|>%@`"


def _explain_yaml_mistake(
    problem: str, context: str, start: Any, text: str, mark: Any
) -> str | None:
    """The usual hand-made YAML mistakes, said in a curator's words with the fix to type;
    None for anything else (PyYAML's own words are shown then)."""
    line = _line_at(text, mark.line)
    key, value = _key_and_value(line)
    if problem == "mapping values are not allowed in this context":
        if key is not None and ": " in value + " " and not value.startswith(("'", '"')):
            # `subject: Clippings, April: news` -- the second ': ' ends nowhere.
            return (
                f"the value of '{key}' holds ': '; put the whole value in quotes: "
                f"{key}: {_quoted(value)}"
            )
        return (
            "a ':' where none fits: this line is indented deeper than the key above it, "
            "or the line above lacks the ':' after its key"
        )
    if problem == "could not find expected ':'" and start is not None:
        return (
            "this line is neither `key: value` nor a list entry (`- ...`): add the ':' after "
            "its key, or, if it continues a text from the line above, indent it as far as that "
            "text"
        )
    if problem == "did not find expected '-' indicator" and start is not None:
        return (
            f"this line does not line up with the list that starts at line {start.line + 1}: "
            f"a new entry starts with '- ' at column {start.column + 1}, and an entry's other "
            "keys line up under its first key"
        )
    if problem == "did not find expected key" and start is not None:
        if key is not None and value[:1] in "\"'[{":
            return (
                f"the value of '{key}' starts with {value[0]} but goes on after its end; "
                f"put the whole value in quotes: {key}: {_quoted(value)}"
            )
        return (
            f"this line does not line up with the keys of the mapping that starts at line "
            f"{start.line + 1} (column {start.column + 1}); check its indentation"
        )
    if (
        context
        in (
            "while scanning for the next token",
            "while scanning an alias",
            "while scanning an anchor",
        )
        and key is not None
        and value[:1] in _SPECIAL_START
    ):
        return (
            f"a value cannot start with {value[0]} unquoted; put it in quotes: "
            f"{key}: {_quoted(value)}"
        )
    if context == "while scanning a quoted scalar":
        return (
            f"{problem} ({context}): the quote that opens here is never closed; end the value "
            'with the same quote (a quote inside "..." is written \\")'
        )
    return None


def _line_at(text: str, line: int) -> str:
    lines = text.split("\n", line + 1)
    return lines[line].rstrip("\r") if line < len(lines) else ""


def _key_and_value(line: str) -> tuple[str | None, str]:
    """``key`` and the rest of a ``key: value`` line (a leading '- ' ignored); else None."""
    body = line.strip()
    body = body[2:].lstrip() if body.startswith("- ") else body
    key, sep, value = body.partition(": ")
    if not sep or not key or key[0] in _SPECIAL_START or " #" in key:
        return None, ""
    return key, value.strip()


def _quoted(value: str) -> str:
    """``value`` as a quoted YAML string, ready to paste: single quotes when it holds double
    ones (no escapes to explain), else double quotes."""
    if '"' in value and "'" not in value:
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _char_at(text: str, line: int, col: int) -> str:
    lines = text.split("\n", line + 1)
    if line < len(lines) and col < len(lines[line]):
        return lines[line][col]
    return ""


def _line_col(text: str, offset: int) -> Position:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _mark(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    return "a single value"


class _TooMuch(Exception):
    """The alias/nesting budget is spent: stop building at once."""

    def __init__(self, message: str, at: Loc) -> None:
        super().__init__(message)
        self.at = at


@dataclass
class _Builder:
    """Builds plain values from nodes, recording each path's position as it goes."""

    path: str
    text: str
    values: dict[Loc, Position] = field(default_factory=dict)  # where each value starts
    keys: dict[Loc, Position] = field(default_factory=dict)  # where each mapping key starts
    literal_blocks: dict[Loc, int] = field(default_factory=dict)  # `|` text: its first line
    problems: list[Problem] = field(default_factory=list)
    built: int = 0

    def build(self, node: yaml.MappingNode, at: Loc) -> dict[str, Any]:
        try:
            value = self._value(node, at, 0)
        except _TooMuch as exc:
            # An alias shares its target's node (and marks); the top-level key being built
            # when the budget ran out is the place a curator can look at.
            where = self.keys.get(exc.at[:1], _mark(node))
            raise _fail(self.path, where, str(exc)) from None
        assert isinstance(value, dict)
        return value

    def _value(self, node: yaml.Node, at: Loc, depth: int) -> Any:
        self.built += 1
        if self.built > MAX_NODES:
            raise _TooMuch(
                f"expands to more than {MAX_NODES:,} values (YAML aliases repeating aliases?); "
                "an edition never needs that many",
                at,
            )
        if depth > MAX_DEPTH:
            raise _TooMuch(f"nests deeper than {MAX_DEPTH} levels (a recursive alias?)", at)
        # setdefault: a value reached again through an alias keeps its first position.
        self.values.setdefault(at, _mark(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, at, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                self._problem(node, at, f"the tag {node.tag!r} is not supported here")
            return [self._value(child, (*at, i), depth + 1) for i, child in enumerate(node.value)]
        return self._scalar(node, at)

    def _mapping(self, node: yaml.MappingNode, at: Loc, depth: int) -> dict[str, Any]:
        if node.tag != _MAP:
            self._problem(node, at, f"the tag {node.tag!r} is not supported here")
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}  # keys from `<<: *alias`; the mapping's own keys win
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.update(self._merge_source(value_node, at, depth))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(key_node, at, "a key must be a plain word, not a list or mapping")
                continue
            key = str(key_node.value)
            if key in result:
                first = self.keys[(*at, key)][0]
                self._problem(
                    key_node,
                    (*at, key),
                    f"duplicate key '{key}' (first given on line {first}); "
                    "a key may appear once per mapping",
                )
                continue
            self.keys[(*at, key)] = _mark(key_node)
            result[key] = self._value(value_node, (*at, key), depth + 1)
        for key, value in merged.items():
            result.setdefault(key, value)
            self.keys.setdefault((*at, key), self.values.get(at, (1, 1)))
        return result

    def _merge_source(self, node: yaml.Node, at: Loc, depth: int) -> dict[str, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):  # earlier sources win, as in YAML's merge key spec
            if not isinstance(source, yaml.MappingNode):
                self._problem(source, at, "'<<' must merge a mapping")
                continue
            merged.update(self._mapping(source, at, depth + 1))
        return merged

    def _scalar(self, node: yaml.ScalarNode, at: Loc) -> Any:
        if node.tag == _STR:
            if node.style == "|":
                # Content of a literal block starts on the line after the `|` indicator.
                self.literal_blocks[at] = node.start_mark.line + 2
            return node.value
        construct = _constructor.yaml_constructors.get(node.tag)
        if construct is None:
            self._problem(node, at, f"the tag {node.tag!r} is not supported; remove it")
            return node.value
        try:
            return construct(_constructor, node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            self._problem(node, at, f"{node.value!r} is not a valid {node.tag.rsplit(':', 1)[1]}")
            return node.value

    def _problem(self, node: yaml.Node, at: Loc, message: str) -> None:
        line, col = _mark(node)
        self.problems.append(Problem(self.path, line, col, message, _field_name(at) or None))


# --- pydantic errors -> curator-friendly problems at their positions ---------------------------


def _without_consequences(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """Leave out a missing key that an unknown key at the same place explains: `titel:` is
    reported once, as the misspelt `title`, not again as a missing `title`."""
    explained: set[Loc] = set()
    for error in errors:
        if error["type"] != "extra_forbidden":
            continue
        loc: Loc = tuple(error["loc"])
        if _is_link_shorthand(loc, error.get("input")):
            explained |= {(*loc[:-1], "label"), (*loc[:-1], "url")}
        suggestion = _suggested_key(loc)
        if suggestion is not None:
            explained.add((*loc[:-1], suggestion))
    return [
        error
        for error in errors
        if not (error["type"] == "missing" and tuple(error["loc"]) in explained)
    ]


def _suggested_key(loc: Loc) -> str | None:
    """The known key that the unknown key at ``loc`` most likely misspells."""
    close = difflib.get_close_matches(str(loc[-1]), _known_keys(loc[:-1]), n=1, cutoff=0.6)
    return close[0] if close else None


def _is_link_shorthand(loc: Loc, value: object) -> bool:
    """`links: [{Code: https://...}]`: a label used as the key of its own URL."""
    return (
        len(loc) >= 3
        and loc[-3] == "links"
        and isinstance(loc[-2], int)
        and isinstance(value, str)
        and value.strip().lower().startswith(("https://", "http://", "mailto:"))
    )


def _problems_for(error: ErrorDetails, builder: _Builder, path: str) -> list[Problem]:
    """Usually one problem; a Markdown field gives one for each unsafe construct in it."""
    ctx_error = (error.get("ctx") or {}).get("error")
    if isinstance(ctx_error, MarkdownProblem) and ctx_error.others:
        return [
            _problem_for(error, builder, path, markdown=each)
            for each in (ctx_error, *ctx_error.others)
        ]
    return [_problem_for(error, builder, path)]


def _problem_for(
    error: ErrorDetails, builder: _Builder, path: str, *, markdown: MarkdownProblem | None = None
) -> Problem:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        line, col = builder.keys.get(loc) or _nearest(builder.values, loc)
        message = f"unknown key '{key}'"
        suggestion = _suggested_key(loc)
        value = error.get("input")
        if _is_link_shorthand(loc, value):
            message += f"; a link is written as {{label: {key}, url: {str(value).strip()}}}"
        elif suggestion is not None:
            message += f"; did you mean '{suggestion}'?"
        else:
            message += f" (known here: {', '.join(_known_keys(loc[:-1]))})"
        return Problem(path, line, col, message, _field_name(loc))
    if kind == "missing":
        line, col = _nearest(builder.values, loc[:-1])
        field_name = _field_name(loc[:-1]) or None  # the mapping that lacks the key
        return Problem(path, line, col, f"missing required key '{loc[-1]}'", field_name)
    line, col = _nearest(builder.values, loc)
    ctx_error = markdown or (error.get("ctx") or {}).get("error")
    if isinstance(ctx_error, MarkdownProblem) and loc in builder.literal_blocks:
        # Point at the offending line inside a `|` block, not at the `|` itself.
        line = builder.literal_blocks[loc] + ctx_error.line
        col = 1 + _indent_of(builder, loc)  # the block's indentation is the same on every line
    message = _message(error, loc) if markdown is None else _lowered(str(markdown))
    return Problem(path, line, col, message, _field_name(loc))


def _indent_of(builder: _Builder, loc: Loc) -> int:
    """How far the first content line of the `|` block at ``loc`` is indented."""
    first = builder.literal_blocks[loc]
    line = builder.text.split("\n", first)[first - 1] if first else ""
    return len(line) - len(line.lstrip(" "))


def _message(error: ErrorDetails, loc: Loc) -> str:
    kind = error["type"]
    given = error.get("input")
    ctx = error.get("ctx") or {}
    name = str(loc[-1]) if loc else ""
    if kind == "string_type":
        if given is None:
            return "is empty; write some text"
        if isinstance(given, list | dict):
            return f"must be text, not {'a list' if isinstance(given, list) else 'a mapping'}"
        return f"must be text; put it in quotes ({given!r} reads as {_yaml_type(given)})"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return (
            f"is too long: at most {ctx.get('max_length')} characters "
            f"(this one has {len(given) if isinstance(given, str) else '?'})"
        )
    if kind == "string_pattern_mismatch":
        if name == "slug":
            return (
                "must be lower-case letters, digits and hyphens, starting with a letter or "
                f"digit (like 2026-03), not {given!r}"
            )
        if name == "lang":
            return f"must be a language tag such as en, de or pt-BR, not {given!r}"
        return f"does not have the expected form ({given!r})"
    if kind == "too_short":
        what = {"sections": "section", "items": "item"}.get(name, "entry")
        return f"needs at least one {what}"
    if kind == "list_type":
        return "must be a list (lines starting with '- ')"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "must be a mapping of keys (like title: and url:)"
    if kind == "timezone_aware" or (kind.startswith(("datetime_", "date_")) and given):
        day, time = _date_and_time_of(given)
        if day is None:
            return "must be a date and time with a timezone, e.g. 2026-03-31T09:00:00Z"
        # The curator's own date and time, with the two ways of adding a timezone.
        if time is None:
            return (
                f"is a date without a time and timezone; write e.g. {day}T09:00:00Z (UTC) or "
                f"{day}T09:00:00+02:00"
            )
        return f"needs a timezone, e.g. {day}T{time}Z (UTC) or {day}T{time}+02:00"
    if kind.startswith(("datetime_", "date_")):
        return "must be a date and time with a timezone, e.g. 2026-03-31T09:00:00Z"
    if (
        name == "url"
        and isinstance(given, str)
        and "://" not in given
        and "." in given.split("/", 1)[0]
        and " " not in given.strip()
    ):
        # `www.example.org/x`: the scheme was left out.
        message = error["msg"].removeprefix("Value error, ")
        return f"{message}; did you mean 'https://{given.strip()}'?"
    return _lowered(error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, "))


def _lowered(message: str) -> str:
    """A message continues ``field:``, so it starts in lower case (but "HTML" stays)."""
    return message[:1].lower() + message[1:] if message[:2].isalpha() else message


def _date_and_time_of(value: object) -> tuple[str | None, str | None]:
    """The ISO date and time (``HH:MM:SS``) ``value`` holds; (None, None) when it is no date."""
    if isinstance(value, datetime):
        return value.date().isoformat(), value.time().replace(microsecond=0).isoformat()
    if isinstance(value, date):
        return value.isoformat(), None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None, None
        has_time = len(value.strip()) > 10
        time = parsed.time().replace(microsecond=0).isoformat() if has_time else None
        return parsed.date().isoformat(), time
    return None, None


def _yaml_type(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return "a date" if hasattr(value, "year") else type(value).__name__


def _known_keys(loc: Loc) -> list[str]:
    """The field names of the model that sits at ``loc`` (a mapping's path)."""
    model: type[BaseModel] = Edition
    for part in loc:
        if isinstance(part, int):
            continue
        field_info = model.model_fields.get(part)
        inner = _model_in(field_info.annotation) if field_info else None
        if inner is None:
            return []
        model = inner
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _nearest(values: dict[Loc, Position], loc: Loc) -> Position:
    """The position of ``loc``, else of its closest ancestor the file holds."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in values:
            return values[loc[:end]]
    return 1, 1


def _field_name(loc: Iterable[str | int]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def _dedupe_sorted(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    # At one place, a missing key is often the consequence of a misspelt one: cause first.
    return sorted(
        unique, key=lambda p: (p.line or 0, p.col or 0, p.message.startswith("missing required"))
    )


def _too_big(size: int) -> str:
    return f"is {size:,} bytes; an edition file may hold at most {MAX_FILE_BYTES:,} bytes (1 MB)"


def _fail(
    path: str, where: Position | None, message: str, *, hint: str | None = None
) -> EditionError:
    line, col = where if where is not None else (None, None)
    return EditionError([Problem(path, line, col, message)], hint=hint)


_EDITION_SUFFIXES = (".yaml", ".yml")


def _missing_file_hint(shown: str) -> str | None:
    close = similar_files(shown, _EDITION_SUFFIXES)
    if close:
        return f"did you mean {close[0]}?"
    beside = files_beside(shown, _EDITION_SUFFIXES)
    return "the editions there: " + ", ".join(beside[:5]) if beside else None


def _folder_hint(shown: str) -> str:
    inside = files_beside(os.path.join(shown, ""), _EDITION_SUFFIXES)
    if not inside:
        return "name one edition file (a .yaml file)"
    return f"name one edition file, e.g. {inside[0]}"


__all__ = ["MAX_FILE_BYTES", "MAX_NODES", "load_edition", "load_edition_text"]

"""A corpus of broken edition (YAML) and subscriber (CSV) files, each run through
`digest validate` as a user would: exit 1, the expected message, never a traceback.

The files are written by the test into its tmp folder (the 50 MB ones too), so the corpus costs
nothing in the repository and every case says in one line what is wrong with it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from faults.figures import publish

VALID = textwrap.dedent(
    """\
    newsletter: Clippings
    edition: March 2026
    slug: 2026-03
    subject: "Clippings, March 2026"
    sections:
      - title: Papers
        items:
          - title: A paper
            url: https://arxiv.org/abs/2601.00001
    """
)
MB = 1024 * 1024


def billion_laughs() -> bytes:
    lines = ["newsletter: Clippings", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for n in range(1, 9):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]")
    return ("\n".join(lines) + "\n").encode()


def fifty_mb_yaml(path: Path) -> None:
    with path.open("wb") as stream:
        stream.write(VALID.encode())
        stream.write((b"# " + b"x" * 1022 + b"\n") * 50 * 1024)


def fifty_mb_field_csv(path: Path) -> None:
    with path.open("wb") as stream:
        stream.write(b'email,name\nada@example.org,"')
        stream.write(b"x" * 50 * MB)
        stream.write(b'"\n')


def fifty_mb_nul_csv(path: Path) -> None:
    path.write_bytes(b"\x00" * 50 * MB)


# name -> (content or writer, the message fragment expected on stderr)
Content = bytes | Callable[[Path], None]
YAML_CORPUS: dict[str, tuple[Content, str]] = {
    "utf16-bom": (VALID.encode("utf-16"), "is not UTF-8 (byte 0xff)"),
    "utf16-no-bom": (VALID.encode("utf-16-le"), "control character (U+0000)"),
    "latin1": (VALID.replace("Papers", "Papérs").encode("latin-1"), ":6:15: is not UTF-8"),
    "truncated-in-a-string": (VALID.encode()[:70], "found unexpected end of stream"),
    "truncated-before-sections": (
        VALID.encode()[: VALID.index("sections")],
        "missing required key 'sections'",
    ),
    "alias-bomb": (billion_laughs(), "expands to more than 10,000 values"),
    "recursive-alias": (b"newsletter: &a [*a]\n", "nests deeper than 64 levels"),
    "tab-indent": (
        VALID.replace("  - title: Papers", "\t- title: Papers").encode(),
        ":6:1: a tab character",
    ),
    "two-documents": ((VALID + "---\n" + VALID).encode(), "more than one YAML document"),
    "top-level-list": (b"- newsletter: Clippings\n", "the top level must be a mapping"),
    "empty": (b"", "the file is empty"),
    "nul-byte": (VALID.replace("Papers", "Pa\x00pers").encode(), ":6:14: holds a control"),
    "duplicate-key": ((VALID + "subject: again\n").encode(), "duplicate key 'subject'"),
    "deep-flow-nesting": (b"newsletter: " + b"[" * 5000 + b"]" * 5000, "nesting depth"),
    "python-tag": (
        b"newsletter: !!python/object/apply:os.system ['true']\n",
        "is not supported here",
    ),
    "binary-junk": (bytes(range(256)) * 4, "is not UTF-8"),
    "unclosed-quote-crlf": (b'newsletter: "Clippings\r\n', "while scanning a quoted scalar"),
    "50-mb": (fifty_mb_yaml, "may hold at most 1,000,000 bytes"),
}
CSV_CORPUS: dict[str, tuple[Content, str]] = {
    "utf16-bom": ("email,name\nada@example.org,Ada\n".encode("utf-16"), ":1:1: not UTF-8"),
    "latin1": ("email,name\nada@example.org,Adé\n".encode("latin-1"), ":2:19: not UTF-8"),
    "pipe-delimited": (b"email|name\nada@example.org|Ada\n", "no `email` column"),
    "no-email-column": (b"mail,name\nada@example.org,Ada\n", "no `email` column"),
    "header-only": (b"email,name\n", "no subscriber row"),
    "empty": (b"", "empty file"),
    "truncated-in-a-quote": (b'email,name\nada@example.org,"Ada\n', ":2: cannot be parsed as CSV"),
    "unclosed-quote-in-header": (b'"email,name\nada@example.org,Ada\n', "header row is not CSV"),
    "bad-address": (b"email,name\nnot-an-address,Ada\n", ":2:1: email: 'not-an-address'"),
    "nul-in-a-name": (b"email,name\nada@example.org,A\x00da\n", ":2:2: name: holds a control"),
    "cr-header-injection": (
        b'email,name\nada@example.org,"Ada\r\nBcc: all@example.net"\n',
        ":2:2: name: holds a control character",
    ),
    "too-many-fields": (b"email,name\nada@example.org,Ada,extra\n", "too many fields: 3"),
    "unknown-status": (b"email,status\nada@example.org,maybe\n", "unknown status 'maybe'"),
    "email-column-twice": (b"email,Email\nada@example.org,b@example.org\n", "`email` twice"),
    "50-mb-field": (fifty_mb_field_csv, "field larger than field limit"),
    "50-mb-of-nul": (fifty_mb_nul_csv, "header row is not CSV"),
}


def write(path: Path, content: Content) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        content(path)
    return path


def check(result: Any, fragment: str) -> None:
    assert result.exit_code == 1, result.output[-2000:]
    assert fragment in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.output
    assert len(result.output) < 20_000, "a hostile file must not make the output huge"


@pytest.mark.parametrize("name", list(YAML_CORPUS))
def test_broken_edition_files(tmp_path: Path, run_digest: Any, name: str) -> None:
    content, fragment = YAML_CORPUS[name]
    path = write(tmp_path / f"{name}.yaml", content)
    check(run_digest("validate", path.name), fragment)


@pytest.mark.parametrize("name", list(CSV_CORPUS))
def test_broken_subscriber_files(
    tmp_path: Path, run_digest: Any, send_env: dict[str, str], name: str
) -> None:
    content, fragment = CSV_CORPUS[name]
    (tmp_path / "edition.yaml").write_text(VALID, encoding="utf-8")
    path = write(tmp_path / f"{name}.csv", content)
    env = {**send_env, "SMTP_HOST": "127.0.0.1", "SMTP_SECURITY": "none"}
    result = run_digest("validate", "edition.yaml", "--subscribers", path.name, env=env)
    check(result, fragment)
    assert "edition.yaml: OK" in result.stdout  # only the list is at fault


def test_the_good_twins_pass(tmp_path: Path, run_digest: Any, send_env: dict[str, str]) -> None:
    """Controls: the same content with a BOM, semicolons, tabs or old Mac line ends is fine."""
    (tmp_path / "edition.yaml").write_bytes(b"\xef\xbb\xbf" + VALID.encode())
    env = {**send_env, "SMTP_HOST": "127.0.0.1", "SMTP_SECURITY": "none"}
    for name, data in {
        "bom-semicolons.csv": b"\xef\xbb\xbfEmail;Name\nada@example.org;Ada\n",
        "tabs.csv": b"email\tname\nada@example.org\tAda\n",
        "cr-line-ends.csv": b"email,name\rada@example.org,Ada\r",
    }.items():
        (tmp_path / name).write_bytes(data)
        result = run_digest("validate", "edition.yaml", "--subscribers", name, env=env)
        assert result.exit_code == 0, result.output


def test_the_corpus_holds_every_hostile_input_the_contract_names(
    capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Contract §1 and §2 name these; each must stay in the corpus (and so be run above)."""
    assert {
        "alias-bomb",
        "recursive-alias",
        "duplicate-key",
        "nul-byte",
        "50-mb",
        "python-tag",
        "two-documents",
    } <= set(YAML_CORPUS)
    assert {
        "cr-header-injection",
        "nul-in-a-name",
        "too-many-fields",
        "unknown-status",
        "bad-address",
        "header-only",
        "50-mb-field",
    } <= set(CSV_CORPUS)
    # Each case names the message it must produce, never an empty (always-true) fragment.
    assert all(fragment.strip() for _, fragment in [*YAML_CORPUS.values(), *CSV_CORPUS.values()])
    publish(
        "broken-file corpus",
        {"yaml_files": len(YAML_CORPUS), "csv_files": len(CSV_CORPUS), "good_twins": 3},
        tmp_path_factory=tmp_path_factory,
        capsys=capsys,
    )

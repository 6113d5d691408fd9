"""The subscribers CSV (contract §2): who is sent to, what is skipped and where it is reported."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.addresses import normalise_address
from digest.audience.subscribers import (
    Subscriber,
    SubscriberReport,
    read_subscribers,
)
from digest.errors import SubscribersError


def write(tmp_path: Path, text: str, *, name: str = "subscribers.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    data = textwrap.dedent(text).encode("utf-8")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def read(path: Path) -> tuple[list[Subscriber], SubscriberReport]:
    report = SubscriberReport(path=path.name)
    return list(read_subscribers(path, report)), report


def emails(subscribers: list[Subscriber]) -> list[str]:
    return [s.email for s in subscribers]


def test_plain_csv_with_name_and_extra_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        email,name,status,city,plan
        ada@example.org,Ada Lovelace,subscribed,London,pro
        grace@example.org,Grace Hopper,,Arlington,
        """,
    )
    subscribers, report = read(path)
    assert subscribers == [
        Subscriber("ada@example.org", "Ada Lovelace", {"city": "London", "plan": "pro"}, 2),
        Subscriber("grace@example.org", "Grace Hopper", {"city": "Arlington", "plan": ""}, 3),
    ]
    assert (report.rows, report.subscribed, report.duplicates, report.problems) == (2, 2, 0, [])


def test_bom_semicolons_and_case_insensitive_header(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        EMAIL;Name;STATUS
        ada@example.org;Ada;Subscribed
        zoe@example.org;Zoë Ünal;
        """,
        bom=True,
    )
    subscribers, report = read(path)
    assert [(s.email, s.name) for s in subscribers] == [
        ("ada@example.org", "Ada"),
        ("zoe@example.org", "Zoë Ünal"),
    ]
    assert report.problems == []


def test_tab_delimited_with_quoted_commas(tmp_path: Path) -> None:
    path = write(tmp_path, 'email\tname\nnadia@example.org\t"O\'Brien, Nadia"\n')
    subscribers, _ = read(path)
    assert [(s.email, s.name) for s in subscribers] == [("nadia@example.org", "O'Brien, Nadia")]


def test_only_one_column(tmp_path: Path) -> None:
    subscribers, _ = read(write(tmp_path, "email\nada@example.org\nbob@example.org\n"))
    assert emails(subscribers) == ["ada@example.org", "bob@example.org"]
    assert subscribers[0].name == "" and subscribers[0].fields == {}


def test_statuses_are_honoured_and_counted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        email,status
        a@example.org,subscribed
        b@example.org,UNSUBSCRIBED
        c@example.org,bounced
        d@example.org,complained
        e@example.org,
        """,
    )
    subscribers, report = read(path)
    assert emails(subscribers) == ["a@example.org", "e@example.org"]
    assert dict(report.by_status) == {"unsubscribed": 1, "bounced": 1, "complained": 1}
    assert report.subscribed == 2 and report.rows == 5


def test_a_later_unsubscribed_row_wins_over_an_earlier_subscribed_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        email,name,status
        ada@example.org,Ada,subscribed
        bob@example.org,Bob,subscribed
        ADA@Example.ORG,Ada again,unsubscribed
        """,
    )
    subscribers, report = read(path)
    assert emails(subscribers) == ["bob@example.org"]
    assert report.by_status["unsubscribed"] == 1
    assert report.duplicates == 1


def test_duplicates_in_other_case_are_sent_once_with_the_first_rows_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        email,name,city
        Ada@example.org,Ada First,London
        ada@EXAMPLE.org,Ada Second,Paris
        ada@example.org,Ada Third,Rome
        """,
    )
    subscribers, report = read(path)
    assert [(s.email, s.name, s.fields["city"]) for s in subscribers] == [
        ("Ada@example.org", "Ada First", "London")
    ]
    assert report.duplicates == 2 and report.subscribed == 1


@pytest.mark.parametrize(
    ("row", "column", "field", "words"),
    [
        ("not-an-address,Bob,", 1, "email", "@"),
        ("bob@,Bob,", 1, "email", "after the @"),
        (",Bob,", 1, "email", "no address"),
        ("bob@example.org,Bob,maybe", 3, "status", "unknown status 'maybe'"),
        ("bob@example.org,Bob,,surplus", 4, None, "too many fields: 4"),
        ('bob@example.org,"Bob\rEvil: yes",', 2, "name", "control character"),
        ("bob@example.org,Bob\x00,", 2, "name", "control character"),
    ],
)
def test_each_kind_of_invalid_row_is_reported_at_its_line_and_skipped(
    tmp_path: Path, row: str, column: int, field: str | None, words: str
) -> None:
    path = tmp_path / "subscribers.csv"
    path.write_text(f"email,name,status\nada@example.org,Ada,\n{row}\ncy@example.org,Cy,\n")
    subscribers, report = read(path)
    assert emails(subscribers) == ["ada@example.org", "cy@example.org"]
    assert len(report.problems) == 1
    problem = report.problems[0]
    assert (problem.path, problem.line, problem.col, problem.field) == (
        "subscribers.csv",
        3,
        column,
        field,
    )
    assert words in problem.message
    assert report.rows == 3


def test_line_numbers_count_physical_lines_across_quoted_newlines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        email,name,note

        ada@example.org,Ada,"a note
        on two lines"
        bad-address,X,
        bob@example.org,"Bob
        Smith",
        grace@example.org,Grace,fine
        """,
    )
    subscribers, report = read(path)
    assert [(s.email, s.line) for s in subscribers] == [("grace@example.org", 8)]
    assert [(p.line, p.field) for p in report.problems] == [
        (3, "note"),
        (5, "email"),
        (6, "name"),
    ]


def test_a_row_that_could_not_be_understood_blocks_its_address(tmp_path: Path) -> None:
    # "unsubscibed" is a typo for an unsubscribe: sending to Ada anyway would be the worse error.
    path = write(
        tmp_path,
        """\
        email,status
        ada@example.org,subscribed
        ada@example.org,unsubscibed
        """,
    )
    subscribers, report = read(path)
    assert subscribers == []
    assert [p.line for p in report.problems] == [3]


def test_trailing_empty_cells_are_not_too_many_fields(tmp_path: Path) -> None:
    subscribers, report = read(write(tmp_path, "email,name\nada@example.org,Ada,,\n"))
    assert emails(subscribers) == ["ada@example.org"] and report.problems == []


def test_blank_lines_are_not_rows(tmp_path: Path) -> None:
    subscribers, report = read(write(tmp_path, "email\n\nada@example.org\n\n"))
    assert emails(subscribers) == ["ada@example.org"] and report.rows == 1


def test_addresses_are_normalised(tmp_path: Path) -> None:
    subscribers, _ = read(write(tmp_path, "email\n  Ada@EXAMPLE.Org \nzoe@bücher.example\n"))
    assert emails(subscribers) == ["Ada@example.org", "zoe@xn--bcher-kva.example"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty file"),
        ("email,name\n", "no subscriber row"),
        ("address,name\nada@example.org,Ada\n", "no `email` column"),
        ("ada@example.org,Ada\nbob@example.org,Bob\n", "no `email` column"),
        ("email,Email\nada@example.org,x\n", "names `email` twice"),
    ],
)
def test_unusable_files_raise_with_a_problem(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "subscribers.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SubscribersError) as caught:
        read(path)
    assert any(words in p.message for p in caught.value.problems)


def test_missing_file_raises_a_subscribers_error(tmp_path: Path) -> None:
    with pytest.raises(SubscribersError, match="cannot read"):
        read(tmp_path / "nope.csv")


def test_undecodable_bytes_are_reported_at_their_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("email,name\nada@example.org,Ada\njose@example.org,José\n".encode("latin-1"))
    with pytest.raises(SubscribersError) as caught:
        read(path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.col) == (3, 21)
    assert "UTF-8" in problem.message


def test_summary_lines_are_short_even_for_many_problems(tmp_path: Path) -> None:
    rows = "\n".join(f"bad{n}" for n in range(25))
    path = tmp_path / "subscribers.csv"
    path.write_text(f"email\nada@example.org\nada@example.org\nb@example.org\n{rows}\n")
    _, report = read(path)
    lines = report.summary_lines()
    assert lines[0] == ("subscribers.csv: 28 rows: 2 to send, 1 duplicate, 25 invalid rows skipped")
    assert len(lines) == 12
    assert lines[1].startswith("  subscribers.csv:5:1: email:")
    assert lines[-1] == "  ... and 15 more"


def test_the_bundled_example_is_clean() -> None:
    path = Path(__file__).parents[1] / "subscribers.example.csv"
    subscribers, report = read(path)
    assert report.problems == []
    assert report.by_status["unsubscribed"] == 1 and report.by_status["bounced"] == 1
    assert report.duplicates == 1
    assert len(subscribers) == report.subscribed >= 8
    assert any(not s.name.isascii() for s in subscribers)


local_parts = st.from_regex(r"[A-Za-z0-9._%+!#'-]{1,70}", fullmatch=True)
domains = st.sampled_from(
    ["example.org", "EXAMPLE.com", "sub.example.net", "x.test", "localhost", "-bad.org", "a..b"]
)


@settings(max_examples=300, deadline=None)
@given(local=local_parts, domain=domains)
def test_the_fast_path_agrees_with_email_validator(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    try:
        checked = validate_email(address, check_deliverability=False)
        expected: str | None = checked.ascii_email or checked.normalized
    except EmailNotValidError:
        expected = None
    assert normalise_address(address) == expected


@pytest.mark.parametrize(
    ("header", "column"),
    [("E-mail;Vorname;Status", 1), ("Name,Email Address", 2), ("name,e_mail", 2)],
)
def test_an_email_column_spelt_otherwise_is_named_with_the_fix(
    tmp_path: Path, header: str, column: int
) -> None:
    # What Excel, Mailchimp and German exports write; the contract's column is `email`.
    path = write(tmp_path, f"{header}\nada@example.org;Ada;\n", bom=True)
    with pytest.raises(SubscribersError) as caught:
        read(path)
    (problem,) = caught.value.problems
    meant = header.replace(";", ",").split(",")[column - 1]
    assert (problem.line, problem.col) == (1, column)
    assert problem.message.endswith(f"rename the column {meant!r} to email")


def test_a_header_without_any_address_column_shows_an_example_header(tmp_path: Path) -> None:
    with pytest.raises(SubscribersError) as caught:
        read(write(tmp_path, "name,city\nAda,London\n"))
    assert caught.value.problems[0].message.endswith(
        "the first row must be a header such as: email,name"
    )


def test_a_missing_file_names_the_list_beside_it_that_was_meant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "email\nada@example.org\n", name="subscribers.csv")
    report = SubscriberReport(path="subscriber.csv")
    with pytest.raises(SubscribersError) as caught:
        list(read_subscribers(Path("subscriber.csv"), report))
    assert str(caught.value.problems[0]) == (
        "subscriber.csv: cannot read: no such file (did you mean subscribers.csv?)"
    )
    report = SubscriberReport(path="zzz.csv")
    with pytest.raises(SubscribersError) as caught:
        list(read_subscribers(Path("zzz.csv"), report))
    assert str(caught.value.problems[0]) == "zzz.csv: cannot read: no such file"

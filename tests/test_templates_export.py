"""`digest templates export`: the packaged templates copied out, used once in ./email_templates,
and never a file overwritten."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from digest.render.email import packaged_templates_dir


def test_export_copies_every_packaged_template_and_build_then_uses_them(
    tmp_path: Path, run_digest: Any, edition_file: Path
) -> None:
    exported = run_digest("templates", "export")
    assert exported.exit_code == 0, exported.output
    packaged = {p.name: p.read_bytes() for p in packaged_templates_dir().iterdir() if p.is_file()}
    assert {"email.mjml.j2", "email.txt.j2"} <= set(packaged)
    ours = tmp_path / "email_templates"
    assert {p.name: p.read_bytes() for p in ours.iterdir()} == packaged
    assert all(f"wrote email_templates/{name}" in exported.stdout for name in packaged)

    # An edit in the exported copy shows in what `digest build` writes.
    text = ours / "email.txt.j2"
    text.write_text(text.read_text(encoding="utf-8") + "\nOUR OWN FOOTER LINE\n", "utf-8")
    built = run_digest("build", str(edition_file), "--out", "out")
    assert built.exit_code == 0, built.output
    (email_txt,) = (tmp_path / "out").glob("*/email.txt")
    assert "OUR OWN FOOTER LINE" in email_txt.read_text(encoding="utf-8")


def test_export_never_overwrites_and_then_writes_nothing(tmp_path: Path, run_digest: Any) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "email.txt.j2").write_text("my edited text template", encoding="utf-8")

    refused = run_digest("templates", "export", "mine")

    assert refused.exit_code == 1
    assert "not overwriting mine/email.txt.j2" in refused.stderr
    assert "Traceback" not in refused.output
    assert [p.name for p in target.iterdir()] == ["email.txt.j2"]  # nothing else written
    assert (target / "email.txt.j2").read_text(encoding="utf-8") == "my edited text template"

    into_a_file = run_digest("templates", "export", "mine/email.txt.j2")
    assert into_a_file.exit_code != 0 and "Traceback" not in into_a_file.output


def test_an_edited_template_shows_in_the_next_build_of_a_new_process(
    tmp_path: Path, edition_file: Path
) -> None:
    """An edit made between two `digest build` commands shows in the second one: no compiled
    template outlives its source (the packaged ones are kept compiled between runs)."""
    import os
    import subprocess
    import sys

    digest = str(Path(sys.executable).with_name("digest"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}

    def build_text() -> str:
        done = subprocess.run(
            [digest, "build", str(edition_file), "--out", "out"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        (email_txt,) = (tmp_path / "out").glob("*/email.txt")
        return email_txt.read_text(encoding="utf-8")

    subprocess.run([digest, "templates", "export"], cwd=tmp_path, env=env, check=True)
    text = tmp_path / "email_templates" / "email.txt.j2"
    original = text.read_text(encoding="utf-8")
    text.write_text(original + "\nFIRST EDIT OF THE FOOTER\n", encoding="utf-8")
    assert "FIRST EDIT OF THE FOOTER" in build_text()
    text.write_text(original + "\nSECOND EDIT OF THE FOOTER\n", encoding="utf-8")
    second = build_text()
    assert "SECOND EDIT OF THE FOOTER" in second
    assert "FIRST EDIT" not in second

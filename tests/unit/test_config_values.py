"""Out-of-range ``qualflow.toml`` values are refused when the file is read, in one line naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import ProjectConfig, dumps_config, load_config
from pipeline.errors import ConfigError


def write_config(root: Path, section: str | None, line: str) -> None:
    """The default ``qualflow.toml`` with ``line`` replacing its key's line (in ``[section]``)."""
    root.mkdir(parents=True, exist_ok=True)
    key = line.split(" = ")[0]
    current: str | None = None
    out = []
    for text in dumps_config(ProjectConfig()).splitlines():
        if text.startswith("["):
            current = text.strip("[]")
        if current == section and text.startswith(f"{key} = "):
            text = line
        out.append(text)
    assert line in out
    (root / "qualflow.toml").write_text("\n".join(out) + "\n", encoding="utf-8")


BAD = [
    (
        None,
        'language = "klingon"',
        ': language = \'klingon\' must be "auto" or a language code such as "en", "de" or "fa" '
        '(a code spaCy or the language detection knows; default "auto")',
    ),
    (
        "flows",
        "process_every_minutes = 0",
        " [flows]: process_every_minutes = 0 must be at least 1 (default 10)",
    ),
    ("embedding", "batch_size = 0", ": [embedding] batch_size = 0 must be at least 1 (default 32)"),
    ("review", "port = 0", ": [review] port = 0 must be in 1-65535 (default 8000)"),
    ("review", "port = 70000", ": [review] port = 70000 must be in 1-65535 (default 8000)"),
]


@pytest.mark.parametrize(("section", "line", "message"), BAD)
def test_a_bad_value_is_one_config_error_naming_key_value_and_what_is_allowed(
    tmp_path: Path, section: str | None, line: str, message: str
) -> None:
    write_config(tmp_path, section, line)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'qualflow.toml'}{message}")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("section", "line"),
    [
        (None, 'language = "auto"'),
        (None, 'language = "de"'),
        (None, 'language = "xx"'),  # spaCy's multi-language pipeline
        (None, 'language = "grc"'),  # spaCy knows it, the detection does not
        (None, 'language = "sw"'),  # the detection gives it, spaCy splits it with "xx"
        ("flows", "process_every_minutes = 1"),
        ("embedding", "batch_size = 1"),
        ("review", "port = 65535"),
    ],
)
def test_values_in_range_are_read(tmp_path: Path, section: str | None, line: str) -> None:
    write_config(tmp_path, section, line)
    cfg = load_config(tmp_path)
    key, value = line.split(" = ")
    got = getattr(cfg if section is None else getattr(cfg, section), key)
    assert str(got) == value.strip('"')


def test_the_cli_refuses_a_bad_language_with_exit_code_2(tmp_path: Path) -> None:
    write_config(tmp_path, None, 'language = "klingon"')
    r = subprocess.run(
        [sys.executable, "-m", "cli", "--project", str(tmp_path), "summary"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'qualflow.toml'}: language = 'klingon' must be \"auto\" or a language code such "
        'as "en", "de" or "fa" (a code spaCy or the language detection knows; default "auto")'
    ]


CRON_ERROR = (
    " [flows]: retrain_cron = {!r} must be a cron schedule (minute hour day-of-month month day-of-week), "
    'e.g. "0 2 * * *" (the default: 2:00 every night)'
)


@pytest.mark.parametrize("cron", ["0 25 * * *", "nightly", "H 2 * * *", ""])
def test_a_bad_retrain_cron_is_refused_with_prefects_check(tmp_path: Path, cron: str) -> None:
    from flows.serve import check_retrain_cron

    write_config(tmp_path, "flows", f'retrain_cron = "{cron}"')
    where = str(tmp_path / "qualflow.toml")
    with pytest.raises(ConfigError) as err:
        check_retrain_cron(load_config(tmp_path), where)
    assert str(err.value) == where + CRON_ERROR.format(cron)


@pytest.mark.parametrize("cron", ["0 2 * * *", "30 3 * * 1-5", "*/15 * * * *", "@daily"])
def test_a_cron_prefect_accepts_is_kept(tmp_path: Path, cron: str) -> None:
    from flows.serve import check_retrain_cron

    write_config(tmp_path, "flows", f'retrain_cron = "{cron}"')
    cfg = load_config(tmp_path)
    check_retrain_cron(cfg, "qualflow.toml")
    assert cfg.flows.retrain_cron == cron


@pytest.mark.parametrize("command", [["summary"], ["serve"]])
def test_the_cli_refuses_a_bad_retrain_cron_before_doing_anything(tmp_path: Path, command: list[str]) -> None:
    """Through Project.open (``summary``) and through the flows' commands (``serve``): one line, exit 2."""
    import os

    write_config(tmp_path, "flows", 'retrain_cron = "0 25 * * *"')
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_HOME"} | {"HOME": str(home)}
    r = subprocess.run(
        [sys.executable, "-m", "cli", "--project", str(tmp_path), *command],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'qualflow.toml'}" + CRON_ERROR.format("0 25 * * *")
    ]
    assert not (home / ".prefect").exists()  # Prefect, imported to check, keeps its home in the project


@pytest.mark.parametrize(
    ("written", "used"), [('"EN"', "en"), ('" fa "', "fa"), ('"Auto"', "auto"), ('"sw"', "sw")]
)
def test_a_language_code_in_another_case_is_read_not_refused(tmp_path: Path, written: str, used: str) -> None:
    # a project that wrote "EN" before values were checked keeps opening
    write_config(tmp_path, None, f"language = {written}")
    assert load_config(tmp_path).language == used

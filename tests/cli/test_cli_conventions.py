"""CLI conventions: --version, -h, an example in every command's help, one window order, a taken
port refused before anything is served, and a non-ASCII token answered 403, not 500."""

from __future__ import annotations

import socket

import pytest

from radpipe.cli.main import app, main


def command_paths() -> list[list[str]]:
    """Every leaf command of the app, as the words that call it."""
    import typer.main

    group = typer.main.get_command(app)
    paths = []

    def walk(command, words):
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, [*words, name])
        else:
            paths.append(words)

    walk(group, [])
    return paths


def test_version_and_short_help(capsys):
    from radpipe import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"radpipe {__version__}"
    assert main(["-h"]) == 0
    assert "Usage" in capsys.readouterr().out


@pytest.mark.parametrize("words", command_paths(), ids=lambda words: " ".join(words))
def test_every_command_help_has_an_example(capsys, words):
    assert main([*words, "-h"]) == 0
    out = capsys.readouterr().out
    assert "Example:" in out and f"$ radpipe {words[0]}" in out, out


def test_window_presets_print_as_window_reads_them(capsys):
    from radpipe.windowing import PRESETS, parse_window

    assert main(["render", "--list-windows"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    for line in lines:
        name, value = line.split()
        assert parse_window(value) == PRESETS[name]  # CENTER/WIDTH, as --window reads it


def test_a_taken_port_is_refused_before_serving(phantom_study, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["view", str(phantom_study.series_folder), "--port", str(port), "--no-browser"])
    out, err = capsys.readouterr()
    assert code == 1 and "Address already in use" in err and "viewer at" not in out


def test_a_non_ascii_token_is_forbidden_not_an_error(phantom_study):
    from starlette.testclient import TestClient

    from radpipe.viewer.app import create_app
    from radpipe.viewer.sessions import build_session

    client = TestClient(create_app(build_session(phantom_study.series_folder, [], None)))
    assert client.get("/api/info", params={"token": "ünïcødé"}).status_code == 403


def test_one_output_convention(phantom_study, tmp_path, capsys):
    series = str(phantom_study.series_folder)
    assert main(["convert", series, "-o", str(tmp_path / "a.nii.gz")]) == 0
    assert main(["convert", series, str(tmp_path / "b.nii.gz")]) == 0  # positional, as before
    assert main(["deidentify", series, "--output", str(tmp_path / "clean")]) == 0
    assert main(["metadata", series, "-o", str(tmp_path / "m.csv"), "--catalog",
                 str(tmp_path / "c.sqlite")]) == 0  # fmt: skip
    capsys.readouterr()
    assert (
        main(["convert", series, str(tmp_path / "c.nii.gz"), "-o", str(tmp_path / "d.nii.gz")]) == 2
    )
    assert main(["convert", series]) == 2
    assert "-o/--output" in capsys.readouterr().err
    assert not (tmp_path / "c.nii.gz").exists() and not (tmp_path / "d.nii.gz").exists()


def test_progress_lines_when_not_on_a_terminal(monkeypatch, capsys):
    import radpipe.cli.console as console

    monkeypatch.setattr(console, "LOG_INTERVAL_S", 0.0)
    with console.progress_bar("Reading study") as (advance, set_total):
        set_total(3)
        for _ in range(3):
            advance(1)
    err = capsys.readouterr().err.splitlines()
    assert err == ["radpipe: Reading study: 1/3", "radpipe: Reading study: 2/3",
                   "radpipe: Reading study: 3/3"]  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [["render", "--count", "0", "x"], ["convert"], ["nonsense"], ["info", "--no-such-flag", "x"]],
)
def test_usage_errors_are_one_line_with_exit_2(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("radpipe: error:") and "-h`" in err, err

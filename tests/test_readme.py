"""Every example in the README runs, in order, so the README cannot rot."""

import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```(console|python)\n(.*?)```", re.S)


def _blocks():
    return BLOCK.findall(README.read_text())


def test_readme_has_the_two_setup_commands():
    sh = re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)
    assert len(sh) == 2
    assert "trustframe demo" in sh[0] and "pytest" in sh[1]


@pytest.mark.slow
def test_readme_examples_run(tmp_path, monkeypatch, run_cli):
    from fastapi.testclient import TestClient

    from trustframe.service.http import create_app

    monkeypatch.setenv("TRUSTFRAME_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    client = None
    for kind, body in _blocks():
        if kind == "python":
            exec(compile(body, "README.md", "exec"), {})
            continue
        for line in body.splitlines():
            if not line.startswith("$ "):
                continue
            argv = shlex.split(line[2:])
            if argv[0] == "trustframe":
                code, out, err = run_cli(*argv[1:])
                assert code == (1 if "--fail-on" in argv else 0), (line, out, err)
            elif argv[0] == "curl":
                client = client or TestClient(create_app())
                url = argv[-1].removeprefix("http://127.0.0.1:8000")
                if "-F" in argv:
                    field, _, path = argv[argv.index("-F") + 1].partition("=@")
                    with open(path, "rb") as f:
                        r = client.post(url, files={field: (Path(path).name, f)})
                else:
                    r = client.get(url)
                assert r.status_code == 200, (line, r.text)
            else:
                raise AssertionError(f"README example not understood: {line}")

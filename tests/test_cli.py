import json
import subprocess
import sys

import pytest

from trustframe import __version__


def test_help_and_version(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0
    for command in ("audit", "sign", "keys", "serve", "demo"):
        assert command in out
    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"trustframe {__version__}"


def test_console_script_is_installed():
    r = subprocess.run([sys.executable, "-m", "trustframe.cli", "--version"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and __version__ in r.stdout


def test_keys_init_show_json(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTFRAME_HOME", str(tmp_path / "h"))
    code, out, _ = run_cli("keys", "init", "--json")
    assert code == 0
    info = json.loads(out)
    assert [c["role"] for c in info["certificates"]] == ["signer", "intermediate", "trust anchor"]
    assert "PRIVATE" not in out
    code, out, err = run_cli("keys", "init")
    assert code == 2 and "already exist" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run_cli("keys", "show", "--json")
    assert code == 0 and len(json.loads(out)["certificates"]) == 3


@pytest.mark.slow
def test_sign_then_audit_json_lines_and_exit_codes(run_cli, home, media_files, tmp_path):
    out_file = tmp_path / "signed.mp4"
    code, out, _ = run_cli("sign", str(media_files["mp4"]), "-o", str(out_file), "--json")
    assert code == 0 and json.loads(out)["manifest_id"].startswith("urn:c2pa:")
    code, out, _ = run_cli("audit", str(out_file), str(media_files["png"]), "--json")
    assert code == 0
    lines = [json.loads(x) for x in out.splitlines()]
    assert [v["label"] for v in lines] == ["ai-generated", "no-evidence"]
    code, _, _ = run_cli("audit", str(out_file), "--fail-on", "ai-generated,tampered")
    assert code == 1
    code, out, _ = run_cli("audit", str(out_file))
    assert code == 0 and "ai-generated" in out


@pytest.mark.slow
def test_unreadable_file_exits_3_without_stopping_the_batch(run_cli, home, media_files, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope")
    code, out, _ = run_cli("audit", str(bad), str(media_files["png"]), "--json", "--fail-on", "no-evidence")
    assert code == 3
    assert [json.loads(x)["label"] for x in out.splitlines()] == ["error", "no-evidence"]


@pytest.mark.parametrize("args,message", [
    (["audit", "x.png", "--fail-on", "bogus"], "unknown label"),
    (["sign", "in.png", "-o", "out.png", "--source", "paintedByHand"], "digital source type"),
    (["sign", "in.png", "-o", "out.png", "--payload", "00ff"], "--payload needs --watermark"),
])
def test_usage_errors_are_one_line_exit_2(run_cli, home, args, message):
    code, _, err = run_cli(*args)
    assert code == 2 and message in err and err.count("\n") == 1


def test_sign_missing_input_and_bad_output_type(run_cli, home, media_files, tmp_path):
    code, _, err = run_cli("sign", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o.png"))
    assert code == 3 and "missing.png" in err
    code, _, err = run_cli("sign", str(media_files["png"]), "-o", str(tmp_path / "o.mp4"))
    assert code == 3 and not (tmp_path / "o.mp4").exists()


@pytest.mark.slow
def test_demo_prints_every_case(run_cli, home, tmp_path):
    code, out, _ = run_cli("demo", "--out", str(tmp_path / "demo"), "--json")
    assert code == 0
    verdicts = {json.loads(x)["file"].rsplit("/", 1)[-1]: json.loads(x)["label"] for x in out.splitlines()}
    assert verdicts["generated.mp4"] == "ai-generated"
    assert verdicts["camera-signed.jpg"] == "no-evidence"
    assert verdicts["camera-signed-tampered.jpg"] == "tampered"
    assert verdicts["camera-unsigned.jpg"] == "no-evidence"
    assert verdicts["bikes.mp4"] == "no-evidence"  # real camera footage
    assert verdicts["generated-reencoded-stripped.mp4"] == "ai-generated"  # recovered via the watermark


@pytest.mark.slow
def test_audit_table_shows_each_file_name_however_long_its_path(run_cli, home, media_files, tmp_path,
                                                                 monkeypatch):
    """A long path folds under the name instead of cutting it: the name stays whole on its own line."""
    deep = tmp_path.joinpath(*[f"folder-{i:02d}-with-a-long-name" for i in range(6)])
    deep.mkdir(parents=True)
    names = ["camera-[take 2]-0042.png", "x.jpg"]  # brackets: plain text, not rich markup
    (deep / names[0]).write_bytes(media_files["png"].read_bytes())
    (deep / names[1]).write_bytes(media_files["jpg"].read_bytes())
    monkeypatch.setenv("COLUMNS", "72")
    code, out, _ = run_cli("audit", str(deep), "--no-detector")
    assert code == 0
    cells = [line.split("│")[1].strip() for line in out.splitlines() if line.count("│") == 4]
    assert names[0] in cells and names[1] in cells
    assert all(len(line) <= 72 for line in out.splitlines())
    assert cells[cells.index(names[0]) + 1].startswith(str(tmp_path)[:12])  # then its folder, dimmed

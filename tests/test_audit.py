import io
import json

import pytest

import trustframe
from trustframe import media
from trustframe.media import expand
from trustframe.provenance.signing import sign_file
from trustframe.service.audit import audit_many
from trustframe.service.verdict import SCHEMA, ProvenanceSection, WatermarkSection, decide_label


@pytest.fixture
def signed(home, media_files, tmp_path):
    out = {}
    out["ai_mp4"] = sign_file(media_files["mp4"], tmp_path / "ai.mp4", settings=home).path
    out["camera_jpg"] = sign_file(media_files["jpg"], tmp_path / "cam.jpg", source_type="digitalCapture",
                                  settings=home).path
    return out


def test_signed_ai_video_is_ai_generated(home, signed):
    v = trustframe.audit(signed["ai_mp4"], settings=home)
    d = json.loads(v.to_json())
    assert d["schema"] == SCHEMA and d["label"] == "ai-generated"
    assert d["provenance"]["state"] == "trusted" and d["provenance"]["ai_generated"] is True
    assert d["media_type"] == "video/mp4" and len(d["sha256"]) == 64
    assert any("trainedAlgorithmicMedia" in r for r in d["reasons"])


def test_camera_capture_and_unsigned_are_no_evidence(home, signed, media_files):
    v = trustframe.audit(signed["camera_jpg"], settings=home)
    assert v.label == "no-evidence" and v.provenance.state == "trusted"
    v = trustframe.audit(media_files["png"], settings=home)
    assert v.label == "no-evidence" and v.provenance.present is False


def test_untrusted_ai_claim_is_likely_ai(home, signed, tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTFRAME_HOME", str(tmp_path / "verifier"))
    v = trustframe.audit(signed["ai_mp4"])
    assert v.label == "likely-ai-generated" and v.provenance.state == "valid"


def test_audit_accepts_bytes_and_streams_and_cleans_up(home, signed, spool):
    data = signed["ai_mp4"].read_bytes()
    assert trustframe.audit(data, settings=home, filename="x.mp4").label == "ai-generated"
    v = trustframe.audit(io.BytesIO(data), settings=home, filename="upload.mp4")
    assert v.label == "ai-generated" and v.file == "upload.mp4"
    assert list(spool.iterdir()) == []


@pytest.mark.slow
def test_audit_many_walks_folders_and_globs_and_survives_bad_files(home, signed, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "broken.mp4").write_bytes(b"\x00" * 100)
    (tmp_path / "sub" / "notes.txt").write_text("skipped in folders: not a media extension")
    found = [p.name for p in expand([tmp_path])]
    assert "broken.mp4" in found and "notes.txt" not in found
    verdicts = list(audit_many([tmp_path / "sub", str(tmp_path / "*.mp4"), tmp_path / "missing.png"],
                               settings=home))
    labels = {v.file.rsplit("/", 1)[-1]: v.label for v in verdicts}
    assert labels == {"broken.mp4": "error", "ai.mp4": "ai-generated", "missing.png": "error"}
    assert verdicts[-1].error.code == "unsupported-media"


@pytest.mark.slow
def test_audit_many_in_processes_matches_sequential(home, signed):
    files = list(signed.values())
    seq = [v.label for v in audit_many(files, settings=home)]
    par = [v.label for v in audit_many(files, settings=home, workers=2)]
    assert seq == par == ["ai-generated", "no-evidence"]


def test_label_rule_precedence():
    bad = ProvenanceSection(present=True, state="invalid", ai_generated=True,
                            failures=["assertion.dataHash.mismatch"])
    good_ai = ProvenanceSection(present=True, state="trusted", ai_generated=True)
    wm = WatermarkSection(detected=True, p_value=1e-12, payload="00" * 6, alg="x")
    assert decide_label(bad, wm, None)[0] == "tampered"
    assert decide_label(good_ai, None, None)[0] == "ai-generated"
    assert decide_label(None, wm, None)[0] == "likely-ai-generated"
    recovered = good_ai.model_copy(update={"recovered": True})
    label, reasons = decide_label(recovered, wm, None)
    assert label == "ai-generated" and "recovered from the repository" in reasons[0]
    assert decide_label(None, None, None) == ("no-evidence",
                                              ["no Content Credentials, watermark or detector evidence"])


def test_verdict_json_schema_is_documented():
    from trustframe.service.verdict import Verdict

    schema = Verdict.model_json_schema(by_alias=True)
    assert {"schema", "file", "label", "reasons", "provenance", "watermark", "detector",
            "error"} <= set(schema["properties"])
    assert set(schema["properties"]["label"]["enum"]) == {
        "ai-generated", "likely-ai-generated", "tampered", "no-evidence", "error"}


def test_reencoded_copy_loses_its_embedded_credentials(home, signed, tmp_path):
    copy = media.write(media.read(signed["ai_mp4"]), tmp_path / "copy.mp4", crf=30)
    v = trustframe.audit(copy, settings=home)
    assert v.provenance.present is False and v.watermark.detected is False  # plain signing: no mark
    assert v.label == "no-evidence"


def test_stripped_watermarked_copy_recovers_its_manifest(home, media_files, tmp_path):
    from trustframe.service.protect import protect_file
    from trustframe.testing import scene

    clip = media.write(media.Frames(scene(16, 256, 256), fps=24.0), tmp_path / "clip.mp4")
    signed = protect_file(clip, tmp_path / "marked.mp4", source_type="trainedAlgorithmicMedia", settings=home)
    v = trustframe.audit(signed.path, settings=home)
    assert v.label == "ai-generated" and v.watermark.payload == signed.payload
    assert v.provenance.soft_bindings == [{"alg": v.watermark.alg, "value": signed.payload}]
    copy = media.write(media.read(signed.path), tmp_path / "copy.mp4", crf=28)
    v = trustframe.audit(copy, settings=home)
    assert v.watermark.detected and v.watermark.payload == signed.payload
    assert v.provenance.recovered and v.provenance.state == "trusted"
    assert v.provenance.manifest_id == signed.manifest_id
    assert v.label == "ai-generated" and any("recovered" in r for r in v.reasons)


def test_shipped_json_schema_matches_the_model_and_validates_verdicts(home, signed):
    import jsonschema_rs

    from trustframe.service.verdict import Verdict

    path = __import__("pathlib").Path(__file__).parents[1] / "service" / "verdict-1.schema.json"
    shipped = json.loads(path.read_text())
    model = Verdict.model_json_schema(by_alias=True)
    assert {k: v for k, v in shipped.items() if k not in ("$id", "title")} == \
        {k: v for k, v in model.items() if k != "title"}
    validator = jsonschema_rs.validator_for(shipped)
    for p in signed.values():
        validator.validate(trustframe.audit(p, settings=home).to_dict())
    validator.validate(trustframe.audit(b"junk", settings=home).to_dict())


def test_errors_name_the_upload_not_the_spool_file(home):
    v = trustframe.audit(b"plain text, not media", settings=home, filename="notes.png")
    assert v.label == "error" and v.error.message.startswith("notes.png:") and v.file == "notes.png"

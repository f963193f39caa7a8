"""The `Verdict`: one versioned JSON document per audited file (schema "trustframe.verdict/1").

The rule that turns signals into a label lives in `decide_label` and is documented in the
README ("How a label is decided"). Fields may be added within version 1; none is removed or
changes meaning without bumping the schema version.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA = "trustframe.verdict/1"
Label = Literal["ai-generated", "likely-ai-generated", "tampered", "no-evidence", "error"]
LABELS: tuple[str, ...] = Label.__args__


class ProvenanceSection(BaseModel):
    present: bool = Field(description="a C2PA manifest was found in the file (or recovered)")
    state: Literal["trusted", "valid", "invalid"] | None = Field(
        None, description="trusted: valid and signer chains to a trust anchor; valid: signature "
        "and hashes fine, signer untrusted; invalid: a check failed (see failures)")
    ai_generated: bool | None = Field(None, description="the manifest declares a generative-AI "
                                      "digitalSourceType")
    signer: str | None = None
    issuer: str | None = None
    failures: list[str] = Field(default_factory=list, description="C2PA validation failure codes")
    manifest_id: str | None = None
    recovered: bool = Field(False, description="manifest found in the repository through the "
                            "watermark because the file carried none")
    digital_source_types: list[str] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list)
    ingredients: list[dict] = Field(default_factory=list)
    soft_bindings: list[dict] = Field(default_factory=list)
    remote_url: str | None = Field(None, description="remote manifest URL the file points to; "
                                   "reported, never fetched")


class WatermarkSection(BaseModel):
    detected: bool
    p_value: float = Field(description="exact one-sided signed-rank test on the keyed sync bits: "
                           "P(this much agreement | no watermark)")
    payload: str | None = Field(None, description="decoded payload, hex, when error correction "
                                "succeeded")
    alg: str


class FrameScore(BaseModel):
    time_s: float = Field(description="seconds from the start (0 for an image)")
    frame: int = Field(description="source frame number")
    score: float = Field(description="calibrated P(AI-generated) of this frame")


class DetectorSection(BaseModel):
    score: float = Field(description="calibrated P(AI-generated) of the file")
    label: Literal["likely-ai", "uncertain", "likely-real"] = Field(
        description="likely-ai at or above `threshold`; uncertain in the band below it down to the "
        "10 %-false-positive point; likely-real below")
    threshold: float = Field(description="the score at which `label` becomes likely-ai")
    threshold_fpr: float = Field(description="false-positive rate on real footage the threshold was "
                                 "fixed for (0.01)")
    model: str
    frames: list[FrameScore] = Field(default_factory=list, description="per-frame scores, in time order")
    top_frame: int | None = Field(None, description="source frame number that scored highest")
    h264_qp: float | None = Field(None, description="the file's H.264 quantiser (0-51, higher = more "
                                  "compressed); `score` is calibrated for it when the model has an H.264 "
                                  "calibration; null when the file is not H.264")


class ErrorSection(BaseModel):
    code: str
    message: str


class Verdict(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_: str = Field(SCHEMA, alias="schema", serialization_alias="schema")
    file: str
    media_type: str | None = None
    sha256: str | None = None
    label: Label
    reasons: list[str] = Field(default_factory=list)
    provenance: ProvenanceSection | None = None
    recovered_provenance: ProvenanceSection | None = Field(
        None, description="the manifest the watermark resolves to, when the file's own manifest "
        "fails validation (label tampered): shown beside it, never in its place")
    watermark: WatermarkSection | None = None
    detector: DetectorSection | None = None
    error: ErrorSection | None = None

    def to_json(self, **kw) -> str:
        return self.model_dump_json(by_alias=True, **kw)

    def to_dict(self) -> dict:
        return self.model_dump(by_alias=True, mode="json")


def decide_label(p: ProvenanceSection | None, wm: WatermarkSection | None,
                 det: DetectorSection | None, *,
                 recovered: ProvenanceSection | None = None) -> tuple[str, list[str]]:
    """Signals -> (label, reasons). First matching rule wins:

    1. tampered: an embedded manifest fails validation (hash mismatch, bad signature, malformed),
       whatever else the file carries: a manifest the watermark resolves to (`recovered`) is
       reported beside it, and does not replace it.
    2. ai-generated: a trusted manifest (embedded, or recovered through the watermark) declares
       generative AI.
    3. likely-ai-generated: a valid but untrusted manifest declares AI; or our watermark is
       detected without a trusted AI manifest; or, when no trusted manifest speaks for the file,
       the detector says likely-ai (its score at or above the threshold fixed at 1 % false
       positives on real footage). The detector never overrides a trusted manifest or a
       detected watermark.
    4. no-evidence: none of the above (credentials declaring a camera capture land here too:
       they are evidence of provenance, not of AI).
    """
    reasons: list[str] = []
    if p is not None and p.present:
        where = "recovered from the repository through the watermark" if p.recovered else "embedded"
        if p.state is None:
            reasons.append(f"C2PA manifest is stored remotely at {p.remote_url} (not fetched)")
        elif p.state == "invalid":
            codes = ", ".join(p.failures) or "unknown failure"
            reasons.append(f"C2PA manifest ({where}) fails validation: {codes}")
        else:
            by = f" signed by {p.signer!r}" if p.signer else ""
            kinds = ", ".join(p.digital_source_types) or "no digitalSourceType"
            reasons.append(f"C2PA manifest ({where}) is {p.state}{by}; declares {kinds}")
        if p.remote_url and p.state is not None:
            reasons.append(f"manifest points to a remote URL (not fetched): {p.remote_url}")
    if recovered is not None:
        by = f" signed by {recovered.signer!r}" if recovered.signer else ""
        kinds = ", ".join(recovered.digital_source_types) or "no digitalSourceType"
        reasons.append(f"the watermark resolves to a C2PA manifest in the repository ({recovered.state}{by}; "
                       f"declares {kinds}), but this file's own manifest no longer matches it")
    if wm is not None:
        if wm.detected:
            tail = f", payload {wm.payload}" if wm.payload else ", payload not decodable"
            reasons.append(f"TrustFrame watermark detected (p = {wm.p_value:.2e}{tail})")
        else:
            reasons.append(f"no TrustFrame watermark (p = {wm.p_value:.2g})")
    if det is not None:
        verdict = {"likely-ai": "looks AI-generated", "uncertain": "is uncertain",
                   "likely-real": "finds no sign of AI generation"}[det.label]
        reasons.append(f"the detector {verdict}: P(AI-generated) = {det.score:.2f} (flags at "
                       f"{det.threshold:.2f}, set for {det.threshold_fpr:.0%} false positives on real "
                       f"footage; {det.model})")

    if p is not None and p.present and p.state == "invalid" and not p.recovered:
        return "tampered", reasons
    if p is not None and p.present and p.state == "trusted" and p.ai_generated:
        return "ai-generated", reasons
    if p is not None and p.present and p.state == "valid" and p.ai_generated:
        return "likely-ai-generated", reasons
    if wm is not None and wm.detected:
        return "likely-ai-generated", reasons
    trusted = p is not None and p.present and p.state == "trusted"
    if det is not None and det.label == "likely-ai" and not trusted:
        return "likely-ai-generated", reasons
    if not reasons:
        reasons.append("no Content Credentials, watermark or detector evidence")
    return "no-evidence", reasons

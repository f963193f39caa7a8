"""Read and validate C2PA Content Credentials into a `ProvenanceResult`."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trustframe.provenance.manifest import AI_SOURCE_TYPES, b64_to_hex, c2pa_context
from trustframe.settings import Settings, load_settings

STATES = ("trusted", "valid", "invalid")


@dataclass
class ProvenanceResult:
    """What the file's Content Credentials say, and whether they hold.

    `state`: "trusted" (signature and hashes fine, signer chains to a trust anchor), "valid"
    (fine, but the signer is not trusted), "invalid" (some check failed: see `failures`), or
    None when no manifest is present. `failures` are the C2PA validation codes as reported.
    """

    present: bool = False
    state: str | None = None
    failures: list[str] = field(default_factory=list)
    manifest_id: str | None = None
    signer: str | None = None
    issuer: str | None = None
    signed_at: str | None = None
    claim_generator: str | None = None
    ai_generated: bool | None = None
    digital_source_types: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    ingredients: list[dict] = field(default_factory=list)
    soft_bindings: list[dict] = field(default_factory=list)  # [{"alg", "value" (hex)}]
    remote_url: str | None = None  # reported, never fetched
    signer_trusted: bool | None = None  # the signing chain reaches a trust anchor
    recovered: bool = False  # manifest found in the repository through the watermark
    error: str | None = None  # why the credentials could not be read at all

    def as_dict(self) -> dict:
        return asdict(self)


def read_provenance(path: str | Path, settings: Settings | None = None) -> ProvenanceResult:
    """Read the manifest embedded in `path` (never fetching remote manifests) and validate it."""
    import c2pa

    s = settings or load_settings()
    from trustframe import media

    mime = media.sniff(path)
    try:
        with c2pa_context(s) as ctx, open(path, "rb") as f:
            reader = c2pa.Reader.try_create(mime, f, None, ctx)
            if reader is None:
                return ProvenanceResult()
            with reader:
                return _result(reader)
    except c2pa.C2paError as e:
        return _unreadable(e)


def read_manifest_store(store: bytes, mime: str, asset: str | Path | None = None,
                        settings: Settings | None = None) -> ProvenanceResult:
    """Validate a detached manifest store (e.g. recovered from the repository).

    Against `asset` when given (hash bindings then checked against that file), else alone.
    """
    import io

    import c2pa

    s = settings or load_settings()
    try:
        with c2pa_context(s) as ctx:
            stream = open(asset, "rb") if asset is not None else io.BytesIO(b"")  # noqa: SIM115
            with stream, c2pa.Reader(mime, stream, store, context=ctx) as reader:
                return _result(reader)
    except c2pa.C2paError as e:
        return _unreadable(e)


def _unreadable(e: Exception) -> ProvenanceResult:
    """c2pa could not produce a manifest to validate.

    A manifest that lives at a remote URL is reported (state None, `remote_url` set) and never
    fetched; a container c2pa cannot parse has no readable manifest; anything else is a
    malformed credential and therefore invalid.
    """
    msg = str(e).splitlines()[0][:300]
    url = re.search(r"remote manifests? from url (\S+)", msg, re.IGNORECASE)
    if url:
        return ProvenanceResult(present=True, state=None, remote_url=url.group(1), error=msg)
    if "asset could not be parsed" in msg or msg.startswith("NotSupported"):
        return ProvenanceResult(present=False, error=msg)  # the container itself is broken
    return ProvenanceResult(present=True, state="invalid", failures=["manifest.malformed"], error=msg)


def _result(reader) -> ProvenanceResult:
    store = json.loads(reader.json())
    label = store.get("active_manifest")
    m = store.get("manifests", {}).get(label, {}) if label else {}
    state = (reader.get_validation_state() or "").lower()
    results = reader.get_validation_results() or {}
    active = results.get("activeManifest", {})
    failures = [f["code"] for f in active.get("failure", [])]
    trusted = any(c["code"] == "signingCredential.trusted" for c in active.get("success", []))
    for delta in results.get("ingredientDeltas", []):
        failures += [f["code"] for f in delta.get("validationDeltas", {}).get("failure", [])]
    if not results and store.get("validation_status"):  # older shape: one flat list
        failures = [v["code"] for v in store["validation_status"]]
    if state not in STATES:
        state = "invalid" if failures else "valid"
    sig = m.get("signature_info", {})
    sources, actions, bindings = [], [], []
    for a in m.get("assertions", []):
        lbl = a.get("label", "")
        if lbl.startswith("c2pa.actions"):
            for act in a.get("data", {}).get("actions", []):
                actions.append(act.get("action"))
                if act.get("digitalSourceType"):
                    sources.append(act["digitalSourceType"].rsplit("/", 1)[-1])
        elif lbl.startswith("c2pa.soft-binding"):
            data = a.get("data", {})
            for block in data.get("blocks", []):
                try:
                    value = b64_to_hex(block.get("value", ""))
                except Exception:
                    value = None
                bindings.append({"alg": data.get("alg"), "value": value})
    gen = m.get("claim_generator_info") or [{}]
    remote = reader.get_remote_url() if hasattr(reader, "get_remote_url") else None
    return ProvenanceResult(
        present=True,
        state=state,
        failures=sorted(set(failures)),
        manifest_id=label,
        signer=sig.get("common_name"),
        signer_trusted=trusted,
        issuer=sig.get("issuer"),
        signed_at=sig.get("time"),
        claim_generator=" ".join(str(gen[0].get(k, "")) for k in ("name", "version")).strip() or None,
        ai_generated=bool(AI_SOURCE_TYPES.intersection(sources)),
        digital_source_types=sources,
        actions=[a for a in actions if a],
        ingredients=[{"title": i.get("title"), "format": i.get("format"),
                      "relationship": i.get("relationship")} for i in m.get("ingredients", [])],
        soft_bindings=bindings,
        remote_url=remote,
    )

"""C2PA manifest definitions and the c2pa-python `Context` that carries our trust settings.

The manifest states how content came to be: a `c2pa.actions` assertion with `c2pa.created` and
an IPTC `digitalSourceType`, the software agent, optional ingredients, and optionally a
`c2pa.soft-binding` assertion that carries the watermark payload (value base64, as the C2PA
spec and the soft-binding resolution API want it).
"""

from __future__ import annotations

import base64
import binascii
import json

from trustframe.errors import ConfigError
from trustframe.settings import Settings

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
SOURCE_TYPES = (
    "trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia",
    "compositeSynthetic", "digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm",
    "print", "humanEdits", "compositeCapture", "digitalCreation", "screenCapture",
    "virtualRecording", "composite", "algorithmicallyEnhanced", "dataDrivenMedia",
)  # fmt: skip
# Source types that declare generative AI (the IPTC terms the C2PA "AI-generated" label uses).
AI_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia",
                             "compositeSynthetic", "algorithmicMedia"})
SOFTWARE_AGENT = "TrustFrame"


def source_type_uri(name: str) -> str:
    short = name.rsplit("/", 1)[-1]
    if short not in SOURCE_TYPES:
        raise ConfigError(f"unknown digital source type {name!r}; one of: {', '.join(SOURCE_TYPES)}")
    return IPTC + short


def hex_to_b64(payload_hex: str) -> str:
    try:
        return base64.b64encode(bytes.fromhex(payload_hex)).decode()
    except ValueError as e:
        raise ConfigError(f"payload must be hex, got {payload_hex!r}") from e


def b64_to_hex(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError) as e:
        raise ConfigError(f"soft-binding value must be base64, got {value!r}") from e


def build_manifest(*, title: str, source_type: str, software_agent: dict | None = None,
                   soft_binding: tuple[str, str] | None = None,
                   extra_assertions: list[dict] = ()) -> dict:
    """A manifest definition for `Builder.from_json`.

    `soft_binding` is (alg, payload hex). `extra_assertions` are added as given (label + data).
    """
    from trustframe import __version__

    agent = software_agent or {"name": SOFTWARE_AGENT, "version": __version__}
    assertions = [{
        "label": "c2pa.actions",
        "data": {"actions": [{
            "action": "c2pa.created",
            "digitalSourceType": source_type_uri(source_type),
            "softwareAgent": agent,
        }]},
    }]
    if soft_binding is not None:
        alg, payload_hex = soft_binding
        assertions.append({
            "label": "c2pa.soft-binding",
            "data": {"alg": alg, "blocks": [{"scope": {}, "value": hex_to_b64(payload_hex)}]},
        })
    assertions += list(extra_assertions)
    return {
        "claim_generator_info": [{"name": SOFTWARE_AGENT, "version": __version__}],
        "title": title,
        "assertions": assertions,
    }


def c2pa_context(settings: Settings):
    """A `c2pa.Context` with our trust anchors; never fetches anything over the network.

    A C2PA manifest may point at a remote manifest URL or OCSP responders: auditing reports
    those and does not follow them.
    """
    import c2pa

    from trustframe.provenance.keys import trust_anchors_pem

    config = {
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": True},
        "builder": {"thumbnail": {"enabled": False}},
    }
    anchors = trust_anchors_pem(settings)
    if anchors:
        config["trust"] = {"user_anchors": anchors}
    return c2pa.Context.from_json(json.dumps(config))

"""C2PA Content Credentials: keys, signing, reading and validation, and the manifest repository."""

from trustframe.provenance.keys import init_keys, show_keys
from trustframe.provenance.manifest import AI_SOURCE_TYPES, SOURCE_TYPES, build_manifest
from trustframe.provenance.reading import ProvenanceResult, read_manifest_store, read_provenance
from trustframe.provenance.repository import ManifestRepository, SQLiteRepository, open_repository
from trustframe.provenance.signing import SignResult, sign_file

__all__ = [
    "AI_SOURCE_TYPES", "SOURCE_TYPES", "ManifestRepository", "ProvenanceResult", "SQLiteRepository",
    "SignResult", "build_manifest", "init_keys", "open_repository", "read_manifest_store",
    "read_provenance", "show_keys", "sign_file",
]  # fmt: skip

"""The manifest repository: signed manifest stores keyed by manifest id, indexed by soft binding.

When a file's embedded manifest is stripped, its watermark payload (a soft binding) finds the
manifest here again — the lookup the C2PA Soft Binding Resolution API serves over HTTP.
`ManifestRepository` is the interface; `SQLiteRepository` the default (WAL, one transaction per
write, one connection per call so that threads and processes can share the file).
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from trustframe.settings import Settings, load_settings

PAYLOAD_BYTES = 6  # 48-bit watermark payloads


@dataclass(frozen=True)
class StoredManifest:
    manifest_id: str
    store: bytes  # the manifest store (application/c2pa JUMBF)
    mime: str  # media type of the asset it was signed into
    created: float


class ManifestRepository(Protocol):
    def allocate_payload(self, alg: str) -> str: ...
    def store(self, manifest_id: str, store: bytes, mime: str,
              bindings: list[tuple[str, str]]) -> None: ...
    def by_binding(self, alg: str, value_hex: str, max_results: int = 10) -> list[str]: ...
    def get(self, manifest_id: str) -> StoredManifest | None: ...
    def delete(self, manifest_id: str) -> None: ...
    def algorithms(self) -> list[str]: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifests (
    manifest_id TEXT PRIMARY KEY, store BLOB NOT NULL, mime TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS bindings (
    alg TEXT NOT NULL, value TEXT NOT NULL,
    manifest_id TEXT NOT NULL REFERENCES manifests(manifest_id) ON DELETE CASCADE,
    PRIMARY KEY (alg, value, manifest_id));
CREATE TABLE IF NOT EXISTS payloads (
    alg TEXT NOT NULL, value TEXT NOT NULL, allocated REAL NOT NULL, PRIMARY KEY (alg, value));
"""


class SQLiteRepository:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self):
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")  # durable across crashes in WAL mode
            yield db
        finally:
            db.close()

    def allocate_payload(self, alg: str) -> str:
        """A fresh random payload (hex) never handed out before for `alg`."""
        with self._connect() as db:
            while True:
                value = secrets.token_bytes(PAYLOAD_BYTES).hex()
                try:
                    db.execute("INSERT INTO payloads VALUES (?, ?, ?)", (alg, value, time.time()))
                    return value
                except sqlite3.IntegrityError:  # 1 in 2^48 per draw; draw again
                    continue

    def store(self, manifest_id: str, store: bytes, mime: str,
              bindings: list[tuple[str, str]]) -> None:
        """Insert (or replace) a manifest and its soft bindings in one transaction."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT OR REPLACE INTO manifests VALUES (?, ?, ?, ?)",
                           (manifest_id, store, mime, time.time()))
                db.executemany("INSERT OR IGNORE INTO bindings VALUES (?, ?, ?)",
                               [(alg, value.lower(), manifest_id) for alg, value in bindings])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def by_binding(self, alg: str, value_hex: str, max_results: int = 10) -> list[str]:
        """Manifest ids whose soft binding is exactly (alg, value), newest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT b.manifest_id FROM bindings b JOIN manifests m USING (manifest_id) "
                "WHERE b.alg = ? AND b.value = ? ORDER BY m.created DESC LIMIT ?",
                (alg, value_hex.lower(), max_results)).fetchall()
        return [r[0] for r in rows]

    def get(self, manifest_id: str) -> StoredManifest | None:
        with self._connect() as db:
            row = db.execute("SELECT manifest_id, store, mime, created FROM manifests "
                             "WHERE manifest_id = ?", (manifest_id,)).fetchone()
        return StoredManifest(row[0], bytes(row[1]), row[2], row[3]) if row else None

    def delete(self, manifest_id: str) -> None:
        """Remove a manifest and its bindings (a signing whose file never appeared)."""
        with self._connect() as db:
            db.execute("DELETE FROM manifests WHERE manifest_id = ?", (manifest_id,))

    def algorithms(self) -> list[str]:
        with self._connect() as db:
            return [r[0] for r in db.execute("SELECT DISTINCT alg FROM bindings ORDER BY alg")]


def open_repository(settings: Settings | None = None) -> ManifestRepository:
    s = settings or load_settings()
    return SQLiteRepository(s.repository_path)

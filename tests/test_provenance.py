import os
import stat
import threading

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustframe.errors import ConfigError, KeysMissing, SigningError
from trustframe.provenance import keys
from trustframe.provenance.reading import read_provenance
from trustframe.provenance.repository import SQLiteRepository
from trustframe.provenance.signing import sign_file
from trustframe.settings import load_settings

ALG = "org.trustframe.wm.1"


def test_keys_are_private_and_not_overwritten(home):
    d = home.keys_dir
    for name in ("signer.key", "root.key", "intermediate.key", "watermark.key"):
        assert stat.S_IMODE(os.stat(d / name).st_mode) == 0o600
    with pytest.raises(ConfigError, match="already exist"):
        keys.init_keys(home)
    roles = [c.role for c in keys.show_keys(home)]
    assert roles == ["signer", "intermediate", "trust anchor"]
    assert len(keys.watermark_key(home)) == 32
    assert keys.watermark_key(home) not in (d / "signer.key").read_bytes()


def test_signing_certificate_has_the_shape_c2pa_requires(home):
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((home.keys_dir / "signer.pem").read_bytes())
    ext = cert.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ku = ext.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    ext.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days > 365 * 10


@pytest.mark.parametrize("ext", ["png", "jpg", "webp", "mp4", "mov"])
def test_sign_and_read_every_format(home, media_files, tmp_path, ext):
    out = tmp_path / f"signed.{ext}"
    r = sign_file(media_files[ext], out, source_type="trainedAlgorithmicMedia",
                  soft_binding=(ALG, "00112233aabb"), settings=home)
    p = read_provenance(out, home)
    assert p.present and p.state == "trusted" and p.failures == []
    assert p.manifest_id == r.manifest_id and p.ai_generated is True
    assert p.actions == ["c2pa.created"] and p.digital_source_types == ["trainedAlgorithmicMedia"]
    assert p.soft_bindings == [{"alg": ALG, "value": "00112233aabb"}]
    assert p.signer == "TrustFrame Signer"


def test_camera_capture_is_not_ai_and_ingredient_is_listed(home, media_files, tmp_path):
    out = tmp_path / "edit.jpg"
    sign_file(media_files["jpg"], out, source_type="digitalCapture", ingredient=media_files["png"],
              settings=home)
    p = read_provenance(out, home)
    assert p.state == "trusted" and p.ai_generated is False
    assert p.ingredients == [{"title": "sample.png", "format": "image/png", "relationship": "componentOf"}]


def test_unknown_source_type_is_refused(home, media_files, tmp_path):
    with pytest.raises(ConfigError, match="digital source type"):
        sign_file(media_files["png"], tmp_path / "x.png", source_type="paintedByHand", settings=home)
    assert not (tmp_path / "x.png").exists()


def test_untrusted_signer_reads_valid_not_trusted(home, media_files, tmp_path, monkeypatch):
    out = tmp_path / "signed.png"
    sign_file(media_files["png"], out, settings=home)
    monkeypatch.setenv("TRUSTFRAME_HOME", str(tmp_path / "other-home"))  # a verifier without our root
    p = read_provenance(out, load_settings())
    assert p.state == "valid" and "signingCredential.untrusted" in p.failures


def test_user_trust_bundle_makes_a_foreign_chain_trusted(home, media_files, tmp_path, monkeypatch):
    out = tmp_path / "signed.png"
    sign_file(media_files["png"], out, settings=home)
    bundle = home.keys_dir / "root.pem"
    monkeypatch.setenv("TRUSTFRAME_HOME", str(tmp_path / "verifier"))
    monkeypatch.setenv("TRUSTFRAME_TRUST_ANCHORS", f'["{bundle}"]')
    assert read_provenance(out, load_settings()).state == "trusted"


def test_ed25519_chain(tmp_path, monkeypatch, media_files):
    monkeypatch.setenv("TRUSTFRAME_HOME", str(tmp_path / "ed"))
    s = load_settings()
    keys.init_keys(s, alg="ed25519")
    out = tmp_path / "ed.png"
    sign_file(media_files["png"], out, settings=s)
    assert read_provenance(out, s).state == "trusted"


def test_own_pem_chain_and_callback_signer(home, media_files, tmp_path, monkeypatch):
    """A user's own chain from config; then the same chain with the key held by a callback."""
    chain, key = home.keys_dir / "signer-chain.pem", home.keys_dir / "signer.key"
    monkeypatch.setenv("TRUSTFRAME_SIGNER_CERT", str(chain))
    monkeypatch.setenv("TRUSTFRAME_SIGNER_KEY", str(key))
    s = load_settings()
    sign_file(media_files["png"], tmp_path / "a.png", settings=s)
    assert read_provenance(tmp_path / "a.png", s).state == "trusted"

    private = serialization.load_pem_private_key(key.read_bytes(), None)
    calls = []

    def hsm(data: bytes) -> bytes:
        calls.append(len(data))
        return private.sign(data, ec.ECDSA(hashes.SHA256()))

    sign_file(media_files["png"], tmp_path / "b.png", settings=s, callback=hsm)
    assert calls and read_provenance(tmp_path / "b.png", s).state == "trusted"


def test_callback_signer_from_config_needs_no_key_file(home, media_files, tmp_path, monkeypatch):
    """`signer_callback = "module:function"`: the private key never reaches TrustFrame."""
    module = tmp_path / "my_hsm.py"
    key_file = str(home.keys_dir / "signer.key")
    module.write_text(
        "from cryptography.hazmat.primitives import hashes, serialization\n"
        "from cryptography.hazmat.primitives.asymmetric import ec\n"
        f"KEY = serialization.load_pem_private_key(open({key_file!r}, 'rb').read(), None)\n"
        "def sign(data):\n"
        "    return KEY.sign(data, ec.ECDSA(hashes.SHA256()))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TRUSTFRAME_SIGNER_CERT", str(home.keys_dir / "signer-chain.pem"))
    monkeypatch.setenv("TRUSTFRAME_SIGNER_CALLBACK", "my_hsm:sign")
    s = load_settings()
    assert s.signer_key is None
    sign_file(media_files["png"], tmp_path / "c.png", settings=s)
    assert read_provenance(tmp_path / "c.png", s).state == "trusted"
    monkeypatch.setenv("TRUSTFRAME_SIGNER_CALLBACK", "my_hsm:missing")
    with pytest.raises(ConfigError, match="signer callback"):
        sign_file(media_files["png"], tmp_path / "d.png", settings=load_settings())
    assert not (tmp_path / "d.png").exists()


def test_unreachable_timestamp_authority_fails_cleanly(home, media_files, tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTFRAME_TSA_URL", "http://127.0.0.1:9/tsa")  # discard port: refused
    out = tmp_path / "signed.png"
    with pytest.raises(SigningError):
        sign_file(media_files["png"], out, settings=load_settings())
    assert list(tmp_path.glob("signed*")) == [] and list(tmp_path.glob(".signed*")) == []


def test_sign_without_keys_creates_them_but_show_needs_them(tmp_path, monkeypatch, media_files):
    monkeypatch.setenv("TRUSTFRAME_HOME", str(tmp_path / "fresh"))
    s = load_settings()
    with pytest.raises(KeysMissing):
        keys.show_keys(s)
    sign_file(media_files["png"], tmp_path / "a.png", settings=s)
    assert read_provenance(tmp_path / "a.png", s).state == "trusted"


def test_repository_round_trip_and_unique_payloads(tmp_path):
    repo = SQLiteRepository(tmp_path / "m.db")
    payloads = {repo.allocate_payload(ALG) for _ in range(50)}
    assert len(payloads) == 50 and all(len(p) == 12 for p in payloads)
    repo.store("urn:c2pa:1", b"store-1", "image/png", [(ALG, "AABBCCDDEEFF")])
    repo.store("urn:c2pa:2", b"store-2", "video/mp4", [(ALG, "aabbccddeeff")])
    assert repo.by_binding(ALG, "aabbccddeeff") == ["urn:c2pa:2", "urn:c2pa:1"]
    assert repo.by_binding(ALG, "aabbccddeeff", max_results=1) == ["urn:c2pa:2"]
    assert repo.by_binding("other.alg", "aabbccddeeff") == []
    assert repo.get("urn:c2pa:1").store == b"store-1" and repo.get("nope") is None
    assert repo.algorithms() == [ALG]
    # durable: a second handle on the same file sees everything
    assert SQLiteRepository(tmp_path / "m.db").get("urn:c2pa:2").mime == "video/mp4"


def test_repository_failed_write_is_rolled_back_and_threads_share_it(tmp_path):
    repo = SQLiteRepository(tmp_path / "m.db")
    with pytest.raises(AttributeError):
        repo.store("urn:c2pa:x", b"s", "image/png", [(ALG, None)])  # fails after the first insert
    assert repo.get("urn:c2pa:x") is None

    def work(i):
        repo.store(f"urn:c2pa:{i}", b"s", "image/png", [(ALG, f"{i:012x}")])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(repo.by_binding(ALG, f"{i:012x}") == [f"urn:c2pa:{i}"] for i in range(16))


def test_sign_registers_the_manifest_under_its_soft_binding(home, media_files, tmp_path):
    repo = SQLiteRepository(home.repository_path)
    r = sign_file(media_files["mp4"], tmp_path / "s.mp4", soft_binding=(ALG, "0badc0ffee00"),
                  settings=home, repository=repo)
    assert repo.by_binding(ALG, "0badc0ffee00") == [r.manifest_id]
    assert repo.get(r.manifest_id).store == r.manifest_store

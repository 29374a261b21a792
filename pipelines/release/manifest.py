"""Per-epoch manifests (Frictionless Data Package v2), Ed25519 signatures, and verification.

``<release>/<epoch>.datapackage.json`` lists every file of the epoch as a resource with its
path, ``bytes``, ``hash`` (``sha256:<hex>``), ``rows`` and a table schema; its exact bytes are
signed with the release key into ``<epoch>.datapackage.json.sig`` (base64). ``verify_release``
checks the signature with the published public key, then every file's size, hash and row count,
and that no file sits in an epoch folder without being listed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipelines.ingest import sha256_file

PROFILE = "https://datapackage.org/profiles/2.0/datapackage.json"
PARQUET_MEDIATYPE = "application/vnd.apache.parquet"
FORMAT_VERSION = 1


class ReleaseVerificationError(ValueError):
    """The release does not match its signed manifests (the message lists every problem)."""


def descriptor_path(root: Path, epoch: str) -> Path:
    return root / f"{epoch}.datapackage.json"


def signature_path(root: Path, epoch: str) -> Path:
    return root / f"{epoch}.datapackage.json.sig"


def _field_type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "integer"
    if dtype.is_float() or dtype.is_decimal():
        return "number"
    if dtype == pl.Boolean:
        return "boolean"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    if isinstance(dtype, pl.List | pl.Array):
        return "array"
    if isinstance(dtype, pl.Struct):
        return "object"
    return "string"


# -- keys ------------------------------------------------------------------------------------


def generate_keys(folder: str | Path) -> tuple[Path, Path, Path]:
    """A new release signing key pair (PEM) and pseudonymization secret, written private 0600."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    private, public, secret = folder / "release_signing.pem", folder / "release_signing.pub", folder / "release_secret.hex"
    for path in (private, secret):
        if path.exists():
            raise ValueError(f"{path} exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    for path, data in ((private, pem), (secret, os.urandom(32).hex().encode() + b"\n")):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public, secret


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except ValueError as e:
        raise ValueError(f"{path} is not a PEM public key: {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def key_id(public: Ed25519PublicKey) -> str:
    """First 16 hex digits of the sha256 of the raw 32-byte public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# -- writing -----------------------------------------------------------------------------------


def write_manifest(root: Path, epoch: str, files: dict[str, Path], meta: dict, key: Ed25519PrivateKey) -> Path:
    """Write and sign ``<epoch>.datapackage.json`` for ``files`` (table name -> Parquet file)."""
    resources = []
    for table, path in sorted(files.items()):
        schema = pl.read_parquet_schema(path)
        resources.append({
            "name": table,
            "path": path.relative_to(root).as_posix(),
            "format": "parquet",
            "mediatype": PARQUET_MEDIATYPE,
            "bytes": path.stat().st_size,
            "hash": f"sha256:{sha256_file(path)}",
            "rows": pq.ParquetFile(path).metadata.num_rows,
            "schema": {"fields": [{"name": n, "type": _field_type(t)} for n, t in schema.items()]},
        })  # fmt: skip
    descriptor = {
        "$schema": PROFILE,
        "name": f"fleetproof-release-{epoch.lower()}",
        "title": f"fleetproof public release, epoch {epoch}",
        "version": f"{FORMAT_VERSION}.0.0",
        "fleetproof": {**meta, "epoch": epoch, "format_version": FORMAT_VERSION, "signing_key_id": key_id(key.public_key())},
        "resources": resources,
    }
    data = (json.dumps(descriptor, indent=1, sort_keys=True) + "\n").encode()
    target, sig = descriptor_path(root, epoch), signature_path(root, epoch)
    for path, content in ((target, data), (sig, base64.b64encode(key.sign(data)) + b"\n")):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
    return target


# -- verification ------------------------------------------------------------------------------


def release_epochs(root: Path) -> list[str]:
    return sorted(p.name.removesuffix(".datapackage.json") for p in root.glob("*.datapackage.json"))


def _check_epoch(root: Path, epoch: str, public: Ed25519PublicKey) -> list[str]:
    desc, sig = descriptor_path(root, epoch), signature_path(root, epoch)
    if not sig.exists():
        return [f"{epoch}: signature file {sig.name} is missing"]
    data = desc.read_bytes()
    try:
        public.verify(base64.b64decode(sig.read_bytes().strip(), validate=True), data)
    except (InvalidSignature, ValueError):
        return [(f"{epoch}: the manifest's signature does not verify with key {key_id(public)} "
                 "(the manifest was changed, or it was signed by another key)")]  # fmt: skip
    problems = []
    listed = set()
    for res in json.loads(data)["resources"]:
        rel = res["path"]
        if rel.startswith("/") or ".." in Path(rel).parts:
            problems.append(f"{epoch}: resource {res['name']} has an unsafe path {rel!r}")
            continue
        path = root / rel
        listed.add(path)
        if not path.is_file():
            problems.append(f"{epoch}: file {rel} is missing")
            continue
        digest = f"sha256:{sha256_file(path)}"
        if path.stat().st_size != res["bytes"] or digest != res["hash"]:
            problems.append(f"{epoch}: file {rel} was changed ({digest}, {path.stat().st_size} bytes; "
                            f"manifest: {res['hash']}, {res['bytes']} bytes)")  # fmt: skip
            continue
        rows = pq.ParquetFile(path).metadata.num_rows
        if rows != res["rows"]:
            problems.append(f"{epoch}: file {rel} has {rows} rows, manifest says {res['rows']}")
    for path in sorted(root.glob(f"*/epoch={epoch}/*")):
        if path not in listed:
            problems.append(f"{epoch}: file {path.relative_to(root).as_posix()} is not in the manifest")
    return problems


def verify_release(root: str | Path, public: Ed25519PublicKey, epochs: list[str] | None = None) -> list[str]:
    """Check signatures, hashes, sizes and row counts of every epoch (or ``epochs``); returns
    the epochs verified, or raises ``ReleaseVerificationError`` listing every problem."""
    root = Path(root)
    if not root.is_dir():
        raise ReleaseVerificationError(f"{root} is not a release folder")
    found = release_epochs(root)
    wanted = epochs or found
    problems = [f"{e}: manifest {descriptor_path(root, e).name} is missing" for e in wanted if e not in found]
    if not wanted:
        problems.append(f"{root} holds no <epoch>.datapackage.json manifest")
    orphans = {p.name.removeprefix("epoch=") for p in root.glob("*/epoch=*")} - set(found)
    problems += [f"{e}: files under */epoch={e}/ have no manifest" for e in sorted(orphans) if epochs is None]
    for epoch in (e for e in wanted if e in found):
        problems += _check_epoch(root, epoch, public)
    if problems:
        raise ReleaseVerificationError("release verification failed:\n  " + "\n  ".join(problems))
    return list(wanted)

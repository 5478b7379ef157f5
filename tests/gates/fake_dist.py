"""A small dist/lambda that agrees with itself: two zips, their SBOMs, SHA256SUMS and manifest.json, written by the
same code `make package` uses (scripts/build_manifest.py), without building anything (no pip, no wheels)."""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import build_manifest  # noqa: E402

COMPONENTS = ("ingest", "api")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_sbom(zip_path: Path, sbom_path: Path) -> None:
    """An SBOM of a zip that ships no distribution: the zip's digest as its subject, no components."""
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "metadata": {"component": {"name": zip_path.stem, "hashes": [{"alg": "SHA-256", "content": sha256(zip_path)}]}},
        "components": [],
    }
    sbom_path.write_text(json.dumps(bom, sort_keys=True), encoding="utf-8")


def fake_dist(directory: Path, commit: str, handler_text: str = "") -> dict[str, Any]:
    """Write the dist and return its manifest; `handler_text` changes the zips' bytes (a rebuilt, different zip)."""
    directory.mkdir(parents=True, exist_ok=True)
    artifacts = {}
    for name in COMPONENTS:
        zip_path, sbom_path = directory / f"{name}.zip", directory / f"{name}.cdx.json"
        with zipfile.ZipFile(zip_path, "w") as archive:
            info = zipfile.ZipInfo(f"rampart/{name}_handler.py", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, f"HANDLER = {name!r}\n{handler_text}")
        write_sbom(zip_path, sbom_path)
        artifacts[zip_path.name] = build_manifest.artifact_entry(zip_path, sbom_path)
    manifest = build_manifest.make_manifest(
        commit=commit, clean=True, target={}, builder={}, inputs={}, artifacts=artifacts, root=REPO
    )
    build_manifest.write_manifest(directory, manifest)
    return manifest


def subjects(directory: Path) -> list[Path]:
    """What the gate attests: the manifest, each zip and each SBOM (what the deploy verifies, file by file)."""
    return [directory / "manifest.json", *(directory / f"{n}{s}" for n in COMPONENTS for s in (".zip", ".cdx.json"))]

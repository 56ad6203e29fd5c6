"""One bundle from the members of several: the union ensemble, to be calibrated as a whole.

    python -m export.merge --bundle core/models/default --bundle OTHER --out MERGED [--version V]
    then: export.refit --bundle MERGED --temperatures ... ; export.intake ... ; export.sign ...

The bundles must agree on everything a member's input and output depend on (classes, input size,
normalisation, preprocessing, TTA views): each member keeps the pixels it was trained and calibrated
on. Member files are copied unchanged except that an intake-check output is removed (its statistics
and thresholds belong to the ensemble it was fitted for): the merged bundle has no intake check until
export.intake fits one. Its gate is the first bundle's, marked in the provenance as not yet re-fitted:
export.refit --temperatures fits temperatures and gate for the union.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import onnx

from core.inference.bundle import Bundle, load_bundle, write_bundle
from core.inference.manifest import Manifest

from .ood import strip_ood_output

# What a member's input and output depend on: merged bundles must agree on all of it.
SHARED_FIELDS = ("class_names", "positive_class", "input_size", "mean", "std", "preprocessing", "tta_views")


class MergeError(ValueError):
    """The bundles cannot be one ensemble; the message says which field differs."""


def check_compatible(manifests: list[Manifest]) -> None:
    first = manifests[0]
    for other in manifests[1:]:
        for name in SHARED_FIELDS:
            if getattr(first, name) != getattr(other, name):
                raise MergeError(
                    f"cannot merge {first.version} and {other.version}: their {name} differ "
                    f"({getattr(first, name)!r} vs {getattr(other, name)!r}); members must see the same input"
                )


def merge(bundles: list[Bundle], out: Path, name: str | None = None, version: str | None = None) -> Bundle:
    """Write the union of the bundles' members to `out` (unsigned, no intake check, gate to re-fit)."""
    if len(bundles) < 2:
        raise MergeError("give at least two bundles to merge")
    manifests = [b.manifest for b in bundles]
    check_compatible(manifests)
    first = manifests[0]
    version = version or "+".join(m.version for m in manifests)
    members, sources = [], []
    with tempfile.TemporaryDirectory(prefix="melascreen-merge-") as tmp:
        files = {}
        for bundle in bundles:
            listed = []
            for mem in bundle.manifest.members:
                file = f"member-{len(members)}.onnx"
                # strip_ood_output leaves a member without the output as it is
                onnx.save(strip_ood_output(onnx.load(str(bundle.member_path(mem)))), str(Path(tmp) / file))
                files[file] = Path(tmp) / file
                members.append(replace(mem, file=file, sha256=""))
                listed.append({"file": file, "was": mem.file, "sha256_before": mem.sha256})
            sources.append(
                {
                    "version": bundle.manifest.version,
                    "identity": bundle.identity,
                    "members": listed,
                    "provenance": bundle.manifest.provenance,
                }
            )
        provenance = {
            "merged_from": sources,
            "gate": f"the gate of {first.version}, not yet re-fitted for the union (export.refit --temperatures)",
        }
        manifest = replace(
            first,
            name=name or first.name,
            version=version,
            members=tuple(members),
            ood=None,
            created="",
            provenance=provenance,
        )
        return write_bundle(out, manifest, files, merged_card(manifest, bundles))


def merged_card(manifest: Manifest, bundles: list[Bundle]) -> str:
    lines = [
        f"# {manifest.name} {manifest.version}",
        "",
        "An ensemble of the members of " + ", ".join(b.manifest.version for b in bundles) + " (export.merge).",
        "Each member keeps its input (preprocessing, size, views) and its weights; the temperatures, the gate",
        "and the intake check are fitted for the union afterwards (export.refit, export.intake).",
        "",
        "## Members",
        "",
    ]
    i = 0
    for b in bundles:
        for mem in b.manifest.members:
            lines.append(f"- member-{i}.onnx: {mem.file} of {b.manifest.version} ({mem.arch}, seed {mem.seed})")
            i += 1
    lines += ["", "## Disclaimer", "", manifest.disclaimer, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.merge", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", action="append", required=True, type=Path, help="a bundle folder (twice or more)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--name", help="the merged bundle's name (default: the first bundle's)")
    ap.add_argument("--version", help="the merged bundle's version (default: the versions joined by +)")
    args = ap.parse_args(argv)
    try:
        bundles = [load_bundle(p, allow_unsigned=True) for p in args.bundle]
        new = merge(bundles, args.out, args.name, args.version)
    except MergeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{new.root}: {len(new.manifest.members)} members; next: export.refit --temperatures, export.intake")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Old manifests, upgraded once as they are read: everything after `upgrade` sees the current schema.

Schema 1 (bundles written before malignancy triage) declares no malignant classes: its p(malignant) is
p(melanoma), so the upgrade gives it `malignant_classes = [positive_class]`. `schema_version` keeps the
version the manifest was written in (shown to users); `Manifest.to_dict` always writes the current one.
Nothing outside this module asks which schema a manifest was written in: a bundle's gate reads the
upgraded manifest (`Manifest.risk_scope`).
"""

from __future__ import annotations

from core.common.errors import BundleError

SCHEMA_VERSION = 2  # written; READABLE_VERSIONS are read
READABLE_VERSIONS = (1, 2)


def upgrade(doc, source: str) -> dict:
    """A decoded manifest object in the current schema. BundleError (naming `source`) when it is not a
    manifest object, has no readable schema_version, or holds a field its version does not have."""
    if not isinstance(doc, dict):
        raise BundleError("manifest is not a JSON object", source)
    version = doc.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise BundleError("manifest has no valid schema_version; this is not a MelaScreen bundle", source)
    if version not in READABLE_VERSIONS:
        raise BundleError(
            f"schema_version {version if abs(version) < 10**6 else 'huge'} is not supported (this MelaScreen "
            f"reads versions {', '.join(map(str, READABLE_VERSIONS))}); use a matching MelaScreen release "
            "or re-export the bundle",
            source,
        )
    if version == 1:
        if "malignant_classes" in doc:
            raise BundleError("manifest.malignant_classes needs schema_version 2", source)
        positive = doc.get("positive_class")
        # A positive class that is no string is left to the strict reader, which names it.
        return {**doc, "malignant_classes": [positive]} if isinstance(positive, str) else doc
    if "malignant_classes" not in doc:
        raise BundleError("manifest.malignant_classes: missing (required from schema_version 2)", source)
    return doc

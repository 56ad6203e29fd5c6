"""`melascreen bundle info|verify`: what a model bundle holds, and whether every member checks out and loads."""

from __future__ import annotations

from cli.exits import EXIT_OK
from cli.opening import add_trust_options, load_bundle_or_default, trust_line
from cli.terminal import printable


def _intake_line(m) -> str:
    from core import NO_INTAKE_CHECK

    check = m.ood
    if check is None:
        return NO_INTAKE_CHECK
    fitted = f"; fitted on {check.fitted_on}" if check.fitted_on else ""
    return (
        f"intake check ({check.method}): unfamiliar above {check.threshold:.4g} "
        f"({100 * check.validation_flagged:.1f}% of validation images), not dermoscopy above "
        f"{check.clear_threshold:.4g}{fitted}"
    )


def _say_printable(text: str = "") -> None:
    """Print a line of bundle text with its control characters escaped (a manifest is anyone's text)."""
    print(printable(text))


def cmd_bundle_info(args) -> int:
    b = load_bundle_or_default(args.path, args, verify=False)
    m = b.manifest
    t = m.gate.thresholds()
    say = _say_printable
    say(f"{m.name} {m.version} (schema {m.schema_version}, created {m.created})")
    say(f"  task {m.task}; classes {', '.join(m.class_names)}; positive {m.positive_class}")
    say(f"  input {m.input_size}px, mean {m.mean}, std {m.std}; TTA {', '.join(m.tta_views)}")
    say(
        f"  gate at {m.gate.default_confidence}: no cancer suspected < {t.low:.4f}, suspicious >= {t.high:.4f}"
        + (
            f"; review bands: moderate from {t.moderate_from:.4f}, high from {t.high_risk_from:.4f}"
            if t.has_bands
            else ""
        )
    )
    say(f"  {_intake_line(m)}")
    for mem in m.members:
        say(f"  member {mem.file}: {mem.arch}, seed {mem.seed}, T={mem.temperature:.3f}, sha256 {mem.sha256[:16]}...")
    scope = m.risk_scope  # an old melanoma-only bundle says so instead of listing its malignant classes
    say(f"  {scope.note}" if scope.note else f"  malignant classes {', '.join(m.malignant_classes)}")
    say(f"  {trust_line(b)}; identity {b.identity[:16]}")
    say(f"  {m.disclaimer}")
    return EXIT_OK


def cmd_bundle_verify(args) -> int:
    from core import Ensemble, EnsembleSettings

    b = load_bundle_or_default(args.path, args, verify=True)
    say = _say_printable
    ens = Ensemble(b, EnsembleSettings(engine="onnxruntime", provider="cpu"))
    say(
        f"ok: {b.manifest.name} {b.manifest.version}: {len(b.manifest.members)} members, checksums verified, "
        f"all load in onnxruntime ({ens.provider_in_use})"
    )
    say(trust_line(b))
    return EXIT_OK


def add_bundle_commands(sub) -> None:
    """Registers `bundle info|verify` on the melascreen parser's subcommands."""
    b = sub.add_parser("bundle", help="inspect a model bundle")
    bsub = b.add_subparsers(dest="bundle_command", required=True)
    bi = bsub.add_parser("info", help="what the bundle holds")
    bi.add_argument("path", nargs="?")
    bi.set_defaults(func=cmd_bundle_info)
    add_trust_options(bi)
    bv = bsub.add_parser("verify", help="check every checksum and load every member")
    bv.add_argument("path", nargs="?")
    bv.set_defaults(func=cmd_bundle_verify)
    add_trust_options(bv)

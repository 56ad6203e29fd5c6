"""Sign a model bundle, or make a publisher key pair.

    python -m export.sign BUNDLE --key PRIVATE.pem      (re-)writes BUNDLE/signature.json
    python -m export.sign --new-key PRIVATE.pem [--public-out PUBLIC.pub]

The bundle is read strictly first (schema and member checksums): only a bundle core would accept
gets signed. The private key stays with the publisher and never goes into the repository; the
public key goes into core/trusted_keys/ (the project's publisher) or a user's trusted keys.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.common.errors import BundleError
from core.inference.bundle import sign_bundle
from core.inference.signing import key_id, new_private_key, private_key_pem, public_key_pem, read_private_key

PASSWORD_ENV = "MELASCREEN_SIGNING_KEY_PASSWORD"  # for an encrypted PEM; never on the command line


def write_new_key(private_out: Path, public_out: Path | None = None) -> tuple[Path, str]:
    """A new Ed25519 key pair: the private key (mode 0600, never overwritten) and the public key."""
    key = new_private_key()
    private_out = Path(private_out)
    fd = os.open(private_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_key_pem(key))
    public_out = Path(public_out) if public_out else private_out.with_suffix(".pub")
    public_out.write_bytes(public_key_pem(key))
    public_out.chmod(0o644)  # a key others may write is ignored when trusted (core.inference.signing)
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return public_out, key_id(raw)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.sign", description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", nargs="?", help="bundle folder to sign")
    ap.add_argument("--key", help="Ed25519 private key (PEM) to sign with")
    ap.add_argument("--new-key", metavar="PRIVATE.pem", help="make a new key pair; writes PRIVATE.pem (0600)")
    ap.add_argument("--public-out", help="where the new public key goes (default: PRIVATE.pub)")
    args = ap.parse_args(argv)
    try:
        if args.new_key:
            public, kid = write_new_key(Path(args.new_key), Path(args.public_out) if args.public_out else None)
            print(f"new key {kid}: private key {args.new_key} (keep it off the repository), public key {public}")
            print(Path(public).read_text(), end="")
            if not args.bundle:
                return 0
        if not args.bundle or not args.key:
            ap.error("give BUNDLE and --key PRIVATE.pem to sign, or --new-key OUT.pem to make a key pair")
        password = os.environ.get(PASSWORD_ENV)
        key = read_private_key(args.key, password.encode() if password else None)
        doc = sign_bundle(Path(args.bundle), key)
    except FileExistsError as exc:
        print(f"error: {exc.filename} exists; a key is never overwritten", file=sys.stderr)
        return 2
    except (BundleError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"signed {args.bundle}: {len(doc['files'])} files, key {doc['key_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

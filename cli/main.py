"""The `melascreen` command line: screen a folder, work the review queue, inspect bundles.

`main` parses the arguments, runs the command under the terminal guard and turns MelaScreen's errors
into a message and an exit code (cli/exits.py); the commands live one job a module beside it."""

from __future__ import annotations

import sys

from cli.exits import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE
from cli.parser import build_parser
from cli.terminal import escaped_output, printable
from core import BundleError, EngineError, MelaScreenError, OutputPathError, ProviderError, StoreError


def main(argv: list[str] | None = None, pdf_writer=None) -> int:
    """`pdf_writer(html, path)`: given by the desktop launcher (Qt); without it `report` writes HTML/CSV only."""
    args = build_parser().parse_args(argv)
    args.pdf_writer = pdf_writer
    try:
        with escaped_output():  # a safety net under every line: stored or bundle text cannot drive the terminal
            return args.func(args)
    except (BundleError, StoreError, ProviderError, EngineError, OutputPathError) as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (MelaScreenError, ValueError, OSError) as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("stopped (Ctrl+C); every result finished so far is stored", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

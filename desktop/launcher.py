"""The `melascreen` entry point: no arguments (or `gui`) opens the app; anything else is the CLI.

Lives in desktop/ so that core never imports the GUI; PySide6 is only imported for the app.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] == "gui":
        try:
            from .app import run_app
        except ImportError as exc:
            print(
                f"error: the desktop app needs PySide6 ({exc}); install MelaScreen with the 'gui' extra, "
                "or use the command line: melascreen screen FOLDER",
                file=sys.stderr,
            )
            return 2
        return run_app(args[1:])
    from cli.main import main as cli_main

    return cli_main(args, pdf_writer=_pdf_writer())


def _pdf_writer():
    """Qt's HTML -> PDF for `report --out FILE.pdf`, when PySide6 is installed; else None (HTML/CSV only)."""
    try:
        import PySide6  # noqa: F401
    except ImportError:
        return None
    from .pdf import html_to_pdf

    return html_to_pdf


if __name__ == "__main__":
    sys.exit(main())

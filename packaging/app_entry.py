"""The script PyInstaller freezes: the same `melascreen` entry point pip installs.

desktop/launcher.py uses a relative import, so it cannot be the frozen script itself.
"""

import sys

from desktop.launcher import main

if __name__ == "__main__":
    sys.exit(main())

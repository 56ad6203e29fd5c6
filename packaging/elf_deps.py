"""What a frozen Linux app needs from the machine it runs on: system libraries and the glibc floor.

Reads the ELF files of a PyInstaller folder with binutils (readelf, objdump). Used by build_dist.py
to refuse a bundle whose libraries cannot all be resolved, to write the .deb's Depends line, and to
report the oldest glibc / libstdc++ the bundle runs on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

# Always present with glibc itself; never a separate dependency to declare.
GLIBC_LIBS = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libdl.so.2",
        "librt.so.1",
        "libpthread.so.0",
        "libutil.so.1",
        "libresolv.so.2",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
        "libcrypt.so.1",
    }
)
_VERSION_RE = {
    "GLIBC": re.compile(r"\bGLIBC_(\d+(?:\.\d+)+)\b"),
    "GLIBCXX": re.compile(r"\bGLIBCXX_(\d+(?:\.\d+)+)\b"),
    "CXXABI": re.compile(r"\bCXXABI_(\d+(?:\.\d+)+)\b"),
}


@dataclass(frozen=True)
class SystemNeeds:
    libraries: dict[str, tuple[str, ...]]  # library soname -> bundled files that need it
    packages: dict[str, str]  # library soname -> Debian package providing it on the build machine
    missing: dict[str, tuple[str, ...]]  # needed, not bundled and not on the build machine either
    floors: dict[str, tuple[str, str]]  # "GLIBC"/"GLIBCXX"/"CXXABI" -> (highest version, file needing it)


def require_binutils() -> None:
    for tool in ("readelf", "objdump"):
        if shutil.which(tool) is None:
            raise SystemExit(f"error: {tool} not found: install binutils (apt-get install -y binutils)")


def elf_files(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def needed_libraries(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def version_floors(files: list[Path], root: Path) -> dict[str, tuple[str, str]]:
    """The highest GLIBC_/GLIBCXX_/CXXABI_ symbol version any file imports."""
    floors: dict[str, tuple[str, str]] = {}
    for path in files:
        out = subprocess.run(["objdump", "-T", str(path)], capture_output=True, text=True).stdout
        imported = "\n".join(line for line in out.splitlines() if "*UND*" in line)
        for name, pattern in _VERSION_RE.items():
            for version in pattern.findall(imported):
                best = floors.get(name)
                if best is None or _version_key(version) > _version_key(best[0]):
                    floors[name] = (version, str(path.relative_to(root)))
    return floors


def _system_library_paths() -> dict[str, str]:
    out = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    paths: dict[str, str] = {}
    for m in re.finditer(r"^\s*(\S+) \(([^)]*)\) => (\S+)$", out, re.MULTILINE):
        name, flags, path = m.groups()
        if "x86-64" in flags or "64bit" in flags or "AArch64" in flags:
            paths.setdefault(name, path)
    return paths


def debian_package_of(path: str) -> str | None:
    if shutil.which("dpkg") is None:
        return None
    for candidate in (path, str(Path(path).resolve())):
        # merged /usr: ldconfig may report /lib/... while dpkg knows /usr/lib/... (or the reverse)
        for variant in (
            candidate,
            candidate.replace("/usr/lib/", "/lib/", 1),
            candidate.replace("/lib/", "/usr/lib/", 1),
        ):
            out = subprocess.run(["dpkg", "-S", variant], capture_output=True, text=True)
            if out.returncode == 0 and out.stdout:
                return out.stdout.split(":", 1)[0].strip()
    return None


def system_needs(root: Path) -> SystemNeeds:
    """Libraries the bundled ELF files need that the bundle itself does not carry."""
    files = elf_files(root)
    bundled = {p.name for p in root.rglob("*") if p.is_file() or p.is_symlink()}
    users: dict[str, list[str]] = defaultdict(list)
    for path in files:
        for lib in needed_libraries(path):
            if lib not in bundled and lib not in GLIBC_LIBS:
                users[lib].append(str(path.relative_to(root)))
    system = _system_library_paths()
    packages, missing = {}, {}
    for lib, who in users.items():
        if lib in system:
            package = debian_package_of(system[lib])
            if package:
                packages[lib] = package
        else:
            missing[lib] = tuple(who)
    return SystemNeeds(
        libraries={k: tuple(v) for k, v in sorted(users.items())},
        packages=dict(sorted(packages.items())),
        missing=dict(sorted(missing.items())),
        floors=version_floors(files, root),
    )

"""Build MelaScreen for clinics: the PyInstaller app folder and its installers, in dist/.

    python packaging/build_dist.py                  # Linux: app, .deb, .run, NSIS script check
    python packaging/build_dist.py --require-model  # a release: refuse to build without a trained model
    python packaging/build_dist.py --bundle PATH    # embed another model bundle (tests: a synthetic one)
    python packaging/build_dist.py                  # Windows: app and the NSIS setup .exe

Run it as a script with the project's venv Python (the one with PyInstaller). The packaging/ folder
has no __init__.py on purpose: as a package named `packaging` it would shadow the PyPI `packaging`
module that pip, setuptools, pytest and PyInstaller import. As a plain folder (a namespace
portion) it never wins over the installed package.

System tools (Debian/Ubuntu): apt-get install -y binutils makeself nsis desktop-file-utils \
libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-render-util0 libxkbcommon-x11-0
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPEC = HERE / "melascreen.spec"
DEFAULT_BUNDLE = ROOT / "core" / "models" / "default"
APT_LINE = (
    "apt-get install -y binutils makeself nsis desktop-file-utils libxcb-icccm4 libxcb-keysyms1 "
    "libxcb-cursor0 libxcb-image0 libxcb-render-util0 libxkbcommon-x11-0"
)
LINUX = sys.platform.startswith("linux")
WINDOWS = sys.platform == "win32"


class BuildError(Exception):
    """A build step failed; the message says what to do."""


def project_version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not match:
        raise BuildError("no version in pyproject.toml [project]")
    return match.group(1)


def check_bundle(bundle: Path, require: bool) -> str | None:
    """Verify the bundle to embed; None when there is none and none is required."""
    if not (bundle / "manifest.json").is_file():
        if require:
            raise BuildError(
                f"no trained model bundle in {bundle} (manifest.json missing): train and export the default "
                "model into core/models/default first, or pass --bundle PATH; --require-model refuses to "
                "build a clinic release without one"
            )
        print(
            f"warning: no model bundle in {bundle}: the app is built without a default model "
            "(users must pick a bundle); use --require-model for releases",
            file=sys.stderr,
        )
        return None
    sys.path.insert(0, str(ROOT))
    from core.common.errors import BundleError
    from core.inference.bundle import load_bundle

    try:
        loaded = load_bundle(bundle, verify=True)
    except BundleError as exc:
        raise BuildError(f"the model bundle {bundle} is not valid: {exc}") from exc
    return f"{loaded.manifest.name} {loaded.manifest.version}"


def freeze(bundle: Path, out: Path, work: Path) -> Path:
    env = dict(os.environ, MELASCREEN_BUNDLE=str(bundle.resolve()))
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(out),
        "--workpath",
        str(work / "pyinstaller"),
        str(SPEC),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    (work).mkdir(parents=True, exist_ok=True)
    (work / "pyinstaller.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise BuildError(f"PyInstaller failed (log: {work / 'pyinstaller.log'}):\n{proc.stderr[-3000:]}")
    return out / "melascreen"


def tree_bytes(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*"))


def smoke_test(app_dir: Path, has_bundle: bool) -> None:
    """Run the frozen CLI with no Python on PATH: the bundle loads, or at least the CLI answers."""
    exe = app_dir / ("melascreen-cli.exe" if WINDOWS else "melascreen")
    args = ["bundle", "verify"] if has_bundle else ["--help"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    if LINUX:
        env["PATH"] = "/usr/bin:/bin"
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        raise BuildError(f"the frozen app failed `{' '.join(args)}`:\n{proc.stdout}\n{proc.stderr}")
    print(f"  frozen app ok: {(proc.stdout.strip().splitlines() or [''])[0][:160]}")


def linux_requirements(app_dir: Path) -> dict:
    from elf_deps import require_binutils, system_needs

    require_binutils()
    needs = system_needs(app_dir / "_internal")
    if needs.missing:
        lines = "\n".join(f"  {lib} (needed by {', '.join(who[:3])})" for lib, who in needs.missing.items())
        raise BuildError(
            "libraries the app needs are neither bundled nor installed on this build machine, so the "
            f"bundle would not start on a clinic's machine either:\n{lines}\ninstall them ({APT_LINE})"
        )
    glibc = needs.floors.get("GLIBC", ("2.17", "-"))[0]
    depends = sorted(set(needs.packages.values()) - {"libc6"})
    depends.insert(0, f"libc6 (>= {glibc})")
    for name, (version, who) in sorted(needs.floors.items()):
        print(f"  {name} floor {version} ({who})")
    return {
        "system_libraries": needs.libraries,
        "debian_depends": depends,
        "floors": {k: {"version": v, "needed_by": who} for k, (v, who) in needs.floors.items()},
    }


def require_tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BuildError(f"{name} not found: install it (apt-get install -y {package}; all tools: {APT_LINE})")
    return found


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    default_targets = "app,deb,run,nsis-check" if LINUX else "app,nsis"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--bundle",
        type=Path,
        default=DEFAULT_BUNDLE,
        help="model bundle folder to embed as core/models/default (default: %(default)s)",
    )
    p.add_argument("--require-model", action="store_true", help="fail when the bundle has no manifest.json")
    p.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    p.add_argument("--work", type=Path, default=ROOT / "build", help="scratch folder (default: build/)")
    p.add_argument(
        "--targets",
        default=default_targets,
        help=f"comma-separated: app, deb, run, nsis (real Windows setup), nsis-check "
        f"(compile the script around a placeholder) (default: {default_targets})",
    )
    p.add_argument(
        "--compression",
        choices=("release", "fast"),
        default="release",
        help="installer compression: release (xz, smallest, minutes) or fast (gzip -1, for tests)",
    )
    p.add_argument("--skip-freeze", action="store_true", help="reuse OUT/melascreen from an earlier build")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    targets = {t.strip() for t in args.targets.split(",") if t.strip()}
    unknown = targets - {"app", "deb", "run", "nsis", "nsis-check"}
    if unknown:
        print(f"error: unknown targets {sorted(unknown)}", file=sys.stderr)
        return 2
    out, work = args.out.resolve(), args.work.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    info: dict = {"version": project_version(), "platform": sys.platform, "timings_s": {}, "sizes_bytes": {}}
    try:
        for target, tool, package in (("deb", "dpkg-deb", "dpkg"), ("run", "makeself", "makeself")):
            if target in targets:
                require_tool(tool, package)
        info["bundle"] = check_bundle(args.bundle, args.require_model)
        app_dir = out / "melascreen"
        t0 = time.monotonic()
        if args.skip_freeze:
            if not (app_dir / "_internal").is_dir():
                raise BuildError(f"--skip-freeze: no earlier build in {app_dir}")
        else:
            print("freezing the app with PyInstaller ...")
            app_dir = freeze(args.bundle, out, work)
        info["timings_s"]["freeze"] = round(time.monotonic() - t0, 1)
        info["sizes_bytes"]["app_unpacked"] = tree_bytes(app_dir)
        smoke_test(app_dir, info["bundle"] is not None)
        if LINUX:
            info["linux"] = linux_requirements(app_dir)
        artifacts: list[Path] = []
        if "deb" in targets:
            from linux_installers import build_deb

            t0 = time.monotonic()
            artifacts.append(
                build_deb(app_dir, out, info["version"], info["linux"]["debian_depends"], work, args.compression)
            )
            info["timings_s"]["deb"] = round(time.monotonic() - t0, 1)
        if "run" in targets:
            from linux_installers import build_run

            t0 = time.monotonic()
            artifacts.append(build_run(app_dir, out, info["version"], work, args.compression))
            info["timings_s"]["run"] = round(time.monotonic() - t0, 1)
        if "nsis" in targets or "nsis-check" in targets:
            from windows_installer import build_nsis, find_makensis, make_placeholder_app

            makensis = find_makensis()
            if makensis is None:
                raise BuildError(
                    "makensis not found: install NSIS (Debian: apt-get install -y nsis; Windows: choco install nsis)"
                )
            t0 = time.monotonic()
            setup_name = f"melascreen-{info['version']}-windows-x64-setup.exe"
            if "nsis" in targets:
                artifacts.append(build_nsis(app_dir, out / setup_name, info["version"], makensis))
            if "nsis-check" in targets:
                placeholder = make_placeholder_app(work / "nsis-placeholder", ROOT / "NOTICES")
                check = build_nsis(placeholder, work / f"placeholder-{setup_name}", info["version"], makensis)
                info["nsis_check"] = {"compiled": str(check), "bytes": check.stat().st_size}
                print(f"  NSIS script compiles (placeholder payload): {check}")
            info["timings_s"]["nsis"] = round(time.monotonic() - t0, 1)
        for path in artifacts:
            info["sizes_bytes"][path.name] = path.stat().st_size
        (out / "SHA256SUMS").write_text("".join(f"{sha256(p)}  {p.name}\n" for p in artifacts))
    except (BuildError, RuntimeError, subprocess.CalledProcessError) as exc:  # RuntimeError: makensis
        detail = getattr(exc, "stderr", None) or ""
        print(f"error: {exc}\n{detail}", file=sys.stderr)
        return 1
    (out / "build-info.json").write_text(json.dumps(info, indent=2) + "\n")
    mib = {k: f"{v / 2**20:.1f} MiB" for k, v in info["sizes_bytes"].items()}
    print(f"done in {sum(info['timings_s'].values()):.0f}s: {json.dumps(mib)}; details in {out / 'build-info.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/bin/sh
# Removes a per-user MelaScreen install (the files the .run installer listed), nothing else:
# screening results and settings (~/.local/share/melascreen, ~/.config/melascreen) are kept.
set -eu
APP="$(cd "$(dirname "$0")" && pwd)"
QUIET=0
[ "${1:-}" = "--quiet" ] && QUIET=1

if [ ! -f "$APP/.installed-files" ] || [ ! -x "$APP/melascreen" ]; then
    echo "error: $APP does not look like a MelaScreen install (no .installed-files); nothing removed" >&2
    exit 1
fi
while IFS= read -r f; do
    [ -n "$f" ] || continue
    if [ "$f" = "$(dirname "$f")/melascreen" ] && [ -L "$f" ]; then
        # only our own link, not another program of the same name
        [ "$(readlink "$f")" = "$APP/melascreen" ] && rm -f "$f"
    else
        rm -f "$f"
    fi
done < "$APP/.installed-files"
created="$(cat "$APP/.created-dirs" 2>/dev/null || true)"
rm -rf "$APP"
# Folders the installer made, deepest first, only while empty.
printf '%s\n' "$created" | while IFS= read -r d; do
    [ -n "$d" ] && rmdir "$d" 2>/dev/null || true
done
[ "$QUIET" = 1 ] || echo "MelaScreen removed from $APP (your results and settings are kept)"

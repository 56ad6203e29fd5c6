#!/bin/sh
# MelaScreen per-user installer: runs inside the unpacked .run archive, needs no root.
#   ./melascreen-<version>-linux-x86_64.run                 install into ~/.local
#   ./melascreen-<version>-linux-x86_64.run -- --prefix DIR install into DIR (DIR/opt/melascreen, DIR/bin)
# Installs:  PREFIX/opt/melascreen (the app), PREFIX/bin/melascreen (a link to it),
#            XDG_DATA_HOME/applications/melascreen.desktop and the icon (a menu entry).
# Remove with PREFIX/opt/melascreen/uninstall.sh (your screening results are kept).
set -eu

PREFIX="${MELASCREEN_PREFIX:-$HOME/.local}"
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="$2"; shift 2 ;;
        --prefix=*) PREFIX="${1#--prefix=}"; shift ;;
        *) echo "unknown option: $1 (use --prefix DIR)" >&2; exit 2 ;;
    esac
done
case "$PREFIX" in /*) ;; *) PREFIX="$(pwd)/$PREFIX" ;; esac
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
APP="$PREFIX/opt/melascreen"
BIN="$PREFIX/bin"
MENU="$DATA_HOME/applications"
ICON_DIR="$DATA_HOME/icons/hicolor/256x256/apps"

# Remember which folders this install creates, so the uninstaller removes them again if empty.
created=""
make_dir() {
    if [ ! -d "$1" ]; then
        parent="$(dirname "$1")"
        make_dir "$parent"
        mkdir "$1"
        created="$1
$created"
    fi
}

if [ -x "$APP/uninstall.sh" ]; then
    echo "Replacing the MelaScreen already installed in $APP"
    "$APP/uninstall.sh" --quiet
fi
for d in "$PREFIX/opt" "$BIN" "$MENU" "$ICON_DIR"; do make_dir "$d"; done

# Copy beside the target, then move: an interrupted install never leaves half an app in place.
rm -rf "$APP.partial"
cp -R melascreen "$APP.partial"
mv "$APP.partial" "$APP"
cp uninstall.sh "$APP/uninstall.sh"
chmod 755 "$APP/uninstall.sh"

ln -sfn "$APP/melascreen" "$BIN/melascreen"
cp melascreen.png "$ICON_DIR/melascreen.png"
# Absolute Exec: ~/.local/bin is not on every desktop session's PATH.
sed -e "s|^Exec=.*|Exec=$APP/melascreen|" -e "s|^TryExec=.*|TryExec=$APP/melascreen|" \
    melascreen.desktop > "$MENU/melascreen.desktop"
chmod 644 "$MENU/melascreen.desktop"

{
    echo "$BIN/melascreen"
    echo "$MENU/melascreen.desktop"
    echo "$ICON_DIR/melascreen.png"
} > "$APP/.installed-files"
printf '%s' "$created" > "$APP/.created-dirs"

# No update-desktop-database / icon-cache calls: desktops watch these folders, the entry has no
# MIME types, and the caches they write would outlive an uninstall.

echo "MelaScreen installed in $APP"
echo "  start it from the applications menu, or run: $BIN/melascreen"
case ":$PATH:" in *":$BIN:"*) ;; *) echo "  ($BIN is not on your PATH; add it to run 'melascreen' by name)" ;; esac
echo "  uninstall: $APP/uninstall.sh"

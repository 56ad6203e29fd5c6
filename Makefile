# Two commands do all the set-up on a fresh machine:
#   make run    install the app (no torch) in .venv and open it on the embedded default bundle
#   make test   install everything (training extras, test tools, packaging tools) and run the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch/torchvision are pinned in pyproject's `train` extra; pip takes them from this platform's local wheels.
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test test-fast lint system-deps app-deps dist clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.app-installed: pyproject.toml | $(BIN)/python
	@echo "Installing MelaScreen and its libraries into $(VENV) (about a minute on first run)..."
	$(BIN)/python -m pip --disable-pip-version-check install -e '.[gui,openvino]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	@echo "Installing MelaScreen with the training, test and packaging extras into $(VENV) (a few minutes)..."
	$(PIP) install -e '.[gui,openvino,train,dev,package]'
	touch $@ $(VENV)/.app-installed

run: $(VENV)/.app-installed app-deps
	$(BIN)/melascreen

# The X11 libraries Qt's xcb plugin loads at start-up (its own error names another library when
# one of these is missing): `make run` installs them when missing.
APP_PACKAGES := libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-render-util0 \
	libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3
# Debian packages the tests and the packaging build need besides those (tools, Xvfb for the GUI
# check, strace for the no-network test, poppler-utils to render PDF reports): installed only when missing.
SYSTEM_PACKAGES := $(APP_PACKAGES) binutils makeself nsis desktop-file-utils xvfb x11-utils strace poppler-utils
app-deps:
	@$(MAKE) --no-print-directory system-deps SYSTEM_PACKAGES="$(APP_PACKAGES)"

system-deps:
	@missing=""; \
	for p in $(SYSTEM_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Lint (with C901 complexity), format, the layer contracts of ../shared/ARCHITECTURE.md (import-linter)
# and the type check of core (mypy, configured in pyproject.toml), then the tests.
lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: $(VENV)/.dev-installed system-deps lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m "not slow" -q
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m slow -q

test-fast: $(VENV)/.dev-installed
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m "not slow" -q

# Clinic installers in dist/ (app folder, .deb, .run; NSIS script check): packaging/README.md.
# Release: make dist DIST_ARGS=--require-model
dist: $(VENV)/.dev-installed system-deps
	$(BIN)/python packaging/build_dist.py $(DIST_ARGS)

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHARED_IMAGES = ROOT.parent / "shared" / "data" / "dermoscopy" / "images"


@pytest.fixture(scope="session", autouse=True)
def trusted_test_publisher(tmp_path_factory):
    """Synthetic bundles are signed by a test key; the whole test session (and its subprocesses) trusts it."""
    from tests.support.synthetic_bundle import trust_test_key

    return trust_test_key(tmp_path_factory.mktemp("trusted-keys"))


@pytest.fixture(scope="session")
def synthetic_bundle(tmp_path_factory):
    from tests.support.synthetic_bundle import make_bundle

    return make_bundle(tmp_path_factory.mktemp("bundle") / "synthetic")


@pytest.fixture(scope="session")
def real_image_paths():
    """A few real dermoscopy images when ../shared is present, else an empty list."""
    if not SHARED_IMAGES.is_dir():
        return []
    return sorted(SHARED_IMAGES.glob("*.jpg"))[:12]

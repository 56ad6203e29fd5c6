"""MelaScreen screening engine: bundle, images, preprocessing, ensemble, gate, store.

No torch, no Qt: this package is all the installed app needs to screen.
"""

__version__ = "0.1.0"

from core.common.offline import keep_offline

# Before any core module imports onnxruntime, which reads its telemetry opt-out once, at import.
keep_offline()

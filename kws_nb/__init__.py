__version__ = "0.1.0"
# Written by hand, not generated: nbdev_export only rewrites the `__version__` line above (settings.ini's version).
# `kws_nb.load_detector` and `kws_nb.score_file` (chapter 06b, kws_nb.detector) load on first use, so `import kws_nb`
# stays light (no torch until a detector is asked for).
_LAZY = {"load_detector": "kws_nb.detector", "score_file": "kws_nb.detector", "Detector": "kws_nb.detector"}

def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kws_nb' has no attribute {name!r}")

def __dir__(): return sorted([*globals(), *_LAZY])

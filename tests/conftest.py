import os, signal
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parent.parent
# The real evaluation audio: $KWS_NB_SHARED_DATA, else shared/data beside the checkout (as kws-pipeline defaults).
SHARED_DATA = Path(os.environ.get("KWS_NB_SHARED_DATA") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data():
    "The real Speech Commands samples; tests that need them skip when absent."
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real audio not found: {SHARED_DATA} (shared/data beside the checkout, or $KWS_NB_SHARED_DATA) is absent")
    return SHARED_DATA


def deliverable_sigint():
    "For Popen's `preexec_fn`: the child takes Ctrl-C by default even when this run inherited it ignored (`nohup cmd &`)."
    signal.signal(signal.SIGINT, signal.SIG_DFL)

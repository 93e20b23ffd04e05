import pytest
from kws_nb.data import find_shared_data

@pytest.fixture(scope="session")
def shared_data():
    "The real Speech Commands samples beside the checkout; tests that need them skip when absent."
    p = find_shared_data()
    if p is None: pytest.skip("real audio not found: ../shared/data beside the checkout (or $KWS_NB_SHARED_DATA) is absent")
    return p

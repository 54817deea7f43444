"""Fixtures of the latency LUT tests (helpers live in ``lut_testutil``)."""
from lut_testutil import add_model  # noqa: F401  (fixture)

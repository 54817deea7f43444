"""Fixtures of the search tests (helpers live in ``search_testutil``)."""
from search_testutil import synthetic, tiny_ckpt, tiny_config  # noqa: F401  (fixtures)

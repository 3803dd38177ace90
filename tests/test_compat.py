"""The private Lightning / jsonargparse attributes the project relies on still exist."""

import importlib

import pytest

from pix2pix_aa.compat import PRIVATE_ATTRIBUTES


@pytest.mark.parametrize("owner,attribute,why", PRIVATE_ATTRIBUTES, ids=[a for _, a, _ in PRIVATE_ATTRIBUTES])
def test_private_attribute_exists(owner: str, attribute: str, why: str) -> None:
    module_name, _, cls_name = owner.rpartition(".")
    try:
        target = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError):
        target = importlib.import_module(owner)
    if attribute == "_batches_that_stepped":  # an instance attribute: look at a fresh loop
        import inspect

        assert "_batches_that_stepped" in inspect.getsource(target), f"{owner}.{attribute} moved ({why})"
        return
    assert hasattr(target, attribute), f"{owner}.{attribute} is gone after an upgrade; it was used because: {why}"

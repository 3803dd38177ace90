"""The private Lightning / jsonargparse attributes the project relies on still exist."""

import importlib

import pytest

from pix2pix_aa.compat import INSTANCE_ATTRIBUTES, PRIVATE_ATTRIBUTES


@pytest.mark.parametrize("owner,attribute,why", PRIVATE_ATTRIBUTES, ids=[a for _, a, _ in PRIVATE_ATTRIBUTES])
def test_private_attribute_exists(owner: str, attribute: str, why: str) -> None:
    module_name, _, cls_name = owner.rpartition(".")
    try:
        target = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError):
        target = importlib.import_module(owner)
    if attribute in INSTANCE_ATTRIBUTES:  # set on instances: look in the owner's source
        import inspect

        assert f"self.{attribute} =" in inspect.getsource(target), f"{owner}.{attribute} moved ({why})"
        return
    assert hasattr(target, attribute), f"{owner}.{attribute} is gone after an upgrade; it was used because: {why}"


def test_parser_helpers_see_options_and_subcommands() -> None:
    from jsonargparse import ArgumentParser

    from pix2pix_aa.compat import parser_actions, subcommand_parsers

    parser, fit = ArgumentParser(prog="p"), ArgumentParser(prog="p fit")
    fit.add_argument("--lr", type=float, default=0.1)
    parser.add_subcommands().add_subcommand("fit", fit)
    assert "lr" in [a.dest for a in parser_actions(fit)]
    assert subcommand_parsers(parser) == [fit]
    assert subcommand_parsers(fit) == []


def test_jsonargparse_debug_follows_its_environment_variable(monkeypatch) -> None:
    from pix2pix_aa.compat import jsonargparse_debug_active

    monkeypatch.delenv("JSONARGPARSE_DEBUG", raising=False)
    assert jsonargparse_debug_active() is False
    monkeypatch.setenv("JSONARGPARSE_DEBUG", "true")
    assert jsonargparse_debug_active() is True

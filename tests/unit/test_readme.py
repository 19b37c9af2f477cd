"""The README's flag tables cannot drift from the code: every flag of every entry script is listed."""

import re
from pathlib import Path

import pytest

from utils.cli import build_parser
from utils.settings import SCRIPTS

ROOT = Path(__file__).resolve().parents[2]


def flags_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Flags and environment variables")
    end = text.index("\n## ", start + 1)
    return text[start:end]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_flag_is_in_the_readme(script):
    parser = build_parser(SCRIPTS[script])
    flags = {option for action in parser._actions for option in action.option_strings if option.startswith("--")}
    flags.discard("--help")
    listed = set(re.findall(r"`(--[a-z0-9-]+)", flags_section()))
    assert flags - listed == set(), f"{script}.py flags missing from the README"


def test_the_readme_lists_no_flag_that_does_not_exist():
    known = set()
    for script in SCRIPTS:
        parser = build_parser(SCRIPTS[script])
        known |= {option for action in parser._actions for option in action.option_strings}
    listed = set(re.findall(r"`(--[a-z0-9-]+)", flags_section()))
    assert listed - known == set()

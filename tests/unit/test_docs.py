"""The docs cannot rot: every relative link resolves, the configuration tables are the settings'
own, and the README stays a front page."""

import re
from pathlib import Path

import pytest

from utils.cli import GENERATED_BEGIN, GENERATED_END, build_parser, configuration_tables
from utils.settings import SCRIPTS

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
README_MAX_LINES = 250


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings."""
    found = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_resolves(page):
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target} does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name}: no heading #{anchor} in {linked.name}"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in relative_links(ROOT / "README.md")}
    assert {page for page in PAGES[1:]} <= linked


def test_the_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= README_MAX_LINES


def test_the_configuration_tables_are_generated_from_the_settings():
    text = (ROOT / "docs" / "configuration.md").read_text()
    generated = text[text.index(GENERATED_BEGIN) : text.index(GENERATED_END) + len(GENERATED_END)]
    assert generated == configuration_tables(SCRIPTS), "run `make docs`"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_flag_of_every_script_is_documented(script):
    text = (ROOT / "docs" / "configuration.md").read_text()
    parser = build_parser(SCRIPTS[script])
    flags = {option for action in parser._actions for option in action.option_strings if option.startswith("--")}
    flags.discard("--help")
    assert {flag for flag in flags if f"`{flag}`" not in text} == set()

"""notebooks/tuning_comparison.ipynb runs top to bottom: a small budget on a temporary copy, executed
by this interpreter's own ipykernel. The committed notebook and its saved outputs are never written."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = PROJECT_ROOT / "notebooks" / "tuning_comparison.ipynb"
STRATEGIES = ("Hyperopt TPE", "scikit-optimize GP", "Random search")
SMALL_RUN = {
    "NOTEBOOK_BUDGET": "3",
    "NOTEBOOK_ROWS": "3000",
    "NOTEBOOK_THREADS": "1",
    "NOTEBOOK_SEED": "42",
    "NOTEBOOK_RECHECK_SEEDS": "2",
    # The copy runs in a temporary folder, outside the repository.
    "NOTEBOOK_PROJECT_ROOT": str(PROJECT_ROOT),
}
CELL_TIMEOUT_S = 300
# Appended to the temporary copy only: which Python did the kernel run?
KERNEL_PROBE = "import json, sys\nprint('KERNEL=' + json.dumps({'executable': sys.executable, 'prefix': sys.prefix}))"


def output_text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            data = output.get("data", {})
            parts.extend(data[kind] for kind in ("text/plain", "text/markdown", "text/html") if kind in data)
    return "\n".join(parts)


def images(notebook) -> int:
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))


def errors(notebook) -> list[str]:
    return [
        f"{output.ename}: {output.evalue}"
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    committed = NOTEBOOK.read_bytes()
    workdir = tmp_path_factory.mktemp("notebook")
    copy = workdir / NOTEBOOK.name
    shutil.copyfile(NOTEBOOK, copy)
    notebook = nbformat.read(copy, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(KERNEL_PROBE))
    with pytest.MonkeyPatch.context() as patch:  # the kernel inherits this process's environment
        for name, value in SMALL_RUN.items():
            patch.setenv(name, value)
        client = NotebookClient(
            notebook,
            kernel_name="python3",
            timeout=CELL_TIMEOUT_S,
            startup_timeout=120,
            resources={"metadata": {"path": str(workdir)}},
        )
        client.execute()  # raises CellExecutionError on the first failing cell
    nbformat.write(notebook, copy)
    assert NOTEBOOK.read_bytes() == committed, "running the test changed the committed notebook"
    return notebook


def test_runs_top_to_bottom_without_error(executed):
    assert errors(executed) == []
    code_cells = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code_cells)


def test_kernel_is_this_python(executed):
    probe = output_text(executed.cells[-1])
    kernel = json.loads(probe.split("KERNEL=", 1)[1])
    assert Path(kernel["prefix"]) == Path(sys.prefix)
    assert kernel["executable"] == sys.executable


def test_it_compares_the_three_strategies_on_the_small_budget(executed):
    text = "\n".join(output_text(cell) for cell in executed.cells)
    for strategy in STRATEGIES:
        assert strategy in text
    assert "budget 3 trials per strategy | rows 3000" in text
    assert "At a budget of 3 trials on 3,000 rows" in text
    assert "winner at this budget: " in text
    winner = text.split("winner at this budget: ", 1)[1].split("\n", 1)[0].strip()
    assert winner in STRATEGIES
    # Three trials are all within TPE's random start-up, so TPE and random search drew the same points.
    assert "evaluated the same parameters in their first 3 of 3 trials" in text
    assert images(executed) == 2  # best-so-far curves and wall times


def test_the_first_code_cell_finds_the_project_from_the_root_or_notebooks(monkeypatch):
    first = next(cell for cell in nbformat.read(NOTEBOOK, as_version=4).cells if cell.cell_type == "code")
    monkeypatch.delenv("NOTEBOOK_PROJECT_ROOT", raising=False)
    for where in (PROJECT_ROOT, PROJECT_ROOT / "notebooks"):
        monkeypatch.chdir(where)
        monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p or ".").resolve() != PROJECT_ROOT])
        namespace: dict = {}
        exec(first.source, namespace)
        assert namespace["PROJECT_ROOT"] == PROJECT_ROOT
        assert str(PROJECT_ROOT) in sys.path


def test_the_committed_notebook_shows_its_results():
    assert NOTEBOOK.stat().st_size < 1_500_000
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert errors(notebook) == []
    assert images(notebook) == 2
    text = "\n".join(output_text(cell) for cell in notebook.cells)
    assert "winner at this budget: " in text

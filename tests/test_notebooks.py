"""The notebooks run top to bottom in a real Jupyter kernel (nbclient, from notebooks/), and
their outputs are what they promise: figures drawn, tables with every policy."""

import base64
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the `notebook` extra (make install) is missing")
nbclient = pytest.importorskip("nbclient", reason="the `notebook` extra (make install) is missing")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
POLICIES = ("none", "mlock", "populate", "map_populate", "zero_page")


def execute(path: Path):
    """The notebook after running every cell in a fresh kernel, with notebooks/ as cwd."""
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def executed(request):
    return request.param, execute(request.param)


def outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def test_every_cell_runs_without_error(executed):
    _, nb = executed
    errors = [o for o in outputs(nb) if o.output_type == "error"]
    assert errors == [], [f"{e.ename}: {e.evalue}" for e in errors]
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")


def test_figures_are_drawn(executed):
    """Each plotting cell leaves a PNG that is a real image."""
    path, nb = executed
    pngs = [o.data["image/png"] for o in outputs(nb)
            if o.output_type in ("display_data", "execute_result") and "image/png" in o.get("data", {})]
    assert pngs, f"{path.name}: no figure"
    for png in pngs:
        raw = base64.b64decode(png)
        assert raw.startswith(b"\x89PNG") and len(raw) > 5000


def test_mitigations_table_has_every_policy(executed):
    """The failure-rate table of mitigations.ipynb names every policy and both kernels."""
    path, nb = executed
    if path.name != "mitigations.ipynb":
        pytest.skip("only mitigations.ipynb has the table")
    tables = [o.data.get("text/plain", "") for o in outputs(nb) if o.output_type == "execute_result"]
    rates = next(t for t in tables if "rate" in t and "failed" in t)
    for name in (*POLICIES, "3.15", "6.18"):
        assert name in rates, name
    assert "oom_killed@touch" in rates and "ok" in rates

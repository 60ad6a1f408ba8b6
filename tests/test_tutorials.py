"""Every tutorial runs end to end as a notebook (with small settings) and shows a figure."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("*.py"))


def test_there_are_tutorials():
    assert TUTORIALS, "tutorials/ holds no tutorial scripts"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_executes(path, tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext", reason="install the 'notebooks' extra")
    nbclient = pytest.importorskip("nbclient", reason="install the 'notebooks' extra")
    monkeypatch.setenv("NEURO_TUTORIAL_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [
        o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    ]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the tutorial shows no figure"
    as_text = [
        o["data"]["text/plain"]
        for o in outputs
        if "<Figure size" in o.get("data", {}).get("text/plain", "")
        and "image/png" not in o.get("data", {})
    ]
    assert not as_text, f"figures shown as text, not drawn: {as_text} (add %matplotlib inline)"


def test_notebook_builder_writes_every_notebook_and_reports_failures(tmp_path):
    """`make notebooks` runs on past a failing tutorial, keeps the repo clean, exits 1."""
    pytest.importorskip("jupytext", reason="install the 'notebooks' extra")
    pytest.importorskip("nbclient", reason="install the 'notebooks' extra")
    nbformat = pytest.importorskip("nbformat", reason="install the 'notebooks' extra")
    bad = tmp_path / "bad.py"
    bad.write_text('# %%\nprint("before")\n\n# %%\nraise ValueError("boom")\n')
    good = tmp_path / "good.py"
    good.write_text('# %%\nopen("written.txt", "w").write("x")\nprint("done")\n')
    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    builder = ROOT / "tools" / "build_notebooks.py"
    run = subprocess.run(
        [sys.executable, str(builder), str(bad), str(good), "--out", str(out), "--small"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert any("bad" in line and "FAILED (ValueError: boom)" in line for line in lines)
    assert any("good" in line and line.rstrip().endswith("OK") for line in lines)
    assert sorted(p.name for p in out.iterdir()) == ["bad.ipynb", "good.ipynb"]  # no temp files
    assert not list(cwd.iterdir()), "the notebook wrote into the working directory"
    cells = nbformat.read(out / "bad.ipynb", as_version=4).cells
    assert [o.output_type for o in cells[1].outputs] == ["error"]
    cells = nbformat.read(out / "good.ipynb", as_version=4).cells
    assert cells[0].outputs[-1].text == "done\n"

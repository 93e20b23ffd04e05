"Unit-test and export cells must not rebind a notebook's papermill parameters: the pipeline's later cells would read the test's value."
import ast, json
from pathlib import Path
import papermill as pm
import pytest

NBS = Path(__file__).resolve().parent.parent / "nbs"


class _TopLevelStores(ast.NodeVisitor):
    "Names a cell binds at notebook level (function, class, lambda and comprehension scopes are their own)."
    def __init__(self): self.names = []
    def _skip(self, node): pass
    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = _skip
    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _skip
    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Store): self.names.append((node.id, node.lineno))


def top_level_stores(source: str) -> list[tuple[str, int]]:
    v = _TopLevelStores(); v.visit(ast.parse(source)); return v.names


def shadowed_parameters(nb_path: Path) -> list[str]:
    "'cell N line L: name' for every parameter a non-`#| notest` cell rebinds."
    cells = json.loads(nb_path.read_text())["cells"]
    is_params = lambda c: "parameters" in c.get("metadata", {}).get("tags", [])
    params = set(pm.inspect_notebook(str(nb_path)))       # the names papermill (and so the pipeline) can inject
    out = []
    for i, c in enumerate(cells):
        src = "".join(l for l in c["source"] if not l.lstrip().startswith(("%", "!")))
        if c["cell_type"] != "code" or is_params(c) or "#| notest" in src: continue
        out += [f"cell {i} line {line}: {name}" for name, line in top_level_stores(src) if name in params]
    return out


def test_the_check_finds_a_shadowed_parameter(tmp_path):
    cell = lambda src, tags=(): dict(cell_type="code", metadata=dict(tags=list(tags)), source=src.splitlines(True), outputs=[])
    nb = tmp_path / "x.ipynb"
    kernel = dict(kernelspec=dict(name="python3", language="python", display_name="Python 3"))
    cells = [cell("seed = 3407\n", ["parameters"]), cell("for seed in range(3): pass\n"),
             cell("def f(seed): return [seed for seed in range(2)]\n"), cell("#| notest\nseed = int(seed)\n")]
    nb.write_text(json.dumps(dict(nbformat=4, nbformat_minor=4, metadata=kernel, cells=cells)))
    assert shadowed_parameters(nb) == ["cell 1 line 1: seed"]


@pytest.mark.parametrize("nb", sorted(NBS.glob("*.ipynb")), ids=lambda p: p.name)
def test_no_test_cell_rebinds_a_parameter(nb):
    assert shadowed_parameters(nb) == [], f"{nb.name}: these cells rebind papermill parameters (use another name)"

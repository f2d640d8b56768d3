"""The layout: layers import only downward (import-linter's contract in pyproject.toml), no
module imports the package root or sits in an import cycle, and the public names stay public."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import scarlet2 as sc

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["ops", "model", "render", "infer", "labeled", "survey"]


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("scarlet2", include_external_packages=False)


def test_layers_contract_is_kept():
    """import-linter reads the layers from pyproject.toml; imports inside functions count."""
    script = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def find_cycle(modules, imports_of):
    """A list of modules forming an import cycle, or None (depth-first search)."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(imports_of(m)):
            if state.get(n) == "open":
                return stack[stack.index(n) :] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = "done"
        return None

    for m in sorted(modules):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_cycle_finder_finds_a_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(edges, lambda m: edges[m]) == ["a", "b", "c", "a"]
    edges["c"] = set()
    assert find_cycle(edges, lambda m: edges[m]) is None


def test_no_import_cycles(graph):
    """Package __init__ files only re-export, so they are left out: a cycle through one is the
    package importing its own child."""
    modules = {m for m in graph.modules if m != "scarlet2"}
    packages = {m for m in modules if (ROOT / Path(*m.split(".")) / "__init__.py").exists()}

    def imports_of(m):
        return graph.find_modules_directly_imported_by(m) - packages if m not in packages else set()

    assert find_cycle(modules, imports_of) is None


def test_no_module_imports_the_package_root(graph):
    importers = graph.find_modules_that_directly_import("scarlet2") - {"scarlet2"}
    assert not importers, f"import scarlet2's layers, not the package root: {sorted(importers)}"


def test_each_layer_is_a_subpackage_with_a_docstring():
    for layer in LAYERS:
        module = importlib.import_module(f"scarlet2.{layer}")
        assert module.__doc__ and "import" in module.__doc__.lower(), layer


def test_public_names_import_from_the_package():
    init = ast.parse((ROOT / "scarlet2" / "__init__.py").read_text())
    exported = next(
        ast.literal_eval(node.value)
        for node in init.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__"
    )
    assert exported == sc.__all__ and len(set(exported)) == len(exported)
    assert all(hasattr(sc, name) for name in exported)
    assert (ROOT / "scarlet2" / "py.typed").exists()


def test_errors_subclass_the_builtins_users_catch():
    assert issubclass(sc.SchemaError, sc.InputError) and issubclass(sc.InputError, ValueError)
    assert issubclass(sc.StoreError, ValueError) and issubclass(sc.StoreError, sc.ScarletError)


#: scarlet2.__all__ before the layered layout: every name still imports from the package.
NAMES_OF_0_1_0 = (
    "ArrayMorphology Background ArrayPSF BoxLeakageWarning Component FitInfo Frame Gaussian GaussianPSF "
    "Interval MoffatPSF Observation Parameter Point PointSource Positive Real SchemaError Scene Sersic Simplex "
    "Source Spergel UnitDisk box_leakage detect enable_compilation_cache fit fit_dataset from_arrays from_fits "
    "get_wcs grow_boxes initialize load_scene open_dataset open_result free_parameters log_likelihood "
    "parameters render render_source save_scene simulate sersic_bn set_cpu_threads to_observation "
    "uncertainties validate write_zarr"
).split()


def test_names_public_before_the_layout_are_still_public():
    assert set(NAMES_OF_0_1_0) <= set(sc.__all__)
    assert all(hasattr(sc, name) for name in NAMES_OF_0_1_0)

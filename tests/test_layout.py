"The project's shape: nbdev 2's settings.ini layout, module order, no private imports, a runtime install without the extras."
import ast, configparser, importlib.metadata, json, re, subprocess, sys, textwrap
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "kws_nb"
MODULES = sorted(p for p in PKG.glob("*.py") if not p.name.startswith("_"))


def settings() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser(delimiters=["="]); cfg.read(REPO / "settings.ini")
    return cfg["DEFAULT"]


def test_settings_ini_is_the_one_place():
    s = settings()
    for key in ("lib_name", "version", "min_python", "requirements", "dev_requirements", "console_scripts"):
        assert s.get(key), f"settings.ini lacks {key}"
    assert (s["allowed_cell_metadata_keys"], s["tst_flags"]) == ("tags", "notest")
    assert {"torch==2.11.0", "torchaudio==2.11.0"} <= set(s["requirements"].split())
    assert {"nbdev==2.4.14", "execnb<0.2"} <= set(s["dev_requirements"].split())
    assert any(r.startswith("fastcore") and "<2" in r for r in s["requirements"].split())
    pyproject = (REPO / "pyproject.toml").read_text()
    assert "[tool.nbdev]" not in pyproject and "[project]" not in pyproject, "pyproject.toml must stay the build-system stub"
    assert (REPO / "setup.py").exists()
    import kws_nb
    assert kws_nb.__version__ == s["version"]
    # every console script of settings.ini is installed from it
    scripts = {l.split("=")[0].strip() for l in s["console_scripts"].split()}
    installed = {e.name for e in importlib.metadata.entry_points(group="console_scripts") if e.value.startswith("kws_nb.")}
    assert scripts == installed == {"kws-pipeline", "kws-synth", "kws-stream", "kws-report", "kws-refresh-pretrained", "kws-cascade"}


def chapter(path: Path) -> str:
    "The notebook a module is exported from, e.g. '03_train'."
    m = re.search(r"File to edit: \.\./nbs/(\S+)\.ipynb", path.read_text())
    assert m, f"{path} has no nbdev header naming its notebook"
    return m.group(1)


def package_imports(path: Path) -> list[tuple[str, list[str]]]:
    "(kws_nb module, names) for every import of the package inside `path`."
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 1: out.append((mod, [a.name for a in node.names]))
            elif mod.startswith("kws_nb."): out.append((mod[len("kws_nb."):], [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name[len("kws_nb."):], []) for a in node.names if a.name.startswith("kws_nb.")]
    return out


def test_later_modules_import_earlier_ones_only():
    order = {p.stem: chapter(p) for p in MODULES}
    assert order["metrics"] < order["train"] < order["detection"], order   # the metrics chapter comes early
    for p in MODULES:
        for mod, _ in package_imports(p):
            assert mod in order, f"{p.name} imports kws_nb.{mod}, which is not a module"
            assert order[mod] < order[p.stem], f"{p.name} ({order[p.stem]}) imports {mod} ({order[mod]}): a later chapter"


def test_no_private_names_across_modules():
    for p in MODULES:
        for mod, names in package_imports(p):
            assert not [n for n in names if n.startswith("_")], f"{p.name} imports private {names} from kws_nb.{mod}"


def test_library_does_not_import_test_helpers():
    for p in MODULES:
        if p.stem != "testing":
            assert "testing" not in [m for m, _ in package_imports(p)], f"{p.name} imports kws_nb.testing (test fixtures)"


def extra_modules() -> set[str]:
    "Top-level modules that only the `train` and `dev` extras install."
    s = settings()
    dists = {re.split(r"[<>=!~\[ ]", r)[0].lower().replace("_", "-") for key in ("train_requirements", "dev_requirements")
             for r in s[key].split()}
    base = {re.split(r"[<>=!~\[ ]", r)[0].lower().replace("_", "-") for r in s["requirements"].split()}
    mods = set()
    for mod, owners in importlib.metadata.packages_distributions().items():
        owners = {o.lower().replace("_", "-") for o in owners}
        if owners & dists and not owners & base: mods.add(mod)
    return mods


def test_runtime_needs_only_the_base_install(tmp_path):
    "kws-stream streams a file through every model format with every train/dev extra made unimportable."
    blocked = extra_modules()
    assert {"tqdm", "matplotlib", "thop", "papermill", "nbdev", "onnx"} <= blocked, blocked
    from kws_nb.model import save_checkpoint
    from kws_nb.quant import quantize, save_quantized
    from kws_nb.streaming import StreamingCRNN, export_torchscript
    from kws_nb.export import export_onnx, save_compact
    from kws_nb.testing import sharpened_crnn, bursty_noise
    import soundfile as sf
    m = sharpened_crnn(seed=0); q = quantize(m)
    models = [save_checkpoint(tmp_path / "ck.pt", m, m.config), save_quantized(tmp_path / "q.pt", q, m.config),
              save_compact(tmp_path / "m.kws", m), save_compact(tmp_path / "q.kws", q),
              export_torchscript(StreamingCRNN(m), tmp_path / "ts.pt"), export_onnx(m, tmp_path / "m.onnx"),
              export_onnx(m, tmp_path / "q.onnx", int8=True)]
    sf.write(tmp_path / "a.wav", (0.5 * bursty_noise(16000 * 3, seed=5)).clamp(-1, 1).numpy(), 16000, subtype="PCM_16")
    code = textwrap.dedent(f"""
        import sys, importlib.abc
        BLOCKED = {sorted(blocked)!r}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED: raise ImportError(f"{{name}} is not in the base install")
        sys.meta_path.insert(0, Block())
        from kws_nb.detector import kws_stream
        for model in {[str(p) for p in models]!r}:
            kws_stream(argv=[{str(tmp_path / "a.wav")!r}, "--checkpoint", model, "--threshold", "0.3", "--json"])
        import kws_nb
        print("load_detector:", kws_nb.load_detector({str(models[1])!r}), file=sys.stderr)
        print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED), file=sys.stderr)
        """)
    (tmp_path / "run.py").write_text(code)
    r = subprocess.run([sys.executable, str(tmp_path / "run.py")], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("detection(s) of 'sheila'") == len(models) and "loaded: []" in r.stderr, r.stderr[-2000:]
    summaries = [json.loads(l)["summary"] for l in r.stdout.splitlines() if l.startswith('{"summary"')]
    assert [(s["format"], s["backend"]) for s in summaries] == [
        ("checkpoint", "torch"), ("int8", "torch"), ("compact", "torch"), ("compact", "torch"), ("torchscript", "torch"),
        ("onnx", "onnxruntime"), ("onnx", "onnxruntime")], summaries
    assert all(s["detections"] > 0 for s in summaries), summaries
    assert "load_detector: Detector(" in r.stderr and "int8 on torch" in r.stderr


def test_import_kws_nb_is_light():
    "`import kws_nb` loads no torch; `kws_nb.load_detector` and `kws_nb.score_file` load the detector module on first use."
    code = ("import sys, kws_nb; assert 'torch' not in sys.modules, 'import kws_nb imported torch'; "
            "from kws_nb.detector import load_detector, score_file; "
            "assert kws_nb.load_detector is load_detector and kws_nb.score_file is score_file; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
    import kws_nb
    with pytest.raises(AttributeError, match="no attribute 'not_there'"): kws_nb.not_there

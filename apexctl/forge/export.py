"""`apexctl export`: turns a hall-of-fame GP tree and trained networks into a verified model bundle for the live engine.

A bundle is a folder: `manifest.json` (schema `apex.bundle`, see apexctl/schemas/bundle.schema.json) plus one file per
model: `signal.gp.json` (the GP tree) and `<name>.onnx` (networks, opset pinned, named input/output, dynamic batch).
Nothing is published before it is validated: each ONNX file passes the onnx checker and matches PyTorch under
onnxruntime within 1e-5 on sample inputs, then the Rust engine verifies the staging folder exactly as it will verify
the published one (`_core.bundle_check`). The staging folder is renamed into place, so a bundle is all or nothing.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from apexctl import __version__, _core
from apexctl.console import safe
from apexctl.errors import DataError, InputError, SchemaError, UsageError
from apexctl.forge import durations, io, outputs, ranges
from apexctl.forge.features import recorded_bars
from apexctl.forge.gp import read_tree_text
from apexctl.forge.maml_data import OUTPUTS as MAML_OUTPUTS

if TYPE_CHECKING:
    from torch import nn

    from apexctl.forge.nets import ModelCard

# torch, onnx and onnxruntime are imported where a network is exported: `apexctl --help` and `export --check` start
# in a fraction of the time without them.

SCHEMA = "apex.bundle"
VERSION = 1
MANIFEST = "manifest.json"
#: The ONNX opset every network is exported with (the live engine's ONNX Runtime must support it; 1.20+ does).
OPSET = 17
#: Largest |onnxruntime - PyTorch| accepted on the sample inputs.
TOLERANCE = 1e-5
#: Sample rows run through each network when validating.
SAMPLE_ROWS = 16
HALL_OF_FAME = "apex.hall_of_fame"
GP_FILE = "signal.gp.json"
GP_MODEL = "signal"
#: The network slots of a bundle: the `apexctl train` task each must come from (the checkpoint's card says it).
ROLES = ("maml", "iel")
#: Largest hall-of-fame index read (20 entries are a few kB; a hall of thousands stays well under this).
INDEX_MAX_BYTES = 64 << 20


def role_outputs(role: str) -> list[str]:
    """The outputs a network of `role` must declare, in order: the MAML model's two heads, the IEL's actions."""
    if role == "maml":
        return list(MAML_OUTPUTS)
    return list(_core.ExecEnv("BTCUSDT", 1, parallel=False).action_names)


def check_role(role: str, task: str, outputs_: list[str], where: str, *, published: bool = False) -> None:
    """A network exported or checked as `role` must be one `apexctl train {role}` made: its task and its outputs
    (what the live engine reads from each output index) must be that role's; SchemaError naming `where` if not.
    `published`: the network is in a bundle already, so the remedy is a new export."""
    if task != role:
        remedy = (
            f"export the bundle again with --{role} set to the model.pt of `apexctl train {role}`"
            if published
            else f"give the model.pt of `apexctl train {role}`"
        )
        raise SchemaError(
            f"{where}: given as --{role}, but it is a '{safe(task)}' model (from `apexctl train {safe(task)}`); "
            f"{remedy}"
        )
    expected = role_outputs(role)
    if list(outputs_) != expected:
        raise SchemaError(
            f"{where}: a {role} model must have the outputs {expected}, it declares {safe(list(outputs_))}"
        )


@dataclass
class ExportConfig:
    """What `apexctl export` writes: the hall of fame tree of `rank`, optional networks, into `output`."""

    output: Path
    hall_of_fame: Path | None = None
    rank: int = 1
    maml: Path | None = None
    iel: Path | None = None
    symbol: str | None = None
    slot: str | None = None
    force: bool = False
    command: str = ""

    def validate(self) -> None:
        if self.hall_of_fame is None and self.maml is None and self.iel is None:
            raise UsageError("nothing to export: give --hall-of-fame and/or --maml / --iel")
        ranges.RANK.check(self.rank, "--rank")
        if self.hall_of_fame is None and not self.symbol:
            raise UsageError("--symbol is required when there is no --hall-of-fame to take it from")
        if self.symbol is not None:
            ranges.check_symbol_name(self.symbol, "--symbol")
        if self.slot is not None and not self.slot.strip():
            # An empty name fell back to the folder's name, as if --slot had not been given.
            raise UsageError(
                f"--slot {self.slot!r} is empty: give the slot a name, or leave --slot out to name it "
                "after the output folder"
            )
        inside = next((p for p in self.output.absolute().parents if (p / MANIFEST).is_file()), None)
        if inside is not None:
            raise UsageError(
                f"-o {self.output}: is inside the bundle {inside}, which its new files would break; "
                "write a bundle beside it, not in it"
            )
        inputs = [self.hall_of_fame, self.maml, self.iel]
        outputs.check([outputs.OutFolder(self.output, replace=self.force)], inputs)
        if self.hall_of_fame is not None:
            _refuse_inside_run(self.output, self.hall_of_fame)


def _refuse_inside_run(output: Path, hall_of_fame: Path) -> None:
    """UsageError when the bundle folder would be inside the hall of fame or the `evolve` run folder holding it:
    evolve publishes that folder as a whole, so a later `evolve --resume` would delete the bundle."""
    hall = outputs.resolved(hall_of_fame, "--hall-of-fame")
    run = hall.parent
    folders = [hall] + ([run] if (run / "generations.parquet").exists() or (run / "checkpoint").is_dir() else [])
    target = outputs.resolved(output, "-o")
    inside = next((f for f in folders if target == f or f in target.parents), None)
    if inside is not None:
        raise UsageError(
            f"-o {output}: is inside {inside}, which `apexctl evolve` replaces as a whole (its next run or --resume "
            "would delete the bundle); write the bundle outside it, e.g. under bundles/"
        )


@dataclass
class ExportResult:
    output: Path
    manifest: dict[str, Any]
    #: What the Rust engine verified on the staging folder (`_core.bundle_check`).
    report: dict[str, Any]
    #: Largest |onnxruntime - PyTorch| per network on the sample inputs.
    parity: dict[str, float] = field(default_factory=dict)
    #: The manifest's `bars`: the bars the models learned from (None: no model recorded them).
    bars: dict[str, Any] | None = None
    #: Where `bars` came from, and (when it came from somewhere) the sources of models that record no bars (written
    #: before apexctl recorded them), which the bundle says learned from the same bars.
    bars_source: str | None = None
    unrecorded: list[str] = field(default_factory=list)


@dataclass
class _Model:
    """One model staged for the bundle: its manifest entry and the file bytes."""

    entry: dict[str, Any]
    data: bytes
    #: The bars it learned from (`features.bars_made`), where its source recorded them; `source` names it.
    bars: dict[str, Any] | None = None
    source: str = ""


def describe_bars(bars: dict[str, Any]) -> str:
    """`5m bars (rv_bars 30, vmd_modes 3, vmd_window 64)`: a bundle's `bars` as the live engine words them."""
    options = ", ".join(f"{name} {value}" for name, value in bars["options"].items())
    return f"{durations.label(bars['bar_seconds'] * durations.SECOND)} bars ({options})"


def _bars_of(models: list[_Model]) -> tuple[dict[str, Any] | None, str | None]:
    """The one record of the bars every model learned from, and the source of the first model recording it:
    SchemaError naming two models whose records differ (the live engine computes one set of bar features for the
    bundle)."""
    recorded = [(m.source, m.bars) for m in models if m.bars is not None]
    for source, bars in recorded[1:]:
        first_source, first = recorded[0]
        if bars != first:
            raise SchemaError(
                f"{source}: learned from {describe_bars(bars)}, but {first_source} from {describe_bars(first)}; the "
                "engine computes one set of bar features for a bundle: export models made from the same features table"
            )
    return (recorded[0][1], recorded[0][0]) if recorded else (None, None)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_hall_of_fame(folder: Path, rank: int) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The hall of fame index, the entry of `rank`, and that tree's JSON text. The index is read strictly and its
    shape checked; an entry's file must be a plain file name inside the folder (never a path or a link out)."""
    index_path = folder / "index.json"
    if folder.name == "index.json" and folder.is_file():
        raise UsageError(f"--hall-of-fame {folder}: give the hall_of_fame folder, {folder.parent}, not its index.json")
    if not index_path.is_file():
        raise InputError(f"{index_path}: no such file (give the hall_of_fame/ folder `apexctl evolve` wrote)")
    index = io.read_json(index_path, f"an {HALL_OF_FAME} index", max_bytes=INDEX_MAX_BYTES, max_depth=16)
    if not isinstance(index, dict) or index.get("schema") != HALL_OF_FAME:
        raise SchemaError(f"{index_path}: not an {HALL_OF_FAME} index (write it with `apexctl evolve`)")
    version = index.get("version")
    if not _whole(version) or not 1 <= version <= 1:
        raise SchemaError(f"{index_path}: {HALL_OF_FAME} version {safe(version)!r}; this apexctl reads version 1")
    listed = index.get("entries")
    if not isinstance(listed, list) or not all(isinstance(e, dict) for e in listed):
        raise SchemaError(f'{index_path}: "entries" must be a list of objects')
    names = index.get("features", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SchemaError(f'{index_path}: "features" must be a list of feature names')
    entries: dict[int, dict[str, Any]] = {}
    for position, item in enumerate(listed):
        at = f"{index_path}: entries[{position}]"
        if not _whole(item.get("rank")) or item["rank"] < 1:
            raise SchemaError(f'{at}: "rank" must be a whole number from 1, found {safe(item.get("rank"))!r}')
        name = item.get("file")
        if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
            raise SchemaError(f'{at}: "file" must be a file name inside {folder}, found {safe(name)!r}')
        if item["rank"] in entries:
            raise SchemaError(f"{at}: rank {item['rank']} appears twice")
        entries[item["rank"]] = item
    if rank not in entries:
        raise UsageError(f"{index_path}: no entry of rank {rank} (ranks 1..{len(entries)})")
    entry = entries[rank]
    tree_path = folder / entry["file"]
    if tree_path.is_symlink() or not tree_path.is_file():
        raise InputError(
            f"{tree_path}: not a file inside {folder} (listed for rank {rank} in {index_path}; a symbolic link "
            "is not followed)"
        )
    return index, entry, read_tree_text(tree_path, "--hall-of-fame")


def _hall_training_data(folder: Path, index: dict[str, Any]) -> dict[str, str]:
    """SHA-256 of the features table evolution ran on: from generations.parquet's provenance, else hashed now."""
    import pyarrow.parquet as pq

    generations = folder.parent / "generations.parquet"
    if generations.is_file():
        metadata = pq.read_schema(generations).metadata or {}
        raw = metadata.get(io.META_INPUTS.encode())
        if raw:
            inputs = json.loads(raw)
            if isinstance(inputs, dict) and inputs:
                return {str(k): str(v) for k, v in inputs.items()}
    source = index.get("params", {}).get("features")
    if isinstance(source, str) and source != "-" and Path(source).is_file():
        return {source: io.sha256_file(source)}
    return {}


def gp_model(folder: Path, rank: int) -> tuple[_Model, dict[str, Any], dict[str, str]]:
    """The GP tree of `rank` as a bundle model (features = those it uses, in the index's order)."""
    index, entry, text = read_hall_of_fame(folder, rank)
    names = [str(n) for n in index.get("features", [])]
    try:
        normalized = _core.gp_validate(text, names)
    except DataError as exc:
        where = folder / str(entry["file"])
        raise InputError(f"{where}: rank {rank} of {folder}: {' '.join(str(exc).split())}") from None
    used = set(json.loads(normalized)["features"])
    features = [n for n in names if n in used]
    info = {k: entry[k] for k in ("rank", "size", "height", "train", "held_out") if k in entry}
    info["hall_of_fame"] = str(folder.absolute())
    model = {
        "name": GP_MODEL,
        "kind": "gp",
        "file": GP_FILE,
        "features": features,
        "window": 1,
        "outputs": [{"name": "signal", "shape": [1], "meaning": ["target position in [-1, 1]"]}],
        "info": info,
    }
    index_path = folder / "index.json"
    bars = recorded_bars(index, str(index_path), features)
    staged = _Model(model, (normalized + "\n").encode(), bars, f"--hall-of-fame {folder}")
    return staged, index, _hall_training_data(folder, index)


def sample_inputs(card: ModelCard, rows: int = SAMPLE_ROWS, seed: int = 0) -> np.ndarray:
    """Deterministic float32 inputs of the card's input shape (standard normal, like standardized features)."""
    shape = [rows, *card.input_shape()[1:]]
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def export_onnx(net: nn.Module, card: ModelCard, path: Path, opset: int = OPSET) -> None:
    """Writes `net` as ONNX: named input/output from the card, dynamic batch axis, opset `opset`, and the card's
    input features in order as the metadata `_core.ONNX_FEATURES_METADATA`."""
    import torch

    example = torch.from_numpy(sample_inputs(card, rows=2))
    net.eval()
    # The TorchScript exporter needs no extra dependency (the dynamo one needs onnxscript) and handles MLP and GRU.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (example,),
            str(path),
            input_names=[card.input_name],
            output_names=[card.output_name],
            opset_version=opset,
            dynamic_axes={card.input_name: {0: "batch"}, card.output_name: {0: "batch"}},
            dynamo=False,
        )
    # The input is one tensor: the order of its columns is recorded in the file too, where the hash covers it, so
    # the engine refuses a manifest whose feature list was edited.
    import onnx

    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {_core.ONNX_FEATURES_METADATA: json.dumps(list(card.features))})
    onnx.save(model, str(path))


def check_onnx(net: nn.Module, card: ModelCard, path: Path, name: str) -> float:
    """Checks the ONNX file (onnx checker) and its onnxruntime outputs against PyTorch; the largest difference."""
    import onnx
    import onnxruntime
    import torch

    try:
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise SchemaError(f"{name}: the exported ONNX model fails the onnx checker: {exc}") from None
    inputs = sample_inputs(card)
    with torch.no_grad():
        expected = net(torch.from_numpy(inputs)).numpy()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (got,) = session.run([card.output_name], {card.input_name: inputs})
    if got.shape != expected.shape:
        raise SchemaError(f"{name}: onnxruntime output shape {got.shape} differs from PyTorch's {expected.shape}")
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= TOLERANCE:
        raise SchemaError(f"{name}: onnxruntime differs from PyTorch by {diff:.3g} (> {TOLERANCE}) on sample inputs")
    return diff


def onnx_model(name: str, checkpoint: Path, staging: Path) -> tuple[_Model, float, dict[str, str]]:
    """Exports checkpoint `checkpoint` to staging/<name>.onnx, validated; its entry, parity and training hashes."""
    import torch

    from apexctl.forge.nets import load_model

    net, card = load_model(checkpoint)
    check_role(name, card.task, list(card.outputs), str(checkpoint))
    file = f"{name}.onnx"
    path = staging / file
    export_onnx(net, card, path)
    diff = check_onnx(net, card, path, f"{checkpoint} ({name})")
    with torch.no_grad():
        width = int(net(torch.from_numpy(sample_inputs(card, rows=1))).shape[-1])
    if card.outputs and len(card.outputs) != width:
        raise SchemaError(f"{checkpoint}: the card names {len(card.outputs)} outputs, the network has {width}")
    entry = {
        "name": name,
        "kind": "onnx",
        "file": file,
        "features": list(card.features),
        "opset": OPSET,
        "window": card.window,
        "inputs": [{"name": card.input_name, "shape": card.input_shape()}],
        "outputs": [{"name": card.output_name, "shape": [-1, width], "meaning": list(card.outputs)}],
        "info": {
            "task": card.task,
            "arch": card.arch,
            "config": card.config,
            "metrics": card.metrics,
            "command": card.command,
            "checkpoint": str(checkpoint.absolute()),
            "checkpoint_sha256": io.sha256_file(checkpoint),
        },
    }
    bars = recorded_bars({"bars": card.bars}, str(checkpoint), list(card.features))
    return _Model(entry, path.read_bytes(), bars, f"--{name} {checkpoint}"), diff, dict(card.training_data)


def _union(lists: list[list[str]]) -> list[str]:
    seen: dict[str, None] = {}
    for names in lists:
        for name in names:
            seen.setdefault(name, None)
    return list(seen)


def export(config: ExportConfig) -> ExportResult:
    """Builds, validates and publishes the bundle (atomically, at the folder level)."""
    config.validate()
    out = config.output
    with outputs.staged_folder(out, replace=config.force) as staging:
        models: list[_Model] = []
        training: dict[str, str] = {}
        parity: dict[str, float] = {}
        symbol = config.symbol
        if config.hall_of_fame is not None:
            gp, index, hashes = gp_model(config.hall_of_fame, config.rank)
            (staging / GP_FILE).write_bytes(gp.data)
            models.append(gp)
            training.update(hashes)
            symbol = symbol or str(index.get("symbol", ""))
            ranges.check_symbol_name(symbol, f"{config.hall_of_fame / 'index.json'}: symbol (or give --symbol)")
        for name, checkpoint in (("maml", config.maml), ("iel", config.iel)):
            if checkpoint is not None:
                model, diff, hashes = onnx_model(name, checkpoint, staging)
                models.append(model)
                parity[name] = diff
                training.update(hashes)
        bars, bars_source = _bars_of(models)
        manifest = {
            "schema": SCHEMA,
            "version": VERSION,
            "symbol": symbol,
            "slot": config.slot or out.name,
            "created_by": {"command": config.command, "apexctl_version": __version__},
            "features": _union([m.entry["features"] for m in models]),
            "models": [m.entry for m in models],
            "files": {m.entry["file"]: io.sha256_bytes(m.data) for m in models},
            "training_data": dict(sorted(training.items())),
        }
        if bars is not None:
            manifest["bars"] = bars
        manifest = io.jsonable(manifest)
        (staging / MANIFEST).write_text(io.dumps(manifest, indent=2) + "\n")
        report = check(staging)
    report["path"] = str(out)
    # The IEL network reads the execution environment's observation, no bar features: it has no bars to record.
    legacy = [m.source for m in models if m.bars is None and m.entry["name"] != "iel"] if bars is not None else []
    return ExportResult(out, manifest, report, parity, bars, bars_source, legacy)


def check(bundle: Path, engine_features: list[str] | None = None, *, live: bool = False) -> dict[str, Any]:
    """Verifies a bundle folder with the Rust engine (hashes, schema, feature order, no file a symbolic link, every
    model run on samples), then each network's role: the `maml` and `iel` slots hold what that trainer made. `live`:
    also what the live engine needs to trade it, a GP `signal` model and a symbol it trades."""
    if bundle.name == MANIFEST and bundle.is_file():
        raise UsageError(f"{bundle}: give the bundle folder, {bundle.parent}, not its {MANIFEST}")
    if not (bundle / MANIFEST).is_file():
        raise InputError(f"{bundle}: no {MANIFEST} (not a bundle folder written by `apexctl export`)")
    report = _core.bundle_check(str(bundle), engine_features)
    manifest = io.read_json(bundle / MANIFEST, "a bundle manifest")
    if live:
        if not any(m.get("name") == GP_MODEL and m.get("kind") == "gp" for m in manifest["models"]):
            raise SchemaError(
                f"{bundle}: no GP model named {GP_MODEL!r}: the live engine trades a bundle's GP signal "
                "(export it with --hall-of-fame)"
            )
        ranges.check_symbol_name(str(manifest.get("symbol", "")), f"{bundle}: symbol")
    for model in manifest["models"]:
        if model["name"] in ROLES:
            task = model.get("info", {}).get("task", "unknown")
            meaning = model["outputs"][0].get("meaning", []) if model["outputs"] else []
            check_role(model["name"], str(task), meaning, f"{bundle}: model {model['name']!r}", published=True)
    return report


def bundle_schema() -> dict[str, Any]:
    """The JSON Schema of manifest.json (generated by the Rust engine; committed as bundle.schema.json)."""
    return json.loads(_core.bundle_schema())

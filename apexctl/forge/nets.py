"""Neural network architectures and the model checkpoint (`model.pt`) shared by `apexctl train` and `apexctl export`.

A checkpoint is a plain dict saved with `torch.save` and read with `weights_only=True` (no pickled code): the schema,
a `ModelCard` (architecture, its config, input feature order, tensor names, provenance) and the `state_dict`. Export
rebuilds the module from the card with `build`, so a checkpoint never depends on the training code's classes.
"""

from __future__ import annotations

import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from apexctl.errors import SchemaError, first_line
from apexctl.forge.io import atomic_output

SCHEMA = "apex.torch_model"
VERSION = 1


class Standardize(nn.Module):
    """(x - mean) / std over the last axis, with mean and std as buffers so they travel in the checkpoint and ONNX."""

    def __init__(self, inputs: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(inputs))
        self.register_buffer("std", torch.ones(inputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _input_layer(inputs: int, standardize: bool) -> nn.Module:
    # Identity holds no state, so checkpoints of nets without standardization keep their state dict keys.
    return Standardize(inputs) if standardize else nn.Identity()


class MLP(nn.Module):
    """Feed-forward network over one feature row: input `[batch, inputs]`, output `[batch, outputs]`.

    With `standardize`, the raw feature row is standardized first by the `norm` buffers (fitted by the trainer).
    """

    def __init__(
        self, inputs: int, hidden: list[int], outputs: int, activation: str = "tanh", standardize: bool = False
    ) -> None:
        super().__init__()
        self.norm = _input_layer(inputs, standardize)
        act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
        layers: list[nn.Module] = []
        width = inputs
        for size in hidden:
            layers += [nn.Linear(width, size), act()]
            width = size
        layers.append(nn.Linear(width, outputs))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.norm(x))


class GRUNet(nn.Module):
    """GRU over a window of rows: input `[batch, window, inputs]`, output `[batch, outputs]` from the last step.

    With `standardize`, every row of the window is standardized first by the `norm` buffers (fitted by the trainer).
    """

    def __init__(self, inputs: int, hidden: int, outputs: int, layers: int = 1, standardize: bool = False) -> None:
        super().__init__()
        self.norm = _input_layer(inputs, standardize)
        self.gru = nn.GRU(inputs, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.norm(x))
        return self.head(out[:, -1, :])


ARCHS: dict[str, type[nn.Module]] = {"mlp": MLP, "gru": GRUNet}


@dataclass
class ModelCard:
    """Everything export and the live engine need to know about a trained network besides its weights."""

    #: Key of ARCHS.
    arch: str
    #: Keyword arguments of the architecture's constructor.
    config: dict[str, Any]
    #: Input feature names in input order (the last axis of the input tensor).
    features: list[str]
    #: What produced it: "maml", "iel", ...
    task: str
    #: Rows per input (1 for an MLP over the current row; the window length for a GRU).
    window: int = 1
    input_name: str = "features"
    output_name: str = "output"
    #: Meaning of each output, in order (e.g. ["sign_logit", "size"] or the IEL action names).
    outputs: list[str] = field(default_factory=list)
    #: SHA-256 of every training input, by path.
    training_data: dict[str, str] = field(default_factory=dict)
    #: The command line that produced the checkpoint.
    command: str = ""
    #: Evaluation figures worth carrying into the bundle manifest.
    metrics: dict[str, float] = field(default_factory=dict)
    #: The bars of the features table it learned from (`features.bars_made`), for the bundle's `bars`; None for a
    #: network that reads no bar features (IEL) or a checkpoint of an apexctl that did not record them.
    bars: dict[str, Any] | None = None

    def input_shape(self) -> list[int]:
        """Input shape with -1 for the batch axis."""
        if self.arch == "gru":
            return [-1, self.window, len(self.features)]
        return [-1, len(self.features)]


def build(card: ModelCard) -> nn.Module:
    """A fresh module of the card's architecture (weights random until a state dict is loaded)."""
    if card.arch not in ARCHS:
        raise SchemaError(f"unknown model architecture {card.arch!r}; known: {', '.join(sorted(ARCHS))}")
    return ARCHS[card.arch](**card.config)


def save_model(path: str | Path, net: nn.Module, card: ModelCard) -> None:
    """Writes the checkpoint atomically (temporary file in the same folder, then rename)."""
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    with atomic_output(path) as handle:
        torch.save({"schema": SCHEMA, "version": VERSION, "card": asdict(card), "state_dict": state}, handle)


def load_model(path: str | Path) -> tuple[nn.Module, ModelCard]:
    """Reads a checkpoint written by `save_model`; wrong kind, newer version or mismatched weights are SchemaError."""
    if Path(path).is_file() and not zipfile.is_zipfile(path):
        # torch.save writes a zip archive; torch.load would try anything else as a legacy pickle and fail cryptically.
        raise SchemaError(f"{path}: not a readable torch checkpoint (not the zip archive torch.save writes)")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SchemaError(f"{path}: no such model file") from None
    except Exception as exc:
        # torch's own message runs over several lines of advice (weights_only=False, which would run pickled code):
        # its first line says what is wrong.
        raise SchemaError(
            f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {first_line(exc)})"
        ) from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise SchemaError(f"{path}: not an {SCHEMA} checkpoint (write it with `apexctl train`)")
    if not isinstance(doc.get("version"), int) or doc["version"] > VERSION:
        raise SchemaError(f"{path}: {SCHEMA} version {doc.get('version')} is newer than this apexctl reads ({VERSION})")
    try:
        card = ModelCard(**doc["card"])
        net = build(card)
        net.load_state_dict(doc["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise SchemaError(f"{path}: checkpoint does not match its model card: {first_line(exc)}") from None
    net.eval()
    return net, card

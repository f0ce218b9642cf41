"""The model checkpoint format: round trip, atomic write, and clear errors for foreign or newer files."""

from __future__ import annotations

import pytest
import torch

from apexctl.errors import SchemaError
from apexctl.forge.nets import ModelCard, build, load_model, save_model


@pytest.mark.parametrize(
    ("card", "shape"),
    [
        (ModelCard("mlp", {"inputs": 3, "hidden": [8], "outputs": 2}, ["a", "b", "c"], "maml"), (5, 3)),
        (ModelCard("gru", {"inputs": 2, "hidden": 4, "outputs": 1}, ["a", "b"], "maml", window=6), (5, 6, 2)),
    ],
)
def test_round_trip_gives_identical_outputs(tmp_path, card, shape):
    torch.manual_seed(0)
    net = build(card)
    path = tmp_path / "model.pt"
    save_model(path, net, card)
    loaded, loaded_card = load_model(path)
    x = torch.randn(*shape)
    assert torch.equal(net(x), loaded(x))
    assert loaded_card == card
    assert list(tmp_path.iterdir()) == [path]


def test_foreign_and_newer_files_are_schema_errors(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(SchemaError, match=r"not an apex\.torch_model"):
        load_model(foreign)
    newer = tmp_path / "newer.pt"
    torch.save({"schema": "apex.torch_model", "version": 99, "card": {}, "state_dict": {}}, newer)
    with pytest.raises(SchemaError, match="newer"):
        load_model(newer)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(SchemaError, match="not a readable"):
        load_model(garbage)
    text = tmp_path / "text.pt"
    text.write_text("i am not a model\n")  # torch.load alone says "KeyError: 105" (a legacy pickle's first byte)
    with pytest.raises(SchemaError, match=r"text\.pt: not a readable torch checkpoint \(not the zip archive"):
        load_model(text)
    card = ModelCard("mlp", {"inputs": 3, "hidden": [8], "outputs": 2}, ["a", "b", "c"], "maml")
    wrong = tmp_path / "wrong.pt"
    save_model(wrong, build(ModelCard("mlp", {"inputs": 4, "hidden": [8], "outputs": 2}, list("abcd"), "maml")), card)
    with pytest.raises(SchemaError, match="does not match"):
        load_model(wrong)


@pytest.mark.parametrize(
    ("arch", "config", "shape"), [("mlp", {"hidden": [4]}, (5, 3)), ("gru", {"hidden": 4}, (5, 2, 3))]
)
def test_standardize_buffers_travel_in_the_checkpoint(tmp_path, arch, config, shape):
    card = ModelCard(arch, {"inputs": 3, "outputs": 2, "standardize": True, **config}, ["a", "b", "c"], "maml")
    torch.manual_seed(1)
    net = build(card)
    net.norm.mean.copy_(torch.tensor([10.0, -1.0, 0.0]))
    net.norm.std.copy_(torch.tensor([2.0, 0.1, 5.0]))
    save_model(tmp_path / "model.pt", net, card)
    loaded, _ = load_model(tmp_path / "model.pt")
    x = torch.randn(*shape) * 3 + 5
    assert torch.equal(loaded.norm.mean, net.norm.mean)
    assert torch.equal(loaded(x), net(x))
    plain = build(ModelCard(arch, {"inputs": 3, "outputs": 2, **config}, ["a", "b", "c"], "maml"))
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("norm.")})
    torch.testing.assert_close(plain((x - net.norm.mean) / net.norm.std), net(x))

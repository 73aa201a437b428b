"""Convert insightface's `w600k_mbf.onnx` (ArcFace MobileFaceNet) into an `IdentityEncoder`.

    python -m fswap.models.convert_arcface path/to/w600k_mbf.onnx out/identity_encoder

Only the `onnx` package reads the file (no onnx2torch, no pickle). The exporter named most
initialisers by number, so the converter walks the graph in node order and pairs every Conv
and PRelu with the torch layer at the same position, checking kernel shape, stride, padding
and groups on the way; the fully-connected layer and the final BatchNorm1d are found by
name and the BatchNorm is folded into the fully-connected layer. Loading is strict.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from fswap.errors import CheckpointError, ModelNotFoundError
from fswap.models.identity import IdentityEncoder

# Ops the w600k_mbf graph is made of; anything else means a different architecture.
_EXPECTED_OPS = {"Conv", "PRelu", "Add", "Flatten", "Gemm", "BatchNormalization"}


def _attributes(node: onnx.NodeProto) -> dict:
    return {attr.name: onnx.helper.get_attribute_value(attr) for attr in node.attribute}


def _check_conv(node: onnx.NodeProto, name: str, conv: nn.Conv2d, weight: np.ndarray) -> None:
    attrs = _attributes(node)
    found = (
        tuple(weight.shape),
        tuple(attrs.get("strides", (1, 1))),
        tuple(attrs.get("pads", (0, 0, 0, 0))),
        attrs.get("group", 1),
        tuple(attrs.get("dilations", (1, 1))),
    )
    expected = (tuple(conv.weight.shape), conv.stride, conv.padding * 2, conv.groups, conv.dilation)
    if found != expected:
        raise CheckpointError(
            f"ONNX node {node.name} does not match IdentityEncoder layer {name}: "
            f"(weight shape, strides, pads, group, dilations) = {found} in the file, {expected} in the model"
        )


def onnx_state_dict(onnx_path: str | Path, model: IdentityEncoder) -> dict[str, torch.Tensor]:
    """The ONNX weights as a state dict for `model` (whose config must describe the same network)."""
    graph = onnx.load(str(onnx_path)).graph
    initialisers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    unknown_ops = {node.op_type for node in graph.node} - _EXPECTED_OPS
    if unknown_ops:
        raise CheckpointError(
            f"{onnx_path} is not a MobileFaceNet ArcFace graph: unexpected ops {sorted(unknown_ops)}"
        )

    # Registration order of the torch layers == execution order == ONNX node order.
    layers = [
        (name, module) for name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.PReLU))
    ]
    nodes = [node for node in graph.node if node.op_type in ("Conv", "PRelu")]
    if len(layers) != len(nodes):
        raise CheckpointError(
            f"{onnx_path} has {len(nodes)} Conv/PRelu nodes but IdentityEncoder({dict(model.config)}) has "
            f"{len(layers)} Conv2d/PReLU layers: the config does not describe this network"
        )

    state_dict = {}
    for (name, module), node in zip(layers, nodes, strict=True):
        if isinstance(module, nn.Conv2d) != (node.op_type == "Conv"):
            raise CheckpointError(f"ONNX node {node.name} ({node.op_type}) sits where the model has {name}")
        if node.op_type == "Conv":
            weight, bias = (initialisers[input_name] for input_name in node.input[1:3])
            _check_conv(node, name, module, weight)
            state_dict[f"{name}.weight"] = torch.from_numpy(weight.copy())
            state_dict[f"{name}.bias"] = torch.from_numpy(bias.copy())
        else:
            slope = initialisers[node.input[1]]  # [C, 1, 1]: broadcast over H, W
            state_dict[f"{name}.weight"] = torch.from_numpy(slope.reshape(-1).copy())

    # Flatten -> Gemm (fc) -> BatchNorm1d (features), folded: y = (W x + b - mean) * gamma / std + beta.
    try:
        fc_weight, fc_bias = initialisers["fc.weight"], initialisers["fc.bias"]
        gamma, beta = initialisers["features.weight"], initialisers["features.bias"]
        mean, var = initialisers["features.running_mean"], initialisers["features.running_var"]
    except KeyError as err:
        raise CheckpointError(f"{onnx_path} lacks the initialiser {err} of the ArcFace head") from err
    (batch_norm,) = [node for node in graph.node if node.op_type == "BatchNormalization"]
    epsilon = _attributes(batch_norm).get("epsilon", 1e-5)
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + epsilon)
    state_dict["fc.weight"] = torch.from_numpy((fc_weight * scale[:, None]).astype(np.float32))
    state_dict["fc.bias"] = torch.from_numpy(((fc_bias - mean) * scale + beta).astype(np.float32))
    return state_dict


def convert_arcface_onnx(onnx_path: str | Path, **config) -> IdentityEncoder:
    """Build an `IdentityEncoder` with the weights of an insightface MobileFaceNet ONNX file.

    Args:
        onnx_path: e.g. `fswap.assets.vectron_model_dir() / "w600k_mbf.onnx"`.
        **config: `IdentityEncoder` arguments, for a MobileFaceNet other than w600k_mbf.

    Raises:
        ModelNotFoundError: the file does not exist.
        CheckpointError: the graph is not the network that `config` describes.
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelNotFoundError(f"ArcFace ONNX file not found: {onnx_path}")
    model = IdentityEncoder(**config)
    state_dict = onnx_state_dict(onnx_path, model)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{onnx_path} does not fit IdentityEncoder: {err}") from err
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("onnx_path", type=Path, help="insightface w600k_mbf.onnx")
    parser.add_argument("output_dir", type=Path, help="folder for config.json + safetensors")
    args = parser.parse_args()
    convert_arcface_onnx(args.onnx_path).save_pretrained(args.output_dir)
    print(f"saved IdentityEncoder to {args.output_dir}")


if __name__ == "__main__":
    main()

"""`lsn-explorer model info`: a model's architecture, sizes and neuron sites."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from lsn_explorer.cli.common import JSON_HELP, add_model_args, add_placement_args, load

if TYPE_CHECKING:
    from lsn_explorer.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    """Add `model` and its actions to the command parser's sub-parsers."""
    model = sub.add_parser("model", help="inspect a model").add_subparsers(dest="action", metavar="ACTION")
    info = model.add_parser("info", help="architecture, sizes and neuron sites of a model")
    add_model_args(info)
    add_placement_args(info)
    info.add_argument("--json", action="store_true", help=JSON_HELP)
    info.set_defaults(func=cmd_model_info)


def cmd_model_info(args: argparse.Namespace) -> int:
    handle = load(args)
    info = handle.describe()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    arch = handle.arch
    print(f"{info['source']}: {info['family']} ({info['model_type']}), {info['n_layers']} layers, "
          f"d_ff {info['d_ff']}, hidden {info['hidden_size']}, vocab {info['vocab_size']}")
    quant = f", {info['quantization']} 4-bit" if info["quantization"] else ""
    print(f"weights: {info['dtype']}{quant} on {info['device']}")
    if info["head"] == "classifier":
        print(f"head: sequence classifier, labels {', '.join(info['labels'])}")
    path = f"{arch.layers}[i].{arch.mlp}"
    gate = f"{path}.{arch.gate}.output" + ("[..., :d_ff]" if arch.fused_gate_up else "")
    print(f"site g (gate pre-activation): {gate}")
    print(f"site s (activation output):   {path}.{arch.act}.output")
    if arch.gated:
        print(f"site a (down-projection in):  {path}.{arch.down}.input")
    else:
        print("site a: not separate (MLP not gated, a = s)")
    return 0

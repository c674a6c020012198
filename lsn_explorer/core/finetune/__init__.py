"""Neuron-masked (Q)LoRA fine-tuning (Mondal et al. 2025; SCIENCE.md §6).

`config` (the persisted `FinetuneSpec` and the recipes, torch-free), `masks` (neuron set → per-layer
masks → a peft `LoraConfig` and the hooks that keep ΔW inside the mask), `data` (training examples
of the lm / xnli / xquad tasks), `checkpoints` (atomic, pickle-free training state for resume),
`train` (the loop) and `adapters` (finished adapters stored in the session, exported as plain peft
folders). Importing this package loads nothing heavy.
"""

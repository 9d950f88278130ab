"""Served models as the engines name them, matched to memwall's presets; one row per model.

A serving engine labels its series with the name it serves the model under (vLLM's and
SGLang's ``model_name``): by default the Hugging Face repository it loaded, e.g.
``meta-llama/Llama-3.1-8B-Instruct``. Each preset names the repository whose ``config.json``
its figures come from (``meta-llama/Llama-3.1-8B config.json``). A served name matches a preset

1. **by name** where it is the preset's own name (``llama-3.1-8b``, any case); else
2. **by repository** where, the organisation dropped, both names have the same core once the
   variant words are set aside: the tuning (``Instruct``, ``chat``, ``it``, ``base``, ``hf``),
   dotted versions (``v0.1``), release dates (``2507``, ``0324``) and quantization tags
   (``FP8``, ``AWQ``...). ``Mixtral-8x7B-Instruct-v0.1`` and ``Mixtral-8x7B-v0.1`` share the
   core ``mixtral-8x7b``. The words set aside are said, so the user sees what was assumed.

Anything else (a ``--served-model-name`` alias, a fine-tune under a new name) matches nothing:
its row is marked for ``--config`` rather than guessed. A core two presets share would be
ambiguous: it matches neither.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from tasks.analysis.workload.presets import PRESETS

VARIANT_WORDS: Final = frozenset(
    {"instruct", "chat", "it", "base", "hf", "fp8", "fp4", "nvfp4", "mxfp4", "awq", "gptq",
     "int4", "int8", "w8a8", "w4a16", "bf16", "dynamic", "turbo"}
)  # fmt: skip
# What one row per served model and accelerator model needs (``memwall observe``'s names).
OBSERVED_COLUMNS: Final = (
    "model_name", "accelerator_id", "gpus", "batch", "context", "kv_cache_usage", "samples",
    "names_found",
)  # fmt: skip
_VERSION: Final = re.compile(r"v\d+\.\d+(\.\d+)?")
_DATE: Final = re.compile(r"\d{4}")


@dataclass(frozen=True)
class PresetMatch:
    """The preset a served name stands for, and how memwall decided it."""

    preset: str
    how: str


def _core(name: str) -> tuple[str, list[str]]:
    """A repository name's core (organisation and variant words dropped) and the words
    dropped: ``Org/Llama-3.1-8B-Instruct`` -> (``llama-3.1-8b``, [``Instruct``])."""
    repository = name.strip().rsplit("/", 1)[-1]
    kept, dropped = [], []
    for word in repository.split("-"):
        low = word.lower()
        if low in VARIANT_WORDS or _VERSION.fullmatch(low) or _DATE.fullmatch(low):
            dropped.append(word)
        else:
            kept.append(low)
    return "-".join(kept), dropped


def _preset_repositories() -> dict[str, list[tuple[str, str]]]:
    """core -> [(preset, repository)] for every preset whose source names a repository."""
    out: dict[str, list[tuple[str, str]]] = {}
    for name, arch in PRESETS.items():
        repository = arch.source.split(" ", 1)[0]
        if "/" not in repository:
            continue  # a paper, not a repository (GPT-3)
        out.setdefault(_core(repository)[0], []).append((name, repository))
    return out


def match_preset(served_name: str) -> PresetMatch | None:
    """The preset ``served_name`` stands for, or None where none (or more than one) does."""
    name = served_name.strip().lower()
    if name in PRESETS:
        return PresetMatch(name, f'by name: "{served_name}" is the preset\'s own name')
    core, dropped = _core(served_name)
    candidates = _preset_repositories().get(core, [])
    if len(candidates) != 1:
        return None
    found, repository = candidates[0]
    aside = f", {'-'.join(dropped)} set aside" if dropped else ""
    return PresetMatch(
        found,
        f"by repository: {served_name} is {repository} (the preset's config.json){aside}",
    )


def one_row_per_model(rows: pd.DataFrame) -> pd.DataFrame:
    """``memwall observe``'s rows (one per served model and accelerator model) as one per
    served model: accelerators listed, GPUs added, batch, context and KV fill averaged over
    every usable sample of every accelerator (each sample one step of one server).

    Hand-worked: 300 samples at batch 6 on H100 and 100 at batch 10 on H200 average
    (300·6 + 100·10) / 400 = 7.
    """
    out = []
    for model_name, group in rows.groupby("model_name", sort=True):
        weights = group["samples"].to_numpy(dtype=float)

        def mean(column: str, group: pd.DataFrame = group, weights: np.ndarray = weights) -> float:
            values = group[column].to_numpy(dtype=float)
            known = np.isfinite(values) & (weights > 0)
            if not known.any():
                return float("nan")
            return float(np.average(values[known], weights=weights[known]))

        out.append(
            {
                "model_name": str(model_name),
                "accelerators": ", ".join(sorted(group["accelerator_id"].astype(str))),
                "gpus": int(group["gpus"].sum()),
                "batch": mean("batch"),
                "context": mean("context"),
                "kv_cache_usage": mean("kv_cache_usage"),
                "samples": int(weights.sum()),
                "names_found": "; ".join(sorted(set("; ".join(group["names_found"]).split("; ")))),
            }
        )
    columns = [
        "model_name", "accelerators", "gpus", "batch", "context", "kv_cache_usage", "samples",
        "names_found",
    ]  # fmt: skip
    return pd.DataFrame(out, columns=columns)


def engine_only_rows(
    engine: pd.DataFrame, placed: dict[str, tuple[str, float]], source: str
) -> pd.DataFrame:
    """Rows as :func:`one_row_per_model` reads them for servers no GPU series names (no
    dcgm-exporter on their node, or none that maps GPUs to pods), from the engine's samples
    alone: ``placed`` is server -> (accelerator_id, GPUs it requests; NaN where unknown),
    ``source`` what placed them. The usable samples are those with a batch, a step and a
    context, as ``memwall observe`` counts them."""
    out = []
    samples = engine[engine["server"].isin(list(placed))]
    for model_name, group in samples.groupby("model_name", sort=True):
        by_accelerator: dict[str, list[str]] = {}
        for server in sorted(set(group["server"].astype(str))):
            by_accelerator.setdefault(placed[server][0], []).append(server)
        for accelerator, servers in sorted(by_accelerator.items()):
            mine = group[group["server"].isin(servers)]
            usable = mine[(mine["batch"] > 0) & (mine["step_s"] > 0) & (mine["context_tokens"] > 0)]
            out.append(
                {
                    "model_name": str(model_name),
                    "accelerator_id": accelerator,
                    "gpus": sum(placed[s][1] for s in servers),
                    "batch": float(usable["batch"].mean()),
                    "context": float(usable["context_tokens"].mean()),
                    "kv_cache_usage": float(usable["kv_cache_usage"].mean()),
                    "samples": len(usable),
                    "names_found": "; ".join([*sorted(set(mine["engine"].astype(str))), source]),
                }
            )
    return pd.DataFrame(out, columns=list(OBSERVED_COLUMNS))

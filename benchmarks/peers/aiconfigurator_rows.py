"""Ask NVIDIA's aiconfigurator for the published runs it can express; runs in its own virtual
environment (``make peers``: ``.venv-peers``), never memwall's, so it imports nothing of memwall.

Reads a JSON list of requests on stdin (``benchmarks/peers/aiconfigurator_requests.py`` makes
them from the published rows: one ``cli_estimate`` call each, the function behind
``aiconfigurator cli estimate``, in its default database mode, SILICON: kernels measured per
GPU and engine, at the newest database version it ships for that GPU and engine) and prints one
JSON object: aiconfigurator's version and, per request, its TTFT and TPOT (s), its output
tokens/s, its KV cache mode, the database version that priced it and any memory warning, or
the error that stopped it. Its own log lines go to stderr.

    .venv-peers/bin/python -m benchmarks.peers.aiconfigurator_rows < requests.json
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

# Only the runs it cannot express matter here; its notes on fallback tables would drown them.
os.environ.setdefault("AICONFIGURATOR_LOG_LEVEL", "ERROR")

import aiconfigurator_core  # type: ignore[import-not-found, unused-ignore]
from aiconfigurator.cli.api import cli_estimate  # type: ignore[import-not-found, unused-ignore]
from aiconfigurator_core.sdk.common import (  # type: ignore[import-not-found, unused-ignore]
    DefaultHFModels,
)

# The Hugging Face configs the package ships (<org>--<name>_config.json).
SHIPPED_CONFIGS = Path(aiconfigurator_core.__file__).parent / "model_configs"

_CALL_KEYS = (
    "system_name", "backend_name", "mode", "isl", "osl", "batch_size", "tp_size", "pp_size",
    "attention_dp_size", "moe_tp_size", "moe_ep_size", "gemm_quant_mode", "moe_quant_mode",
    "kvcache_quant_mode",
)  # fmt: skip


def model_folder(request: dict[str, Any], folder: Path) -> str:
    """What ``cli_estimate`` is given as the model: its Hugging Face name where it loads that
    name from its own copy; else a folder under ``folder`` with the config the request carries
    (memwall's preset) or the one the package ships without listing it (Kimi-K2-Instruct,
    Mixtral), which it would otherwise fetch from the Hub, out of reach here."""
    name = str(request["model_path"])
    stem = name.replace("/", "--")
    shipped = SHIPPED_CONFIGS / f"{stem}_config.json"
    if request.get("local_config") is None and (name in DefaultHFModels or not shipped.exists()):
        return name
    local = folder / stem
    local.mkdir(parents=True, exist_ok=True)
    if request.get("local_config") is not None:
        (local / "config.json").write_text(json.dumps(request["local_config"]))
        return str(local)
    (local / "config.json").write_text(shipped.read_text())
    quant = SHIPPED_CONFIGS / f"{stem}_hf_quant_config.json"
    if quant.exists():
        (local / "hf_quant_config.json").write_text(quant.read_text())
    return str(local)


def estimate(request: dict[str, Any], folder: Path) -> dict[str, Any]:
    """One request's figures (seconds, tokens/s) or the error aiconfigurator raised."""
    model_path = model_folder(request, folder)
    call = {k: request[k] for k in _CALL_KEYS}
    try:
        result = cli_estimate(model_path, **call)
        narrower = request.get("kv_if_full")
        if result.kv_cache_warning and narrower and call["kvcache_quant_mode"] is None:
            # The source states no KV cache and the default one does not fit: the engine that
            # ran it must have stored it at the weights' precision (memwall's rule too).
            retry = cli_estimate(model_path, **{**call, "kvcache_quant_mode": narrower})
            result = retry if not retry.kv_cache_warning else result
    except Exception as exc:  # every failure is a row it cannot price, said with its reason
        return {"run_id": request["run_id"], "error": f"{type(exc).__name__}: {exc}"}
    return {
        "run_id": request["run_id"],
        "ttft_s": float(result.ttft) / 1e3,
        "tpot_s": float(result.tpot) / 1e3,
        "tokens_per_s": float(result.tokens_per_second),
        "kv_cache": str(result.raw.get("kvcache")),
        "database_version": str(result.backend_version),
        "warning": result.kv_cache_warning,
    }


def main() -> None:
    requests = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(sys.stderr):
        results = [estimate(r, Path(folder)) for r in requests]
    json.dump({"aiconfigurator": version("aiconfigurator"), "results": results}, sys.stdout)
    print()


if __name__ == "__main__":
    main()

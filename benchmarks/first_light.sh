#!/usr/bin/env bash
# First light on a GPU (issue 28): the device check, then the gpu-marked tests, in one command
# that fits one 10-minute run on a GPU machine which received this checkout (and, where it has
# no network, the folder .whl from `make carry-wheels WHEELS=.whl`). From the checkout's root:
#
#   bash benchmarks/first_light.sh OUT_DIR
#
# OUT_DIR gets nvidia-smi.csv, device-check.log, gpu-tests.log and check/ (the device check's
# device-check.json, device-check.md, measurements.parquet): eight files at most, two deep.
set -uo pipefail
out=${1:?usage: benchmarks/first_light.sh OUT_DIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
if compgen -G ".whl/*.whl" >/dev/null; then
	python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
		--target /tmp/memwall-site .whl/*.whl || exit 1
	export PYTHONPATH="$PWD:/tmp/memwall-site"
fi
nvidia-smi --query-gpu=index,name,uuid,pci.bus_id,memory.total,clocks.max.sm,power.limit,ecc.mode.current \
	--format=csv >"$out/nvidia-smi.csv" 2>&1
python3 -c 'import jax; print("jax", jax.__version__, jax.devices())'
# The check's steps stop starting at 300 s; 420 s at most, then 130 s for the tests.
timeout 420 python3 -m benchmarks.device_check "$out/check" --deadline-s 300 2>&1 |
	tee "$out/device-check.log" | grep -Ev '^  [^ ]'
timeout 130 python3 -m pytest -q -m gpu -p no:cacheprovider tests/probes 2>&1 |
	tee "$out/gpu-tests.log" | tail -15

"""Issue 19 bounds: 1280x720 latency (OpenVINO bf16, 2 threads) of the networks that could
carry 720p detail: `python benchmarks/hd_bounds.py benchmarks/results/hd_bounds_dev_cpu.json`."""

import sys

from jsnet_edge.models.genotype import Genotype
from jsnet_edge.outputs import write_json
from jsnet_edge.runtime.timing import TimingMethod
from jsnet_edge.search.timing import time_network

method = TimingMethod()
rows = {}
for g in [
    "C8-L1-N2-S4:skip,rb,rb:skip,skip,skip",  # the 35 ms search result
    "C24-L1-N2-S4:skip,rb,rb:skip,skip,skip",  # wide enough at --unshuffle 4 (2C >= 48)
    "C8-L1-N2-S2:skip,rb,rb:skip,skip,skip",  # denoise-rt's genotype
]:
    t = time_network(
        Genotype.from_string(g), "denoise", 3, (1280, 720), "openvino", "cpu", "bf16", method
    )
    rows[g] = t.ms
    print(f"{g}: {t.ms:.1f} ms at 1280x720 (OpenVINO bf16, 2 threads)", flush=True)
write_json(sys.argv[1], rows)

"""Eager vs torch.compile vs ONNX Runtime vs INT8 ms per action chunk on this machine -> results/export_bench.json.

Usage: python scripts/export_bench.py [--sizes tiny,mid] [--iters 20] [--warmup 3] [--no_compile] [--out FILE]
(the code is `vlaos.deploy.export.bench_main`, notebook nbs/30_export.ipynb)."""
from vlaos.deploy.export import bench_main

if __name__ == "__main__": bench_main()

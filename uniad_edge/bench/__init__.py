"""`uniad-edge bench`: latency, throughput, memory and roofline of every backend, side by side
with PyTorch fp32 eager, each row measured in its own process. Importing this needs no torch."""

from .config import BenchConfig
from .report import BenchReport, BenchRow, render_markdown, rich_table
from .runner import run_bench

__all__ = ["BenchConfig", "BenchReport", "BenchRow", "render_markdown", "rich_table", "run_bench"]

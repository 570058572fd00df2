"""Wall time of `ragsys search` and `ragsys ask` from a cold shell: each run is a new process.

    .venv/bin/python eval/bench/startup.py --index runs/sec10q/index [--runs 5] [--question Q]

Each command runs `--runs` times as a fresh `ragsys` process (the time includes Python's
start, imports, loading the index and models, the query and, for ask, the answer); p50 is
reported. The same commands also run with the previous paths (`fp32`: the query encoder on
torch and the generator on transformers, over the same index) in the same run, alternating.
Targets: search <= 1.5 s, ask <= 2.5 s. The answer's length and prompt size are reported,
since they decide most of ask's time. Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ragsys.pipeline import default_pipeline
from ragsys.retrieve.dense import DenseConfig

RAGSYS = str(Path(sys.executable).with_name("ragsys"))
QUESTION = "What was the total net sales in the most recent quarter?"


def fp32_pipeline(folder: Path) -> Path:
    """The default pipeline on the previous runtimes (same passage vectors, so the same index)."""
    config = default_pipeline()
    retrievers = tuple(
        r.model_copy(update={"query_backend": "torch"}) if isinstance(r, DenseConfig) else r
        for r in config.retrievers
    )
    assert config.generator is not None
    generator = config.generator.model_copy(update={"backend": "transformers"})
    config.model_copy(update={"retrievers": retrievers, "generator": generator}).save(folder)
    return folder


def run(args: list[str]) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    done = subprocess.run([RAGSYS, *args, "--json"], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"ragsys {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return elapsed, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--question", default=QUESTION)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        slow = str(fp32_pipeline(Path(tmp) / "fp32"))
        commands = {
            "search": ["search", args.question, "--index", args.index],
            "ask": ["ask", args.question, "--index", args.index],
        }
        for command in commands.values():  # warm-up: exports and conversions happen once, not timed
            run(command)
            run([*command, "--pipeline", slow])
        times: dict[str, list[float]] = {f"{k}{s}": [] for k in commands for s in ("", "_fp32")}
        answer: dict[str, Any] = {}
        for i in range(args.runs):
            for name, command in commands.items():
                for suffix, extra in (("", []), ("_fp32", ["--pipeline", slow]))[:: 1 if i % 2 == 0 else -1]:
                    elapsed, out = run([*command, *extra])
                    times[name + suffix].append(elapsed)
                    if name == "ask" and not suffix:
                        answer = out
            print(
                f"run {i + 1}/{args.runs}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
                file=sys.stderr,
            )
    p50 = {k: round(statistics.median(v), 3) for k, v in times.items()}
    result = {
        "bench": "startup",
        "index": args.index,
        "runs": args.runs,
        "search_p50_s": p50["search"],
        "ask_p50_s": p50["ask"],
        "search_fp32_p50_s": p50["search_fp32"],
        "ask_fp32_p50_s": p50["ask_fp32"],
        "ask_backend": answer.get("backend"),
        "ask_prompt_tokens": answer.get("timings", {}).get("prompt_tokens"),
        "ask_new_tokens": answer.get("timings", {}).get("new_tokens"),
        "ask_generate_s": round(float(answer.get("timings", {}).get("generate_s", 0.0)), 3),
        "targets": {"search_p50_s<=1.5": p50["search"] <= 1.5, "ask_p50_s<=2.5": p50["ask"] <= 2.5},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

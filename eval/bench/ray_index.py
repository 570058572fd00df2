"""`ragsys index` locally (2 extraction processes) vs on a local Ray instance (`--ray`, 2 CPUs).

For each corpus size in `--files`, both modes index the same files into fresh index folders, each
in its own subprocess, so the driver's peak RSS (`ru_maxrss` of that process) is per run; the
largest reaped child (`RUSAGE_CHILDREN`) and the sampled peak RSS of the whole process tree (Ray's
raylet, GCS and workers included; shared pages counted once per process) are reported beside it.
Ray's start-up (`ray.init`) and shutdown are timed apart from `index_paths`; `seconds` includes
them, as `ragsys index --ray` pays them. The two indexes must then hold the same chunks (ids,
texts, rows), the same documents and the same BM25 top-10 (ids and scores) for a few queries, as
tests/index/test_ray.py compares them; dense top-10 ids (scores within 1e-5) are reported apart.

Corpus: by default N distinct PDFs rendered from the demo markdown (data/demo), every paragraph
and table row marked with its copy, so no chunk dedupes across files; `--corpus DIR` uses real
files (the first N, sorted). Encoder: the default pipeline's (the bundled MiniLM, on the backend
"auto" resolves to, OpenVINO where present); `--tiny` uses a tiny random encoder, as the tests do.
A one-file local warm-up runs first (untimed) so neither mode pays a model export.

Usage: python eval/bench/ray_index.py [--files 40,160] [--tiny] [--corpus DIR] [--keep DIR]
Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUERIES = ["picking arm twelve kilograms", "harmonic drives grease", "revenue rose percent",
           "strawberries per hour bruising", "warehouse shift safety training",
           "floods postponed fleet"]  # fmt: skip
SITES = ["Reno", "Fresno", "Tulsa", "Omaha", "Boise", "Akron", "Macon", "Provo", "Salem", "Dover"]


def log(message: str) -> None:
    """Progress goes to stderr, so the last line of stdout stays the one JSON result."""
    print(message, file=sys.stderr, flush=True)


# --- corpus -----------------------------------------------------------------------------------


def _mark(md: str, copy: int) -> str:
    """The demo markdown with every heading, paragraph and table row naming copy `copy`."""
    site = f"{SITES[copy % len(SITES)]} {copy}"
    out = []
    for line in md.splitlines():
        if line.startswith("#"):
            out.append(f"{line} ({site})")
        elif line.startswith("|") and not re.fullmatch(r"[|\s:-]+", line):
            cells = line.strip().strip("|").split("|")
            out.append(
                "| " + " | ".join([f"{cells[0].strip()} {copy}", *(c.strip() for c in cells[1:])]) + " |"
            )
        elif line.strip() and not line.startswith("|"):
            line = re.sub(r"([.!?])(\s|$)", rf" at {site}\1\2", line)  # every sentence: no window repeats
            out.append(f"{line} This applies to the {site} site, record {copy * 7 + len(out)}.")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def make_corpus(out: Path, n: int) -> list[Path]:
    """`n` distinct PDFs, each all demo documents (about 3 pages) marked with its copy number."""
    sys.path.insert(0, str(ROOT / "data"))
    from make_demo_corpus import render

    demos = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "data" / "demo").glob("*.md"))]
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        k = i % len(demos)  # rotate which document leads, so files do not all start alike
        md = "\n".join(_mark(d, i) for d in demos[k:] + demos[:k])
        src = out / f"doc-{i:04d}.md"
        src.write_text(md, encoding="utf-8")
        render(src, out / f"doc-{i:04d}.pdf")
        src.unlink()
        paths.append(out / f"doc-{i:04d}.pdf")
    return paths


def corpus_files(corpus: Path) -> list[Path]:
    from ragsys.extract import SUPPORTED_SUFFIXES

    suffixes = {s.lower() for s in SUPPORTED_SUFFIXES["pdf"]}
    return sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def subset(files: list[Path], n: int, dest: Path) -> Path:
    """A folder holding the first `n` files (hard links where possible), named as they were."""
    dest.mkdir(parents=True)
    for i, f in enumerate(files[:n]):
        target = dest / f"{i:04d}-{f.name}"
        try:
            os.link(f, target)
        except OSError:
            shutil.copy2(f, target)
    return dest


# --- one run, in its own process --------------------------------------------------------------


def worker(mode: str, corpus: Path, index: Path, pipeline: Path) -> None:
    import resource

    from ragsys.index.build import index_paths
    from ragsys.pipeline import PipelineConfig

    spec = PipelineConfig.model_validate_json(pipeline.read_text()).index_spec()
    out: dict[str, object] = {}
    t0 = time.monotonic()
    if mode == "local":
        summary = index_paths([corpus], index, spec, workers=2)
        out["index_s"] = round(time.monotonic() - t0, 3)
    else:
        from ragsys.distributed import RayExecutor, RayOptions

        with RayExecutor(RayOptions(address="local", num_cpus=2)) as ex:
            t1 = time.monotonic()
            summary = index_paths([corpus], index, spec, executor=ex)
            t2 = time.monotonic()
            out["ray_nodes"] = len(ex.nodes)
        out["ray_start_s"] = round(t1 - t0, 3)
        out["index_s"] = round(t2 - t1, 3)
        out["ray_stop_s"] = round(time.monotonic() - t2, 3)
    out["seconds"] = round(time.monotonic() - t0, 3)
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out.update(
        driver_peak_rss_mb=round(self_rss, 1), children_peak_rss_mb=round(child_rss, 1),
        chunks=summary.chunks, chunks_embedded=summary.chunks_embedded, pages=summary.pages,
        files_indexed=summary.files_indexed, files_failed=len(summary.files_failed),
        stages_s=summary.timings, embed_backends=summary.embed_backends,
    )  # fmt: skip
    print(json.dumps(out))


class TreeRss:
    """Samples the summed RSS of a process and all its descendants; keeps the peak."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        import psutil

        self._root, self._every, self.peak = psutil.Process(pid), every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self._root, *self._root.children(recursive=True)]
            except psutil.Error:
                return
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self._every)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak / 2**20, 1)


def run(mode: str, corpus: Path, index: Path, pipeline: Path, env: dict[str, str]) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--worker", mode, str(corpus), str(index), str(pipeline)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    sampler = TreeRss(proc.pid)
    stdout, _ = proc.communicate()
    tree = sampler.stop()
    if proc.returncode != 0:
        sys.exit(f"{mode} run on {corpus} failed (exit {proc.returncode})")
    result: dict[str, object] = json.loads(stdout.strip().splitlines()[-1])
    result["process_wall_s"] = round(time.monotonic() - t0, 3)  # interpreter start and imports too
    result["tree_peak_rss_mb"] = tree
    return result


# --- comparison -------------------------------------------------------------------------------


def compare(a: Path, b: Path, pipeline: Path) -> dict[str, bool]:
    """As tests/index/test_ray.py's assert_same_index, with top-10 and without asserting."""
    import numpy as np

    from ragsys.index.reader import Index
    from ragsys.pipeline import PipelineConfig
    from ragsys.retrieve.bm25 import BM25Config
    from ragsys.retrieve.dense import DenseConfig

    config = PipelineConfig.model_validate_json(pipeline.read_text())
    ia, ib = Index.open(a), Index.open(b)
    try:
        same_chunks = list(ia.store.iter_chunks()) == list(ib.store.iter_chunks())
        same_docs = ia.manifest.documents == ib.manifest.documents
        same_bm25, same_dense = True, True
        for r in config.retrievers:
            ra, rb = r.build(ia), r.build(ib)
            for q in QUERIES:
                ha, hb = ra.retrieve(q, 10), rb.retrieve(q, 10)  # type: ignore[union-attr]
                if isinstance(r, BM25Config):
                    same_bm25 &= [(h.chunk.id, h.score) for h in ha] == [(h.chunk.id, h.score) for h in hb]
                elif isinstance(r, DenseConfig):
                    same_dense &= [h.chunk.id for h in ha] == [h.chunk.id for h in hb] and bool(
                        np.allclose([h.score for h in ha], [h.score for h in hb], atol=1e-5)
                    )
    finally:
        ia.close()
        ib.close()
    return {"chunks": same_chunks, "documents": same_docs, "bm25_top10": same_bm25, "dense_top10": same_dense}


def pipeline_json(tiny: bool, tmp: Path) -> tuple[Path, dict[str, object]]:
    from ragsys.pipeline import PipelineConfig, default_pipeline

    if tiny:
        sys.path.insert(0, str(ROOT))
        from ragsys.chunk.chunker import ChunkConfig
        from ragsys.retrieve.bm25 import BM25Config
        from ragsys.retrieve.dense import DenseConfig
        from tests.fixtures.tiny_models import make_tiny_sentence_transformer

        st = make_tiny_sentence_transformer(tmp / "tiny-st")
        config = PipelineConfig(
            name="tiny",
            chunking=ChunkConfig(max_tokens=48, overlap_tokens=8, tokenizer=str(st)),
            retrievers=(BM25Config(), DenseConfig(model=str(st))),
        )  # as tests/conftest.py's tiny_pipeline
        encoder: dict[str, object] = {"model": "tiny random BERT (tests/fixtures/tiny_models.py)"}
    else:
        config = default_pipeline()
        encoder = {"model": "minilm (the default pipeline's DenseConfig)"}
    dense = [r for r in config.retrievers if r.kind == "dense"]
    encoder.update(
        backend_config=[getattr(r, "backend", None) for r in dense], chunking=config.chunking.model_dump()
    )
    path = tmp / "pipeline.json"
    path.write_text(config.model_dump_json())
    return path, encoder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--files", default=None, help="corpus sizes, comma-separated (default 40,160; all with --corpus)"
    )
    ap.add_argument(
        "--corpus", type=Path, default=None, help="index real files from DIR instead of generated PDFs"
    )
    ap.add_argument("--tiny", action="store_true", help="a tiny random encoder instead of the bundled MiniLM")
    ap.add_argument("--keep", type=Path, default=None, help="folder to keep the corpora and indexes in")
    ap.add_argument(
        "--worker", nargs=4, metavar=("MODE", "CORPUS", "INDEX", "PIPELINE"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.worker:
        mode, corpus, index, pipeline = args.worker
        worker(mode, Path(corpus), Path(index), Path(pipeline))
        return
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ragsys-ray-bench-") as tmpdir:
        tmp = args.keep or Path(tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.pop("RAY_ADDRESS", None)  # a local instance of our own, never someone's cluster
        if args.tiny:  # the tiny model's exports go to a throwaway cache, as in the tests
            env["RAGSYS_CACHE"] = os.environ["RAGSYS_CACHE"] = str(tmp / "cache")
        pipeline, encoder = pipeline_json(args.tiny, tmp)
        if args.corpus is not None:
            files = corpus_files(args.corpus)
            if not files:
                sys.exit(f"no PDFs under {args.corpus}")
            sizes = [int(s) for s in args.files.split(",")] if args.files else [len(files)]
            sizes = sorted({min(n, len(files)) for n in sizes})
            corpus_desc = str(args.corpus)
        else:
            sizes = sorted({int(s) for s in (args.files or "40,160").split(",")})
            t0 = time.monotonic()
            files = make_corpus(tmp / "generated", max(sizes))
            log(f"rendered {len(files)} distinct PDFs in {time.monotonic() - t0:.1f}s")
            corpus_desc = "generated from data/demo (each file all 3 demo docs, marked with its copy)"
        log("warm-up: one file, local (untimed), so no run pays a model export")
        warm = run("local", subset(files, 1, tmp / "warm-docs"), tmp / "warm-index", pipeline, env)
        runs: list[dict[str, object]] = []
        equal: dict[str, dict[str, bool]] = {}
        ratios: dict[str, float] = {}
        ratios_no_start: dict[str, float] = {}
        for n in sizes:
            docs = subset(files, n, tmp / f"docs-{n}")
            by_mode: dict[str, dict[str, object]] = {}
            for mode in ("local", "ray"):
                log(f"{n} files, {mode}...")
                r = run(mode, docs, tmp / f"index-{n}-{mode}", pipeline, env)
                log(f"  {r['seconds']}s, {r['chunks']} chunks, driver peak RSS {r['driver_peak_rss_mb']} MB")
                by_mode[mode] = r
                runs.append({"files": n, "mode": mode, **r})
            equal[str(n)] = compare(tmp / f"index-{n}-local", tmp / f"index-{n}-ray", pipeline)
            log(f"  same: {equal[str(n)]}")
            loc, ray = by_mode["local"], by_mode["ray"]
            ratios[str(n)] = round(float(ray["seconds"]) / float(loc["seconds"]), 3)  # type: ignore[arg-type]
            ratios_no_start[str(n)] = round(float(ray["index_s"]) / float(loc["index_s"]), 3)  # type: ignore[arg-type]
    from importlib.metadata import version

    encoder["backends_used"] = sorted({b for r in runs for b in r["embed_backends"].values()})  # type: ignore[attr-defined]
    result = {
        "runs": runs,
        "ray_vs_local": ratios,
        "ray_vs_local_without_ray_start_stop": ratios_no_start,
        "equal": all(e["chunks"] and e["documents"] and e["bm25_top10"] for e in equal.values()),
        "equal_detail": equal,
        "encoder": encoder,
        "cpus": 2,
        "corpus": corpus_desc,
        "warmup_s": warm["seconds"],
        "total_wall_s": round(time.monotonic() - t_start, 1),
        "env": {"python": platform.python_version(), "ray": version("ray"), "machine_cpus": os.cpu_count()},
        "notes": (
            "seconds: wall time in the run's own process from before RayExecutor connects (ray.init) "
            "to after it disconnects, so Ray start-up and shutdown are included (also reported apart "
            "as ray_start_s / ray_stop_s; index_s is index_paths alone); process_wall_s adds interpreter "
            "start and imports. local: index_paths(workers=2), encoder in the driver; ray: "
            "RayOptions(address='local', num_cpus=2). driver_peak_rss_mb: ru_maxrss of the run's "
            "process; children_peak_rss_mb: the largest reaped child (local: the extraction processes; "
            "ray: raylet/GCS, not Ray's workers, which are not our children); tree_peak_rss_mb: peak of "
            "the sampled (every 0.25 s) summed RSS of the process tree, shared pages counted per process. "
            "equal: same chunk ids/texts/rows, documents and BM25 top-10 ids+scores for "
            f"{len(QUERIES)} queries; dense top-10 ids (scores within 1e-5) in equal_detail. "
            "Timings taken on a 2-core machine shared with a running evaluation and a fuzz benchmark, "
            "so they are noisy and both modes compete for the same 2 cores."
        ),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

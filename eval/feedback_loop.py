"""One turn of the feedback loop through the real server: serve, collect an expert's thumbs and
revisions over HTTP, `ragsys tune --feedback`, hot-swap the tuned pipeline in, measure again.

    .venv/bin/python eval/feedback_loop.py --index runs/sec10q/index --eval-set runs/sec10q/evalset.jsonl \\
        --out runs/loop [--pipeline P] [--thumbs-only] [--max-minutes 60]
    .venv/bin/python eval/feedback_loop.py --tiny      # tiny random models in a temp dir, seconds

1. `ragsys serve` (a subprocess on loopback, with a token so the admin route is on) answers the
   eval set's test questions through POST /ask: the "before" scores.
2. A simulated expert asks every train question through POST /ask, gives a thumb by
   `numeric_match` against the reference (token F1 >= 0.5 where it states no figure) and, for a
   wrong answer, submits the reference as a revision (not with --thumbs-only), via POST /feedback.
3. `ragsys tune --feedback DB --stages preference` learns from that store (`--stages
   generator,preference` also fine-tunes on the revisions; `--folds 3` judges by cross-fitting).
   Its eval set is made from the feedback alone: each judged train question with the expert's
   revision, or the approved answer, as its reference (a question judged wrong without a
   revision has none). Feedback about the questions a stage is judged on is not trained on.
   No eval-set reference of a train question reaches the tuner; the test questions are copied
   in only because tune's final report reads them (they are never trained or judged on).
4. POST /admin/pipeline swaps the tuned pipeline in while a client keeps asking (every request
   must succeed), then the test questions are asked again: the "after" scores.

Reported: numeric_match, citation_precision and no_citation_rate on the test questions before
and after, paired deltas with bootstrap CIs and randomization p-values (ragsys.eval.stats), the
feedback counts, the requests that failed, acknowledged feedback missing from the store, and
the wall time. Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from eval.bench.serve_load import Server, free_port, log, tiny_setup  # noqa: E402

METRICS = ("numeric_match", "citation_precision", "no_citation_rate")
TINY_ITEMS = (  # (id, question, reference, file, split) over tests/fixtures/corpus.DOCS
    ("t1", "How much does the picking arm lift?", "12 kilograms", "robots.md", "train"),
    ("t2", "When do harmonic drives need grease?", "every 4,000 hours", "robots.md", "train"),
    ("t3", "How many strawberries per hour?", "1,100 per hour", "fruit.md", "train"),
    ("t4", "How much did revenue rise?", "18 percent, to $48 million", "notes.txt", "train"),
    ("s1", "How many kilograms does the picking arm lift?", "12 kilograms", "robots.md", "test"),
    ("s2", "How many strawberries does the harvester pick per hour?", "1,100", "fruit.md", "test"),
    ("s3", "By what percent did quarterly revenue rise?", "18 percent", "notes.txt", "test"),
)


def tiny_eval_set(index: Path, out: Path) -> Path:
    from ragsys.eval.evalset import EvalItem, save_eval_set
    from ragsys.index.manifest import read_manifest

    docs = list(read_manifest(index).documents)
    items = [
        EvalItem(id=i, question=q, answer=a, split=s, gold_doc_ids=tuple(d for d in docs if d.endswith(f)))
        for i, q, a, f, s in TINY_ITEMS
    ]
    save_eval_set(items, out)
    return out


def judge(answer: str, reference: str) -> bool:
    """The expert's thumb: every figure of the reference stated, or token F1 >= 0.5 without figures."""
    from ragsys.eval.answers import token_f1
    from ragsys.eval.numbers import numeric_match

    numeric = numeric_match(answer, reference)
    return numeric == 1.0 if numeric is not None else token_f1(answer, reference) >= 0.5


def scores(item: Any, body: dict[str, Any]) -> dict[str, float]:
    """The three metrics of one served answer, as `ragsys eval` computes them."""
    from ragsys.eval.answers import citation_precision_recall
    from ragsys.eval.numbers import numeric_match

    out = {"no_citation_rate": float(not body["citations"] and not body["abstained"])}
    numeric = numeric_match(body["answer"], item.answer) if item.answer else None
    if numeric is not None:
        out["numeric_match"] = numeric
    if item.gold_doc_ids:
        cites = citation_precision_recall([c["doc"] for c in body["citations"]], item.gold_doc_ids)
        out["citation_precision"] = cites.precision
    return out


class Client:
    """The loop's HTTP side: every failed request is counted, every acknowledged feedback kept."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=900, headers={"Authorization": f"Bearer {token}"})
        self.failed: list[str] = []
        self.acked: list[str] = []
        self.lock = threading.Lock()

    def ask(self, question: str) -> dict[str, Any] | None:
        try:
            r = self.http.post("/ask", json={"question": question})
        except httpx.HTTPError as e:
            return self._fail(f"ask: {type(e).__name__}")
        return dict(r.json()) if r.status_code == 200 else self._fail(f"ask: {r.status_code} {r.text[:120]}")

    def feedback(self, body: dict[str, Any]) -> None:
        r = self.http.post("/feedback", json=body)
        if r.status_code != 200:
            self._fail(f"feedback: {r.status_code} {r.text[:120]}")
            return
        with self.lock:
            self.acked.append(str(r.json()["id"]))

    def _fail(self, what: str) -> None:
        with self.lock:
            self.failed.append(what)
        log(f"FAILED {what}")


def measure(client: Client, items: list[Any], label: str) -> tuple[dict[str, dict[str, float]], set[str]]:
    """Each test question's metrics, and the pipeline versions that answered them."""
    out: dict[str, dict[str, float]] = {}
    versions: set[str] = set()
    for n, item in enumerate(items, 1):
        body = client.ask(item.question)
        if body is not None:
            out[item.id] = scores(item, body)
            versions.add(str(body["pipeline_version"]))
        log(f"{label}: {n}/{len(items)}")
    return out, versions


def expert(client: Client, items: list[Any], thumbs_only: bool) -> dict[str, int]:
    """Asks each train question, judges the answer against its reference, sends the feedback."""
    counts = {"asked": 0, "up": 0, "down": 0, "revisions": 0}
    for n, item in enumerate(items, 1):
        body = client.ask(item.question)
        if body is None or not item.answer:
            continue
        right = judge(body["answer"], item.answer)
        feedback: dict[str, Any] = {"answer_id": body["answer_id"], "rating": "up" if right else "down"}
        if not right and not thumbs_only:
            feedback["revision"] = item.answer
        client.feedback(feedback)
        counts["asked"] += 1
        counts["up" if right else "down"] += 1
        counts["revisions"] += "revision" in feedback
        log(f"expert: {n}/{len(items)} ({counts})")
    return counts


def feedback_eval_set(db: Path, test: list[Any], out: Path) -> Path:
    """Train questions from the feedback alone (module docstring, step 3), plus the test items."""
    from ragsys.eval.evalset import EvalItem, save_eval_set
    from ragsys.feedback.store import FeedbackStore

    with FeedbackStore.open(db, readonly=True) as store:
        records = store.records()
    last = {r.question: r for r in records}  # one item per question: its last judgement
    items = [
        EvalItem(id=f"fb{n}", question=q, split="train",
                 answer=r.revision or (r.answer if r.rating == "up" else None))
        for n, (q, r) in enumerate(last.items())
    ]  # fmt: skip
    save_eval_set([*items, *test], out)
    return out


def tune(
    args: argparse.Namespace, pipeline: str | None, index: Path, evalset: Path, db: Path, out: Path
) -> dict[str, Any]:
    command = [sys.executable, "-m", "ragsys.cli", "tune", "--index", str(index), "--eval-set", str(evalset),
               "--feedback", str(db), "--out", str(out), "--stages", args.stages, "--no-isolated",
               "--report-answers", str(args.report_answers), "--folds", str(args.folds),
               "--json"]  # fmt: skip
    if pipeline is not None:
        command += ["--pipeline", pipeline]
    if args.max_minutes is not None:
        command += ["--max-minutes", str(args.max_minutes)]
    if args.thumbs_only:
        command += ["--preference-methods", "kto"]
    log("tune: " + " ".join(command[2:]))
    done = subprocess.run(command, env=_env(args), stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ragsys tune exited {done.returncode}")
    state = json.loads((out / "tune-state.json").read_text(encoding="utf-8"))
    stages = [
        {"name": s["name"], "status": s["status"], "reason": s["reason"], "extra": s.get("extra", {})}
        for s in state["stages"]
    ]
    # status, reason, extra: the preference stage's (the last stage's without one), as before --stages
    main = next((s for s in stages if s["name"] == "preference"), stages[-1])
    return {"status": main["status"], "reason": main["reason"], "extra": main["extra"], "stages": stages}


def swap_under_load(client: Client, path: Path, questions: list[str]) -> dict[str, Any]:
    """POST /admin/pipeline while another thread keeps asking; every one of its requests must succeed."""
    stop, answered = threading.Event(), []

    def keep_asking() -> None:
        n = 0
        while not stop.is_set():
            body = client.ask(questions[n % len(questions)])
            answered.append(None if body is None else body["pipeline_version"])
            n += 1

    failed_before = len(client.failed)
    asker = threading.Thread(target=keep_asking, daemon=True)
    asker.start()
    r = client.http.post("/admin/pipeline", json={"path": str(path)})
    stop.set()
    asker.join(900)
    if r.status_code != 200:
        raise RuntimeError(f"the hot swap was refused: {r.status_code} {r.text}")
    body = dict(r.json())
    return body | {"requests_during_swap": len(answered),
                   "failed_during_swap": len(client.failed) - failed_before,
                   "versions_during_swap": sorted({v for v in answered if v is not None})}  # fmt: skip


def compare(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Per metric: means before and after, and the paired delta over questions scored in both."""
    from ragsys.eval.stats import paired_bootstrap_delta_ci, paired_randomization_test

    out: dict[str, Any] = {}
    for metric in METRICS:
        ids = sorted(i for i in before if metric in before[i] and i in after and metric in after[i])
        if not ids:
            out[metric] = {"n": 0}
            continue
        a, b = [after[i][metric] for i in ids], [before[i][metric] for i in ids]
        low, high = paired_bootstrap_delta_ci(a, b)
        out[metric] = {
            "n": len(ids), "before": sum(b) / len(b), "after": sum(a) / len(a),
            "delta": (sum(a) - sum(b)) / len(ids), "ci95": [low, high], "p": paired_randomization_test(a, b),
        }  # fmt: skip
    return out


def lost_feedback(db: Path, acked: list[str]) -> int:
    from ragsys.feedback.store import FeedbackStore

    with FeedbackStore.open(db, readonly=True) as store:
        return sum(store.get(i) is None for i in acked)


def _env(args: argparse.Namespace) -> dict[str, str]:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if args.tiny:
        env["OMP_NUM_THREADS"] = "1"  # a tiny model gains nothing from threads on a shared CPU
    return env


def run(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from ragsys.eval.evalset import load_eval_set

    t0 = time.monotonic()
    index, pipeline = tiny_setup(out) if args.tiny else (args.index, args.pipeline)
    evalset = tiny_eval_set(index, out / "evalset.jsonl") if args.tiny else args.eval_set
    train, test = load_eval_set(evalset, ["train"]), load_eval_set(evalset, ["test"])
    if args.limit:
        train, test = train[: args.limit], test[: args.limit]
    db, token, port = out / "feedback.db", secrets.token_urlsafe(32), free_port()
    command = [sys.executable, "-m", "ragsys.cli", "serve", "--index", str(index), "--port", str(port),
               "--feedback", str(db)] + (["--pipeline", str(pipeline)] if pipeline else [])  # fmt: skip
    server = Server(
        command, _env(args) | {"RAGSYS_TOKEN": token}, out / "server.log", f"http://127.0.0.1:{port}"
    )
    log(f"starting the server on port {port} ...")
    server.start(args.start_timeout)
    client = Client(server.url, token)
    try:
        before, before_versions = measure(client, test, "before")
        counts = expert(client, train, args.thumbs_only)
        t_tune = time.monotonic()
        derived = feedback_eval_set(db, test, out / "feedback-evalset.jsonl")
        tuned = tune(args, str(pipeline) if pipeline else None, index, derived, db, out / "tuned")
        tune_s = time.monotonic() - t_tune
        swap = swap_under_load(client, out / "tuned", [it.question for it in train] or ["?"])
        after, after_versions = measure(client, test, "after")
    finally:
        server.stop()
    return {
        "mode": "thumbs-only" if args.thumbs_only else "thumbs+revisions", "server": str(index),
        "train_questions": len(train), "test_questions": len(test), "feedback": counts,
        "tune": tuned | {"minutes": round(tune_s / 60, 2)}, "swap": swap,
        "versions": {"before": sorted(before_versions), "after": sorted(after_versions)},
        "metrics": compare(before, after), "failed_requests": len(client.failed),
        "failures": client.failed[:5], "acknowledged_feedback": len(client.acked),
        "lost_feedback": lost_feedback(db, client.acked), "wall_s": round(time.monotonic() - t0, 1),
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, help="index directory (or --tiny)")
    p.add_argument("--eval-set", type=Path, help="eval set with train and test questions (or --tiny)")
    p.add_argument("--pipeline", default=None, help="pipeline file or directory (default pipeline)")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: a temp dir, removed)")
    p.add_argument("--tiny", action="store_true", help="tiny random models, corpus and questions")
    p.add_argument(
        "--thumbs-only", action="store_true", help="the expert sends thumbs, no revisions (KTO only)"
    )
    p.add_argument("--max-minutes", type=float, default=None, help="time budget of ragsys tune")
    p.add_argument(
        "--stages", default="preference",
        help="ragsys tune's stages, e.g. generator,preference (generator: SFT on the revisions)",
    )  # fmt: skip
    p.add_argument(
        "--folds", type=int, default=0, help="ragsys tune --folds: cross-fit the keep rule (0: dev split)"
    )
    p.add_argument(
        "--report-answers", type=int, default=1, help="test answers per system in tune's own report"
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N train and N test questions")
    p.add_argument("--start-timeout", type=float, default=900.0, help="seconds to wait for the server")
    args = p.parse_args()
    if not args.tiny and (args.index is None or args.eval_set is None):
        p.error("pass --index DIR --eval-set FILE, or --tiny")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        result = run(args, args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="ragsys-loop-") as tmp:
            result = run(args, Path(tmp))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

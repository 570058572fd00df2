"""Load test of `ragsys serve` on loopback: throughput, latency, errors, and no lost feedback,
also across a `kill -9` of the server.

    .venv/bin/python eval/bench/serve_load.py --tiny [--clients 4] [--seconds 20] [--kill-at 8]
    .venv/bin/python eval/bench/serve_load.py --index runs/demo/index [--pipeline P] ...

The server runs as a subprocess (`python -m ragsys.cli serve`). Each client thread loops:
POST /ask, then POST /feedback for that answer; every feedback id the server acknowledged
(200) is remembered. With --kill-at S the server gets SIGKILL at S seconds and is started
again on the same feedback db; clients keep going, and a client whose feedback failed
during the outage retries it after the restart. Then feedback is sent on the last answers
acknowledged before the kill, which must still be known (target: lost_answers == 0).
At the end every acknowledged feedback id must be in the db (target: lost_feedback == 0)
and no request outside the outage may fail (target: errors == 0); 503s from a full queue
are reported apart, as backpressure.
--tiny builds random tiny models and a tiny index in a temp dir, so it runs in seconds.
Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = (
    "How often do harmonic drives need new grease?",
    "How many strawberries does the harvester pick per hour?",
    "How much did quarterly revenue rise?",
    "Why did gross margin improve?",
    "What ruined the harvest in the valley?",
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Tally:
    """What all clients saw; one lock guards it (appends are cheap next to a request)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latency: dict[str, list[float]] = field(default_factory=lambda: {"ask": [], "feedback": []})
    failures: list[tuple[float, str, str]] = field(default_factory=list)  # (time, route, what)
    acked: list[str] = field(default_factory=list)
    answers: list[tuple[float, str]] = field(default_factory=list)  # (time acknowledged, answer_id)
    retried_after_kill: int = 0

    def ok(self, route: str, seconds: float) -> None:
        with self.lock:
            self.latency[route].append(seconds)

    def fail(self, route: str, what: str) -> None:
        with self.lock:
            self.failures.append((time.monotonic(), route, what))


class Server:
    """The server subprocess; `kill()` is SIGKILL, no chance to flush anything."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, url: str) -> None:
        self.args, self.env, self.log_path, self.url = args, env, log_path, url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float) -> float:
        started = time.monotonic()
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not come up in {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def client(url: str, tally: Tally, deadline: float, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=300) as http:
        while time.monotonic() < deadline:
            answer_id = ask(http, tally, rng.choice(QUESTIONS))
            if answer_id is None:
                time.sleep(0.1)  # server down or busy: do not spin
                continue
            rating = rng.choice(("up", "down"))
            body = {"answer_id": answer_id, "rating": rating}
            if rating == "down" and rng.random() < 0.5:
                body["revision"] = f"A corrected answer, seed {seed}."
            send_feedback(http, tally, body, deadline)


def ask(http: httpx.Client, tally: Tally, question: str) -> str | None:
    started = time.perf_counter()
    try:
        r = http.post("/ask", json={"question": question})
    except httpx.HTTPError as e:
        tally.fail("ask", type(e).__name__)
        return None
    if r.status_code != 200:
        tally.fail("ask", str(r.status_code))
        return None
    tally.ok("ask", time.perf_counter() - started)
    answer_id = str(r.json()["answer_id"])
    with tally.lock:
        tally.answers.append((time.monotonic(), answer_id))
    return answer_id


def send_feedback(http: httpx.Client, tally: Tally, body: dict[str, str], deadline: float) -> None:
    """Retries while the server is unreachable (a kill), so an answer acknowledged before the
    kill gets its feedback after the restart: a 404 then would mean the answer was lost."""
    retried = False
    while True:
        started = time.perf_counter()
        try:
            r = http.post("/feedback", json=body)
        except httpx.HTTPError as e:
            tally.fail("feedback", type(e).__name__)
            if time.monotonic() > deadline + 60:
                return
            retried = True
            time.sleep(0.2)
            continue
        if r.status_code != 200:
            tally.fail("feedback", f"{r.status_code} {r.text[:120]}")
            return
        tally.ok("feedback", time.perf_counter() - started)
        with tally.lock:
            tally.acked.append(str(r.json()["id"]))
            tally.retried_after_kill += retried
        return


def tiny_setup(tmp: Path) -> tuple[Path, Path]:
    """Random tiny models from the test suite's builders, and the test corpus indexed with them."""
    sys.path.insert(0, str(ROOT))
    from ragsys.chunk.chunker import ChunkConfig
    from ragsys.generate.config import GeneratorConfig
    from ragsys.index.build import index_paths
    from ragsys.pipeline import PipelineConfig
    from ragsys.retrieve.bm25 import BM25Config
    from ragsys.retrieve.dense import DenseConfig
    from tests.fixtures.corpus import write_corpus
    from tests.fixtures.tiny_models import make_tiny_causal_lm, make_tiny_sentence_transformer

    st, lm = make_tiny_sentence_transformer(tmp), make_tiny_causal_lm(tmp)
    config = PipelineConfig(
        name="tiny",
        chunking=ChunkConfig(max_tokens=48, overlap_tokens=8, tokenizer=str(st)),
        retrievers=(BM25Config(), DenseConfig(model=str(st))),
        generator=GeneratorConfig(
            model=str(lm), max_new_tokens=8, context_tokens=64, system_prompt="Be brief."
        ),
    )
    config.save(tmp / "pipeline")
    index_paths([write_corpus(tmp / "docs")], tmp / "index", config.index_spec(), workers=1)
    return tmp / "index", tmp / "pipeline"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentiles(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"count": 0, "p50_ms": 0.0, "p95_ms": 0.0}
    p50, p95 = np.percentile(np.asarray(seconds) * 1000, [50, 95]).tolist()
    return {"count": len(seconds), "p50_ms": round(p50, 2), "p95_ms": round(p95, 2)}


def run(args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    index, pipeline = tiny_setup(tmp) if args.tiny else (args.index, args.pipeline)
    port, db = free_port(), tmp / "feedback.db"
    command = [sys.executable, "-m", "ragsys.cli", "serve", "--index", str(index), "--port", str(port),
               "--feedback", str(db), "--queue-size", str(args.queue_size)]  # fmt: skip
    if pipeline is not None:
        command += ["--pipeline", str(pipeline)]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if args.tiny:
        env["OMP_NUM_THREADS"] = "1"  # a tiny model gains nothing from threads on a shared CPU
    server = Server(command, env, tmp / "server.log", f"http://127.0.0.1:{port}")
    log(f"starting the server on port {port} ...")
    first_start = server.start(args.start_timeout)
    tally = Tally()
    started = time.monotonic()
    deadline = started + args.seconds
    threads = [threading.Thread(target=client, args=(server.url, tally, deadline, i), daemon=True)
               for i in range(args.clients)]  # fmt: skip
    for t in threads:
        t.start()
    outage, lost_answers = (float("inf"), float("inf")), None
    try:
        if args.kill_at is not None:
            time.sleep(max(0.0, args.kill_at - (time.monotonic() - started)))
            log(f"kill -9 at {time.monotonic() - started:.1f}s; restarting ...")
            killed = time.monotonic()
            server.kill()
            restart_s = server.start(args.start_timeout)
            outage = (killed, time.monotonic() + 1.0)  # a second of grace for in-flight retries
            log(f"back after {restart_s:.1f}s")
            lost_answers = rate_old_answers(server.url, tally, killed)
        for i, t in enumerate(threads):
            t.join(max(1.0, deadline - time.monotonic() + 120))
            log(f"client {i} done")
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    return report(args, tally, db, elapsed, outage, first_start) | {"lost_answers": lost_answers}


def rate_old_answers(url: str, tally: Tally, killed: float, n: int = 20) -> int:
    """Feedback, after the restart, on the last answers acknowledged before the kill: each must
    still be known (a 404 is a lost answer). Returns how many were lost."""
    with tally.lock:
        before = [a for t, a in tally.answers if t < killed][-n:]
    lost = 0
    with httpx.Client(base_url=url, timeout=60) as http:
        for answer_id in before:
            r = http.post("/feedback", json={"answer_id": answer_id, "rating": "up", "comment": "after kill"})
            if r.status_code == 404:
                lost += 1
            elif r.status_code == 200:
                with tally.lock:
                    tally.acked.append(str(r.json()["id"]))
                    tally.retried_after_kill += 1
            else:
                tally.fail("feedback", f"{r.status_code} {r.text[:120]}")
    return lost


def report(
    args: argparse.Namespace,
    tally: Tally,
    db: Path,
    elapsed: float,
    outage: tuple[float, float],
    start_s: float,
) -> dict[str, object]:
    from ragsys.feedback.store import FeedbackStore

    with FeedbackStore.open(db, readonly=True) as store:
        lost = [i for i in tally.acked if store.get(i) is None]
        stored = store.count()
    in_outage = [f for f in tally.failures if outage[0] <= f[0] <= outage[1]]
    rejected = [f for f in tally.failures if f not in in_outage and f[2].startswith("503")]
    errors = [f for f in tally.failures if f not in in_outage and f not in rejected]
    done = sum(len(v) for v in tally.latency.values())
    return {
        "server": "tiny" if args.tiny else str(args.index), "clients": args.clients,
        "seconds": round(elapsed, 2),
        "server_start_s": round(start_s, 2), "requests_ok": done, "requests_per_s": round(done / elapsed, 2),
        "ask": percentiles(tally.latency["ask"]), "feedback": percentiles(tally.latency["feedback"]),
        "errors": len(errors), "error_samples": sorted({f"{r}: {w}" for _, r, w in errors})[:5],
        "rejected_503": len(rejected), "failed_during_kill": len(in_outage), "kill_at_s": args.kill_at,
        "feedback_across_kill": tally.retried_after_kill, "outage_s": _span(outage),
        "acknowledged_feedback": len(tally.acked), "stored_feedback": stored, "lost_feedback": len(lost),
    }  # fmt: skip


def _span(outage: tuple[float, float]) -> float:
    return 0.0 if outage[0] == float("inf") else round(outage[1] - outage[0], 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, help="index directory (or use --tiny)")
    p.add_argument(
        "--pipeline", default=None, help="pipeline file or directory (default pipeline if omitted)"
    )
    p.add_argument(
        "--tiny", action="store_true", help="build tiny random models and a tiny index in a temp dir"
    )
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument(
        "--kill-at", type=float, default=None, help="SIGKILL the server at this second, then restart"
    )
    p.add_argument("--queue-size", type=int, default=8)
    p.add_argument("--start-timeout", type=float, default=600.0, help="seconds to wait for /health")
    args = p.parse_args()
    if not args.tiny and args.index is None:
        p.error("pass --index DIR or --tiny")
    if args.kill_at is not None and not 0 < args.kill_at < args.seconds:
        p.error("--kill-at must fall inside --seconds")
    with tempfile.TemporaryDirectory(prefix="ragsys-load-") as tmp:
        result = run(args, Path(tmp))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

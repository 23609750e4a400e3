"""Tokens saved and latency added by the proxy, on NQ dev questions sent as RAG chat requests.

Three processes on loopback: the fake OpenAI upstream (``python -m ctxcomp.proxy.testing``),
the proxy (``ctxcomp serve`` with an embedding pipeline), and this client (httpx, one
request at a time, keep-alive). Each NQ record becomes a chat request whose user message
holds its 20 passages in ``<document id=... title=...>`` tags, then the question. Per
record and round, the same request goes:

* ``direct``: straight to the upstream (the baseline);
* ``proxy_off``: through the proxy with ``X-Ctxcomp-Compress: off`` (parse, route, relay);
* ``proxy_embedding``: through the proxy, compressed to ``--ratio`` with the embedding
  stage; the first round is a cache miss (the model runs), later rounds hit the
  proxy's in-process cache.

Added latency = a request's latency through the proxy minus the median direct latency of
the same record. Tokens come from the ``x-ctxcomp-*`` headers (the document text) and
from counting the user message before and as forwarded (the upstream echoes it).
Answer recall: a gold answer (lowercased) is in the user message the upstream got.

Run (one benchmark at a time on a shared machine):
    flock /work/.bench.lock python benchmarks/proxy/bench_proxy.py --limit 20 --out benchmarks/results/proxy.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from html import escape
from pathlib import Path
from typing import Any

import httpx

from ctxcomp.proxy.testing import free_port
from ctxcomp.tokens import count_tokens

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "nq20" / "dev.jsonl.gz"
MODEL = "gpt-4o-mini"


def load(path: Path, limit: int) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(limit), fh, strict=False)]


def request_of(record: dict[str, Any]) -> dict[str, Any]:
    docs = "".join(f'<document id="{escape(str(c.get("id", i)))}" title="{escape(c.get("title", ""))}">'
                   f'\n{c["text"]}\n</document>\n' for i, c in enumerate(record["ctxs"]))
    return {"model": MODEL, "temperature": 0, "messages": [
        {"role": "system", "content": "Answer the question from the documents. Be brief."},
        {"role": "user", "content": f"<documents>\n{docs}</documents>\n\nQuestion: {record['question']}"}]}


def start(cmd: list[str], ready_url: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:  # a file, not a pipe: a full pipe would block the server
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=sink)
    deadline = time.monotonic() + 900  # importing torch takes minutes on a loaded 2-core machine
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[:4]} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{cmd[:4]} not ready in 900 s")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(pct(values, 0.5), 2), "p90": round(pct(values, 0.9), 2),
            "mean": round(statistics.fmean(values), 2), "n": len(values)}


def timed(client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.post(url, json=body, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="requests per record and mode")
    parser.add_argument("--ratio", type=float, default=4.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "proxy.json")
    args = parser.parse_args()

    records = load(args.data, args.limit)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    up_port, proxy_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    proxy = f"http://127.0.0.1:{proxy_port}"
    # A long compress_timeout: on a loaded machine a miss can pass the default 30 s, and this
    # measures the compression, not the fail-open path.
    config = {"pipeline": {"stages": ["embedding"]}, "budget": {"ratio": args.ratio}, "min_chars": 200,
              "compress_timeout": 600}
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "proxy.json"
        cfg.write_text(json.dumps(config))
        try:
            procs.append(start([sys.executable, "-m", "ctxcomp.proxy.testing", "--port", str(up_port)],
                               upstream + "/v1/models", env, Path(tmp) / "upstream.log"))
            procs.append(start([sys.executable, "-m", "ctxcomp.cli", "serve", "--upstream", upstream + "/v1",
                                "--port", str(proxy_port), "--config", str(cfg)], proxy + "/readyz", env,
                               Path(tmp) / "proxy.log"))
            result = run(records, upstream, proxy, args.rounds)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
    result.update(command="flock /work/.bench.lock python benchmarks/proxy/bench_proxy.py "
                          f"--limit {args.limit} --rounds {args.rounds} --ratio {args.ratio} --out {args.out.name}",
                  config=config, model=MODEL, n=len(records), loadavg_1m=round(os.getloadavg()[0], 2),
                  cpus=os.cpu_count(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "per_record"}, indent=2))


def run(records: list[dict[str, Any]], upstream: str, proxy: str, rounds: int) -> dict[str, Any]:
    lat: dict[str, list[float]] = {"direct": [], "proxy_off": [], "embedding_miss": [], "embedding_hit": []}
    added: dict[str, list[float]] = {"proxy_off": [], "embedding_miss": [], "embedding_hit": []}
    rows = []
    off = {"x-ctxcomp-compress": "off"}
    with httpx.Client(timeout=120) as client:
        for _ in range(3):  # warm the connections and the tokenizer
            timed(client, upstream + "/v1/chat/completions", request_of(records[0]), {})
            timed(client, proxy + "/v1/chat/completions", request_of(records[0]), off)
        for record in records:
            body = request_of(record)
            direct, via_off, miss, hits = [], [], 0.0, []
            answer_sent = None
            for k in range(rounds):
                direct.append(timed(client, upstream + "/v1/chat/completions", body, {})[0])
                via_off.append(timed(client, proxy + "/v1/chat/completions", body, off)[0])
                ms, response = timed(client, proxy + "/v1/chat/completions", body, {})
                if k == 0:
                    miss, first = ms, response
                else:
                    hits.append(ms)
            base = statistics.median(direct)
            lat["direct"] += direct
            lat["proxy_off"] += via_off
            lat["embedding_miss"].append(miss)
            lat["embedding_hit"] += hits
            added["proxy_off"] += [v - base for v in via_off]
            added["embedding_miss"].append(miss - base)
            added["embedding_hit"] += [v - base for v in hits]
            original = body["messages"][1]["content"]
            sent = first.json()["choices"][0]["message"]["content"].removeprefix("echo: ")
            answers = [a.lower() for a in record["answers"]]
            answer_sent = any(a in sent.lower() for a in answers)
            if first.headers["x-ctxcomp-status"] != "compressed":
                raise RuntimeError(f"not compressed: {dict(first.headers)}")
            rows.append({
                "question": record["question"],
                "status": first.headers["x-ctxcomp-status"],
                "context_tokens_before": int(first.headers["x-ctxcomp-tokens-before"]),
                "context_tokens_after": int(first.headers["x-ctxcomp-tokens-after"]),
                "message_tokens_before": count_tokens(original, MODEL),
                "message_tokens_after": count_tokens(sent, MODEL),
                "compress_seconds": float(first.headers["x-ctxcomp-seconds"]),
                "answer_in_original": any(a in original.lower() for a in answers),
                "answer_in_sent": answer_sent,
                "direct_ms_median": round(base, 2), "miss_ms": round(miss, 2),
            })
    before = sum(r["message_tokens_before"] for r in rows)
    after = sum(r["message_tokens_after"] for r in rows)
    return {
        "latency_ms": {k: summary(v) for k, v in lat.items()},
        "added_latency_ms": {k: summary(v) for k, v in added.items()},
        "tokens": {
            "context_before": sum(r["context_tokens_before"] for r in rows),
            "context_after": sum(r["context_tokens_after"] for r in rows),
            "user_message_before": before, "user_message_after": after,
            "saved_per_request_mean": round((before - after) / len(rows), 1),
            "ratio": round(before / after, 2),
        },
        "answer_recall": {"original": sum(r["answer_in_original"] for r in rows) / len(rows),
                          "compressed": sum(r["answer_in_sent"] for r in rows) / len(rows)},
        "per_record": rows,
    }


if __name__ == "__main__":
    main()

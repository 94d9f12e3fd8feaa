"""The binding's overhead over the Rust SDK, for ``record`` and for ``results`` of a
100-record job (docs/BENCHMARKS.md, "Language bindings").

Starts a real blindsight-server (SQLite, loopback), creates a tenant and a key set, then:

1. ``record``: sessions recorded one by one through the binding and, in alternating rounds,
   through ``blindsight-client`` directly (``examples/python_overhead.rs``, a separate process whose
   start and connection are not timed), each call timed alone;
2. fills the cohort up to ``--records`` records (not timed) and runs an aggregate job over it
   (lane aggregates: count, means and a sum) and, with ``--risk``, a risk job too;
3. ``results``: the job's output fetched and decrypted ``--repeat`` times through the binding
   (a list of dicts) and through the Rust SDK (``JobResults``), alternating rounds.

Prints medians and the overhead in percent. Build first (the same profile for both sides):

    cargo test --workspace --test pytest --no-run
    cargo build --workspace --example python_overhead
    python client-sdk/python/bench/overhead.py

It stages the extension module from ``target/debug`` (``--target`` to change) in a temporary
directory; the Python needs nothing installed (pandas is not used).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import support  # noqa: E402


def stage(target: Path, into: Path) -> None:
    """The package's Python sources and the built module, importable from ``into``."""
    package = into / "blindsight"
    shutil.copytree(HERE.parent / "python" / "blindsight", package)
    found = [p for p in (target / "libblindsight_python.so",
                         target / "deps" / "libblindsight_python.so") if p.is_file()]
    if not found:
        sys.exit(f"no libblindsight_python.so in {target}: "
                 "cargo test --workspace --test pytest --no-run")
    library = found[0]
    shutil.copy(library, package / "_native.abi3.so")
    sys.path.insert(0, str(into))


def median_ms(xs):
    return statistics.median(xs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100, help="records in the job (100)")
    parser.add_argument("--timed", type=int, default=10, help="records timed per side (10)")
    parser.add_argument("--repeat", type=int, default=20, help="results calls per side (20)")
    parser.add_argument("--risk", action="store_true", help="also a risk job (slow: ~2 s/record)")
    parser.add_argument("--target", type=Path, default=support.REPO / "target" / "debug")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="blindsight-bench-"))
    stage(args.target, tmp / "pkg")
    import blindsight

    example = args.target / "examples" / "python_overhead"
    if not example.is_file():
        sys.exit(f"{example} is missing: cargo build --workspace --example python_overhead")
    os.environ.setdefault("BLINDSIGHT_SERVER_BIN", str(args.target / "blindsight-server"))
    server = support.Server(tmp / "server")
    try:
        tenant = blindsight.Admin.connect(server.url, server.admin_token).create_tenant(
            "Bench", tenant_id="bench", min_cohort_size=2
        )
        keys = blindsight.keygen(tmp / "keys", support.PASSPHRASE)
        holder = blindsight.KeyHolder.open(
            server.url, tenant["tokens"]["keyholder"], "bench", keys["keystore"],
            support.PASSPHRASE,
        )
        holder.register(keys["public"])
        app = blindsight.Recorder.connect(
            server.url, tenant["tokens"]["ingest"], "bench", keys["key_id"], keys["fingerprint"]
        )
        config = {
            "url": server.url,
            "ingest_token": tenant["tokens"]["ingest"],
            "keyholder_token": tenant["tokens"]["keyholder"],
            "tenant": "bench",
            "key_id": keys["key_id"],
            "pin": keys["fingerprint"],
            "keystore": str(keys["keystore"]),
            "passphrase": support.PASSPHRASE,
        }

        def rust(**extra):
            path = tmp / "config.json"
            path.write_text(json.dumps({**config, **extra}))
            out = subprocess.run([str(example), str(path)], check=True, capture_output=True)
            return json.loads(out.stdout)

        n = 0
        py_record, rs_record = [], []
        rounds = 2
        per_round = max(1, args.timed // rounds)
        for r in range(rounds):
            for i in range(per_round):
                s = support.session(f"py-{r}-{i}", "bench", n)
                n += 1
                start = time.perf_counter()
                app.record(s)
                py_record.append(time.perf_counter() - start)
            batch = [support.session(f"rs-{r}-{i}", "bench", n + i) for i in range(per_round)]
            n += per_round
            rs_record += rust(sessions=batch)["record_s"]
        print(f"recorded {n} timed records; filling up to {args.records}…", file=sys.stderr)
        while n < args.records:
            app.record(support.session(f"fill-{n}", "bench", n))
            n += 1

        query = {
            "aggregates": [
                {"op": "count"},
                {"op": "mean", "field": "mood_before"},
                {"op": "mean", "field": "mood_after"},
                {"op": "sum", "field": "duration_min"},
            ]
        }
        jobs = {"aggregate": holder.aggregate(query, select={"cohort": "bench"})}
        if args.risk:
            jobs["risk"] = holder.score(select={"cohort": "bench"})
        report = {
            "records": n,
            "record_ms": {
                "python": median_ms(py_record),
                "rust": median_ms(rs_record),
                "calls": [len(py_record), len(rs_record)],
            },
        }
        for kind, job in jobs.items():
            done = holder.wait(job["job_id"], timeout=3600)
            assert done["status"] == "succeeded", done
            assert job["records"] == n, job
            py_results, rs_results = [], []
            for _ in range(rounds):
                for _ in range(max(1, args.repeat // rounds)):
                    start = time.perf_counter()
                    rows = holder.results(job["job_id"])
                    py_results.append(time.perf_counter() - start)
                out = rust(sessions=[], job_id=job["job_id"],
                           results_repeat=max(1, args.repeat // rounds))
                rs_results += out["results_s"]
                assert out["rows"] == len(rows)
            report[f"results_{kind}_ms"] = {
                "python": median_ms(py_results),
                "rust": median_ms(rs_results),
                "calls": [len(py_results), len(rs_results)],
                "rows": len(rows),
            }
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    for name, m in report.items():
        if isinstance(m, dict):
            m["overhead_pct"] = (m["python"] - m["rust"]) / m["rust"] * 100
            print(
                f"{name:>22}: python {m['python']:9.2f} ms, rust {m['rust']:9.2f} ms "
                f"(medians of {m['calls'][0]} and {m['calls'][1]} calls): "
                f"overhead {m['overhead_pct']:+.1f} %"
            )
    print(json.dumps(report))


if __name__ == "__main__":
    main()

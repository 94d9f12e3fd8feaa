"""The binding's overhead over the Rust SDK, for ``record`` and for ``results`` of a
100-record job (docs/BENCHMARKS.md, "Language bindings").

Starts a real blindsight-server (SQLite, loopback), creates a tenant and a key set, then:

1. ``record``: sessions recorded one by one, alternating between the binding and
   ``blindsight-client`` directly (``examples/python_overhead.rs``, a separate process serving
   one call per line of its standard input; its start and connection are not timed), each call
   timed alone;
2. fills the cohort up to ``--records`` records (not timed) and runs an aggregate job over it
   (lane aggregates: count, means and a sum) and, with ``--risk``, a risk job too;
3. ``results``: the job's output fetched and decrypted ``--repeat`` times through the binding
   (a list of dicts) and through the Rust SDK (``JobResults``), alternating call by call.

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
    parser.add_argument("--risk-repeat", type=int, default=6, help="risk results calls per side (6)")
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

        # The Rust side serves one call per line, so calls alternate one by one with the
        # binding's and both see the same machine load.
        path = tmp / "config.json"
        path.write_text(json.dumps(config))
        rust = subprocess.Popen([str(example), str(path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)

        def rust_call(request):
            rust.stdin.write(json.dumps(request) + "\n")
            rust.stdin.flush()
            return json.loads(rust.stdout.readline())

        assert json.loads(rust.stdout.readline()) == {"ready": True}
        # One untimed call each first (connections, caches).
        app.record(support.session("py-warm", "bench", 0))
        rust_call({"record": support.session("rs-warm", "bench", 1)})
        n = 2
        py_record, rs_record = [], []
        for i in range(args.timed):
            s = support.session(f"py-{i}", "bench", n)
            start = time.perf_counter()
            app.record(s)
            py_record.append(time.perf_counter() - start)
            rs_record.append(rust_call({"record": support.session(f"rs-{i}", "bench", n + 1)})["s"])
            n += 2
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
            repeat = args.repeat if kind == "aggregate" else args.risk_repeat
            holder.results(job["job_id"])
            rust_call({"results": job["job_id"]})
            for _ in range(repeat):
                start = time.perf_counter()
                rows = holder.results(job["job_id"])
                py_results.append(time.perf_counter() - start)
                out = rust_call({"results": job["job_id"]})
                rs_results.append(out["s"])
                assert out["rows"] == len(rows)
            report[f"results_{kind}_ms"] = {
                "python": median_ms(py_results),
                "rust": median_ms(rs_results),
                "python_each": [round(x * 1000, 2) for x in py_results],
                "rust_each": [round(x * 1000, 2) for x in rs_results],
                "calls": [len(py_results), len(rs_results)],
                "rows": len(rows),
            }
        rust.stdin.close()
        rust.wait()
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

#!/usr/bin/env python3
"""Plystra's benchmark harness. Run it through bench/run, which builds and installs the release extension first.

One run: a fresh PostgreSQL 15 cluster in target/bench-pg, data generated with a fixed seed (bench/generate.sql),
the floors (SELECT 1, pgbench -S, a one-row JSONB insert) and every Plystra workload measured at 2 and 16 clients
in the same run, then a report (Markdown and JSON) whose every figure comes from this run, each next to its
floor. Python 3 standard library only.
"""

import argparse
import base64
import datetime as dt
import glob
import hashlib
import hmac
import json
import os
import secrets
import platform
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
WORKLOADS = BENCH / "workloads"
LIB = REPO / "scripts" / "lib.sh"
# The PostgreSQL 15 installation scripts/lib.sh uses (PLYSTRA_PG_BIN selects another, e.g. a relocated copy):
# its server (through lib.sh's cluster_start), its clients (psql, pgbench) and its library folder, where
# install_extension put plystra.so.
PG_BIN = Path(os.environ.get("PLYSTRA_PG_BIN") or "/usr/lib/postgresql/15/bin")
PG_LIB = Path(subprocess.run([str(PG_BIN / "pg_config"), "--pkglibdir"], check=True, text=True,
                             stdout=subprocess.PIPE).stdout.strip())
PSQL = str(PG_BIN / "psql")
PGBENCH = str(PG_BIN / "pgbench")

# Dataset sizes. groups = spaces * (breadth + ... + breadth^depth); resources = spaces * resq.
SIZES = {
    "tiny": dict(spaces=2, breadth=3, depth=3, members=1000, resq=1000, app_rows=20000, pgbench_scale=1,
                 duration=2, rls_actors=5, per_row_rows=200, wide=(5, 20, 9), wide_rows=20000, skew_grants=300,
                 batches=500, sql_rounds=2),
    "demo": dict(spaces=2, breadth=2, depth=2, members=480, resq=10, app_rows=200, pgbench_scale=1,
                 duration=5, rls_actors=2, per_row_rows=50, wide=(5, 20, 9), wide_rows=20000, skew_grants=2000,
                 batches=500, sql_rounds=1),
    "full": dict(spaces=10, breadth=3, depth=8, members=100000, resq=100000, app_rows=1000000, pgbench_scale=10,
                 duration=8, rls_actors=20, per_row_rows=2000, wide=(50, 100, 9), wide_rows=1000000,
                 skew_grants=20000, batches=5000, sql_rounds=3),
}
# Wide-reach readers (bench/generate_wide.sql, database bench_wide): w = (c, d, e) shapes the subtree; readers
# w0, w1, w2 reach 1 + e, 1 + d + d e and 1 + c + c d + c d e groups (10, 1,001 and 50,051 at full size).
# Noisy neighbours: SKEW_MEMBERS members of Space bsp_0 with skew_grants groups and grants each. Each side of
# the before/after pair is the median of SKEW_RUNS runs, alternated with the skew applied and taken away
# (noisy_neighbours): single 8-s runs of the same code read 0.76 to 1.10 (five full runs of 2026-12-01), and
# medians of three runs in a row, before then after, 0.79 to 1.20, which said more about the machine's minute
# than about the skew.
SKEW_MEMBERS = 3
SKEW_RUNS = 3
# The warm-up before the decision workloads: runs of the workload duration until two in a row agree within
# WARM_AGREE of throughput, at most WARM_RUNS of them (Run.warm).
WARM_RUNS = 6
WARM_AGREE = 0.05
BATCH_ITEMS = 100    # items of one plystra.check_batch call (bench/workloads/check_batch.sql); target ≤ 10 × a check
# The batch documents are drawn at load time (bench/generate_batches.sql, sizes' `batches` of them in bench.batches)
# and the workload fetches one by a random key: drawing them in the measured statement cost 2.5 checks.
CLIENTS = (2, 16)
SEED = 0.42          # setseed() for the generator
PGBENCH_SEED = 42    # pgbench --random-seed: every run draws the same requests in the same order

# The peer measured side by side with the REST front (issue 14): Cerbos's PDP from its npm package (a static Go
# binary), pinned by version and by the registry's integrity digest, cached under target/bench-tools/cerbos.
CERBOS_PACKAGE = "@cerbos/cerbos-linux-x64"
CERBOS_VERSION = "0.55.0"
CERBOS_INTEGRITY = ("sha512-eLZUycJfaQWK0XTRgH/Oz2E3XiNCUavDd1LhzFxhUpZ3s5CuQqmqG327ta0On8YOTxuZO/19cG4kvfC22r03/Q==")
CERBOS_BODIES = 20000    # requests of the check mix, with their facts, that the Cerbos workload cycles through
CERBOS_AGREEMENT = 500   # of which the first this many are decided by both Cerbos and plystra.check

# Server options on top of scripts/lib.sh's (max_connections=200, fsync=on). Every one is reported.
PG_OPTIONS = [
    ("shared_buffers", "1GB"),
    ("max_wal_size", "4GB"),
    ("checkpoint_timeout", "30min"),
    ("maintenance_work_mem", "512MB"),
    ("jit", "off"),
    ("shared_preload_libraries", "plystra"),
    # The actors the backends share (1 KiB each, 128 MiB): sized to the full data's 100,000 bindings, as an
    # operator sizes it to the bindings that decide; the default (16,384) suits a smaller server.
    ("plystra.shared_actor_cache_entries", "131072"),
    # The groups they share (512 bytes each, 64 MiB): the full data's 98,400 groups, each a decision's target group.
    ("plystra.shared_group_cache_entries", "131072"),
]


class Failure(Exception):
    pass


def log(msg):
    print(f"\033[1m==> {msg}\033[0m", file=sys.stderr, flush=True)


def now():
    return time.monotonic()


def sh(cmd, check=True, env=None, capture=True, timeout=None, cwd=None):
    r = subprocess.run(cmd, env=env, cwd=cwd or REPO, timeout=timeout, text=True,
                       stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None)
    if check and r.returncode != 0:
        raise Failure(f"{' '.join(map(str, cmd))} exited with status {r.returncode}:\n{(r.stderr or '')[-3000:]}")
    return r


def lib(script, env=None):
    """Runs bash with scripts/lib.sh sourced (cluster_start, cluster_stop, free_port...)."""
    return sh(["bash", "-c", f"set -e; source {shlex.quote(str(LIB))}; {script}"], env=env)


class Cluster:
    def __init__(self, path, port):
        self.path, self.port = Path(path), port

    def psql(self, db, sql=None, file=None, variables=None, user="postgres", env=None, check=True):
        cmd = [PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", str(self.path), "-p", str(self.port),
               "-U", user, "-d", db]
        for k, v in (variables or {}).items():
            cmd += ["-v", f"{k}={v}"]
        if sql is not None:
            cmd += ["-c", sql]
        if file is not None:
            cmd += ["-f", str(file)]
        return sh(cmd, env=env, check=check).stdout.strip()

    def start(self, options):
        env = dict(os.environ, PLYSTRA_PG_OPTIONS=" ".join(f"-c {k}={v}" for k, v in options))
        lib(f"cluster_start {shlex.quote(str(self.path))} {self.port}", env=env)

    def stop(self):
        lib(f"cluster_stop {shlex.quote(str(self.path))}")

    def postmaster_pid(self):
        pidfile = self.path / "data" / "postmaster.pid"
        return int(pidfile.read_text().split()[0]) if pidfile.exists() else None


# ---------------------------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------------------------

def percentiles(values):
    """Nearest-rank p50/p95/p99 (values in microseconds) in milliseconds."""
    if not values:
        return None
    values.sort()
    n = len(values)

    def rank(p):
        k = max(0, min(n - 1, -(-p * n // 100) - 1))
        return values[int(k)] / 1000.0
    return {"p50_ms": rank(50), "p95_ms": rank(95), "p99_ms": rank(99), "samples": n}


class Runner:
    def __init__(self, args, size, cluster, rundir):
        self.args, self.size, self.c, self.rundir = args, size, cluster, rundir
        self.results = []      # one dict per measured workload and client count
        self.checks = []       # (ok, text)
        self.notes = []
        self.logdir = rundir / "logs"
        self.logdir.mkdir(parents=True, exist_ok=True)

    def check(self, ok, text):
        self.checks.append((bool(ok), text))
        print(f"{'ok' if ok else 'not ok'} - {text}", flush=True)
        return ok

    def defines(self, sz):
        groups_per_space = sum(sz["breadth"] ** level for level in range(1, sz["depth"] + 1))
        d = dict(spaces=sz["spaces"], breadth=sz["breadth"], depth=sz["depth"], members=sz["members"],
                 resq=sz["resq"], gs=groups_per_space, alevels=min(3, sz["depth"]), rlsk=rls_actor_count(sz),
                 perrow=sz["per_row_rows"])
        return d

    def warm(self, db, script, sz, clients=2, seed=7):
        """Runs `script` unmeasured (audit off, seeds from `seed` up, never the measured runs' seed) in runs of the
        workload duration until a run's throughput is within WARM_AGREE of the run before (at most WARM_RUNS runs):
        until the kept and shared actors and groups the mix reads are filled, as on a server that has been
        deciding. After one 8-s run at full size the first measured workload was still filling the shared tiers (on
        2026-12-01, the check measured right after it ran at 11,738 tps, and at 15,092 after 30 s more).
        Returns what it ran."""
        duration = self.args.duration
        runs = []
        while len(runs) < WARM_RUNS:
            run_seed = seed + len(runs)
            cmd = [PGBENCH, "-n", "-h", str(self.c.path), "-p", str(self.c.port), "-U", "postgres", "-M", "prepared",
                   "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1)), "-T", str(duration),
                   f"--random-seed={run_seed}"]
            for k, v in self.defines(sz).items():
                cmd += ["-D", f"{k}={v}"]
            cmd += ["-f", str(WORKLOADS / script), db]
            log(f"warm-up: {script} at {clients} clients ({duration}s, seed {run_seed}, not measured)")
            r = sh(cmd, env=dict(os.environ, PGOPTIONS="-c plystra.audit_mode=off"), check=False)
            ok = r.returncode == 0
            self.check(ok, f"the warm-up ({script}, {clients} clients, seed {run_seed}) ran without errors")
            tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", r.stdout + r.stderr)
            if not ok or not tps:
                break
            runs.append(float(tps.group(1)))
            if len(runs) >= 2 and abs(runs[-1] - runs[-2]) <= WARM_AGREE * runs[-2]:
                break
        return {"script": script, "clients": clients, "seconds": duration, "seed": seed, "runs_tps": runs}

    def pgbench(self, name, db, script, clients, sz, user="postgres", audit=None, builtin=None, label=None,
                duration=None, floor=None, group=None, extra=None, defines=None):
        duration = duration or self.args.duration
        self.c.psql(db, "CHECKPOINT")
        prefix = self.logdir / f"{name}_c{clients}"
        for old in glob.glob(f"{prefix}.*"):
            os.unlink(old)
        cmd = [PGBENCH, "-n", "-h", str(self.c.path), "-p", str(self.c.port), "-U", user, "-M", "prepared",
               "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1)), "-T", str(duration),
               f"--random-seed={PGBENCH_SEED}", "--log", f"--log-prefix={prefix}"]
        for k, v in dict(self.defines(sz), **(defines or {})).items():
            cmd += ["-D", f"{k}={v}"]
        cmd += ["-b", builtin] if builtin else ["-f", str(WORKLOADS / script)]  # an absolute path stays one
        cmd.append(db)
        env = dict(os.environ)
        env.pop("PGOPTIONS", None)
        if audit:
            env["PGOPTIONS"] = f"-c plystra.audit_mode={audit}"
        log(f"{name} at {clients} clients ({duration}s)")
        r = sh(cmd, env=env, check=False)
        out = r.stdout + r.stderr
        tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
        processed = re.search(r"number of transactions actually processed: (\d+)", out)
        failed = re.search(r"number of failed transactions: (\d+)", out)
        lat = []
        for path in glob.glob(f"{prefix}.*"):
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[2].isdigit():
                        lat.append(int(parts[2]))
        zeros = sum(1 for v in lat if v == 0)
        ok = r.returncode == 0 and tps is not None and processed is not None and int(processed.group(1)) > 0 \
            and (failed is None or int(failed.group(1)) == 0) and zeros <= len(lat) // 100
        res = {
            "workload": name, "label": label or name, "group": group, "clients": clients, "database": db,
            "user": user, "audit_mode": audit, "duration_s": duration, "tool": "pgbench",
            "script": f"builtin:{builtin}" if builtin else f"bench/workloads/{script}",
            "tps": float(tps.group(1)) if tps else None,
            "transactions": int(processed.group(1)) if processed else None,
            "failed": int(failed.group(1)) if failed else None,
            "floor": floor, "ok": ok,
        }
        res.update(percentiles(lat) or {})
        if extra:
            res.update(extra)
        if not ok:
            res["error"] = out.strip().splitlines()[-5:]
            if zeros > len(lat) // 100:
                res["error"].append(f"{zeros} of {len(lat)} logged latencies are 0 (pgbench's lazy clock)")
        self.check(ok, f"{name} at {clients} clients ran without errors"
                   + ("" if ok else f": {' | '.join(res.get('error', []))}"))
        self.results.append(res)
        return res

    def keep_median(self, done):
        """Of `done` (runs of one workload at one client count, already in the results), only the run with the
        median throughput stays in the results, the others' throughput listed with it (`runs_tps`, in the order
        they ran): so that one noisy stretch of a shared machine does not decide a ratio."""
        for r in done:
            self.results.remove(r)
        ranked = sorted(done, key=lambda r: r["tps"] if r["tps"] is not None else -1.0)
        median = dict(ranked[len(ranked) // 2], runs_tps=[r["tps"] for r in done])
        self.results.append(median)
        return median

    def result(self, name, clients):
        for r in self.results:
            if r["workload"] == name and r["clients"] == clients:
                return r
        return None


def rls_actor_count(sz):
    # RLS actors are t = 100 r + 11 inside each Space (plain readers) and t = 100 r + 5 (space-scope readers);
    # they must exist.
    per_space = sz["members"] // sz["spaces"]
    return max(1, min(sz["rls_actors"], (per_space - 12) // 100 + 1))


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------

def validate_size(sz, name):
    if sz["breadth"] < 2:
        raise Failure(f"{name}: breadth must be at least 2")
    if not 1 <= sz["depth"] <= 8:
        raise Failure(f"{name}: depth must be 1 to 8")
    gs = sum(sz["breadth"] ** level for level in range(1, sz["depth"] + 1))
    if gs * sz["spaces"] > 100000:
        raise Failure(f"{name}: {gs * sz['spaces']} groups; at most 100,000")
    if sz["resq"] < gs:
        raise Failure(f"{name}: resources a Space ({sz['resq']}) must be at least the groups a Space ({gs})")
    if sz["members"] % sz["spaces"] or sz["members"] // sz["spaces"] < 12:
        raise Failure(f"{name}: members must be a multiple of spaces, at least 12 a Space")


def create_example_database(c, db):
    """A new database db with the extension, the Finance demo and the RLS example (the generators add to it)."""
    c.psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    c.psql("postgres", f"CREATE DATABASE {db}")
    c.psql(db, "CREATE EXTENSION plystra")
    c.psql(db, file=REPO / "sql" / "demo.sql")
    c.psql(db, file=REPO / "sql" / "examples" / "invoices_rls.sql")


def load_database(run, db, sz, with_floors, with_batches=False):
    """Creates db with the extension, the Finance demo and the RLS example, then the generated data (and, with
    with_batches, the check_batch workload's documents)."""
    c = run.c
    create_example_database(c, db)
    t0 = now()
    c.psql(db, file=BENCH / "generate.sql",
           variables=dict(spaces=sz["spaces"], breadth=sz["breadth"], depth=sz["depth"], members=sz["members"],
                          resq=sz["resq"], app_rows=sz["app_rows"], seed=SEED))
    gen_s = now() - t0
    timings = {"generate_s": round(gen_s, 1)}
    c.psql(db, """
        CREATE SCHEMA bench;
        CREATE TABLE bench.floor_insert (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, doc jsonb NOT NULL);
        CREATE TABLE bench.actor_reach (member_id text NOT NULL, group_id text NOT NULL,
                                        PRIMARY KEY (member_id, group_id));
        GRANT USAGE ON SCHEMA bench TO PUBLIC;
        ALTER ROLE invoices_app LOGIN;
    """)
    if with_batches:
        t0 = now()
        d = run.defines(sz)
        c.psql(db, file=BENCH / "generate_batches.sql",
               variables=dict({k: d[k] for k in ("spaces", "breadth", "depth", "members", "resq", "gs", "alevels")},
                              items=BATCH_ITEMS, batches=sz["batches"], seed=SEED))
        timings["batches_generate_s"] = round(now() - t0, 1)
    if with_floors:
        t0 = now()
        sh([PGBENCH, "-i", "-q", "-s", str(sz["pgbench_scale"]), "-h", str(c.path), "-p", str(c.port),
            "-U", "postgres", db])
        timings["pgbench_init_s"] = round(now() - t0, 1)
    # The reach of every RLS actor, from Plystra itself: the RLS-off scan selects exactly the same rows.
    k = rls_actor_count(sz)
    c.psql(db, f"""
        DO $$
        DECLARE i bigint;
        BEGIN
            FOR r IN 0..{k - 1} LOOP
                FOR s IN 0..{sz['spaces'] - 1} LOOP
                    i := (100 * r + 11) * {sz['spaces']} + s;
                    PERFORM plystra.set_actor('bu_' || i, 'bm_' || i, 'bum_' || i, 'bsp_' || s);
                    INSERT INTO bench.actor_reach
                    SELECT 'bm_' || i, g FROM plystra.reachable_groups('invoice', 'read') AS g;
                END LOOP;
            END LOOP;
        END $$;
    """)
    t0 = now()
    c.psql(db, "VACUUM (ANALYZE)")
    timings["vacuum_analyze_s"] = round(now() - t0, 1)
    return timings


def verify_database(run, db, sz):
    """The generator bypassed the triggers and foreign keys: prove the data obeys their rules."""
    c = run.c
    gs = sum(sz["breadth"] ** level for level in range(1, sz["depth"] + 1))
    counts = c.psql(db, """
        SELECT (SELECT count(*) FROM plystra.groups WHERE id LIKE 'bg\\_%'),
               (SELECT count(*) FROM plystra.resources WHERE id LIKE 'bres\\_%'),
               (SELECT count(*) FROM plystra.users WHERE id LIKE 'bu\\_%'),
               (SELECT count(*) FROM plystra.members WHERE id LIKE 'bm\\_%'),
               (SELECT count(*) FROM plystra.user_members WHERE id LIKE 'bum\\_%'),
               (SELECT count(*) FROM plystra.member_roles WHERE id LIKE 'bmr\\_%'),
               (SELECT count(*) FROM app.invoices WHERE id LIKE 'inv\\_%' AND id ~ '^inv_[0-9]+$'),
               (SELECT max(depth) + 1 FROM plystra.groups WHERE id LIKE 'bg\\_%'),
               (SELECT count(*) FROM plystra.user_members WHERE id LIKE 'bum\\_%' AND status = 'revoked'),
               (SELECT count(*) FROM plystra.user_members WHERE id LIKE 'bum\\_%' AND expires_at < now())
    """).split("|")
    counts = [int(x) for x in counts]
    expect = [sz["spaces"] * gs, sz["spaces"] * sz["resq"], sz["members"], sz["members"], sz["members"]]
    run.check(counts[:5] == expect, f"{db}: generated counts (groups, resources, users, members, bindings) "
              f"{counts[:5]} = {expect}")
    run.check(counts[7] == sz["depth"], f"{db}: group tree depth {counts[7]} = {sz['depth']}")
    violations = c.psql(db, r"""
        SELECT
          (SELECT count(*) FROM plystra.groups g LEFT JOIN plystra.groups p ON p.id = g.parent_group_id
            WHERE g.path !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$'
               OR (g.parent_group_id IS NULL AND strpos(g.path, '.') > 0)
               OR (g.parent_group_id IS NOT NULL AND (p.id IS NULL OR p.space_id <> g.space_id
                   OR g.path <> p.path || '.' || split_part(g.path, '.', g.depth + 1)
                   OR g.depth <> p.depth + 1))),
          (SELECT count(*) FROM plystra.user_members um
             LEFT JOIN plystra.users u ON u.id = um.user_id LEFT JOIN plystra.members m ON m.id = um.member_id
            WHERE u.id IS NULL OR m.id IS NULL OR m.space_id <> um.space_id),
          (SELECT count(*) FROM plystra.member_roles mr
             LEFT JOIN plystra.members m ON m.id = mr.member_id LEFT JOIN plystra.roles r ON r.id = mr.role_id
             LEFT JOIN plystra.groups g ON g.id = mr.scope_anchor_group_id
            WHERE m.id IS NULL OR r.id IS NULL OR m.space_id <> mr.space_id OR r.space_id <> mr.space_id
               OR (mr.scope_anchor_group_id IS NOT NULL AND (g.id IS NULL OR g.space_id <> mr.space_id))),
          (SELECT count(*) FROM plystra.resources x
             LEFT JOIN plystra.groups g ON g.id = x.group_id LEFT JOIN plystra.members m ON m.id = x.owner_member_id
            WHERE (x.group_id IS NOT NULL AND (g.id IS NULL OR g.space_id <> x.space_id))
               OR (x.owner_member_id IS NOT NULL AND (m.id IS NULL OR m.space_id <> x.space_id))),
          (SELECT count(*) FROM plystra.role_permissions rp
             LEFT JOIN plystra.roles r ON r.id = rp.role_id LEFT JOIN plystra.permissions p ON p.id = rp.permission_id
            WHERE r.id IS NULL OR p.id IS NULL),
          (SELECT count(*) FROM app.invoices i
             LEFT JOIN plystra.groups g ON g.id = i.group_id LEFT JOIN plystra.members m ON m.id = i.owner_member_id
            WHERE (i.group_id IS NOT NULL AND (g.id IS NULL OR g.space_id <> i.space_id))
               OR (i.owner_member_id IS NOT NULL AND (m.id IS NULL OR m.space_id <> i.space_id)))
    """).split("|")
    names = ["group paths and parents", "bindings (user, member, same Space)",
             "grants (member, role, anchor, same Space)", "resources (group, owner, same Space)",
             "role permissions", "application rows (group, owner, same Space)"]
    for name, v in zip(names, violations):
        run.check(int(v) == 0, f"{db}: {name}: {v} violations")
    return {"groups": counts[0], "resources": counts[1], "users": counts[2], "members": counts[3],
            "bindings": counts[4], "grants": counts[5], "app_rows": counts[6], "depth": counts[7],
            "bindings_revoked": counts[8], "bindings_expired": counts[9]}


def verify_rls(run, db, sz):
    """The scans agree: RLS = RLS off (reach table; for space-scope readers, the whole Space), and the per-row
    function = the reach on a subset."""
    c = run.c
    k = rls_actor_count(sz)
    sample = [(r, s) for r in range(k) for s in range(sz["spaces"])][:6]
    bad = []
    for r, s in sample:
        i = (100 * r + 11) * sz["spaces"] + s
        actor = f"SELECT plystra.set_actor('bu_{i}', 'bm_{i}', 'bum_{i}', 'bsp_{s}');"
        rls = c.psql(db, f"BEGIN; {actor} SELECT count(*) FROM app.invoices; COMMIT;", user="invoices_app")
        off = c.psql(db, f"BEGIN; {actor} SELECT count(*) FROM app.invoices WHERE space_id = 'bsp_{s}' AND group_id"
                         f" IN (SELECT group_id FROM bench.actor_reach WHERE member_id = 'bm_{i}'); COMMIT;")
        sub = f"(SELECT * FROM app.invoices WHERE space_id = 'bsp_{s}' ORDER BY id LIMIT {sz['per_row_rows']})"
        per_row = c.psql(db, f"BEGIN; {actor} SELECT count(*) FROM {sub} AS x WHERE plystra.allowed_row('invoice', "
                             f"'read', space_id, group_id, owner_member_id); COMMIT;")
        reach = c.psql(db, f"BEGIN; {actor} SELECT count(*) FROM {sub} AS x WHERE group_id IN (SELECT group_id FROM "
                           f"bench.actor_reach WHERE member_id = 'bm_{i}'); COMMIT;")
        a = (100 * r + 5) * sz["spaces"] + s
        space_actor = f"SELECT plystra.set_actor('bu_{a}', 'bm_{a}', 'bum_{a}', 'bsp_{s}');"
        space_rls = c.psql(db, f"BEGIN; {space_actor} SELECT count(*) FROM app.invoices; COMMIT;",
                           user="invoices_app")
        space_off = c.psql(db, f"SELECT count(*) FROM app.invoices WHERE space_id = 'bsp_{s}'")
        rls, off, per_row, reach, space_rls, space_off = [
            v.splitlines()[-1] for v in (rls, off, per_row, reach, space_rls, space_off)]
        if rls != off or per_row != reach or int(rls) == 0 or space_rls != space_off:
            bad.append(f"bm_{i}: rls {rls}, rls-off {off}, per-row {per_row} vs {reach}; "
                       f"bm_{a} (space scope): rls {space_rls}, rls-off {space_off}")
    run.check(not bad, f"{db}: RLS scan, RLS-off scan and per-row function agree for {len(sample)} plain readers, "
              f"and the RLS scan of {len(sample)} space-scope readers returns their whole Space"
              + (f" ({'; '.join(bad)})" if bad else ""))


def request_mix(script):
    """The request-drawing part of a decision workload: from its first \\set to its statement."""
    text = script.read_text().split("\nSELECT ")[0]
    return text[text.index("\\set i "):]


def mix_sample(sz, n, seed=PGBENCH_SEED):
    """n requests of the check workload's mix (bench/workloads/check.sql's arithmetic, Python's random with a fixed
    seed instead of pgbench's): (user, member, binding, Space, resource, action) tuples."""
    rnd = random.Random(seed)
    d = Runner.defines(None, sz)
    spaces, b, depth, members, resq, gs, alevels = (d[k] for k in ("spaces", "breadth", "depth", "members", "resq",
                                                                     "gs", "alevels"))
    out = []
    for _ in range(n):
        i = rnd.randint(0, members - 1)
        s, t = i % spaces, i // spaces
        la = 1 + t % alevels
        ka = (t // alevels) % int(pow(b, la))
        kind = rnd.randint(1, 100)
        if kind <= 55:
            lp = la + rnd.randint(0, depth - la)
            span = int(pow(b, lp - la))
            g = int((pow(b, lp) - b) / (b - 1)) + ka * span + rnd.randint(0, span - 1)
        else:
            g = rnd.randint(0, gs - 1)
        j = (rnd.randint(0, (resq - 1 - g) // gs) * gs + g) * spaces + s
        a = 1
        if kind > 95:
            j += spaces * resq
        elif kind > 90:
            j = j - s + (s + 1) % spaces
        elif kind > 85:
            a = 2
        elif kind > 80:
            a = 3
        out.append((f"bu_{i}", f"bm_{i}", f"bum_{i}", f"bsp_{s}", f"bres_{j}", ("read", "reject", "approve")[a - 1]))
    return out


HANDWRITTEN_PARAMS = re.compile(r"FROM \(SELECT 'bu_' \|\| :i AS user_id, .*? AS action\) AS q\n")


def verify_handwritten(run, db, sz, n=500):
    """The hand-written query (bench/workloads/handwritten.sql, this very statement) and plystra.check give the
    same decision and the same deny code for n requests of the mix: the floor decides what check decides."""
    c = run.c
    stmt = "SELECT " + (WORKLOADS / "handwritten.sql").read_text().split("\nSELECT ", 1)[1].rstrip().rstrip(";")
    if not HANDWRITTEN_PARAMS.search(stmt):
        return run.check(False, "handwritten.sql: its request subquery (FROM (SELECT 'bu_' || :i AS user_id, ... "
                                "AS action) AS q) was not found")
    stmt = HANDWRITTEN_PARAMS.sub("FROM (SELECT x.user_id, x.member_id, x.user_member_id, x.space_id, "
                                  "'invoice'::text AS resource_type, x.resource_id, x.action) AS q\n", stmt)
    rows = ",\n".join(f"({k}, '{u}', '{m}', '{um}', '{sp}', '{r}', '{a}')"
                      for k, (u, m, um, sp, r, a) in enumerate(mix_sample(sz, n)))
    out = c.psql(db, f"""
        SET plystra.audit_mode = off;
        CREATE TEMP TABLE x (n int, user_id text, member_id text, user_member_id text, space_id text,
                             resource_id text, action text);
        INSERT INTO x VALUES {rows};
        SELECT x.n, ch.doc ->> 'decision', coalesce(ch.doc ->> 'deny_code', ''),
               CASE WHEN h.allow THEN 'allow' ELSE 'deny' END, coalesce(h.deny_code, '')
        FROM x
        CROSS JOIN LATERAL (SELECT plystra.check(jsonb_build_object('actor', jsonb_build_object(
            'user_id', x.user_id, 'member_id', x.member_id, 'user_member_id', x.user_member_id,
            'space_id', x.space_id), 'resource_type', 'invoice', 'resource_id', x.resource_id,
            'action', x.action)) AS doc) AS ch
        CROSS JOIN LATERAL ({stmt}) AS h
        ORDER BY x.n;
    """)
    bad, codes = [], {}
    for line in out.splitlines():
        k, dec, code, hdec, hcode = line.split("|")
        codes[code or "allow"] = codes.get(code or "allow", 0) + 1
        if (dec, code) != (hdec, hcode):
            bad.append(f"request {k}: check {dec} {code or ''} vs hand-written {hdec} {hcode or ''}".rstrip())
    total = sum(codes.values())
    return run.check(total == n and not bad,
                     f"{db}: the hand-written query agrees with plystra.check on {total} of {n} requests of the mix "
                     f"(decision and deny code; {', '.join(f'{k} {v}' for k, v in sorted(codes.items()))})"
                     + (f": {len(bad)} differ ({'; '.join(bad[:5])})" if bad else ""))


def wide_reaches(sz):
    c, d, e = sz["wide"]
    return [1 + e, 1 + d + d * e, 1 + c + c * d + c * d * e]


def load_wide(run, sz):
    """Database bench_wide: the demo, the RLS example and one Space whose readers w0, w1, w2 each hold ONE
    group_tree grant reaching a wider subtree (bench/generate_wide.sql); their reach goes to bench.actor_reach."""
    c, db = run.c, "bench_wide"
    cw, dw, ew = sz["wide"]
    create_example_database(c, db)
    t0 = now()
    c.psql(db, file=BENCH / "generate_wide.sql", variables=dict(c_n=cw, d_n=dw, e_n=ew, rows=sz["wide_rows"], seed=SEED))
    c.psql(db, """
        CREATE SCHEMA bench;
        CREATE TABLE bench.actor_reach (member_id text NOT NULL, group_id text NOT NULL,
                                        PRIMARY KEY (member_id, group_id));
        GRANT USAGE ON SCHEMA bench TO PUBLIC;
        ALTER ROLE invoices_app LOGIN;
        DO $$
        BEGIN
            FOR r IN 0..2 LOOP
                PERFORM plystra.set_actor('bu_w' || r, 'bm_w' || r, 'bum_w' || r, 'bsp_w');
                INSERT INTO bench.actor_reach SELECT 'bm_w' || r, g FROM plystra.reachable_groups('invoice', 'read') AS g;
            END LOOP;
        END $$;
    """)
    # A policy that regresses must fail the run, not hang it (the linear array search took 203 s a scan).
    c.psql("postgres", f"ALTER DATABASE {db} SET statement_timeout = '120s'")
    c.psql(db, "VACUUM (ANALYZE)")
    secs = round(now() - t0, 1)
    reach = [int(x) for x in c.psql(db, "SELECT count(*) FILTER (WHERE member_id = 'bm_w0'), count(*) FILTER "
                                        "(WHERE member_id = 'bm_w1'), count(*) FILTER (WHERE member_id = 'bm_w2') "
                                        "FROM bench.actor_reach").split("|")]
    run.check(reach == wide_reaches(sz), f"{db}: the wide readers reach {reach} groups = {wide_reaches(sz)}")
    bad = []
    for r in range(3):
        actor = f"SELECT plystra.set_actor('bu_w{r}', 'bm_w{r}', 'bum_w{r}', 'bsp_w');"
        rls = c.psql(db, f"BEGIN; {actor} SELECT count(*) FROM app.invoices; COMMIT;", user="invoices_app")
        off = c.psql(db, f"SELECT count(*) FROM app.invoices WHERE space_id = 'bsp_w' AND group_id IN "
                         f"(SELECT group_id FROM bench.actor_reach WHERE member_id = 'bm_w{r}')")
        rls, off = rls.splitlines()[-1], off.splitlines()[-1]
        if rls != off or int(rls) == 0:
            bad.append(f"bm_w{r}: rls {rls}, rls-off {off}")
    run.check(not bad, f"{db}: the RLS scan of each wide reader returns exactly its reached rows"
              + (f" ({'; '.join(bad)})" if bad else ""))
    rows = int(c.psql(db, "SELECT count(*) FROM app.invoices WHERE space_id = 'bsp_w'"))
    return {"generate_s": secs, "reach": reach, "rows_in_space": rows,
            "rows_reached": [int(c.psql(db, f"SELECT count(*) FROM app.invoices WHERE group_id IN (SELECT group_id "
                                            f"FROM bench.actor_reach WHERE member_id = 'bm_w{r}')")) for r in range(3)]}


def sql_rounds(run, size, demo, ctx):
    """The floors and the decisions in SQL measured against them, in size["sql_rounds"] rounds: each round measures
    the floors (at every client count), then every decision workload (at every client count); each workload stands
    in the results as the median of its runs, so that a ratio compares runs spread over the same minutes. Measured
    once each, the floors first and the decisions minutes later, the same build's check read 0.34 and 0.43 of the
    primary-key lookup at 2 clients in two full runs of 2026-12-01 and 2026-12-02 (the machine's speed drifts by a
    fifth or more over minutes). The warm-up runs once, in the first round, before its decisions."""
    ctx["sql_rounds"] = size["sql_rounds"]
    runs = {}

    def measure(name, *args, **kw):
        r = run.pgbench(name, *args, **kw)
        runs.setdefault((name, r["clients"]), []).append(r)
        return r

    for k in range(size["sql_rounds"]):
        for c in CLIENTS:
            measure("select1", "bench", "select1.sql", c, size, group="floor")
            measure("pk_lookup", "bench", None, c, size, builtin="select-only", group="floor")
            measure("insert_jsonb", "bench", "insert_jsonb.sql", c, size, group="floor")
        if k == 0:
            # A server that has been deciding holds the actors its decisions read, kept per backend and shared
            # between backends (plystra_pg/src/actor_shared.rs), as it holds its pages in shared_buffers (pg_prewarm
            # above). Unmeasured runs of the check mix, drawn with other seeds than the measured runs, fill them.
            ctx["warmup"] = run.warm("bench", "check.sql", size)
        for c in CLIENTS:
            measure("check_off", "bench", "check.sql", c, size, audit="off", floor="pk_lookup", group="sql")
            # The scale pair back to back: the machine's speed drifts by a fifth or more over minutes, and the
            # ratio is about the data's size, not about the windows (measured after the audited runs, the demo
            # size's p50 moved from 0.043 to 0.069 ms between runs of the same code).
            measure("check_off_demo", "bench_demo", "check.sql", c, demo, audit="off", floor="pk_lookup",
                    group="scale")
            measure("handwritten", "bench", "handwritten.sql", c, size, floor="pk_lookup", group="sql")
            measure("allowed_off", "bench", "allowed.sql", c, size, audit="off", floor="pk_lookup", group="sql")
            measure("explain_off", "bench", "explain.sql", c, size, audit="off", floor="pk_lookup", group="sql")
            measure("check_deny_only", "bench", "check.sql", c, size, audit="deny_only", floor="insert_jsonb",
                    group="sql")
            first = k == 0 and c == CLIENTS[0]
            seq0 = run.c.psql("bench", "SELECT coalesce(max(seq), 0) FROM plystra.audit_logs") if first else None
            measure("check_always", "bench", "check.sql", c, size, audit="always", floor="insert_jsonb", group="sql")
            if first:
                mix = run.c.psql("bench", f"SELECT decision, coalesce(deny_code, ''), count(*) FROM "
                                          f"plystra.audit_logs WHERE seq > {seq0} AND actor_user_id LIKE 'bu\\_%' "
                                          f"GROUP BY 1, 2 ORDER BY 3 DESC")
                ctx["decision_mix"] = [dict(decision=a, deny_code=b or None, count=int(n))
                                       for a, b, n in (l.split("|") for l in mix.splitlines())]
            for audit in ("off", "always"):
                measure(f"check_batch_{audit}", "bench", "check_batch.sql", c, size, audit=audit,
                        floor=f"check_{audit}", group="sql",
                        defines={"items": BATCH_ITEMS, "batches": size["batches"]},
                        extra={"items": BATCH_ITEMS, "batch_documents": size["batches"]})
        if k + 1 < size["sql_rounds"]:
            settle(run, ctx)
    for done in runs.values():
        if len(done) > 1:
            run.keep_median(done)


# What a round of sql_rounds writes: the audited decisions' rows and keys, and the insert floor's rows.
ROUND_WRITES = "plystra.audit_logs, plystra.audit_log_keys, bench.floor_insert"


def settle(run, ctx):
    """Between two rounds of sql_rounds: VACUUM (ANALYZE) of what the round wrote, so that autovacuum does not work
    through it while the next round measures. In the reference run of 04:02 on 2026-12-02 the check read 0.39, 0.35
    and 0.28 of the primary-key lookup within its three rounds at 2 clients, the decisions slowing one round after
    another while the floors did not; each audited run adds tens of thousands of rows that autovacuum's insert
    threshold then takes up. Its seconds are kept in the run's facts."""
    started = time.monotonic()
    run.c.psql("bench", f"VACUUM (ANALYZE) {ROUND_WRITES}")
    ctx.setdefault("sql_rounds_settle_s", []).append(round(time.monotonic() - started, 1))


def apply_skew(run, db, sz):
    """Noisy neighbours: SKEW_MEMBERS new members of Space bsp_0, each with skew_grants groups (under its own root
    group) and a reader grant anchored at every one of them; then VACUUM (ANALYZE) of the tables it wrote, as after
    the load: measured at once, the ordinary actors' checks at 2 clients shared the 2 cores with autovacuum working
    through the skew's 120,000 new rows (0.63 of before in the run of 03:38 on 2026-11-30, autovacuum on groups and
    member_roles inside its window; 1.02 at 16 clients, measured after it). The generator's members are untouched."""
    n = sz["skew_grants"]
    t0 = now()
    run.c.psql(db, f"""
        SET session_replication_role = replica;
        SET synchronous_commit = off;
        BEGIN;
        INSERT INTO plystra.users (id, email, status)
        SELECT 'bu_skew_' || k, 'bu_skew_' || k || '@bench.example', 'active' FROM generate_series(0, {SKEW_MEMBERS - 1}) k;
        INSERT INTO plystra.members (id, space_id, display_name, member_type, status)
        SELECT 'bm_skew_' || k, 'bsp_0', 'Skewed member ' || k, 'human', 'active' FROM generate_series(0, {SKEW_MEMBERS - 1}) k;
        INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type, status, is_primary)
        SELECT 'bum_skew_' || k, 'bu_skew_' || k, 'bm_skew_' || k, 'bsp_0', 'login', 'active', true
        FROM generate_series(0, {SKEW_MEMBERS - 1}) k;
        INSERT INTO plystra.groups (id, space_id, parent_group_id, name, display_name, path, sort_order)
        SELECT 'bg_skew_' || k, 'bsp_0', NULL, 'skew' || k, 'SKEW' || k, 'skew' || k, 0
        FROM generate_series(0, {SKEW_MEMBERS - 1}) k;
        INSERT INTO plystra.groups (id, space_id, parent_group_id, name, display_name, path, sort_order)
        SELECT 'bg_skew_' || k || '_' || g, 'bsp_0', 'bg_skew_' || k, 'n' || g, 'N' || g, 'skew' || k || '.n' || g, 0
        FROM generate_series(0, {SKEW_MEMBERS - 1}) k, generate_series(1, {n - 1}) g;
        INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
        SELECT 'bmr_skew_' || k || '_' || g, 'bm_skew_' || k, 'br_0_reader', 'bsp_0',
               CASE WHEN g = 0 THEN 'bg_skew_' || k ELSE 'bg_skew_' || k || '_' || g END
        FROM generate_series(0, {SKEW_MEMBERS - 1}) k, generate_series(0, {n - 1}) g;
        COMMIT;
    """)
    # Only the tables it wrote: the rest were vacuumed after the load and nothing has written them since (a whole
    # database's ANALYZE each round sampled the million-row tables again for nothing).
    run.c.psql(db, f"VACUUM (ANALYZE) {SKEW_TABLES}")
    grants = int(run.c.psql(db, "SELECT count(*) FROM plystra.member_roles WHERE member_id = 'bm_skew_0'"))
    run.check(grants == n, f"{db}: {SKEW_MEMBERS} skewed members with {grants} grants each (= {n})")
    return {"members": SKEW_MEMBERS, "grants_each": grants, "seconds": round(now() - t0, 1)}


SKEW_TABLES = "plystra.users, plystra.members, plystra.user_members, plystra.groups, plystra.member_roles"


def remove_skew(run, db):
    """Takes away what apply_skew added (and only that: the skewed members' ids are their own), then VACUUM
    (ANALYZE) of the same tables, so that the next "before" run meets the data and statistics of before."""
    t0 = now()
    run.c.psql(db, """
        SET session_replication_role = replica;
        BEGIN;
        DELETE FROM plystra.member_roles WHERE member_id LIKE 'bm\\_skew\\_%';
        DELETE FROM plystra.groups WHERE id LIKE 'bg\\_skew\\_%';
        DELETE FROM plystra.user_members WHERE id LIKE 'bum\\_skew\\_%';
        DELETE FROM plystra.members WHERE id LIKE 'bm\\_skew\\_%';
        DELETE FROM plystra.users WHERE id LIKE 'bu\\_skew\\_%';
        COMMIT;
    """)
    run.c.psql(db, f"VACUUM (ANALYZE) {SKEW_TABLES}")
    left = int(run.c.psql(db, "SELECT (SELECT count(*) FROM plystra.member_roles WHERE member_id LIKE 'bm\\_skew\\_%')"
                              " + (SELECT count(*) FROM plystra.groups WHERE id LIKE 'bg\\_skew\\_%')"))
    run.check(left == 0, f"{db}: the skew taken away between rounds ({left} of its grants and groups left)")
    return round(now() - t0, 1)


def noisy_neighbours(run, db, sz, clients):
    """The ordinary actors' check before and after the skew, in SKEW_RUNS rounds: each round measures before (at
    every client count), applies the skew, measures after, and (but the last) takes the skew away again. Before and
    after alternate minute by minute, so that the machine's drift over the phase (other work, its own load rising
    from the runs before) falls on both sides alike; each side stands as the median of its runs. Before and after
    measured in a row read 0.76 to 1.10 as single 8-s runs, and 0.79 to 1.20 as medians of three, across full runs
    of 2026-12-01 with no change to the code."""
    runs, applied, removed = {}, [], []
    for k in range(SKEW_RUNS):
        for c in clients:
            runs.setdefault(("check_off_before_skew", c), []).append(
                run.pgbench("check_off_before_skew", db, "check.sql", c, sz, audit="off", group="skew"))
        skew = apply_skew(run, db, sz)
        applied.append(skew["seconds"])
        for c in clients:
            runs.setdefault(("check_off_after_skew", c), []).append(
                run.pgbench("check_off_after_skew", db, "check.sql", c, sz, audit="off",
                            floor="check_off_before_skew", group="skew"))
        if k < SKEW_RUNS - 1:
            removed.append(remove_skew(run, db))
    for done in runs.values():
        run.keep_median(done)
    return dict(skew, rounds=SKEW_RUNS, applied_s=applied, removed_s=removed)


# ---------------------------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------------------------

def http_placeholder():
    main_rs = REPO / "plystra_http" / "src" / "main.rs"
    if not main_rs.exists():
        return "plystra_http/src/main.rs does not exist"
    code = [l for l in main_rs.read_text().splitlines() if l.strip() and not l.strip().startswith("//")]
    if len(code) < 8:
        return "plystra_http/src/main.rs is a placeholder"
    return None


def build_http(args):
    """Builds plystra_http; returns (binary path, None) or (None, reason)."""
    why = http_placeholder()
    if why:
        return None, why
    profile = "debug" if args.size == "tiny" else "release"
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    cmd = ["cargo", "build", "-q", "-p", "plystra_http", "--bin", "plystra_http"]
    if profile == "release":
        cmd.append("--release")
    log(f"building plystra_http ({profile}; CARGO_TARGET_DIR={target})")
    r = sh(cmd, check=False)
    if r.returncode != 0:
        err = [l for l in r.stderr.splitlines() if l.startswith("error")][:3]
        return None, f"`{' '.join(cmd)}` failed: {'; '.join(err) or r.stderr.strip()[-300:]}"
    binary = target / profile / "plystra_http"
    return (binary, None) if binary.exists() else (None, f"{binary} missing after the build")


def ensure_wrk():
    if shutil.which("wrk"):
        return None
    if os.geteuid() != 0:
        return "wrk is not installed (apt-get install wrk, as root)"
    log("installing wrk (Debian)")
    r = sh(["bash", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk"],
           check=False)
    return None if shutil.which("wrk") else f"could not install wrk: {r.stderr.strip()[-200:]}"


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read()


def http_post(url, body, header=None, timeout=5.0):
    req = urllib.request.Request(url, data=body.encode(), method="POST", headers={"Content-Type": "application/json"})
    if header:
        name, value = header.split(":", 1)
        req.add_header(name.strip(), value.strip())
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read()


def stop_process(proc, timeout=35):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_healthy(proc, url, log_path, name, seconds=30):
    """None once url answers 200, else the reason (the process exited, or never answered)."""
    deadline = now() + seconds
    while True:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            return f"{name} exited ({proc.returncode}) at startup: {' | '.join(tail)}"
        try:
            if http_get(url)[0] == 200:
                return None
        except Exception:
            pass
        if now() > deadline:
            return f"{name} did not answer {url} within {seconds} s"
        time.sleep(0.2)


# The front's AUDIT_WRITE_MODE values (plystra_http/src/config.rs): "disabled_for_dev" writes nothing (an unknown
# value such as "off" audits every decision), "always" audits every decision.
HTTP_AUDIT_RUNS = (("disabled_for_dev", "off"), ("always", "always"))
HTTP_ROUNDS = 3      # the front and Cerbos alternated, each workload the median of its runs (http_rounds)


def run_http(run, binary, sz):
    """Starts plystra_http against the bench database and measures /health and /authz/check with wrk: audit off
    (health and check), then, after a restart with AUDIT_WRITE_MODE=always, the check again."""
    c = run.c
    # An instance-level API key holding authz:check, made as the front makes them: the token is
    # ply_ak_<id>.<64 hex>, stored as its HMAC-SHA256 under PLYSTRA_API_KEY_SECRET (plystra_http/src/auth), and
    # the key has a creator whose admin grant bounds it (as every key made through the API has), so the gate reads
    # the creator and the grant on every request, as it does in production.
    secret = os.urandom(32).hex()
    token = f"ply_ak_bench_http.{os.urandom(32).hex()}"
    key_hash = hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()
    credential = ("X-Plystra-API-Key (an instance-level API key holding authz:check, created by the harness for a "
                  "user whose instance_admin grant holds authz:check)")
    try:
        c.psql("bench", "INSERT INTO plystra.users (id, email) VALUES ('bench_http_admin', 'bench-http@example.com') "
                        "ON CONFLICT (id) DO NOTHING; "
                        "INSERT INTO plystra.admin_grants (id, user_id, level, permission_key) VALUES "
                        "('bench_http_grant', 'bench_http_admin', 'instance_admin', 'authz:check') "
                        "ON CONFLICT (id) DO NOTHING; "
                        "INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys, "
                        "created_by_user_id) "
                        f"VALUES ('bench_http', 'bench', 'ply_ak_bench_http', '{key_hash}', 'instance', "
                        "'[\"authz:check\"]', 'bench_http_admin') "
                        "ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash")
        header = f"X-Plystra-API-Key: {token}"
    except Failure as e:
        header, credential = "", f"none (the API key could not be created: {str(e).splitlines()[-1]})"
    header = os.environ.get("PLYSTRA_BENCH_HTTP_HEADER", header)
    session_secret = secrets.token_hex(32)
    config = {"binary": str(binary), "env": None,
              "database_url": "postgres://postgres@127.0.0.1:<port>/bench (TCP, loopback)",
              "credential": credential, "audit_write_modes": [m for m, _ in HTTP_AUDIT_RUNS]}
    d = run.defines(sz)
    check_args = [str(d[k]) for k in ("spaces", "breadth", "depth", "members", "resq", "gs", "alevels")] + [header]
    decisions = "SELECT count(*) FROM plystra.audit_logs WHERE decision IN ('allow', 'deny')"
    results = []
    for write_mode, audit in HTTP_AUDIT_RUNS:
        port = int(lib("free_port 18480").stdout.strip())
        env = dict(os.environ, DATABASE_URL=f"postgres://postgres@127.0.0.1:{c.port}/bench", SERVER_HOST="127.0.0.1",
                   SERVER_PORT=str(port), SERVER_MODE="production", LOG_LEVEL="warn",
                   AUDIT_WRITE_MODE=write_mode, DATABASE_MAX_OPEN_CONNS="20", PLYSTRA_API_KEY_SECRET=secret,
                   # The front's default (one serving lane a CPU), written out so that the report says it.
                   SERVER_THREADS=str(os.cpu_count() or 1),
                   # Production mode refuses defaults: a real session secret, explicit CORS origins, a public URL.
                   PLYSTRA_SESSION_SECRET=session_secret, CORS_ALLOWED_ORIGINS="https://bench.plystra.invalid",
                   SERVER_PUBLIC_URL="https://bench.plystra.invalid")
        env.pop("RUST_BACKTRACE", None)
        if config["env"] is None:
            config["env"] = {k: env[k] for k in ("SERVER_MODE", "LOG_LEVEL", "AUDIT_WRITE_MODE",
                                                 "DATABASE_MAX_OPEN_CONNS", "SERVER_THREADS")}
        log_path = run.rundir / f"plystra_http-{audit}.log"
        server_log = open(log_path, "w")
        proc = subprocess.Popen([str(binary)], env=env, stdout=server_log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            why = wait_healthy(proc, base + "/api/v1/health", log_path, "plystra_http")
            if why:
                return results or None, why, config
            i, s = 11 * sz["spaces"], 0
            probe = json.dumps({"actor": {"user_id": f"bu_{i}", "member_id": f"bm_{i}",
                                          "user_member_id": f"bum_{i}", "space_id": f"bsp_{s}"},
                                "resource_type": "invoice", "resource_id": f"bres_{s}", "action": "read"})
            try:
                status, body = http_post(base + "/api/v1/authz/check", probe, header or None)
                doc = json.loads(body)
            except urllib.error.HTTPError as e:
                return results or None, (f"POST /api/v1/authz/check answered {e.code} before the measurement: "
                                         f"{e.read()[:300].decode(errors='replace')}"), config
            except Exception as e:  # noqa: BLE001 - any failure means "not measured", with the reason
                return results or None, f"POST /api/v1/authz/check failed before the measurement: {e}", config
            if status != 200 or "decision" not in json.dumps(doc):
                return (results or None, f"POST /api/v1/authz/check answered {status} without a decision: "
                                         f"{body[:200]!r}", config)
            run.check(True, f"plystra_http (AUDIT_WRITE_MODE={write_mode}) answers /health and /authz/check")
            audited_before = int(c.psql("bench", decisions).splitlines()[-1])
            runs = [("http_check", "http_check.lua", check_args, "http_health")]
            if audit == "off":
                runs.insert(0, ("http_health", "http_health.lua", [header], None))
            else:
                runs = [("http_check_always", "http_check.lua", check_args, "http_health")]
            measured = []
            for name, script, args, floor in runs:
                path = "/api/v1/health" if name == "http_health" else "/api/v1/authz/check"
                for clients in CLIENTS:
                    measured.append(wrk(run, name, script, args, clients, base + path, floor,
                                        audit_mode=None if name == "http_health" else audit))
            results += measured
            audited = int(c.psql("bench", decisions).splitlines()[-1]) - audited_before
            checked = sum(r.get("transactions") or 0 for r in measured if r["workload"] != "http_health")
            if audit == "off":
                # "Audit off" must be true: a mode the front does not know audits every decision.
                run.check(audited == 0,
                          f"the HTTP check workload ran with audit off ({audited} decision audit rows written)")
            else:
                # The writer confirms each row durable before the decision returns: every answered request
                # (and the few in flight when wrk stopped) has its row.
                run.check(audited >= checked > 0,
                          f"the HTTP audit-always workload wrote {audited} decision audit rows for {checked} "
                          f"answered requests (at least one each)")
        finally:
            stop_process(proc)
            server_log.close()
    return results, None, config


def wrk(run, name, script, script_args, clients, url, floor, audit_mode=None, group="http"):
    cmd = ["wrk", "-t", str(min(clients, os.cpu_count() or 1)), "-c", str(clients), "-d", f"{run.args.duration}s",
           "--timeout", "5s", "-s", str(WORKLOADS / script), url, "--"] + script_args
    log(f"{name} at {clients} clients ({run.args.duration}s, wrk)")
    r = sh(cmd, check=False)
    m = re.search(r"^BENCHJSON (\{.*\})$", r.stdout, re.M)
    res = {"workload": name, "label": name, "group": group, "clients": clients, "tool": "wrk",
           "script": f"bench/workloads/{script}", "duration_s": run.args.duration, "floor": floor,
           "audit_mode": audit_mode}
    ok = r.returncode == 0 and m is not None
    if m:
        doc = json.loads(m.group(1))
        errors = sum(doc["errors"].values())
        res.update({"tps": doc["requests"] / (doc["duration_us"] / 1e6), "transactions": doc["requests"],
                    "failed": errors, "errors": doc["errors"], "p50_ms": doc["p50_us"] / 1000,
                    "p95_ms": doc["p95_us"] / 1000, "p99_ms": doc["p99_us"] / 1000})
        ok = ok and errors == 0 and doc["requests"] > 0
    res["ok"] = ok
    if not ok:
        res["error"] = (r.stdout + r.stderr).strip().splitlines()[-5:]
    run.check(ok, f"{name} at {clients} clients ran without errors"
              + ("" if ok else f": {' | '.join(res.get('error', []))}"))
    run.results.append(res)
    return res


def http_rounds(run, sz, http_binary, cerbos_binary, ctx):
    """The front (audit off, then always) and Cerbos (audit off, then its decision log), in HTTP_ROUNDS rounds that
    alternate them, each workload standing as the median of its runs: the ratios to Cerbos compare runs made
    minutes apart, and single runs of either moved by more than the targets' margins from one minute to the next
    (Cerbos audit off at 2 connections: 4,600 requests/s when the issue was filed, 1,990 in the run of 22:32 on
    2026-12-01). A side that fails a round is not run again; what it measured stands."""
    front, peer, facts = http_binary, cerbos_binary, None
    for _ in range(HTTP_ROUNDS):
        if front:
            results, reason, config = run_http(run, front, sz)
            ctx["http"] = {"measured": bool(results) or ctx["http"].get("measured", False), "reason": reason,
                           "config": config, "rounds": ctx["http"].get("rounds", 0) + 1}
            front = None if reason else front
        if peer:
            results, reason, facts = run_cerbos(run, peer, sz, facts)
            ctx["cerbos"].update(facts, measured=bool(results) or ctx["cerbos"].get("measured", False),
                                 reason=reason, rounds=ctx["cerbos"].get("rounds", 0) + 1)
            peer = None if reason else peer
    runs = {}
    for r in run.results:
        if r.get("tool") == "wrk":
            runs.setdefault((r["workload"], r["clients"]), []).append(r)
    for done in runs.values():
        run.keep_median(done)


# ---------------------------------------------------------------------------------------------------------------
# Cerbos, side by side (issue 14)
# ---------------------------------------------------------------------------------------------------------------

def ensure_cerbos():
    """The pinned Cerbos PDP from the npm registry, cached under target/bench-tools/cerbos/<version>: (binary,
    None), or (None, the reason it is unavailable). Never raises: a missing peer is reported, not a failure."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "amd64"):
        return None, f"{CERBOS_PACKAGE} is built for Linux x86-64, not {platform.system()} {platform.machine()}"
    home = REPO / "target" / "bench-tools" / "cerbos" / CERBOS_VERSION
    binary = home / "cerbos"

    def version_of(path):
        try:
            r = sh([str(path), "--version"], check=False, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, str(e)
        first = (r.stdout.strip().splitlines() or [""])[0].strip()
        return (first, None) if r.returncode == 0 else (None, (r.stdout + r.stderr).strip()[-200:])

    if binary.exists() and version_of(binary)[0] == CERBOS_VERSION:
        return binary, None
    npm = shutil.which("npm")
    if not npm:
        return None, "npm is not installed (Debian: apt-get install npm)"
    home.mkdir(parents=True, exist_ok=True)
    spec = f"{CERBOS_PACKAGE}@{CERBOS_VERSION}"
    log(f"fetching {spec} from the npm registry")
    env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false", npm_config_audit="false",
               # Without a registry, fail in minutes rather than retry for long.
               npm_config_fetch_retries="1", npm_config_fetch_timeout="120000")
    try:
        r = sh([npm, "pack", spec, "--json", "--pack-destination", str(home)], check=False, env=env, timeout=600,
               cwd=home)
    except subprocess.TimeoutExpired:
        return None, f"`npm pack {spec}` did not finish within 600 s"
    if r.returncode != 0:
        err = [re.sub(r"^npm (ERR!|error)\s*", "", l) for l in r.stderr.splitlines()
               if re.match(r"npm (ERR!|error) ", l) and "complete log" not in l][:2]
        try:
            home.rmdir()   # only if empty: a cached binary stays
        except OSError:
            pass
        return None, f"`npm pack {spec}` failed: {'; '.join(err) or r.stderr.strip()[-300:]}"
    try:
        tarball = home / json.loads(r.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError):
        return None, f"`npm pack {spec}` printed no file name: {r.stdout.strip()[-200:]}"
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != CERBOS_INTEGRITY:
        tarball.unlink()
        return None, f"{tarball.name}: integrity {digest[:20]}… is not the pinned {CERBOS_INTEGRITY[:20]}…"
    tmp = home / "cerbos.tmp"
    try:
        with tarfile.open(tarball) as tf:
            member = tf.getmember("package/cerbos-linux-x64")
            with tf.extractfile(member) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
    except (KeyError, OSError, tarfile.TarError) as e:
        return None, f"{tarball.name}: no usable package/cerbos-linux-x64 ({e})"
    tmp.chmod(0o755)
    tmp.replace(binary)
    tarball.unlink()
    version, err = version_of(binary)
    if version != CERBOS_VERSION:
        return None, f"{binary} does not run as Cerbos {CERBOS_VERSION}: {err or version}"
    return binary, None


# The grant scopes as CEL over the principal's grant g and the resource R (plystra_core/src/scope.rs): the
# group_tree test is the label-boundary prefix test of `path_within`, never a bare startsWith.
CERBOS_SCOPE_CEL = {
    "group_tree": '(g.anchor != "" && (R.attr.group_path == g.anchor || R.attr.group_path.startsWith(g.anchor + ".")))',
    "group": '(g.anchor != "" && R.attr.group_path == g.anchor)',
    "self": "R.attr.owner_member_id == P.id",
    "space": "true",
    "global": "false",
}


def cerbos_policy(run, db):
    """A Cerbos resource policy for kind `invoice` generated from the bench Spaces' own role permissions: one rule
    an action, allowing it when the actor is usable, the resource was found in the actor's Space, and some grant
    of the principal has a role whose permission for the action has a scope that covers the resource."""
    rows = run.c.psql(db, r"""
        SELECT DISTINCT ro.key, p.action, p.scope
        FROM plystra.role_permissions rp
        JOIN plystra.roles ro ON ro.id = rp.role_id AND ro.status = 'active' AND ro.deleted_at IS NULL
        JOIN plystra.permissions p ON p.id = rp.permission_id AND p.status = 'active' AND p.deleted_at IS NULL
        WHERE rp.deleted_at IS NULL AND p.resource = 'invoice' AND ro.space_id LIKE 'bsp\_%'
        ORDER BY 2, 1, 3""").splitlines()
    by_action = {}
    for line in rows:
        role, action, scope = line.split("|")
        by_action.setdefault(action, []).append((role, scope))
    rules = []
    for action, grants in sorted(by_action.items()):
        covers = " || ".join(f'(g.role == "{role}" && {CERBOS_SCOPE_CEL.get(scope, "false")})'
                             for role, scope in grants)
        rules.append({"actions": [action], "effect": "EFFECT_ALLOW", "roles": ["member"],
                      "condition": {"match": {"expr": (
                          "P.attr.active && R.attr.found && R.attr.space_id == P.attr.space_id && "
                          f"P.attr.grants.exists(g, {covers})")}}})
    return {"apiVersion": "api.cerbos.dev/v1",
            "resourcePolicy": {"version": "default", "resource": "invoice", "rules": rules}}, by_action


CERBOS_FACTS_SQL = r"""
SELECT x.n, json_build_object(
    'active', coalesce(a.active, false),
    'grants', coalesce(gr.grants, '[]'::json),
    'found', r.id IS NOT NULL,
    'space_id', coalesce(r.space_id, ''),
    'group_path', coalesce(rg.path, ''),
    'owner_member_id', coalesce(r.owner_member_id, ''))::text{decision}
FROM x
LEFT JOIN LATERAL (
    -- The actor tuple, as plystra_core's actor_usable: every part live and active, the binding unexpired and
    -- joining exactly this User and Member, all in the requested Space.
    SELECT u.status = 'active' AND m.status = 'active' AND s.status = 'active' AND um.status = 'active'
           AND (um.expires_at IS NULL OR um.expires_at >= now()) AND um.user_id = u.id AND um.member_id = m.id
           AND um.space_id = x.space_id AND m.space_id = x.space_id AS active
    FROM plystra.user_members um
    JOIN plystra.users u ON u.id = x.user_id AND u.deleted_at IS NULL
    JOIN plystra.members m ON m.id = x.member_id AND m.deleted_at IS NULL
    JOIN plystra.spaces s ON s.id = x.space_id AND s.deleted_at IS NULL
    WHERE um.id = x.user_member_id AND um.deleted_at IS NULL
) a ON true
LEFT JOIN LATERAL (
    -- The Member's live grants: role key and anchor path ('' without a live anchor).
    SELECT json_agg(json_build_object('role', ro.key, 'anchor', coalesce(ag.path, '')) ORDER BY mr.id) AS grants
    FROM plystra.member_roles mr
    JOIN plystra.roles ro ON ro.id = mr.role_id AND ro.status = 'active' AND ro.deleted_at IS NULL
    LEFT JOIN plystra.groups ag ON ag.id = mr.scope_anchor_group_id AND ag.deleted_at IS NULL AND ag.status = 'active'
    WHERE mr.member_id = x.member_id AND mr.status = 'active' AND mr.deleted_at IS NULL
) gr ON true
LEFT JOIN plystra.resources r ON r.id = x.resource_id AND r.resource_type = 'invoice' AND r.deleted_at IS NULL
                              AND r.status = 'active'
LEFT JOIN plystra.groups rg ON rg.id = r.group_id AND rg.deleted_at IS NULL AND rg.status = 'active'
ORDER BY x.n;
"""


def cerbos_bodies(run, db, sz, path, n, agree):
    """n requests of the check mix (mix_sample) as Cerbos CheckResources bodies, one a line in `path`, each
    carrying what the database holds for it; returns the first `agree` requests as (n, body, action, decision,
    deny code) with plystra.check's decision and deny code, also written next to `path` (cerbos_agreement.jsonl)."""
    sample = mix_sample(sz, n)
    sql = run.rundir / "cerbos_facts.sql"
    rows = ",\n".join(f"({k}, '{u}', '{m}', '{um}', '{sp}', '{r}', '{a}')"
                      for k, (u, m, um, sp, r, a) in enumerate(sample))
    decision = (f",\n    CASE WHEN x.n < {agree} THEN (SELECT (d ->> 'decision') || ':' || "
                "coalesce(d ->> 'deny_code', '') FROM plystra.check(jsonb_build_object('actor', "
                "jsonb_build_object('user_id', x.user_id, 'member_id', x.member_id, 'user_member_id', "
                "x.user_member_id, 'space_id', x.space_id), 'resource_type', 'invoice', 'resource_id', "
                "x.resource_id, 'action', x.action)) AS c (d)) END")
    sql.write_text("SET plystra.audit_mode = off;\n"
                   "CREATE TEMP TABLE x (n int, user_id text, member_id text, user_member_id text, space_id text, "
                   "resource_id text, action text);\n"
                   f"INSERT INTO x VALUES\n{rows};\n" + CERBOS_FACTS_SQL.replace("{decision}", decision))
    out = run.c.psql(db, file=sql).splitlines()
    if len(out) != n:
        raise Failure(f"the Cerbos facts query returned {len(out)} rows for {n} requests")
    checked = []
    with open(path, "w") as f:
        for line, (u, m, um, sp, res, action) in zip(out, sample):
            k, facts, dec = line.split("|")
            facts = json.loads(facts)
            body = {"principal": {"id": m, "roles": ["member"],
                                  "attr": {"space_id": sp, "active": facts["active"], "grants": facts["grants"]}},
                    "resources": [{"actions": [action], "resource": {"kind": "invoice", "id": res, "attr": {
                        k2: facts[k2] for k2 in ("found", "space_id", "group_path", "owner_member_id")}}}]}
            text = json.dumps(body, separators=(",", ":"))
            f.write(text + "\n")
            if int(k) < agree:
                decision, code = dec.split(":", 1)
                checked.append((int(k), text, action, decision, code))
    with open(path.parent / "cerbos_agreement.jsonl", "w") as f:
        for k, text, action, decision, code in checked:
            f.write(json.dumps({"n": k, "action": action, "check": decision, "deny_code": code or None,
                                "body": json.loads(text)}, separators=(",", ":")) + "\n")
    return checked


def start_cerbos(run, binary, policy_dir, audit_log, name):
    """Cerbos on free loopback ports (HTTP, gRPC, and its debug listener, which defaults to every interface)."""
    http_port = int(lib("free_port 39592").stdout.strip())
    grpc_port = int(lib(f"free_port {http_port + 1}").stdout.strip())
    debug_port = int(lib(f"free_port {grpc_port + 1}").stdout.strip())
    audit = ({"enabled": True, "accessLogsEnabled": False, "decisionLogsEnabled": True, "backend": "file",
              "file": {"path": str(audit_log)}} if audit_log else {"enabled": False})
    config = {"server": {"httpListenAddr": f"127.0.0.1:{http_port}", "grpcListenAddr": f"127.0.0.1:{grpc_port}"},
              "storage": {"driver": "disk", "disk": {"directory": str(policy_dir), "watchForChanges": False}},
              "audit": audit, "telemetry": {"disabled": True}}
    config_path = run.rundir / f"cerbos-{name}.yaml"
    config_path.write_text(json.dumps(config, indent=2) + "\n")   # JSON is YAML
    log_path = run.rundir / f"cerbos-{name}.log"
    server_log = open(log_path, "w")
    env = dict(os.environ, CERBOS_NO_TELEMETRY="1")
    proc = subprocess.Popen([str(binary), "server", f"--config={config_path}", "--log-level=warn",
                             f"--debug-listen-addr=127.0.0.1:{debug_port}"], env=env, stdout=server_log,
                            stderr=subprocess.STDOUT, cwd=run.rundir)
    base = f"http://127.0.0.1:{http_port}"
    why = wait_healthy(proc, base + "/_cerbos/health", log_path, "cerbos")
    if why:
        stop_process(proc)
        server_log.close()
        return None, None, None, why
    return proc, server_log, base, None


def run_cerbos(run, binary, sz, facts=None):
    """Cerbos side by side: the workload's policy generated from the bench database, the check mix's facts as
    request bodies, an agreement check against plystra.check, then wrk at every client count with audit off and
    with its file decision log. Returns (results, reason or None, facts for the report). Given the facts of an
    earlier round, it measures only, with that round's policy and bodies (their agreement checked then)."""
    policy_dir = run.rundir / "cerbos-policies"
    bodies = run.rundir / "cerbos_bodies.jsonl"
    sample = None
    if facts is None:
        facts = {"package": f"{CERBOS_PACKAGE}@{CERBOS_VERSION}", "integrity": CERBOS_INTEGRITY,
                 "binary": str(binary.relative_to(REPO)) if REPO in binary.parents else str(binary),
                 "endpoint": "POST /api/check/resources (CheckResources, one resource and one action a request)",
                 "bodies": CERBOS_BODIES}
        policy_dir.mkdir(exist_ok=True)
        policy, by_action = cerbos_policy(run, "bench")
        (policy_dir / "invoice.json").write_text(json.dumps(policy, indent=2) + "\n")
        facts["policy"] = policy
        facts["grants_by_action"] = {a: [f"{r} ({s})" for r, s in g] for a, g in by_action.items()}
        sample = cerbos_bodies(run, "bench", sz, bodies, CERBOS_BODIES, CERBOS_AGREEMENT)
    results = []
    for name, audit_log in (("off", None), ("decision_log", run.rundir / "cerbos-decisions.log")):
        proc, server_log, base, why = start_cerbos(run, binary, policy_dir, audit_log, name)
        if why:
            return results or None, why, facts
        try:
            if name == "off" and sample is not None:
                bad, mix, codes = [], {}, {}
                for k, body, action, expected, code in sample:
                    codes[code or "allow"] = codes.get(code or "allow", 0) + 1
                    try:
                        doc = json.loads(http_post(base + "/api/check/resources", body)[1])
                        effect = doc["results"][0]["actions"][action]
                    except Exception as e:  # noqa: BLE001 - a failed request is a disagreement, with the reason
                        effect = f"error {e}"
                    got = {"EFFECT_ALLOW": "allow", "EFFECT_DENY": "deny"}.get(effect, effect)
                    mix[got] = mix.get(got, 0) + 1
                    if got != expected:
                        bad.append(f"request {k}: cerbos {got} vs check {expected}")
                facts["agreement"] = {"requests": len(sample), "differ": len(bad), "decisions": mix,
                                      "check_deny_codes": codes}
                ok = run.check(len(sample) == CERBOS_AGREEMENT and not bad,
                               f"bench: Cerbos {CERBOS_VERSION} agrees with plystra.check on {len(sample) - len(bad)} "
                               f"of {len(sample)} requests of the mix (decision; plystra.check's: "
                               f"{', '.join(f'{k} {v}' for k, v in sorted(codes.items()))})"
                               + (f": {len(bad)} differ ({'; '.join(bad[:5])})" if bad else ""))
                if not ok:
                    return None, "its decisions differ from plystra.check's (see Checks): not measured", facts
            wl = "cerbos_off" if name == "off" else "cerbos_decision_log"
            measured = [wrk(run, wl, "http_bodies.lua", ["/api/check/resources", str(bodies)], clients,
                            base + "/api/check/resources", None, audit_mode=name, group="cerbos")
                        for clients in CLIENTS]
            results += measured
        finally:
            stop_process(proc)
            server_log.close()
        if audit_log:
            # Every answered request must have its decision in the file (the log was really on).
            lines = 0
            if audit_log.exists():
                with open(audit_log, "rb") as f:
                    lines = sum(1 for l in f if b'"log.kind":"decision"' in l)
                facts["decision_log_bytes"] = audit_log.stat().st_size
                audit_log.unlink()   # tens of MB at full size; its size and line count are kept
            answered = sum(r.get("transactions") or 0 for r in measured)
            facts["decision_log_lines"] = lines
            run.check(lines >= answered > 0, f"Cerbos {CERBOS_VERSION}'s file decision log holds {lines} decisions "
                                             f"for {answered} answered requests (at least one each)")
    return results, None, facts


# ---------------------------------------------------------------------------------------------------------------
# Profiling and plans (evidence for the report)
# ---------------------------------------------------------------------------------------------------------------

def explain(run, db, sz, actor_index=0):
    c = run.c
    s = actor_index % sz["spaces"]
    i = 11 * sz["spaces"] + s
    actor = f"SELECT plystra.set_actor('bu_{i}', 'bm_{i}', 'bum_{i}', 'bsp_{s}');"
    plans = {}
    plans["rls_scan"] = c.psql(db, f"BEGIN; {actor} EXPLAIN (ANALYZE, BUFFERS) SELECT count(*), sum(amount_cents) "
                                   "FROM app.invoices; COMMIT;", user="invoices_app")
    plans["rls_off_scan"] = c.psql(db, f"BEGIN; {actor} EXPLAIN (ANALYZE, BUFFERS) SELECT count(*), "
                                       f"sum(amount_cents) FROM app.invoices WHERE space_id = 'bsp_{s}' AND group_id IN "
                                       f"(SELECT group_id FROM bench.actor_reach WHERE member_id = 'bm_{i}'); COMMIT;")
    a = 5 * sz["spaces"] + s
    space_actor = f"SELECT plystra.set_actor('bu_{a}', 'bm_{a}', 'bum_{a}', 'bsp_{s}');"
    plans["rls_space_scan"] = c.psql(db, f"BEGIN; {space_actor} EXPLAIN (ANALYZE, BUFFERS) SELECT count(*), "
                                         "sum(amount_cents) FROM app.invoices; COMMIT;", user="invoices_app")
    plans["rls_space_off_scan"] = c.psql(db, f"BEGIN; {space_actor} EXPLAIN (ANALYZE, BUFFERS) SELECT count(*), "
                                             f"sum(amount_cents) FROM app.invoices WHERE space_id = 'bsp_{s}'; COMMIT;")
    for k in plans:
        plans[k] = "\n".join(l for l in plans[k].splitlines() if l not in ("", "BEGIN", "COMMIT"))
    return plans, i, s


def per_row_full_scan(run, db, sz, i, s, estimate_s):
    """One unbounded per-row scan of a whole Space (server-side execution time), if it fits the time budget."""
    if estimate_s > run.args.per_row_budget:
        return None
    out = run.c.psql(db, f"BEGIN; SELECT plystra.set_actor('bu_{i}', 'bm_{i}', 'bum_{i}', 'bsp_{s}'); "
                         f"EXPLAIN (ANALYZE, TIMING OFF) SELECT count(*), sum(amount_cents) FROM app.invoices "
                         f"WHERE space_id = 'bsp_{s}' AND plystra.allowed_row('invoice', 'read', space_id, group_id, "
                         f"owner_member_id); COMMIT;")
    m = re.search(r"Execution Time: ([0-9.]+) ms", out)
    rows = re.search(r"Rows Removed by Filter: (\d+)", out)
    return {"execution_ms": float(m.group(1)) if m else None, "plan": out}


def loader_query_script(run):
    """The single context statement that loaded decisions until 1.2.0 (LOAD_CONTEXT_SQL, kept as the probe loader's
    test oracle in plystra_pg/src/loader_oracle.rs) as a pgbench script with the check workload's request mix: what
    loading alone cost through SQL, next to a whole check that now loads by index probes."""
    src = REPO / "plystra_pg" / "src" / "loader_oracle.rs"
    m = re.search(r'const LOAD_CONTEXT_SQL: &str = r#"(.*?)"#;', src.read_text(), re.S) if src.exists() else None
    if not m:
        return None
    params = {"1": "('bu_' || :i::text)", "2": "('bm_' || :i::text)", "3": "('bum_' || :i::text)",
              "4": "('bsp_' || :s::text)", "5": "'invoice'::text", "6": "('bres_' || :j::text)",
              "7": "((ARRAY['read', 'reject', 'approve'])[:a::int])"}
    sql = " ".join(l.split("--")[0].strip() for l in m.group(1).splitlines() if l.split("--")[0].strip())
    # pgbench takes every :name as a variable, even inside a string literal (the to_char format): spell those
    # colons at run time instead.
    sql = re.sub(r"'([^']*:[^']*)'", lambda x: "replace('" + x.group(1).replace(":", "#") + "', '#', chr(58))", sql)
    sql = re.sub(r"\$([1-7])\b", lambda x: params[x.group(1)], sql)
    preamble = (WORKLOADS / "check.sql").read_text().split("\nSELECT ")[0]
    path = run.rundir / "loader_query.sql"
    path.write_text("-- Generated by bench/harness.py from plystra_pg/src/loader_oracle.rs (LOAD_CONTEXT_SQL).\n"
                    + preamble.split("\n", 1)[1] + "\n" + sql + ";\n")
    return path


def perf_available():
    if not shutil.which("perf"):
        return "perf is not installed (apt-get install linux-perf)"
    r = sh(["perf", "record", "-e", "cpu-clock", "-o", "/dev/null", "-q", "--", "true"], check=False)
    return None if r.returncode == 0 else f"perf record does not work here: {r.stderr.strip()[-200:]}"


def profile(run, name, db, script, sz, audit, seconds, comm="postgres"):
    """perf record (cpu-clock, all CPUs) while pgbench runs the workload at 2 clients; top symbols of `comm`."""
    data = run.rundir / f"perf-{name}.data"
    perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "999", "-a", "-g", "-q", "-o", str(data),
                             "--", "sleep", str(seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, PGOPTIONS=f"-c plystra.audit_mode={audit}")
    cmd = [PGBENCH, "-n", "-h", str(run.c.path), "-p", str(run.c.port), "-U", "postgres", "-M", "prepared",
           "-c", "2", "-j", "2", "-T", str(seconds), f"--random-seed={PGBENCH_SEED}"]
    for k, v in run.defines(sz).items():
        cmd += ["-D", f"{k}={v}"]
    sh(cmd + ["-f", str(WORKLOADS / script), db], env=env, check=False)
    perf.wait()
    rep = perf_report(data, comm)
    rep["processes"] = run.c.psql(db, "SELECT pid || ' ' || coalesce(nullif(backend_type, ''), '?') FROM "
                                      "pg_stat_activity WHERE backend_type NOT IN ('client backend') ORDER BY 1"
                                  ).splitlines()
    return rep


def perf_report(data, comm):
    out = {}
    for key, sort, limit in (("by_process", "pid", "2"), ("by_dso", "dso", "0.7"), ("by_symbol", "dso,symbol", "0.7")):
        r = sh(["perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none", "--percent-limit", limit,
                "--percentage", "relative", "--comm", comm, "--sort", sort], check=False)
        lines = [l.rstrip() for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
        out[key] = lines[:30]
    total = sh(["perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none", "--sort", "comm"],
               check=False)
    out["by_command"] = [l for l in total.stdout.splitlines() if l.strip() and not l.startswith("#")][:8]
    try:
        os.unlink(data)
    except OSError:
        pass
    return out


# ---------------------------------------------------------------------------------------------------------------
# Facts about the machine and the build
# ---------------------------------------------------------------------------------------------------------------

def machine_facts():
    facts = {"cores": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}
    try:
        mem = Path("/proc/meminfo").read_text()
        facts["memory_gib"] = round(int(re.search(r"MemTotal:\s+(\d+)", mem).group(1)) / 1024 / 1024, 1)
    except Exception:
        pass
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        facts["cpu"] = re.search(r"model name\s*:\s*(.*)", cpu).group(1).strip()
    except Exception:
        pass
    facts["load_average"] = Path("/proc/loadavg").read_text().split()[:3]
    facts["uptime"] = sh(["uptime"], check=False).stdout.strip()
    return facts


AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")
# The value a run turned off and its process id, until it is put back (see autogroup_off).
AUTOGROUP_SAVED = Path("/run/plystra-bench-autogroup")


def autogroup_off(wanted, recovered=None):
    """Turns the kernel's per-session CPU groups off for the run when `wanted` and this process may; returns the
    setting's record for the report and the value to restore (None: nothing to restore). `recovered`: what
    autogroup_recover did at the start of the run, for the record.

    Why: with autogroup on, the kernel splits the CPUs evenly between sessions before it splits them between
    processes. pg_ctl starts the postmaster in a session of its own, so every PostgreSQL backend shares one group's
    slice against the session of the harness, the HTTP front and wrk, and a backend woken while its group has used
    its slice waits for the other group's: on two cores, 100 ms and more (`perf sched latency`). A server does not
    run so: autogroup applies only to processes in the root CPU cgroup, and services run in cgroups of their own.
    Cerbos, one process, is not split at all. The setting is put back when the run ends.

    The value to put back is also written, with this process's id, to AUTOGROUP_SAVED before the change, and
    removed once it is back: a run killed before its end (SIGKILL skips `finally`) leaves the file, and the next
    run puts that value back first (autogroup_recover, at its start). The file is machine-wide like the setting,
    and on a tmpfs, so a reboot, which resets the setting, forgets it too."""
    note = f"; {recovered}" if recovered else ""
    if not AUTOGROUP.exists():
        return {"autogroup": f"absent (this kernel has no sched_autogroup_enabled){note}"}, None
    before = AUTOGROUP.read_text().strip()
    if not wanted or before == "0":
        return {"autogroup": f"kept as found ({before}){note}"}, None
    try:
        AUTOGROUP_SAVED.write_text(f"{before} {os.getpid()}")
    except OSError as e:
        return {"autogroup": f"left on: the value to put back could not be saved ({e.strerror}){note}"}, None
    try:
        AUTOGROUP.write_text("0")
    except OSError as e:
        AUTOGROUP_SAVED.unlink(missing_ok=True)
        return {"autogroup": f"left on: could not be changed ({e.strerror}){note}"}, None
    return {"autogroup": f"off for the run (was {before}; restored at the end){note}"}, before


def autogroup_recover():
    """Puts back the value a killed run left in AUTOGROUP_SAVED; says what it did (None: nothing was left). A
    file whose run is still alive (another run measuring now) is left alone."""
    try:
        value, pid = AUTOGROUP_SAVED.read_text().split()
        pid = int(pid)
    except (OSError, ValueError):
        return None
    if value not in ("0", "1"):
        return None
    if pid != os.getpid():
        try:
            os.kill(pid, 0)
            return f"another run (pid {pid}) has it off and will put {value} back"
        except ProcessLookupError:
            pass
        except PermissionError:
            return f"another run (pid {pid}) has it off and will put {value} back"
    try:
        AUTOGROUP.write_text(value)
    except OSError as e:
        return f"a killed run's saved value {value} could not be put back ({e.strerror})"
    AUTOGROUP_SAVED.unlink(missing_ok=True)
    return f"put back {value}, left by a run that was killed before its end"


def autogroup_restore(before):
    if before is not None:
        try:
            AUTOGROUP.write_text(before)
            AUTOGROUP_SAVED.unlink(missing_ok=True)
        except OSError:
            pass


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def loaded_library(pid):
    """The plystra library the postmaster mapped (preloaded, so every backend runs exactly this file)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    except OSError:
        return None
    for line in maps:
        if line.rstrip().endswith(("plystra.so", "plystra.so (deleted)")):
            rng = line.split()[0]
            path = line.split(None, 5)[5]
            try:
                digest = sha256(f"/proc/{pid}/map_files/{rng}")
            except OSError:
                digest = None
            return {"path": path, "sha256": digest, "replaced_on_disk": path.endswith("(deleted)")}
    return None


def build_profile(path):
    r = sh(["readelf", "-S", str(path)], check=False)
    return "debug" if ".debug_info" in r.stdout else "release"


def git_facts():
    head = sh(["git", "rev-parse", "HEAD"], check=False).stdout.strip()
    dirty = sh(["git", "status", "--porcelain", "--untracked-files=no"], check=False).stdout.strip()
    return {"commit": head, "uncommitted_changes": bool(dirty)}


# ---------------------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------------------

def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def fmt(x, digits=2):
    if x is None:
        return "–"
    if isinstance(x, float):
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        if abs(x) >= 100:
            return f"{x:.1f}"
        return f"{x:.{digits}f}" if abs(x) >= 0.01 else f"{x:.4f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


DESCRIPTIONS = {
    "select1": "`SELECT 1` (floor)",
    "pk_lookup": "`pgbench -S`: one primary-key lookup (floor)",
    "insert_jsonb": "one-row JSONB insert, autocommit (floor)",
    "check_off": "`plystra.check`, audit off",
    "check_deny_only": "`plystra.check`, audit deny_only",
    "check_always": "`plystra.check`, audit always",
    "check_batch_off": f"`plystra.check_batch` of {BATCH_ITEMS} items of the check mix (one actor; documents drawn "
                       f"at load time), audit off",
    "check_batch_always": f"`plystra.check_batch` of {BATCH_ITEMS} items of the check mix (one actor; documents drawn "
                          f"at load time), audit always (a row per item)",
    "allowed_off": "`plystra.allowed` (boolean), audit off",
    "explain_off": "`plystra.explain`, audit off",
    "check_off_demo": "`plystra.check`, audit off, demo-size database",
    "handwritten": "the same decision as one hand-written prepared SQL query (owner, no extension call)",
    "rls_off_scan": "scan, row-level security off (floor of the RLS scan)",
    "rls_scan": "scan with row-level security (the example's policy)",
    "per_row_scan": "scan calling `plystra.allowed_row` per row (bounded subset)",
    "loader_query": "(evidence) the 1.2.0 loader's single context statement alone (now the test oracle), from pgbench",
    "rls_space_off_scan": "scan of a whole Space, row-level security off (floor of the space-scope RLS scan)",
    "rls_space_scan": "scan with row-level security, reader with a space-scope grant",
    "rls_wide_off_scan_r0": "scan, row-level security off, reader w0 (floor)",
    "rls_wide_scan_r0": "scan with row-level security, reader w0 (narrow reach)",
    "rls_wide_off_scan_r1": "scan, row-level security off, reader w1 (floor)",
    "rls_wide_scan_r1": "scan with row-level security, reader w1 (middle reach)",
    "rls_wide_off_scan_r2": "scan, row-level security off, reader w2 (floor)",
    "rls_wide_scan_r2": "scan with row-level security, reader w2 (wide reach)",
    "check_off_before_skew": "`plystra.check`, audit off, ordinary actors, before the skew (floor)",
    "check_off_after_skew": "`plystra.check`, audit off, ordinary actors, after the skew",
    "http_health": "GET /api/v1/health (HTTP floor)",
    "http_check": "POST /api/v1/authz/check, audit off",
    "http_check_always": "POST /api/v1/authz/check, audit always (AUDIT_WRITE_MODE=always)",
    "cerbos_off": f"Cerbos {CERBOS_VERSION}: POST /api/check/resources, audit off",
    "cerbos_decision_log": f"Cerbos {CERBOS_VERSION}: POST /api/check/resources, file decision log",
}


def targets(run, ctx):
    R = run.result
    out = []

    def add(name, clients, value, threshold, op, detail):
        if value is None:
            out.append({"target": name, "clients": clients, "value": None, "threshold": threshold, "met": None,
                        "detail": detail})
            return
        met = value >= threshold if op == ">=" else (value <= threshold if op == "<=" else value < threshold)
        out.append({"target": name, "clients": clients, "value": value, "threshold": threshold, "op": op,
                    "met": met, "detail": detail})

    for c in CLIENTS:
        a, f = R("check_off", c), R("pk_lookup", c)
        add("check (audit off) throughput ≥ 0.5 × primary-key lookup", c,
            ratio(a and a["tps"], f and f["tps"]), 0.5, ">=", "tps ratio")
    for c in CLIENTS:
        a, f = R("check_off", c), R("handwritten", c)
        add("check (audit off) throughput ≥ 1.2 × the same decision as one hand-written SQL query", c,
            ratio(a and a["tps"], f and f["tps"]), 1.2, ">=", "tps ratio")
    for c in CLIENTS:
        a, f = R("check_always", c), R("insert_jsonb", c)
        add("check (audit always) throughput ≥ 0.8 × one-row insert", c,
            ratio(a and a["tps"], f and f["tps"]), 0.8, ">=", "tps ratio")
    for audit in ("off", "always"):
        for c in CLIENTS:
            a, f = R(f"check_batch_{audit}", c), R(f"check_{audit}", c)
            add(f"check_batch of {BATCH_ITEMS} items (audit {audit}) ≤ 10 × one check (issue 15)", c,
                ratio(a and a.get("p50_ms"), f and f.get("p50_ms")), 10.0, "<=",
                f"p50 ratio, a batch ÷ one check; ÷ {BATCH_ITEMS} for an item's cost in checks")
    for c in CLIENTS:
        a, f = R("check_off", c), R("check_off_demo", c)
        add(f"check p50 at {ctx['size']} size ≤ 1.2 × p50 at demo size", c,
            ratio(a and a.get("p50_ms"), f and f.get("p50_ms")), 1.2, "<=", "p50 ratio")
    for c in CLIENTS:
        a, f = R("rls_scan", c), R("rls_off_scan", c)
        add("RLS scan ≤ 1.5 × the same scan without RLS", c,
            ratio(a and a.get("p50_ms"), f and f.get("p50_ms")), 1.5, "<=", "p50 ratio")
    for c in CLIENTS:
        a, f = R("rls_space_scan", c), R("rls_space_off_scan", c)
        add("RLS scan ≤ 1.5 × the same scan without RLS (space-scope reader)", c,
            ratio(a and a.get("p50_ms"), f and f.get("p50_ms")), 1.5, "<=", "p50 ratio")
    for c in CLIENTS:
        a, p = R("rls_scan", c), R("per_row_scan", c)
        per_row_space = (p and p.get("p50_ms") and ctx.get("rows_per_space")
                         and p["p50_ms"] * ctx["rows_per_space"] / p["rows_examined"])
        add("RLS scan ≥ 100 × faster than the per-row function", c,
            ratio(per_row_space, a and a.get("p50_ms")), 100, ">=",
            "per-row p50 scaled to a whole Space ÷ RLS p50")
    full = ctx.get("per_row_full")
    if full and full.get("execution_ms") and ctx.get("rls_single_ms"):
        add("RLS scan ≥ 100 × faster than the per-row function (one whole Space, unscaled)", 1,
            full["execution_ms"] / ctx["rls_single_ms"], 100, ">=", "EXPLAIN ANALYZE execution times, one actor")
    reach = ctx.get("wide", {}).get("reach") or [None] * 3
    for wr in range(3):
        for c in CLIENTS:
            a, f = R(f"rls_wide_scan_r{wr}", c), R(f"rls_wide_off_scan_r{wr}", c)
            if a or f:
                add(f"RLS scan ≤ 1.5 × the same scan without RLS (one grant reaching {fmt(reach[wr])} groups)", c,
                    ratio(a and a.get("p50_ms"), f and f.get("p50_ms")), 1.5, "<=", "p50 ratio")
    for c in CLIENTS:
        a, f = R("check_off_after_skew", c), R("check_off_before_skew", c)
        if a or f:
            add("check (audit off), ordinary actors, after the skew ≥ 1 / 1.2 × before", c,
                ratio(a and a["tps"], f and f["tps"]), round(1 / 1.2, 3), ">=", "tps ratio")
    for c in CLIENTS:
        a, f = R("http_check", c), R("http_health", c)
        add("HTTP check throughput ≥ 0.5 × /health throughput", c,
            ratio(a and a["tps"], f and f["tps"]), 0.5, ">=", "tps ratio")
    a = R("http_check", 2)
    add("HTTP check p99 < 5 ms at 2 clients", 2, a and a.get("p99_ms"), 5.0, "<", "ms")
    # Issue 14: the REST front against Cerbos, measured in the same run (when Cerbos was available).
    for c in CLIENTS:
        a, f = R("http_check", c), R("cerbos_off", c)
        add("HTTP check (audit off) ≥ 3 × Cerbos (audit off), req/s (issue 14)", c,
            ratio(a and a["tps"], f and f["tps"]), 3.0, ">=", "req/s ratio")
    for c in CLIENTS:
        a, f = R("http_check_always", c), R("cerbos_decision_log", c)
        add("HTTP check (audit always) ≥ 1 × Cerbos with its file decision log, req/s (issue 14)", c,
            ratio(a and a["tps"], f and f["tps"]), 1.0, ">=", "req/s ratio")
    for c, limit in zip(CLIENTS, (2.0, 20.0)):
        a = R("http_check", c)
        add(f"HTTP check (audit off) p99 ≤ {limit:g} ms at {c} clients (issue 14)", c, a and a.get("p99_ms"), limit,
            "<=", "ms")
    for c in CLIENTS:
        a, f = R("http_check", c), R("http_health", c)
        add("HTTP check (audit off) ≥ 0.3 × /health, req/s (issue 14)", c,
            ratio(a and a["tps"], f and f["tps"]), 0.3, ">=", "req/s ratio")
    return out


def render_findings(run):
    """bench/FINDINGS.md, the written analysis of a full run: its {r[workload][clients][field]} placeholders are
    filled from this run's results, so that every number in it was measured in the run it is printed with."""
    path = BENCH / "FINDINGS.md"
    if not path.exists():
        return None
    r = {}
    for res in run.results:
        r.setdefault(res["workload"], {})[res["clients"]] = res
    t = {f"{x['target']}|{x['clients']}": x for x in targets(run, run.ctx)} if getattr(run, "ctx", None) else {}
    try:
        return path.read_text().strip().format_map({"r": r, "t": t})
    except (KeyError, IndexError, ValueError, TypeError) as e:
        return f"(bench/FINDINGS.md names a figure this run does not have: {e!r}; not rendered)"


def write_report(run, ctx, outdir):
    stamp = ctx["started_utc"].replace(":", "").replace("-", "")
    base = outdir / f"{stamp}-{ctx['size']}"
    doc = dict(ctx)
    doc["results"] = run.results
    doc["checks"] = [{"ok": ok, "check": text} for ok, text in run.checks]
    doc["targets"] = targets(run, ctx)
    doc["notes"] = run.notes
    base.with_suffix(".json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    md = render_markdown(run, doc)
    base.with_suffix(".md").write_text(md)
    if ctx["size"] == "full" and ctx.get("complete") and outdir.resolve() == (BENCH / "results").resolve():
        shutil.copyfile(base.with_suffix(".json"), outdir / "latest.json")
        shutil.copyfile(base.with_suffix(".md"), outdir / "latest.md")
    return base


CERBOS_METHOD = (
    "The policy is generated from the bench Spaces' own role permissions (a rule an action; `reject` is granted "
    "to no role, so it has no rule and Cerbos denies it by default). The principal is the Member, with the single "
    "role `member`, and carries in `attr` its Space, whether its actor tuple is usable (User, Member, Space and "
    "binding active and live, binding unexpired and joining exactly this User and Member in this Space: "
    "`plystra_core`'s `actor_usable`) and its live grants as a list of {role, anchor}, the anchor being the "
    "group path of a live anchor group ('' without one). The resource carries whether it was found (live and "
    "active), its Space, its group's path ('' without a live group) and its owner. A rule allows when the "
    "principal is usable, the resource was found in the principal's Space, and some grant's role holds the "
    "action with a scope that covers the resource: group_tree = the path equals the anchor or starts with the "
    "anchor followed by a dot (the label-boundary test of `path_within`), group = the path equals the anchor, "
    "self = the owner is the principal, space = always (the same Space is already required). Cerbos is "
    "stateless: every request carries these facts, computed from the bench database by one query per run "
    "(requests drawn by the check mix's arithmetic, `mix_sample`), so Cerbos does none of the lookups the "
    "Plystra check does per request (about 16 index probes: actor, registry, resource, group, grants); an "
    "application using Cerbos would have to fetch them itself, and that cost is not in Cerbos's figures. Not "
    "modelled: deny codes (Cerbos answers allow or deny only, and the agreement check compares decisions), "
    "grants whose role, binding or anchor lies in another Space (plystra.check denies the whole request: "
    "CROSS_SPACE_VIOLATION; the bench data has none), the registry (an unknown resource type or action is a "
    "default deny in Cerbos too), and the audit row's content: Plystra's row is a hash-chained database row "
    "confirmed durable before the answer, Cerbos's decision log is a JSON line appended to a file (no per-"
    "decision fsync observed).")


def render_cerbos(L, run, doc, table):
    """The Cerbos section: unavailable with its reason, or its runs and the ratios against the front's."""
    R = run.result
    cb = doc.get("cerbos") or {}
    if not cb.get("measured"):
        L.append("## HTTP: Cerbos side by side")
        L.append("")
        L.append(f"Cerbos: unavailable ({cb.get('reason') or 'not attempted by this harness version'}).")
        L.append("")
        return
    ag = cb.get("agreement") or {}
    table(["cerbos_off", "cerbos_decision_log"], "HTTP: Cerbos side by side",
          f"`{cb['package']}` from the npm registry (integrity `{cb['integrity'][:27]}…`), `{cb['binary']}`, on "
          f"loopback: disk storage with the generated policy, audit disabled, then audit enabled with backend "
          f"`file` (decision logs on, access logs off; {fmt(cb.get('decision_log_lines'))} decisions, "
          f"{fmt(round((cb.get('decision_log_bytes') or 0) / 1048576, 1))} MiB). {cb['endpoint']}; wrk cycles "
          f"through {fmt(cb['bodies'])} prepared requests of the check mix (`bench/workloads/http_bodies.lua`). "
          f"Agreement with `plystra.check`: {ag.get('requests', 0) - ag.get('differ', 0)} of "
          f"{ag.get('requests', 0)} requests (their decisions and deny codes from `plystra.check`: "
          + ", ".join(f"{k} {v}" for k, v in sorted((ag.get("check_deny_codes") or {}).items()))
          + "). Grants by action in the policy: "
          + "; ".join(f"{a}: {', '.join(g)}" for a, g in sorted(cb.get("grants_by_action", {}).items())) + "."
          + f" Measured in {cb.get('rounds', 1)} rounds alternated with the front's (the policy, the bodies and "
          "the agreement made in the first); each row is the median of its runs."
          + runs_listed(doc, ("cerbos_off", "cerbos_decision_log")))
    L.append("Ours ÷ Cerbos, same run, same request mix (issue 14's targets: audit off ≥ 3, audit always against "
             "the decision log ≥ 1, at every client count; p99 ≤ 2 ms at 2 clients and ≤ 20 ms at 16).")
    L.append("")
    L.append("| clients | Plystra audit off req/s (p99 ms) | Cerbos audit off req/s (p99 ms) | ours ÷ Cerbos | "
             "Plystra audit always req/s (p99 ms) | Cerbos decision log req/s (p99 ms) | ours ÷ Cerbos |")
    L.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    def cell(r):
        return f"{fmt(r and r.get('tps'))} ({fmt(r and r.get('p99_ms'), 3)})" if r else "–"
    for c in CLIENTS:
        a, b, x, y = R("http_check", c), R("cerbos_off", c), R("http_check_always", c), R("cerbos_decision_log", c)
        L.append(f"| {c} | {cell(a)} | {cell(b)} | {fmt(ratio(a and a.get('tps'), b and b.get('tps')))} | "
                 f"{cell(x)} | {cell(y)} | {fmt(ratio(x and x.get('tps'), y and y.get('tps')))} |")
    L.append("")
    L.append("How the Cerbos policy is equivalent, and where it is not: " + CERBOS_METHOD)
    L.append("")


def runs_listed(doc, workloads, unit="requests/s", label=lambda r: r["workload"]):
    """" Every run's <unit> …" for workloads measured as the median of runs (Runner.keep_median), or ""."""
    parts = [f"{label(r)} at {r['clients']} clients: " + ", ".join(fmt(t) for t in r["runs_tps"])
             for r in doc["results"] if r["workload"] in workloads and len(r.get("runs_tps") or []) > 1]
    return f" Every run's {unit}, in the order they ran: {'; '.join(parts)}." if parts else ""


def render_markdown(run, doc):
    R = run.result
    L = []
    m, ds = doc.get("machine", {}), doc.get("dataset", {})
    pg = doc.get("postgres", {"version": "?", "cluster": "?", "non_default": []})
    L.append(f"# Plystra benchmark: {doc['size']} size, {doc['started_utc']}")
    L.append("")
    if not doc.get("complete"):
        L.append("**Incomplete run: a check failed (see Checks at the end); figures missing from the tables were "
                 "not measured, and the figures present must not be trusted if a server process crashed.**")
        L.append("")
    L.append(f"Command: `{doc['command']}`. Every figure below was measured in this run; each Plystra figure "
             "stands next to its floor, measured on the same cluster, at the same concurrency, minutes apart. "
             "Throughput (tps) is pgbench's figure without connection time (wrk: requests ÷ duration); p50/p95/p99 "
             "are nearest-rank percentiles of every transaction's latency (pgbench `--log`; wrk's own histogram).")
    L.append("")
    L.append("## Machine, server, build")
    L.append("")
    L.append(f"- machine: {m.get('cores')} cores ({m.get('cpu', '?')}), {m.get('memory_gib', '?')} GiB memory, "
             f"Linux {m.get('kernel')}")
    if m.get("scheduling"):
        L.append(f"- kernel scheduling: per-session CPU groups (`kernel.sched_autogroup_enabled`) "
                 f"{m['scheduling']['autogroup']} (`bench/run --autogroup keep` measures with it as found)")
    L.append(f"- load at start: `{doc['load_start']}`; at end: `{doc.get('load_end', '?')}` (other work on the "
             "machine competes with the measurement: compare ratios, not absolute figures)")
    L.append(f"- PostgreSQL: {pg['version']}; cluster `{pg['cluster']}`, clients over the Unix socket "
             "(HTTP front: TCP loopback)")
    L.append("- server settings given by the harness (and the durability settings, all at their defaults): "
             + ", ".join(f"`{k}={v}`" for k, v in pg["non_default"])
             + "; the rest is initdb's postgresql.conf (locale, time zone, `max_wal_size`/`min_wal_size` before "
               "the override above; listed in the JSON)")
    L.append(f"- extension: `{doc['extension']['profile']}` build, sha256 `{(doc['extension']['sha256'] or '?')[:16]}…`"
             f" (the file the postmaster preloaded; {doc['extension']['pinned']})")
    if doc["extension"].get("audit_writer"):
        L.append(f"- audit writer: {doc['extension']['audit_writer']}")
    L.append(f"- source: commit `{doc['git']['commit'][:12]}`"
             + (" with uncommitted changes" if doc["git"]["uncommitted_changes"] else ""))
    L.append(f"- tools: {doc['tools']['pgbench']}; {doc['tools'].get('wrk') or 'wrk: not used'}; "
             f"`-M prepared`, `--random-seed={PGBENCH_SEED}`, {doc['duration_s']} s per workload, "
             f"{' and '.join(map(str, CLIENTS))} clients, {doc['threads']} pgbench/wrk threads")
    L.append("")
    L.append("## Data")
    L.append("")
    L.append(f"Generated by `bench/generate.sql` (setseed {SEED}), loaded with `session_replication_role = replica` "
             "and verified afterwards against the triggers' rules (see Checks).")
    L.append("")
    L.append("| | main database (`bench`) | demo-size database (`bench_demo`) |")
    L.append("| --- | ---: | ---: |")
    dd = doc.get("dataset_demo", {})
    for key, label in (("spaces", "spaces"), ("groups", "groups"), ("depth", "group tree depth (levels)"),
                       ("breadth", "breadth"), ("users", "users"), ("members", "members"),
                       ("bindings", "bindings"), ("bindings_revoked", "… revoked"),
                       ("bindings_expired", "… expired"), ("grants", "grants (member roles)"),
                       ("resources", "mirrored resources"), ("app_rows", "app.invoices rows (RLS example)"),
                       ("pgbench_accounts", "pgbench_accounts rows (floor)")):
        L.append(f"| {label} | {fmt(ds.get(key))} | {fmt(dd.get(key))} |")
    L.append("")
    L.append(f"Load times: {', '.join(f'{k} {v} s' for k, v in doc['timings'].items())}.")
    L.append("")
    w = doc.get("warmup")
    if w:
        tps = w.get("runs_tps") or []
        L.append(f"Before the decision workloads, after `pg_prewarm`: unmeasured runs of `{w['script']}` (audit off, "
                 f"{w['clients']} clients, {w['seconds']} s each, `--random-seed={w['seed']}` and up, so they draw "
                 f"other requests than the measured runs) until two in a row agreed within {WARM_AGREE:.0%} of "
                 f"throughput (at most {WARM_RUNS}), as a server that has been deciding holds the actors and groups "
                 f"its decisions read (kept per backend and shared between backends): "
                 + (", ".join(fmt(t) for t in tps) + " tps." if tps else "one run."))
        L.append("")
    mix = doc.get("decision_mix")
    if mix:
        total = sum(r["count"] for r in mix)
        L.append("Request mix of the check workloads (the audit rows written by the audit-always run: every "
                 "decision of that run): " + ", ".join(
                     f"{r['decision']}{' ' + r['deny_code'] if r['deny_code'] else ''} {100 * r['count'] / total:.1f}%"
                     for r in mix) + ".")
        L.append("")

    def table(names, title, floor_note):
        rows = [r for n in names for r in run.results if r["workload"] == n]
        if not rows:
            return
        L.append(f"## {title}")
        L.append("")
        if floor_note:
            L.append(floor_note)
            L.append("")
        L.append("| workload | clients | tps | p50 ms | p95 ms | p99 ms | floor | tps ÷ floor | p50 ÷ floor |")
        L.append("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
        for r in rows:
            f = R(r["floor"], r["clients"]) if r.get("floor") else None
            L.append(f"| {DESCRIPTIONS.get(r['workload'], r['workload'])} | {r['clients']} | {fmt(r.get('tps'))} | "
                     f"{fmt(r.get('p50_ms'), 3)} | {fmt(r.get('p95_ms'), 3)} | {fmt(r.get('p99_ms'), 3)} | "
                     f"{r['floor'] or '(floor)'} | {fmt(ratio(r.get('tps'), f and f.get('tps')))} | "
                     f"{fmt(ratio(r.get('p50_ms'), f and f.get('p50_ms')))} |")
        L.append("")

    floors = ["select1", "pk_lookup", "insert_jsonb"]
    decisions = ["check_off", "handwritten", "allowed_off", "explain_off", "check_deny_only", "check_always",
                 "check_off_demo", "check_batch_off", "check_batch_always"]
    rounds = doc.get("sql_rounds") or 1
    settled = doc.get("sql_rounds_settle_s") or []
    in_rounds = (f"Measured in {rounds} rounds with the decisions in SQL (next section): each round the floors, "
                 f"then every decision workload; each row is the median of its runs."
                 + (f" Between rounds, VACUUM (ANALYZE) of what a round wrote ({ROUND_WRITES}): "
                    f"{', '.join(f'{x} s' for x in settled)}." if settled else "") if rounds > 1 else "")
    table(floors, "Floors", (in_rounds + runs_listed(doc, floors, "tps")).strip() or None)
    table(decisions + ["loader_query"],
          "Decisions in SQL",
          "Audit off and the typed and explain forms against the primary-key lookup; audited modes against the "
          "one-row insert (an audit row is a durable write). `check_off_demo` is the same workload on the "
          "demo-size database (the scale comparison), measured right after `check_off` at the same clients. "
          "`handwritten` (`bench/workloads/handwritten.sql`) is the "
          "same decision for the same request mix written as one prepared SQL statement over the `plystra` "
          "tables, run as the owner: what a user would write instead of calling the extension (checked to give "
          "the same decision and deny code as `plystra.check` on a sample of the mix; see Checks)."
          + (f" Measured in {rounds} rounds alternated with the floors; each row is the median of its runs."
             if rounds > 1 else "") + runs_listed(doc, decisions, "tps"))
    rps = doc.get("rows_per_space") or 0
    rows_note = (f"One transaction: `BEGIN; SELECT plystra.set_actor(...); SELECT count(*), sum(amount_cents) FROM "
                 f"app.invoices ...; COMMIT`, for a random plain reader among {doc['rls_actors']} a Space. The RLS "
                 f"scan runs as `invoices_app` under the example's policy; the RLS-off scan runs as the owner with "
                 f"`WHERE space_id = … AND group_id IN (SELECT group_id FROM bench.actor_reach WHERE member_id = …)` "
                 f"(the same rows: the reach table was filled from `plystra.reachable_groups`); the per-row scan "
                 f"runs as the owner over the first {doc['per_row_rows']} rows of the actor's Space only, "
                 f"filtering with `plystra.allowed_row(...)` ({fmt(rps)} rows a Space: the targets "
                 f"scale its time by {fmt(rps / doc['per_row_rows'], 1)}). The space-scope pair: a random reader "
                 f"with a space-scope grant (role admin) among {doc['rls_actors']} a Space, under the same policy, "
                 f"against `WHERE space_id = …` as the owner (its whole Space).")
    table(["rls_off_scan", "rls_scan", "per_row_scan", "rls_space_off_scan", "rls_space_scan"],
          "Row-level security", rows_note)
    w = doc.get("wide")
    if w:
        cw, dw, ew = doc["size_parameters"]["wide"]
        table([f"rls_wide_{k}_r{wr}" for wr in range(3) for k in ("off_scan", "scan")], "Row-level security: reach that grows",
              f"Database `bench_wide` (`bench/generate_wide.sql`): one Space of {fmt(w['rows_in_space'])} "
              f"`app.invoices` rows, half of them under group `w` ({cw} × {dw} × {ew} groups below it), half under "
              f"a sibling. Readers w0, w1, w2 hold ONE group_tree grant each, reaching {fmt(w['reach'][0])}, "
              f"{fmt(w['reach'][1])} and {fmt(w['reach'][2])} groups ({fmt(w['rows_reached'][0])}, "
              f"{fmt(w['rows_reached'][1])} and {fmt(w['rows_reached'][2])} rows). The RLS scan runs as "
              "`invoices_app` under the example's policy; its floor runs as the owner with `WHERE space_id = … AND "
              "group_id IN (SELECT group_id FROM bench.actor_reach WHERE member_id = …)`, the same rows."
              + (" At tiny size only at the first client count." if doc["size"] == "tiny" else ""))
    sk = doc.get("skew")
    if sk:
        table(["check_off_before_skew", "check_off_after_skew"], "Noisy neighbours",
              f"The check workload (audit off; the same request mix, so ordinary actors only) before and after "
              f"{sk['members']} new members of Space `bsp_0` received {fmt(sk['grants_each'])} groups and grants "
              f"each, followed by VACUUM (ANALYZE) ({' s, '.join(str(t) for t in sk.get('applied_s', [sk['seconds']]))}"
              f" s). Measured last, in `bench`, in {sk.get('rounds', 1)} rounds: before, the skew applied, after, "
              f"then (but in the last round) the skew taken away and its tables vacuumed again "
              f"({' s, '.join(str(t) for t in sk.get('removed_s', [])) or '–'} s), so that before and after "
              f"alternate and the machine's drift over the phase falls on both. Each row is the median of its "
              f"{SKEW_RUNS} runs (the same requests each time)."
              + runs_listed(doc, ("check_off_before_skew", "check_off_after_skew"), "tps",
                            lambda r: "before" if r["workload"].endswith("before_skew") else "after")
              + (" At tiny size only at the first client count." if doc["size"] == "tiny" else ""))
    if doc.get("http", {}).get("measured"):
        table(["http_health", "http_check", "http_check_always"], "HTTP",
              f"`plystra_http` ({doc['http']['config']['binary']}), {doc['http']['config']['env']}; credential: "
              f"{doc['http']['config']['credential']}. wrk with the check workload's request mix (Lua). The "
              "audit-always run restarts the front with `AUDIT_WRITE_MODE=always` (every decision's audit row is "
              "confirmed durable by the audit writer before the answer). Measured in "
              f"{doc['http'].get('rounds', 1)} rounds, alternated with Cerbos's (next section); each row is the "
              "median of its runs."
              + runs_listed(doc, ("http_health", "http_check", "http_check_always"))
              + (f" Stopped early: {doc['http']['reason']}." if doc["http"].get("reason") else ""))
    else:
        L.append("## HTTP")
        L.append("")
        L.append(f"HTTP: not measured ({doc.get('http', {}).get('reason', 'unknown reason')}).")
        L.append("")
    render_cerbos(L, run, doc, table)

    L.append("## Scale")
    L.append("")
    for c in CLIENTS:
        a, d = R("check_off", c), R("check_off_demo", c)
        if a and d:
            L.append(f"- {c} clients: check (audit off) p50 {fmt(a.get('p50_ms'), 3)} ms at {doc['size']} size "
                     f"({fmt(ds.get('resources'))} resources, {fmt(ds.get('groups'))} groups) vs "
                     f"{fmt(d.get('p50_ms'), 3)} ms at demo size ({fmt(dd.get('resources'))} resources, "
                     f"{fmt(dd.get('groups'))} groups): ratio {fmt(ratio(a.get('p50_ms'), d.get('p50_ms')))}")
    L.append("")
    L.append("## Targets")
    L.append("")
    L.append("| target | clients | measured | threshold | met |")
    L.append("| --- | ---: | ---: | ---: | --- |")
    for t in doc["targets"]:
        met = "not measured" if t["met"] is None else ("**met**" if t["met"] else "**missed**")
        L.append(f"| {t['target']} | {t['clients']} | {fmt(t['value'])} ({t['detail']}) | {t.get('op', '')} "
                 f"{t['threshold']} | {met} |")
    L.append("")
    ev = doc.get("evidence", {})
    if ev:
        L.append("## Evidence (profiles and plans, measured in this run)")
        L.append("")
        for name, prof in ev.get("profiles", {}).items():
            L.append(f"### perf: {name}")
            L.append("")
            L.append("`perf record -e cpu-clock -F 999 -a -g` during a separate 2-client run of the workload; "
                     "samples of the `postgres` processes by shared object, then by symbol (self time, ≥ 0.7%).")
            L.append("")
            L.append("```")
            L.extend(prof.get("by_command", []))
            L.append("")
            L.append("postgres processes other than client backends: " + ", ".join(prof.get("processes", [])))
            L.extend(prof.get("by_process", []))
            L.append("")
            L.extend(prof.get("by_dso", []))
            L.append("")
            L.extend(prof.get("by_symbol", []))
            L.append("```")
            L.append("")
        if ev.get("perf_unavailable"):
            L.append(f"perf: not used ({ev['perf_unavailable']}).")
            L.append("")
        for name, plan in ev.get("plans", {}).items():
            L.append(f"### EXPLAIN (ANALYZE, BUFFERS): {name}")
            L.append("")
            L.append("```")
            L.append(plan)
            L.append("```")
            L.append("")
        full = ev.get("per_row_full")
        if full:
            L.append("### The per-row function over one whole Space (EXPLAIN (ANALYZE, TIMING OFF))")
            L.append("")
            L.append("```")
            L.append(full["plan"])
            L.append("```")
            L.append("")
    if doc.get("findings"):
        L.append("## Findings")
        L.append("")
        L.append(doc["findings"])
        L.append("")
    L.append("## Checks")
    L.append("")
    for ok, text in run.checks:
        L.append(f"- {'ok' if ok else 'NOT OK'}: {text}")
    L.append("")
    L.append(f"Wall time: {doc.get('wall_s')} s ({', '.join(f'{k} {v} s' for k, v in doc.get('phases', {}).items())}).")
    L.append("")
    return "\n".join(L)


# ---------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------

def server_crashes(cluster):
    """Lines of the server log that say a server process died (a crash invalidates the run)."""
    try:
        text = (cluster.path / "server.log").read_text(errors="replace")
    except OSError:
        return []
    return [l for l in text.splitlines() if "terminated by signal" in l or "PANIC" in l][:5]


def public_command(argv):
    """The command as the user typed it (bench/run adds --so)."""
    shown, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--so":
            skip = True
        elif not a.startswith("--so="):
            shown.append(a)
    return " ".join(["bench/run"] + shown)


def rerender(path):
    doc = json.loads(path.read_text())
    doc["command"] = public_command(doc["command"].split()[1:])
    run = Runner.__new__(Runner)
    run.results = doc["results"]
    run.checks = [(c["ok"], c["check"]) for c in doc["checks"]]
    run.ctx = doc
    if doc["size"] == "full" and doc.get("complete"):
        doc["findings"] = render_findings(run)
    doc["targets"] = targets(run, doc)
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    path.with_suffix(".md").write_text(render_markdown(run, doc))
    print(f"rendered {path.with_suffix('.md')}")
    return 0


def main():
    ap = argparse.ArgumentParser(description="Plystra benchmark (use bench/run)")
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--duration", type=int, help="seconds per workload (default: tiny 2, demo 5, full 8)")
    ap.add_argument("--out", default=str(BENCH / "results"), help="report folder (default bench/results)")
    ap.add_argument("--http", choices=["auto", "off"], default="auto",
                    help="auto: build plystra_http and measure it if it builds and starts")
    ap.add_argument("--cerbos", choices=["auto", "off"], default="auto",
                    help="auto: fetch the pinned Cerbos from the npm registry (cached in target/bench-tools) and "
                         "measure it side by side with the HTTP front; unavailable is reported, not a failure")
    ap.add_argument("--profile", choices=["auto", "on", "off"], default="auto",
                    help="perf profiles and plans (auto: on except at tiny size)")
    ap.add_argument("--per-row-budget", type=float, default=60.0,
                    help="seconds allowed for one unbounded per-row scan of a whole Space (estimated first)")
    ap.add_argument("--keep", action="store_true", help="leave the cluster running afterwards")
    ap.add_argument("--autogroup", choices=["off", "keep"], default="off",
                    help="off: turn the kernel's per-session CPU groups off for the run when allowed, and put the "
                         "setting back at the end (see autogroup_off); keep: measure with the setting as found")
    ap.add_argument("--so", help=argparse.SUPPRESS)   # the built library (bench/run passes it)
    ap.add_argument("--render", metavar="JSON",
                    help="measure nothing: render the Markdown report of an earlier run from its JSON (with the "
                         "current bench/FINDINGS.md filled from that run's figures)")
    args = ap.parse_args()
    if args.render:
        return rerender(Path(args.render))
    size = dict(SIZES[args.size])
    args.duration = args.duration or size["duration"]
    demo = dict(SIZES["demo"])
    validate_size(size, args.size)
    validate_size(demo, "demo")
    # First, before anything else can fail: a kernel setting a killed run left off is put back.
    autogroup_recovered = autogroup_recover()
    t_start = now()
    phases = {}
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    rundir = REPO / "target" / "bench-runs" / f"{started.replace(':', '')}-{args.size}"
    rundir.mkdir(parents=True, exist_ok=True)
    load_start = Path("/proc/loadavg").read_text().strip()
    print(f"bench: size {args.size}, {args.duration} s per workload, load at start: {load_start}", flush=True)
    ctx = {"size": args.size, "started_utc": started, "command": public_command(sys.argv[1:]),
           "duration_s": args.duration, "threads": min(2, os.cpu_count() or 1), "load_start": load_start,
           "size_parameters": size, "demo_parameters": demo, "rls_actors": rls_actor_count(size),
           "per_row_rows": size["per_row_rows"], "git": git_facts(), "dataset": {}, "dataset_demo": {},
           "timings": {}, "evidence": {}, "phases": phases,
           "tools": {"pgbench": sh([PGBENCH, "--version"]).stdout.strip(), "wrk": None}}

    # The HTTP front is built before anything is measured, so that compiling never overlaps a measurement.
    http_binary, http_reason = (None, "disabled with --http off") if args.http == "off" else build_http(args)
    if http_binary:
        wrk_reason = ensure_wrk()
        if wrk_reason:
            http_binary, http_reason = None, wrk_reason
    ctx["http"] = {"measured": False, "reason": http_reason}
    # The peer is fetched before anything is measured too (a download competes with the measurement).
    if args.cerbos == "off" or args.http == "off":
        cerbos_binary, cerbos_reason = None, f"disabled with --{'cerbos' if args.cerbos == 'off' else 'http'} off"
    else:
        cerbos_binary, cerbos_reason = ensure_cerbos()
        if cerbos_binary:
            cerbos_reason = ensure_wrk()
            cerbos_binary = None if cerbos_reason else cerbos_binary
    ctx["cerbos"] = {"measured": False, "reason": cerbos_reason, "version": CERBOS_VERSION}
    phases["build_http"] = round(now() - t_start, 1)

    pgdir = REPO / "target" / "bench-pg"
    port = int(lib("free_port 55460").stdout.strip())
    cluster = Cluster(pgdir, port)
    cluster.stop()
    if (pgdir / "data").exists():
        shutil.rmtree(pgdir / "data")
    if (pgdir / "server.log").exists():
        (pgdir / "server.log").unlink()
    so_path = PG_LIB / "plystra.so"
    options = list(PG_OPTIONS)
    audit_writer = None
    if b"plystra.audit_writer_database" in so_path.read_bytes():
        options.append(("plystra.audit_writer_database", "bench"))
        audit_writer = "preloaded, serving database `bench` (decision audit rows are written by its worker)"
    ctx["extension"] = {"profile": build_profile(so_path), "sha256": None, "audit_writer": audit_writer,
                        "pinned": "shared_preload_libraries, so a later install does not change it mid-run"}
    run = Runner(args, size, cluster, rundir)
    print("bench check:", flush=True)
    measuring = False
    autogroup_before = None
    try:
        t0 = now()
        cluster.start(options)
        pid = cluster.postmaster_pid()
        lib_at_start = loaded_library(pid)
        built = Path(args.so) if args.so else None
        built_sha = sha256(built) if built and built.exists() else None
        if lib_at_start is None:
            raise Failure("the postmaster did not preload plystra.so")
        ctx["extension"]["sha256"] = lib_at_start["sha256"]
        run.check(build_profile(so_path) == "release" or args.size == "tiny",
                  f"the installed extension is a {build_profile(so_path)} build")
        if built_sha:
            run.check(lib_at_start["sha256"] == built_sha,
                      "the preloaded library is the one bench/run just built")
        ctx["timings"] = load_database(run, "bench", size, with_floors=True, with_batches=True)
        ctx["dataset"] = verify_database(run, "bench", size)
        ctx["dataset"].update(spaces=size["spaces"], breadth=size["breadth"])
        ctx["dataset"]["pgbench_accounts"] = int(cluster.psql("bench", "SELECT count(*) FROM pgbench_accounts"))
        verify_rls(run, "bench", size)
        demo_timings = load_database(run, "bench_demo", demo, with_floors=False)
        ctx["dataset_demo"] = verify_database(run, "bench_demo", demo)
        ctx["dataset_demo"].update(spaces=demo["spaces"], breadth=demo["breadth"])
        ctx["timings"].update({f"demo_{k}": v for k, v in demo_timings.items()})
        scripts = [WORKLOADS / n for n in ("check.sql", "allowed.sql", "explain.sql", "handwritten.sql")]
        preambles = {request_mix(p) for p in scripts}
        run.check(len(preambles) == 1,
                  "check.sql, allowed.sql, explain.sql and handwritten.sql draw the same request mix")
        verify_handwritten(run, "bench", size)
        # A clean start for the measurements: restart (the audit writer attaches to `bench`), warm the caches.
        cluster.stop()
        cluster.start(options)
        pid = cluster.postmaster_pid()
        lib_pinned = loaded_library(pid)
        run.check(lib_pinned and lib_pinned["sha256"] == lib_at_start["sha256"],
                  "the restarted cluster preloaded the same library")
        for db in ("bench", "bench_demo"):
            cluster.psql(db, "CREATE EXTENSION IF NOT EXISTS pg_prewarm; SELECT count(pg_prewarm(c.oid)) FROM "
                             "pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN "
                             "('plystra', 'app', 'bench', 'public') AND c.relkind IN ('r', 'i')")
        phases["setup"] = round(now() - t0, 1)

        t0 = now()
        measuring = True
        scheduling, autogroup_before = autogroup_off(args.autogroup == "off", autogroup_recovered)
        ctx["machine"] = machine_facts()
        ctx["machine"]["scheduling"] = scheduling
        ctx["postgres"] = {
            "version": cluster.psql("postgres", "SELECT version()").split(" on ")[0],
            "cluster": str(pgdir.relative_to(REPO)),
            "non_default": [tuple(l.split("|", 1)) for l in cluster.psql("postgres", """
                SELECT name, current_setting(name) FROM pg_settings
                WHERE source = 'command line' AND name NOT IN ('port', 'listen_addresses')
                   OR name IN ('fsync', 'synchronous_commit', 'wal_level', 'full_page_writes', 'wal_sync_method')
                ORDER BY name""").splitlines()],
            "initdb_configuration_file": [tuple(l.split("|", 1)) for l in cluster.psql("postgres", """
                SELECT name, current_setting(name) FROM pg_settings WHERE source = 'configuration file'
                ORDER BY name""").splitlines()]}
        rows_per_space = int(cluster.psql("bench", "SELECT count(*) FROM app.invoices WHERE space_id = 'bsp_0'"))
        ctx["rows_per_space"] = rows_per_space
        sql_rounds(run, size, demo, ctx)
        for c in CLIENTS:
            run.pgbench("rls_off_scan", "bench", "rls_off_scan.sql", c, size, group="rls")
            run.pgbench("rls_scan", "bench", "rls_scan.sql", c, size, user="invoices_app", floor="rls_off_scan",
                        group="rls")
            run.pgbench("per_row_scan", "bench", "per_row_scan.sql", c, size, floor="rls_off_scan", group="rls",
                        extra={"rows_examined": min(size["per_row_rows"], rows_per_space)})
            run.pgbench("rls_space_off_scan", "bench", "rls_space_off_scan.sql", c, size, group="rls")
            run.pgbench("rls_space_scan", "bench", "rls_space_scan.sql", c, size, user="invoices_app",
                        floor="rls_space_off_scan", group="rls")
        phases["sql_workloads"] = round(now() - t0, 1)

        t0 = now()
        http_rounds(run, size, http_binary, cerbos_binary, ctx)
        if any(r["tool"] == "wrk" for r in run.results):
            ctx["tools"]["wrk"] = (sh(["wrk", "--version"], check=False).stdout.strip().splitlines() or [""])[0]
        phases["http_workloads"] = round(now() - t0, 1)

        t0 = now()
        evidence = ctx["evidence"]
        do_profile = args.profile == "on" or (args.profile == "auto" and args.size != "tiny")
        plans, i, s = explain(run, "bench", size)
        rls_single = re.search(r"Execution Time: ([0-9.]+) ms", plans["rls_scan"])
        ctx["rls_single_ms"] = float(rls_single.group(1)) if rls_single else None
        per_row = run.result("per_row_scan", CLIENTS[0])
        estimate = (per_row["p50_ms"] * rows_per_space / per_row["rows_examined"] / 1000
                    if per_row and per_row.get("p50_ms") else 1e9)
        ctx["per_row_full"] = per_row_full_scan(run, "bench", size, i, s, estimate)
        loader = loader_query_script(run) if do_profile or args.size == "tiny" else None
        if loader:
            run.pgbench("loader_query", "bench", str(loader), CLIENTS[0], size, floor="pk_lookup", group="evidence",
                        audit="off")
        if do_profile:
            evidence["plans"] = plans
            if ctx["per_row_full"]:
                evidence["per_row_full"] = ctx["per_row_full"]
            why = perf_available()
            if why:
                evidence["perf_unavailable"] = why
            else:
                evidence["profiles"] = {
                    "check, audit off (2 clients)": profile(run, "check_off", "bench", "check.sql", size, "off", 5),
                    "check, audit always (2 clients)": profile(run, "check_always", "bench", "check.sql", size,
                                                               "always", 5),
                }
        phases["evidence"] = round(now() - t0, 1)

        # Last, so that nothing measured before sees their data: wide-reach readers (own database), then noisy
        # neighbours (skewed grants in `bench`, measured before and after).
        t0 = now()
        few = CLIENTS[:1] if args.size == "tiny" else CLIENTS
        ctx["wide"] = load_wide(run, size)
        cluster.psql("bench_wide", "CREATE EXTENSION IF NOT EXISTS pg_prewarm; SELECT count(pg_prewarm(c.oid)) FROM "
                                   "pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN "
                                   "('plystra', 'app', 'bench') AND c.relkind IN ('r', 'i')")
        for c in few:
            for wr in range(3):
                run.pgbench(f"rls_wide_off_scan_r{wr}", "bench_wide", "rls_wide_off_scan.sql", c, size,
                            group="wide", defines={"wr": wr})
                run.pgbench(f"rls_wide_scan_r{wr}", "bench_wide", "rls_wide_scan.sql", c, size, user="invoices_app",
                            floor=f"rls_wide_off_scan_r{wr}", group="wide", defines={"wr": wr})
        phases["wide_reach"] = round(now() - t0, 1)
        t0 = now()
        ctx["skew"] = noisy_neighbours(run, "bench", size, few)
        phases["noisy_neighbours"] = round(now() - t0, 1)

        lib_at_end = loaded_library(cluster.postmaster_pid())
        run.check(lib_at_end and lib_pinned and lib_at_end["sha256"] == lib_pinned["sha256"] and
                  cluster.postmaster_pid() == pid,
                  "the same extension library served every measurement (postmaster preload, not restarted)")
    except Failure as e:
        run.check(False, str(e))
    finally:
        autogroup_restore(autogroup_before)
        crashes = server_crashes(cluster)
        run.check(not crashes, "no server process crashed" + (f": {' | '.join(crashes)}" if crashes else ""))
        if measuring:
            ctx["load_end"] = Path("/proc/loadavg").read_text().strip()
            ctx["complete"] = all(ok for ok, _ in run.checks)
            ctx["wall_s"] = round(now() - t_start, 1)
            run.ctx = ctx
            ctx["findings"] = render_findings(run) if args.size == "full" and ctx["complete"] else None
            try:
                base = write_report(run, ctx, outdir)
                run.check(True, f"report written: {base}.md and .json")
            except Exception as e:  # noqa: BLE001 - a report that cannot be written is a failed check, not a trace
                run.check(False, f"the report could not be written: {e!r}")
        if not args.keep:
            cluster.stop()
    failed = sum(1 for ok, _ in run.checks if not ok)
    # Worded so that scripts/test counts the ok / not ok lines above, not this summary.
    print(f"bench: {len(run.checks) - failed} ok, {failed} not ok; {round(now() - t_start, 1)} s in all", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

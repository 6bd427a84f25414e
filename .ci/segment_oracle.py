"""Segment oracle for the results API (in the style of
../shared/reference/gbstats_oracle.py): simulates a pilot whose people carry
pre-registered segment attributes, plays it through a `pilotgate serve` of
the built binary over HTTP (purpose, design with segments, approval, start,
consents, assignments with attributes, events), asks
`GET /api/v1/experiments/{key}/results?segment=NAME`, and checks every
segment value's per-variant figures against gbstats 0.8 (GrowthBook's stats
engine) computed from the simulation's own truth, and the adjusted p-values
against Holm and Benjamini-Hochberg as GrowthBook's front end applies them
(`setAdjustedPValuesOnResults`: the relative effect's p-values of every
dimension value and treatment variant of a goal metric, one family;
guardrails not adjusted).

usage: segment_oracle.py BINARY SEED [--users N]   (exit 0 when all match)
"""
import argparse, http.client, json, os, re, subprocess, sys, tempfile, threading, time
import datetime as dt
import numpy as np
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic
from gbstats.frequentist.tests import (TwoSidedTTest, SequentialTwoSidedTTest,
                                       FrequentistConfig, SequentialConfig)

PURPOSE = "personalize.content"
DEVICES = ["desktop", "mobile", "tablet"]
COUNTRIES = ["DE", "FR", "NL"]
# (key, metric kind, method, correction, segment asked for, variants)
SCENARIOS = [
    ("seg-binary", "binary", "frequentist", "holm", "device_type", ["control", "v1", "v2"]),
    ("seg-sum", "sum", "sequential", "benjamini_hochberg", "country", ["control", "v1"]),
]


class Api:
    """One keep-alive connection to the server, a token per role."""

    def __init__(self, port, tokens):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.tokens = tokens

    def call(self, method, path, role, body=None):
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode()
        if response.status >= 300:
            raise SystemExit(f"{method} {path}: {response.status} {text[:300]}")
        return json.loads(text) if text else None


def start_server(binary, home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTGATE_")}
    # The oracle checks the statistics, so nothing is withheld (k = 1);
    # small-cell suppression has its own sweep (tests/server/small_cells.rs).
    env.update(PILOTGATE_DATABASE_URL=f"sqlite://{home}/pilotgate.db", PILOTGATE_BIND="127.0.0.1:0",
               PILOTGATE_MIN_CELL="1")
    tokens = {}
    for role in ("marketer", "compliance", "ingest", "analyst"):
        p = subprocess.run([binary, "token", "create", "--role", role, "--name", f"oracle-{role}"],
                           cwd=home, env=env, capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise SystemExit(f"token create: {p.stderr.strip()}")
        tokens[role] = p.stdout.strip().splitlines()[-1].strip()
    server = subprocess.Popen([binary, "serve"], cwd=home, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    for line in server.stderr:
        match = re.search(r"pilotgate is serving.*port=(\d+)", line)
        if match:
            # Keep draining the log so the server never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
            return server, int(match.group(1)), tokens
        if time.time() > deadline:
            break
    server.kill()
    raise SystemExit("the server did not start")


def simulate(rng, users):
    """Each person: segment attributes (some unsent), and an outcome drawn
    after assignment (the variant is the server's; the outcome depends on
    it and on the segment, so segments differ)."""
    people = []
    for i in range(users):
        attributes = {}
        if rng.random() < 0.9:
            attributes["device_type"] = DEVICES[int(rng.integers(0, len(DEVICES)))]
        if rng.random() < 0.9:
            attributes["country"] = COUNTRIES[int(rng.integers(0, len(COUNTRIES)))]
        people.append({"user": f"oracle-{i:05d}", "attributes": attributes})
    return people


def outcome(rng, person, variant_index, kind):
    device = person["attributes"].get("device_type")
    lift = 0.25 * variant_index * (1.5 if device == "mobile" else 1.0)
    if kind == "binary":
        return 1.0 if rng.random() < 0.12 * (1 + lift) else 0.0
    if rng.random() < 0.3 * (1 + lift):
        return round(float(rng.gamma(2.0, 15.0)), 2)
    return 0.0


def play(api, key, kind, correction, variants, people, rng):
    design = {"key": key, "name": key, "hypothesis": "segments differ", "purpose": PURPOSE,
              "variants": [{"key": v, "weight": 1} for v in variants], "coverage": 1.0,
              "primary_metric": {"event": "purchase", "kind": kind},
              "mde": 0.1, "alpha": 0.05, "power": 0.8,
              "data_categories": ["orders", "device", "location"], "retention_days": 90,
              "segments": ["device_type", "country"], "segment_correction": correction}
    api.call("POST", "/api/v1/experiments", "marketer", design)
    api.call("POST", f"/api/v1/experiments/{key}/submit", "marketer", {})
    api.call("POST", f"/api/v1/experiments/{key}/approve", "compliance",
             {"design_version": 1, "comment": "oracle"})
    api.call("POST", f"/api/v1/experiments/{key}/start", "marketer", {})
    truth = []
    events = []
    for n, person in enumerate(people):
        answer = api.call("POST", "/api/v1/assign", "ingest",
                          {"experiment": key, "user_id": person["user"], "attributes": person["attributes"]})
        if not answer["variant"]:
            raise SystemExit(f"{key}: {person['user']} was not assigned: {answer}")
        index = variants.index(answer["variant"])
        y = outcome(rng, person, index, kind)
        truth.append((person, answer["variant"], y))
        if y > 0:
            at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)).isoformat()
            events.append({"event_id": f"{key}-{n}", "user_id": person["user"], "name": "purchase",
                           "value": y, "occurred_at": at})
    for start in range(0, len(events), 200):
        api.call("POST", "/api/v1/events", "ingest", {"events": events[start:start + 200]})
    return truth


def expected(truth, segment, variants, kind, method, correction):
    values = sorted({p["attributes"].get(segment) for p, _, _ in truth}, key=lambda v: (v is None, v or ""))
    out = {}
    for value in values:
        stats = {}
        for v in variants:
            ys = np.array([y for p, var, y in truth if var == v and p["attributes"].get(segment) == value])
            n = len(ys)
            stats[v] = (ProportionStatistic(n=n, sum=float(ys.sum())) if kind == "binary" else
                        SampleMeanStatistic(n=n, sum=float(ys.sum()), sum_squares=float((ys ** 2).sum())))
        comparisons = {}
        for v in variants[1:]:
            a, b = stats["control"], stats[v]
            comp = {}
            for difference in ("relative", "absolute"):
                if method == "frequentist":
                    r = TwoSidedTTest(a, b, FrequentistConfig(alpha=0.05, difference_type=difference)).compute_result()
                else:
                    r = SequentialTwoSidedTTest(a, b, SequentialConfig(alpha=0.05, difference_type=difference,
                                                sequential_tuning_parameter=5000)).compute_result()
                comp[difference] = {"estimate": r.expected, "ci": list(r.ci), "p_value": r.p_value}
            comparisons[v] = comp
        out[value] = {"variants": {v: {"users": stats[v].n, "mean": stats[v].mean} for v in variants},
                      "comparisons": comparisons}
    # One family: every value's every treatment, the relative p-value.
    family = [(value, v) for value in out for v in variants[1:]]
    adjusted = adjust([out[value]["comparisons"][v]["relative"]["p_value"] for value, v in family], correction)
    for (value, v), q in zip(family, adjusted):
        out[value]["comparisons"][v]["adjusted_p_value"] = q
    return out


def adjust(p, correction):
    """GrowthBook's corrections (as statsmodels `multipletests` computes them)."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    q = [0.0] * m
    if correction == "holm":
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, (m - rank) * p[i])
            q[i] = min(running, 1.0)
    else:
        running = 1.0
        for rank in range(m - 1, -1, -1):
            i = order[rank]
            running = min(running, p[i] * m / (rank + 1))
            q[i] = running
    return q


def close(a, b, rtol=1e-6, atol=1e-9):
    return a is not None and b is not None and abs(a - b) <= atol + rtol * abs(b)


def compare(got, exp, label):
    bad = []
    values = {v["value"]: v for v in got.get("values", [])}
    if set(values) != set(exp):
        bad.append(f"{label} segment values {sorted(values, key=str)} != {sorted(exp, key=str)}")
    for value, e in exp.items():
        g = values.get(value) or {}
        results = g.get("results") or {}
        tag = f"{label} {value}"
        gv = {x["variant"]: x for x in results.get("variants", [])}
        for v, ev in e["variants"].items():
            if (gv.get(v) or {}).get("users") != ev["users"]:
                bad.append(f"{tag} {v}.users {(gv.get(v) or {}).get('users')} != {ev['users']}")
            if not close((gv.get(v) or {}).get("mean"), ev["mean"]):
                bad.append(f"{tag} {v}.mean {(gv.get(v) or {}).get('mean')} != {ev['mean']}")
        gc = {x["variant"]: x for x in results.get("comparisons", [])}
        gp = {x["variant"]: x for x in g.get("p_values", [])}
        for v, ec in e["comparisons"].items():
            for difference in ("relative", "absolute"):
                gd = (gc.get(v) or {}).get(difference) or {}
                for k, ev in ec[difference].items():
                    if k == "ci":
                        for i in (0, 1):
                            if not close((gd.get("ci") or [None, None])[i], ev[i]):
                                bad.append(f"{tag} {v}.{difference}.ci[{i}] {(gd.get('ci') or [None, None])[i]} != {ev[i]}")
                    elif not close(gd.get(k), ev, atol=1e-8):
                        bad.append(f"{tag} {v}.{difference}.{k} {gd.get(k)} != {ev}")
            if not close((gp.get(v) or {}).get("adjusted_p_value"), ec["adjusted_p_value"], atol=1e-8):
                bad.append(f"{tag} {v}.adjusted_p_value {(gp.get(v) or {}).get('adjusted_p_value')} != {ec['adjusted_p_value']}")
    if got.get("family_size") != sum(len(e["comparisons"]) for e in exp.values()):
        bad.append(f"{label} family_size {got.get('family_size')}")
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary"); ap.add_argument("seed", type=int)
    ap.add_argument("--users", type=int, default=1500)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    home = tempfile.mkdtemp(prefix="segment-oracle")
    server, port, tokens = start_server(os.path.abspath(a.binary), home)
    bad, runs = [], 0
    try:
        api = Api(port, tokens)
        api.call("POST", "/api/v1/purposes", "compliance",
                 {"key": PURPOSE, "description": "oracle", "allowed_bases": ["consent"],
                  "min_notice_version": 1, "retention_days": 365})
        people = simulate(rng, a.users)
        earlier = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)).isoformat()
        for start in range(0, len(people), 200):
            records = [{"user_id": p["user"], "purpose": PURPOSE, "basis": "consent", "status": "granted",
                        "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"},
                        "collected_at": earlier} for p in people[start:start + 200]]
            api.call("POST", "/api/v1/consents", "ingest", {"records": records})
        for key, kind, method, correction, segment, variants in SCENARIOS:
            truth = play(api, key, kind, correction, variants, people, rng)
            got = api.call("GET", f"/api/v1/experiments/{key}/results?segment={segment}&method={method}", "analyst")
            label = f"[{key} {segment} {method} {correction}]"
            segments = got.get("segments") or {}
            if segments.get("correction") != correction or segments.get("segment") != segment:
                bad.append(f"{label} answered {segments.get('segment')} / {segments.get('correction')}")
            runs += 1
            bad += compare(segments, expected(truth, segment, variants, kind, method, correction), label)
    finally:
        server.terminate()
        server.wait(timeout=30)
    for b in bad[:15]:
        print(b)
    print(f"segment oracle seed={a.seed}: {runs} pilots, {len(bad)} mismatches with gbstats")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())

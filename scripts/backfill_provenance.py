"""One-off (issue 26): give every results/*.json made before `vlaos.config.write_results_json` existed a `provenance`.

    python scripts/backfill_provenance.py [--results results] [--skip demo.json,see_study.json]

Only what the file itself records is filled in (its `command`; its `date` or `updated`; its `machine`; its `vlaos`
version); the commit, the dirty flag and anything else the run did not record are "unknown", and `note` says the field
was added afterwards. A file that already has a `provenance` key is left alone, and no other key is changed (checked
before each file is written). `--skip` names files left alone all the same (e.g. ones a running job is writing)."""
import argparse, json, os
from pathlib import Path

NOTE = "added afterwards by scripts/backfill_provenance.py: fields not recorded by the run are unknown"

def backfilled(d: dict) -> dict:
    "The provenance of a results dict written before provenance was recorded, from its own fields."
    return {"commit": "unknown", "dirty": "unknown", "vlaos_version": d.get("vlaos", "unknown"),
            "date": d.get("date") or d.get("updated") or "unknown", "command": d.get("command", "unknown"),
            "machine": d.get("machine", "unknown"), "note": NOTE}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="results")
    ap.add_argument("--skip", default="demo.json,see_study.json", help="comma-separated file names to leave alone")
    a = ap.parse_args()
    skip = set(a.skip.split(",")) if a.skip else set()
    for p in sorted(Path(a.results).glob("*.json")):
        if p.name in skip: print(f"{p}: skipped"); continue
        text = p.read_text(); d = json.loads(text)
        if not isinstance(d, dict) or "provenance" in d: print(f"{p}: left alone"); continue
        new = {**d, "provenance": backfilled(d)}
        assert {k: v for k, v in new.items() if k != "provenance"} == d
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(new, indent=1) + ("\n" if text.endswith("\n") else "")); os.replace(tmp, p)
        assert {k: v for k, v in json.loads(p.read_text()).items() if k != "provenance"} == d
        print(f"{p}: provenance added ({new['provenance']['command'][:60]!r}, {new['provenance']['date']})")

if __name__ == "__main__": main()

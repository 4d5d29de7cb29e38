#!/usr/bin/env python3
"""Turn bench.sh's raw records into the table (stdout, Markdown) and a JSON file.

    report.py META TIMES SIZES OUT.json

META: KEY<TAB>VALUE. TIMES: ROUND<TAB>KIND<TAB>KEY<TAB>VALUE (round 0 = run
once). SIZES: SIDE<TAB>FILE<TAB>BYTES. Rates are MB/s of the disk's data
(allocated extents), MB = 10^6 bytes."""
import json
import statistics
import sys
from collections import defaultdict

MB = 1e6
# Goals of issue 13, printed beside the figures they judge.
GOAL_RATIO = 0.10
GOAL_DEFLATE_SHARE = 0.90
GOAL_EXAMPLE_BUILD_S = 15
GOAL_VERIFY_S = 90
GOAL_RSS_MIB = 256


def load(meta_p, times_p, sizes_p):
    meta = {}
    for line in open(meta_p):
        k, _, v = line.rstrip("\n").partition("\t")
        meta[k] = v
    series = defaultdict(list)  # (kind, key) -> [(round, value)]
    for line in open(times_p):
        r, kind, key, v = line.rstrip("\n").split("\t")
        series[(kind, key)].append((int(r), float(v)))
    sizes = defaultdict(dict)  # file -> side -> bytes
    for line in open(sizes_p):
        side, f, b = line.rstrip("\n").split("\t")
        sizes[f][side] = int(b)
    return meta, series, sizes


def values(series, kind, key):
    return [v for _, v in sorted(series.get((kind, key), []))]


def med(vs):
    return statistics.median(vs) if vs else None


def fmt(x, spec=".1f"):
    return "—" if x is None else format(x, spec)


def rate(mb, s):
    return mb / s if s else None


def main():
    meta, series, sizes = load(*sys.argv[1:4])
    out_json = sys.argv[4]
    data_mb = int(meta["data_bytes"]) / MB
    nproc = meta["nproc"]

    naive = values(series, "naive", "total:all")
    qw = values(series, "qvsa", "write")
    qb = values(series, "qvsa", "build")
    m_naive, m_qw, m_qb = med(naive), med(qw), med(qb)
    ratio = m_qw / m_naive if m_naive and m_qw is not None else None

    refs = {k: med(values(series, "ref", k)) for k in ("gzip-1", "pigz-all", "sha256sum", "openssl-sha256")}
    ref_rates = {k: rate(data_mb, s) for k, s in refs.items()}
    q_rate = rate(data_mb, m_qw)
    share_all = q_rate / ref_rates["pigz-all"] if q_rate and ref_rates["pigz-all"] else None

    # Naive per format: each artifact's median over rounds, summed per format.
    formats = defaultdict(lambda: {"artifacts": [], "seconds": 0.0})
    for (kind, key) in series:  # in the order the script ran them
        if kind != "naive" or key == "total:all":
            continue
        fmt_name, target = key.split(":")
        formats[fmt_name]["artifacts"].append(target)
        formats[fmt_name]["seconds"] += med(values(series, kind, key))
    for f in formats.values():
        n = len(f["artifacts"])
        f["seconds_each"] = f["seconds"] / n
        f["mb_s"] = rate(data_mb, f["seconds_each"])
    # sha256sum reads every artifact whole: its rate is of the bytes it hashed.
    hashed_mb = sum(s["naive"] for f, s in sizes.items() if "naive" in s and f != "SHA256SUMS") / MB
    if "sha256sum" in formats and hashed_mb:
        formats["sha256sum"]["hashed_mb"] = hashed_mb
        formats["sha256sum"]["mb_s"] = rate(hashed_mb, formats["sha256sum"]["seconds"])

    rss = lambda kind: max(values(series, kind, "maxrss_kb"), default=None)
    ex = {
        "build_s": med(values(series, "example-build", "build")),
        "build_wall_s": med(values(series, "example-build", "wall")),
        "build_phases_s": {p: med(values(series, "example-build", p)) for p in ("prepare", "assemble", "write")},
        "build_maxrss_kb": rss("example-build"),
        "verify_wall_s": med(values(series, "example-verify", "wall")),
        "verify_maxrss_kb": rss("example-verify"),
        "verify_exit": med(values(series, "example-verify", "exit")),
    }

    mode = "quick" if meta["quick"] == "1" else "full"
    p = print
    p(f"## qvsa bench ({mode}): {meta['date']}, {meta['commit']}")
    p()
    p(f"{meta['cpu']}, {nproc} cores, accel {meta['accel']}; qvsa build -j {meta['jobs']}. "
      f"Disk {int(meta['disk_bytes']) / 2**30:.0f} GiB holding {data_mb:.0f} MB of data "
      f"(payload tar {int(meta['payload_bytes']) / MB:.0f} MB); {meta['rounds']} alternating rounds, medians. "
      f"MB = 10^6 bytes of the disk's data; the per-round figures are in the order run.")
    p()
    p("| every artifact + SHA256SUMS from one disk | median s | rounds (s) | data MB/s |")
    p("|---|---:|---|---:|")
    p(f"| naive script (qemu-img per artifact, tar -Sczf, sha256sum) | {fmt(m_naive)} | "
      f"{', '.join(fmt(v) for v in naive)} | {fmt(rate(data_mb, m_naive))} |")
    p(f"| qvsa write phase (writers, checks, SHA-256) | {fmt(m_qw)} | {', '.join(fmt(v) for v in qw)} | {fmt(q_rate)} |")
    p(f"| **ratio qvsa write ÷ naive** | **{fmt(ratio, '.2f')}** | goal ≤ {GOAL_RATIO:.2f} | |")
    p(f"| qvsa whole build of the bench recipe | {fmt(m_qb)} | {', '.join(fmt(v) for v in qb)} | |")
    phases = ", ".join(f"{ph} {fmt(med(values(series, 'qvsa', ph)))}" for ph in ("prepare", "assemble", "write"))
    p(f"| … its phases (median s) | {phases} | | |")
    p()
    p("| reference on the same data | median s | MB/s | qvsa write rate as % of it |")
    p("|---|---:|---:|---:|")
    names = {"gzip-1": "deflate -6, 1 core (gzip)", "pigz-all": f"deflate -6, {nproc} cores (pigz)",
             "sha256sum": "sha256sum (coreutils)", "openssl-sha256": "openssl dgst -sha256 (libcrypto)"}
    for k, label in names.items():
        share = ""
        if k.startswith(("gzip", "pigz")) and q_rate and ref_rates[k]:
            share = f"{q_rate / ref_rates[k] * 100:.0f} %"
            if k == "pigz-all":
                share += f" (goal ≥ {GOAL_DEFLATE_SHARE * 100:.0f} %)"
        p(f"| {label} | {fmt(refs[k])} | {fmt(ref_rates[k])} | {share} |")
    p()
    p("| naive, per format | artifacts | median s each | data MB/s |")
    p("|---|---|---:|---:|")
    for name, f in formats.items():
        label = name
        if "hashed_mb" in f:
            label = f"sha256sum (MB/s of the {f['hashed_mb']:.0f} MB hashed)"
        p(f"| {label} | {' '.join(f['artifacts'])} | {fmt(f['seconds_each'])} | {fmt(f['mb_s'])} |")
    p()
    mib = lambda kb: None if kb is None else kb / 1024
    p("| example recipe (recipes/qvsa.yaml, 12 targets) and peak memory | s | peak RSS MiB | goal |")
    p("|---|---:|---:|---|")
    exph = ", ".join(f"{k} {fmt(v)}" for k, v in ex["build_phases_s"].items())
    p(f"| qvsa build ({exph}) | {fmt(ex['build_s'])} | {fmt(mib(ex['build_maxrss_kb']), '.0f')} | "
      f"≤ {GOAL_EXAMPLE_BUILD_S} s, ≤ {GOAL_RSS_MIB} MiB |")
    if meta.get("verify") == "1":
        verdict = "PASS" if ex["verify_exit"] == 0 else f"FAIL (exit {ex['verify_exit']:.0f})"
        p(f"| qvsa verify --all: {verdict} | {fmt(ex['verify_wall_s'])} | {fmt(mib(ex['verify_maxrss_kb']), '.0f')} | "
          f"≤ {GOAL_VERIFY_S} s |")
    else:
        p("| qvsa verify --all | skipped (BENCH_VERIFY=0) | | |")
    p(f"| qvsa build of the bench recipe (max over rounds) | | {fmt(mib(rss('qvsa')), '.0f')} | ≤ {GOAL_RSS_MIB} MiB |")
    p()
    p("| artifact | naive bytes | qvsa bytes |")
    p("|---|---:|---:|")
    for f, s in sorted(sizes.items()):
        p(f"| {f} | {s.get('naive', '—')} | {s.get('qvsa', '—')} |")

    doc = {
        "meta": meta,
        "data_mb": data_mb,
        "rounds": {f"{kind}/{key}": values(series, kind, key) for kind, key in sorted(series)},
        "median_s": {"naive": m_naive, "qvsa_write": m_qw, "qvsa_build": m_qb},
        "ratio_qvsa_write_over_naive": ratio,
        "rate_mb_s": {"naive": rate(data_mb, m_naive), "qvsa_write": q_rate, **ref_rates},
        "qvsa_write_share_of_all_core_deflate": share_all,
        "naive_formats": formats,
        "example": ex,
        "qvsa_bench_build_maxrss_kb": rss("qvsa"),
        "sizes": sizes,
        "goals": {"ratio_max": GOAL_RATIO, "deflate_share_min": GOAL_DEFLATE_SHARE,
                  "example_build_s_max": GOAL_EXAMPLE_BUILD_S, "verify_s_max": GOAL_VERIFY_S,
                  "peak_rss_mib_max": GOAL_RSS_MIB},
    }
    with open(out_json, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()

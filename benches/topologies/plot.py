"""PNG plots of benches/topologies.mjs's results: uplink, downlink, client CPU, server CPU and
latency against N, one line per topology (formula predictions dashed).

    python plot.py RESULTS_JSON OUT_DIR
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"sfu": "tab:blue", "cluster": "tab:green", "mesh": "tab:red", "mcu": "tab:orange"}
FIGURES = [
    ("uplink", "per-client uplink, kbit/s", "up_kbps", "up_pred_kbps"),
    ("downlink", "per-client downlink, kbit/s", "down_kbps", "down_pred_kbps"),
    ("client-cpu", "client CPU (its Chromium), % of a core", "client_cpu_pct", None),
    ("server-cpu", "server CPU, s/s (all nodes)", "server_cpu_s_per_s", None),
    ("latency", "audio mouth-to-ear latency p50, ms (bars: p95)", "latency_p50_ms", None),
]


def main(results_path, out_dir):
    data = json.loads(Path(results_path).read_text())
    rows = [r for r in data["results"] if r.get("transport") == "udp" and not r.get("error")]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    date = data["meta"]["date"][:10]
    for name, title, key, pred in FIGURES:
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        for topo in ["mesh", "sfu", "mcu", "cluster"]:
            pts = sorted((r["n"], r) for r in rows if r["topology"] == topo and r.get(key) is not None)
            if not pts:
                continue
            ns = [n for n, _ in pts]
            ys = [r[key] for _, r in pts]
            c = COLORS[topo]
            if name == "latency":
                hi = [max(0, (r.get("latency_p95_ms") or y) - y) for (_, r), y in zip(pts, ys)]
                ax.errorbar(ns, ys, yerr=[[0] * len(hi), hi], marker="o", color=c, label=topo, capsize=3)
            else:
                ax.plot(ns, ys, marker="o", color=c, label=topo)
            if pred:
                pp = [(n, r[pred]) for n, r in pts if r.get(pred) is not None]
                if pp:
                    ax.plot([n for n, _ in pp], [y for _, y in pp], linestyle="--", color=c, alpha=0.6, label=f"{topo} formula")
        ax.set_xscale("log")
        ax.set_xticks(sorted({r["n"] for r in rows}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("participants in the room (N)")
        ax.set_title(f"{title}\n(2-core VM, {date}; compare within this table only)", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"{name}.png")
        plt.close(fig)
        print(out / f"{name}.png")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

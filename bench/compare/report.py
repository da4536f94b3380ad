"""
The results of one bench/compare run, written for people: table.md (the
machine, the method and the figures, with usher's ratios to the others)
and chart.png (gnuplot). Everything comes from results.json's dict.
"""

import os
import shutil
import subprocess

CASES = [("1.2", "full"), ("1.2", "resume"), ("1.3", "full"), ("1.3", "resume")]


def case_label(tls, mode):
    return f"TLS {tls} {'resumed' if mode == 'resume' else 'full'}"


def _fmt(value, spec, missing="–"):
    return missing if value is None else format(value, spec)


def _find(rows, **keys):
    for row in rows:
        if all(row.get(k) == v for k, v in keys.items()):
            return row
    return None


# ---------------------------------------------------------------------------
# table.md


def _header(r):
    m = r["machine"]
    s = r["settings"]
    versions = ", ".join(f"{name} {v}" for name, v in r["versions"].items())
    load = " → ".join(", ".join(f"{x:.2f}" for x in la)
                      for la in (r["loadavg_start"], r["loadavg_end"]) if la)
    return [
        f"# usher, HAProxy and nginx side by side ({r['date']})",
        "",
        "## Machine",
        "",
        f"- {m['cpu_model']}, {m['cpus']} CPUs, {m['memory_gib']} GiB; "
        f"Linux {m['kernel']}, Debian {m['debian']}; {m['openssl']}",
        f"- servers: {versions}",
        f"- load average during the run: {load} (the machine is shared: "
        "compare rows of this run with each other, not with other runs)",
        "",
        "## Method",
        "",
        f"- Each server: one worker, pinned to CPU {s['server_cpu']}; usher-loadgen and "
        f"the four usher-testbackend backends pinned to CPU {s['load_cpu']}.",
        "- Same ECDSA P-256 certificate, TLS 1.2 and 1.3, stateless tickets from one "
        "80-byte key (nginx layout for usher and nginx, HAProxy's own layout for "
        "HAProxy), no server-side session cache, round robin over four backends.",
        f"- usher-loadgen, closed loop, {s['concurrency']} connections in flight, "
        f"{s['duration_s']} s per case; each connection sends one line and reads the "
        "backend's answer, then sends close_notify. In resume mode every slot "
        "resumes with its newest session.",
        "- Server CPU is utime+stime of all the server's processes and threads "
        "(/proc), divided by the connections answered in the case.",
        "- One load CPU does the client side of every handshake, so no server is "
        "driven to saturation: handshakes/s depends on the client and on latency. "
        "CPU per handshake is the figure to compare; 'server CPU busy' shows how far "
        "from saturation each server ran.",
        f"- Idle memory: a freshly started server, then {s['idle']} idle TLS 1.3 "
        "connections (each answered one line, so its backend connection is open); "
        "the growth of the summed RSS of the server's processes, divided by the "
        "connections held.",
        "- HAProxy and nginx have no ticket affinity: their affinity % is what round "
        "robin gives (about 25% with four backends). That difference is the point.",
        "",
    ]


def _handshake_table(r):
    lines = [
        "## Handshakes",
        "",
        "| server | case | handshakes/s | server CPU µs/handshake | server CPU busy "
        "| resumed % | affinity % | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tls, mode in CASES:
        for row in r["cases"]:
            if row["tls"] != tls or row["mode"] != mode:
                continue
            resumed = _fmt(row["resumed_pct"], ".2f") if mode == "resume" else "–"
            affinity = _fmt(row["affinity_pct"], ".2f") if mode == "resume" else "–"
            lines.append(
                f"| {row['server']} | {case_label(tls, mode)} "
                f"| {_fmt(row['handshakes_per_s'], ',.0f')} "
                f"| {_fmt(row['cpu_us_per_hs'], '.0f')} "
                f"| {_fmt(row['cpu_busy_pct'], '.0f')}% "
                f"| {resumed} | {affinity} "
                f"| {_fmt(row['p50_ms'], '.2f')} | {_fmt(row['p99_ms'], '.2f')} "
                f"| {row['errors']} |")
        floor = _find(r["floor"], tls=tls, mode=mode)
        if floor is not None:
            lines.append(f"| *in-memory floor* | {case_label(tls, mode)} | – "
                         f"| {floor['us_per_hs']:.0f} | – | – | – | – | – | – |")
    lines.append("")
    if r["floor"]:
        lines.append("The in-memory floor is the server side of one handshake through "
                     "a BIO pair, no TCP and no backend (bench/run-micro, "
                     f"{r['floor_source']}).")
    else:
        lines.append("No in-memory floor: results/micro.json was not there "
                     "(run bench/run-micro first to include it).")
    lines.append("")
    return lines


def _ratio_lines(r):
    lines = []
    for tls, mode in CASES:
        usher = _find(r["cases"], server="usher", tls=tls, mode=mode)
        if usher is None or not usher["cpu_us_per_hs"]:
            continue
        parts = []
        for other in ("nginx", "haproxy"):
            row = _find(r["cases"], server=other, tls=tls, mode=mode)
            if row is not None and row["cpu_us_per_hs"]:
                parts.append(f"{usher['cpu_us_per_hs'] / row['cpu_us_per_hs']:.2f}× "
                             f"{other}'s")
        if parts:
            lines.append(f"- {case_label(tls, mode)}: usher uses {' and '.join(parts)} "
                         "CPU per handshake")
    if not lines:
        return []
    return ["## Ratios", ""] + lines + [""]


def _idle_table(r):
    lines = [
        "## Memory per idle TLS connection",
        "",
        "| server | held | RSS before KiB | RSS held KiB | KiB per connection | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in r["idle"]:
        lines.append(f"| {row['server']} | {row['established']} of {row['requested']} "
                     f"| {row['rss_before_kib']} | {row['rss_held_kib']} "
                     f"| {_fmt(row['kib_per_conn'], '.1f')} | {row['errors']} |")
    lines.append("")
    return lines


def _problems(r):
    if not r["problems"]:
        return []
    return ["## Problems in this run", ""] + [f"- {p}" for p in r["problems"]] + [""]


def write_table(r, path):
    lines = (_header(r) + _handshake_table(r) + _ratio_lines(r) + _idle_table(r)
             + _problems(r))
    with open(path, "w") as f:
        f.write("\n".join(lines))


# ---------------------------------------------------------------------------
# chart.png


def _write_dat(path, header, rows):
    with open(path, "w") as f:
        if header:
            f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(row) + "\n")


def _cell(value, spec=".1f"):
    return "-" if value is None else format(value, spec)


def _chart_data(r, out):
    servers = r["servers"]
    floor = bool(r["floor"])
    cpu_rows, affinity_rows = [], []
    for tls, mode in CASES:
        row = [f'"{tls} {"resumed" if mode == "resume" else "full"}"']
        for name in servers:
            case = _find(r["cases"], server=name, tls=tls, mode=mode)
            row.append(_cell(case["cpu_us_per_hs"] if case else None))
        if floor:
            f = _find(r["floor"], tls=tls, mode=mode)
            row.append(_cell(f["us_per_hs"] if f else None))
        cpu_rows.append(row)

        if mode == "resume":
            row = [f'"TLS {tls}"']
            for name in servers:
                case = _find(r["cases"], server=name, tls=tls, mode=mode)
                row.append(_cell(case["affinity_pct"] if case else None))
            affinity_rows.append(row)

    _write_dat(os.path.join(out, "chart-cpu.dat"),
               ["case"] + servers + (["in-memory floor"] if floor else []), cpu_rows)
    _write_dat(os.path.join(out, "chart-affinity.dat"), ["case"] + servers, affinity_rows)
    # The colour of a server's bar is its column number in the other panels.
    _write_dat(os.path.join(out, "chart-idle.dat"), None,  # server, KiB, colour
               [[f'"{row["server"]}"', _cell(row["kib_per_conn"]),
                 str(servers.index(row["server"]) + 1)] for row in r["idle"]])
    return len(servers) + (1 if floor else 0), len(servers)


def _plot_columns(path, n):
    return ", ".join(
        (f'"{path}" using 2:xtic(1) title columnheader(2)' if i == 0
         else f'"" using {i + 2} title columnheader({i + 2})') for i in range(n))


def write_chart(r, out):
    """chart.png through gnuplot; returns a problem string, or None."""
    if shutil.which("gnuplot") is None:
        return "gnuplot is not installed: no chart.png"

    n_cpu, n_aff = _chart_data(r, out)
    script = "\n".join([
        'set terminal pngcairo size 1500,520 font "sans,10"',
        'set output "chart.png"',
        'set datafile separator "\\t"',
        'set datafile missing "-"',
        "set style data histograms",
        "set style histogram clustered gap 1",
        "set style fill solid 0.85 border -1",
        "set boxwidth 0.9",
        "set grid ytics",
        "set yrange [0:*]",
        "set key top left",
        "set xtics nomirror",
        f'set multiplot layout 1,3 title "usher, HAProxy and nginx, one worker each ({r["date"]})"',
        'set title "Server CPU per handshake, by TLS version (µs; lower is better)"',
        "plot " + _plot_columns("chart-cpu.dat", n_cpu),
        'set title "Resumed connections on their first backend (%)"',
        "set yrange [0:110]",
        "plot " + _plot_columns("chart-affinity.dat", n_aff),
        'set title "Memory per idle TLS connection (KiB; lower is better)"',
        "set yrange [0:*]",
        f"set xrange [-0.6:{len(r['idle']) - 0.4}]",
        "set boxwidth 0.6",
        'plot "chart-idle.dat" using 0:2:3:xtic(1) with boxes lc variable notitle',
        "unset multiplot",
        "",
    ])
    with open(os.path.join(out, "chart.gp"), "w") as f:
        f.write(script)

    run = subprocess.run(["gnuplot", "chart.gp"], cwd=out, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=60)
    if run.returncode != 0:
        return "gnuplot failed: " + run.stdout.decode(errors="replace").strip()[-300:]
    return None

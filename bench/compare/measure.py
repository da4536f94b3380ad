"""
What bench/compare reads from /proc: the processes of one server, their
CPU time and their resident memory, and a description of the machine.

A server is every process in the process group of the one we started
(nginx forks a worker from its master; usher and HAProxy are one process
with threads). /proc/PID/stat of a process already sums all its threads.
"""

import os
import platform
import subprocess

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid):
    """The fields of /proc/PID/stat after the command name, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; it ends at the last ')'.
    return text[text.rindex(")") + 2:].split()


def group_pids(pgid):
    """Every live process whose process group is pgid."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        # fields[0] is the state (field 3 of stat), fields[2] the pgrp (field 5).
        if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(entry))
    return sorted(pids)


def cpu_seconds(pids):
    """utime + stime of the processes, all their threads, in seconds."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            # utime and stime are fields 14 and 15 of stat: [11] and [12] here.
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLK_TCK


def rss_kib(pids):
    """The sum of VmRSS over the processes, in KiB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return []


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _read(path, default="?"):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def _openssl_version():
    try:
        run = subprocess.run(["openssl", "version"], stdout=subprocess.PIPE, timeout=10)
        return run.stdout.decode().strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine():
    mem_kib = 0
    for line in _read("/proc/meminfo", "").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "debian": _read("/etc/debian_version"),
        "openssl": _openssl_version(),
        "hostname": platform.node(),
    }

"""Draw a simulated run (the JSON lines of tools/sim.py) to a PNG: credit,
power, price and relay state over time, with the events that matter marked
(top-ups, relay switches, trips, tokens). The x axis is the meter's clock
(UTC dates and hours) when it knew the time, else days since the start."""

from datetime import datetime, timezone

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MARKS = {"topup": ("^", "tab:green"), "token": ("^", "tab:olive"),
         "trip": ("x", "tab:red"), "emergency": ("v", "tab:blue")}


def _x(lines):
    """A function from a line to its x value, and the axis label."""
    st = [d for d in lines if "time" in d]
    wall = st and not st[0]["time"].startswith("1970")
    if wall:
        t0 = datetime.strptime(st[0]["time"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=timezone.utc).timestamp() - st[0]["t"]
        return (lambda d: datetime.fromtimestamp(t0 + d["t"], timezone.utc)), "UTC"
    return (lambda d: d["t"] / 86400), "days since the start"


def plot(lines, path, title="Simulated meter"):
    st = [d for d in lines if "event" not in d and "credit" in d]
    if not st:
        raise ValueError("nothing to plot")
    x, xlabel = _x(lines)
    ev = [d for d in lines if "event" in d]
    fig, ax = plt.subplots(4, 1, sharex=True, figsize=(11, 8))
    ax[0].step([x(d) for d in st], [d["credit"] for d in st], where="post", color="tab:green")
    ax[0].axhline(0, color="grey", lw=0.5)
    ax[0].set_ylabel("credit\n(minor units)")
    for kind, (m, c) in MARKS.items():
        pts = [d for d in ev if d["event"] == kind]
        if pts:
            ax[0].scatter([x(d) for d in pts], [d.get("credit", 0) for d in pts], marker=m,
                          color=c, zorder=3, label=kind)
    if any(d["event"] in MARKS for d in ev):
        ax[0].legend(loc="upper right", fontsize="small")
    ax[1].step([x(d) for d in st], [d["power_w"] for d in st], where="post", color="tab:orange")
    ax[1].set_ylabel("power (W)")
    ax[2].step([x(d) for d in st], [d.get("price", 0) for d in st], where="post",
               color="tab:purple")
    ax[2].set_ylabel("price\n(per kWh)")
    # the relay from its switch events (exact), status lines filling in
    rel = sorted([(d["t"], d) for d in st] + [(d["t"], d) for d in ev if d["event"] == "relay"],
                 key=lambda p: p[0])
    ax[3].step([x(d) for _, d in rel], [1 if d["relay"] == "closed" else 0 for _, d in rel],
               where="post", color="tab:red")
    for d in ev:
        if d["event"] == "relay":
            ax[3].axvline(x(d), color="tab:green" if d["relay"] == "closed" else "tab:red",
                          lw=0.6, ls=":")
    ax[3].set_yticks([0, 1], ["open", "closed"])
    ax[3].set_ylabel("relay")
    ax[3].set_xlabel(xlabel)
    ax[0].set_title(title, fontsize="medium")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

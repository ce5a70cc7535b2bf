"""Draw a simulated run (the JSON status lines of tools/sim.py) to a PNG:
credit, power, price and relay state over time."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot(lines, path, title="Simulated meter"):
    st = [d for d in lines if "event" not in d and "credit" in d]
    if not st:
        raise ValueError("nothing to plot")
    days = [d["t"] / 86400 for d in st]
    fig, ax = plt.subplots(4, 1, sharex=True, figsize=(10, 8))
    ax[0].step(days, [d["credit"] for d in st], where="post", color="tab:green")
    ax[0].axhline(0, color="grey", lw=0.5)
    ax[0].set_ylabel("credit\n(minor units)")
    ax[1].step(days, [d["power_w"] for d in st], where="post", color="tab:orange")
    ax[1].set_ylabel("power (W)")
    ax[2].step(days, [d.get("price", 0) for d in st], where="post", color="tab:purple")
    ax[2].set_ylabel("price\n(per kWh)")
    ax[3].step(days, [1 if d["relay"] == "closed" else 0 for d in st], where="post",
               color="tab:red")
    ax[3].set_yticks([0, 1], ["open", "closed"])
    ax[3].set_ylabel("relay")
    ax[3].set_xlabel("days")
    ax[0].set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

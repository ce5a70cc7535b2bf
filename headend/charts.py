"""Charts as inline SVG, drawn on the server: no JavaScript, no build step."""

from html import escape

W, H, PAD = 640, 180, 30


def bars(items, unit):
    """[(label, value)] as a bar chart; labels under every other bar."""
    top = max([v for _, v in items]) or 1 if items else 1
    bw = (W - PAD) / max(1, len(items))
    out = ['<svg class="chart" viewBox="0 0 %d %d" role="img">' % (W, H + 20)]
    for i, (label, v) in enumerate(items):
        h = (H - PAD) * v / top
        x = PAD + i * bw
        out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %s %s'
                   '</title></rect>' % (x + 2, H - h, bw - 4, h, escape(label),
                                        escape("%.3g" % v), unit))
        if i % 2 == 0 or len(items) < 8:
            out.append('<text x="%.1f" y="%d">%s</text>' % (x + 2, H + 14, escape(label[5:])))
    out.append('<text x="0" y="12">%s %s</text></svg>' % (escape("%.3g" % top), unit))
    return "".join(out)


def line(points, unit):
    """[(t, value)] as a line; the time axis from the first to the last."""
    if len(points) < 2:
        return '<p class="muted">Not enough readings yet.</p>'
    t0, t1 = points[0][0], points[-1][0]
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    lo, hi = min(lo, 0), max(hi, 1)
    span, vspan = max(t1 - t0, 1), max(hi - lo, 1)
    xy = " ".join("%.1f,%.1f" % (PAD + (W - PAD) * (t - t0) / span,
                                 H - (H - PAD) * (v - lo) / vspan) for t, v in points)
    return ('<svg class="chart" viewBox="0 0 %d %d" role="img"><polyline points="%s"/>'
            '<text x="0" y="12">%s %s</text><text x="0" y="%d">%s</text></svg>'
            % (W, H + 20, xy, escape(str(hi)), unit, H, escape(str(lo))))
